//! A broker whose coordination session expired rejoins by itself: a new
//! session, registered again with a new broker epoch, the controller again,
//! its watches set again (issue 20, finding 1). The broker runs in process
//! on a coordination service served from an in-memory store the test
//! holds, so the test can expire the broker's session as the service does
//! after a partition.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use gregor_coord::kafka::{KafkaMetadata, TopicAssignment, TopicConfig, BROKER_IDS, CONTROLLER};
use gregor_coord::{CoordServer, Coordinator, EmbeddedCoordinator, EmbeddedStore, Stat};
use gregor_server::{Server, ServerConfig};
use tokio::time::Instant;

async fn eventually<T, F: Future<Output = Option<T>>>(what: &str, within: Duration, mut check: impl FnMut() -> F) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(found) = check().await {
            return found;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn registration(observer: &EmbeddedCoordinator) -> Option<Stat> {
    observer.exists(&format!("{BROKER_IDS}/0")).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_whose_session_expired_registers_again_and_leads_the_cluster_again() {
    let store = EmbeddedStore::in_memory();
    let service = CoordServer::bind("127.0.0.1:0", store.clone()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = ServerConfig {
        listeners: "PLAINTEXT://127.0.0.1:0".into(),
        log_dirs: dir.path().display().to_string(),
        coordination_connect: Some(service.local_addr().to_string()),
        zookeeper_session_timeout_ms: 2_000,
        metrics_listen: String::new(),
        offsets_topic_replication_factor: 1,
        transaction_state_log_replication_factor: 1,
        transaction_state_log_min_isr: 1,
        controlled_shutdown_enable: false,
        ..ServerConfig::default()
    };
    let server = Server::start(config).await.unwrap();
    let observer = EmbeddedCoordinator::connect(&store, Duration::from_secs(60));
    let first = registration(&observer).await.expect("registered");
    assert_eq!(server.broker().replicas().broker_epoch(), first.czxid);
    let old_session = first.ephemeral_owner;
    eventually("the broker the controller", Duration::from_secs(10), || async {
        let stat = observer.exists(CONTROLLER).await.unwrap()?;
        (stat.ephemeral_owner == old_session).then_some(())
    })
    .await;

    // The service expires the session (as after a partition longer than
    // the session timeout): the registration and the office go with it.
    store.expire_session(old_session);
    assert!(registration(&observer)
        .await
        .is_none_or(|s| s.ephemeral_owner != old_session));

    let second = eventually("the broker registered again", Duration::from_secs(15), || async {
        registration(&observer)
            .await
            .filter(|s| s.ephemeral_owner != old_session)
    })
    .await;
    assert!(second.czxid > first.czxid, "a new broker epoch");
    eventually("the new broker epoch in use", Duration::from_secs(5), || async {
        (server.broker().replicas().broker_epoch() == second.czxid).then_some(())
    })
    .await;
    eventually("the broker the controller again", Duration::from_secs(15), || async {
        let stat = observer.exists(CONTROLLER).await.unwrap()?;
        (stat.ephemeral_owner == second.ephemeral_owner).then_some(())
    })
    .await;

    // The controller watches again on the new session: a topic created
    // now gets its leader.
    let meta = KafkaMetadata::new(&observer);
    let assignment = TopicAssignment {
        version: 3,
        topic_id: None,
        partitions: BTreeMap::from([("0".to_string(), vec![0])]),
        adding_replicas: BTreeMap::new(),
        removing_replicas: BTreeMap::new(),
    };
    let config = TopicConfig {
        version: 1,
        config: BTreeMap::new(),
    };
    meta.create_topic("after-rejoin", &assignment, &config).await.unwrap();
    let state = eventually("the new topic's leader", Duration::from_secs(15), || async {
        meta.partition_state("after-rejoin", 0).await.ok()
    })
    .await;
    assert_eq!(state.0.leader, 0);
    // The config watcher watches again: a dynamic broker config recorded
    // now applies.
    let dynamic = BTreeMap::from([("log.retention.ms".to_string(), "5000".to_string())]);
    meta.set_entity_config("brokers/<default>", &dynamic).await.unwrap();
    let broker = server.broker().clone();
    eventually("the dynamic config applied", Duration::from_secs(15), || {
        let applied = broker
            .dynamic_config()
            .layers()
            .cluster_default
            .contains_key("log.retention.ms");
        std::future::ready(applied.then_some(()))
    })
    .await;

    server.shutdown().await.unwrap();
    service.shutdown().await;
}
