//! One conformance suite, run against every backend: the in-process
//! embedded store, the embedded store over TCP, and a real ZooKeeper.

mod common;

use std::sync::Arc;

use common::*;
use gregor_coord::kafka::{
    BrokerRegistration, KafkaMetadata, PartitionState, StateWrite, TopicAssignment, TopicConfig,
};
use gregor_coord::*;

async fn crud_versions_and_errors(f: &dyn Fixture) {
    let c = f.connect().await;
    assert_eq!(c.create("/t", b"v0", CreateMode::Persistent).await.unwrap(), "/t");
    assert!(matches!(
        c.create("/t", b"", CreateMode::Persistent).await,
        Err(CoordError::NodeExists(_))
    ));
    assert!(matches!(
        c.create("/missing/child", b"", CreateMode::Persistent).await,
        Err(CoordError::NoNode(_))
    ));
    let (data, stat) = c.get("/t").await.unwrap();
    assert_eq!(
        (data.as_slice(), stat.version, stat.ephemeral_owner),
        (&b"v0"[..], 0, 0)
    );
    // Compare-and-set: the right version wins, a stale one conflicts.
    assert_eq!(c.set("/t", b"v1", Some(0)).await.unwrap().version, 1);
    assert!(matches!(
        c.set("/t", b"stale", Some(0)).await,
        Err(CoordError::BadVersion(_))
    ));
    assert_eq!(c.get("/t").await.unwrap().0, b"v1");
    assert!(matches!(c.delete("/t", Some(0)).await, Err(CoordError::BadVersion(_))));
    c.create("/t/b", b"", CreateMode::Persistent).await.unwrap();
    c.create("/t/a", b"", CreateMode::Persistent).await.unwrap();
    assert_eq!(c.children("/t").await.unwrap(), vec!["a".to_string(), "b".to_string()]);
    assert!(matches!(c.delete("/t", None).await, Err(CoordError::NotEmpty(_))));
    let first = c
        .create("/t/seq-", b"", CreateMode::PersistentSequential)
        .await
        .unwrap();
    let second = c
        .create("/t/seq-", b"", CreateMode::PersistentSequential)
        .await
        .unwrap();
    assert!(
        first.starts_with("/t/seq-") && first.len() == "/t/seq-".len() + 10,
        "{first}"
    );
    assert!(second > first);
    c.create("/eph", b"", CreateMode::Ephemeral).await.unwrap();
    assert!(matches!(
        c.create("/eph/x", b"", CreateMode::Persistent).await,
        Err(CoordError::NoChildrenForEphemerals(_))
    ));
    assert_eq!(c.exists("/eph").await.unwrap().unwrap().ephemeral_owner, c.session_id());
    assert_eq!(c.exists("/nothing").await.unwrap(), None);
    assert!(matches!(c.get("/nothing").await, Err(CoordError::NoNode(_))));
    c.delete("/t/a", Some(0)).await.unwrap();
    c.create_all("/x/y/z").await.unwrap();
    assert!(c.exists("/x/y/z").await.unwrap().is_some());
}

async fn ephemeral_node_goes_with_its_session_and_fires_watches(f: &dyn Fixture) {
    let owner = f.connect().await;
    let observer = f.connect().await;
    observer.create("/members", b"", CreateMode::Persistent).await.unwrap();
    owner.create("/members/1", b"up", CreateMode::Ephemeral).await.unwrap();
    let (_, _, data_watch) = observer.get_and_watch("/members/1").await.unwrap();
    let (children, child_watch) = observer.children_and_watch("/members").await.unwrap();
    assert_eq!(children, vec!["1".to_string()]);

    f.kill_session(owner.as_ref()).await;

    let event = fired(data_watch).await.unwrap();
    assert_eq!(
        (event.kind, event.path.as_str()),
        (WatchEventKind::NodeDeleted, "/members/1")
    );
    let event = fired(child_watch).await.unwrap();
    assert_eq!(
        (event.kind, event.path.as_str()),
        (WatchEventKind::NodeChildrenChanged, "/members")
    );
    assert_eq!(observer.exists("/members/1").await.unwrap(), None);
    wait_until_ended(owner.as_ref()).await;
    assert!(owner.get("/members").await.is_err(), "an ended session can do nothing");
}

async fn watches_fire_once_per_registration(f: &dyn Fixture) {
    let c = f.connect().await;
    let other = f.connect().await;
    // Existence watch on a missing node fires on creation.
    let (stat, created) = c.exists_and_watch("/w").await.unwrap();
    assert!(stat.is_none());
    other.create("/w", b"1", CreateMode::Persistent).await.unwrap();
    assert_eq!(fired(created).await.unwrap().kind, WatchEventKind::NodeCreated);
    // A data watch sees the first change only; the second change needs a new watch.
    let (_, _, changed) = c.get_and_watch("/w").await.unwrap();
    other.set("/w", b"2", None).await.unwrap();
    other.set("/w", b"3", None).await.unwrap();
    let event = fired(changed).await.unwrap();
    assert_eq!(
        (event.kind, event.path.as_str()),
        (WatchEventKind::NodeDataChanged, "/w")
    );
    let (data, stat, again) = c.get_and_watch("/w").await.unwrap();
    assert_eq!((data.as_slice(), stat.version), (&b"3"[..], 2));
    other.delete("/w", None).await.unwrap();
    assert_eq!(fired(again).await.unwrap().kind, WatchEventKind::NodeDeleted);
    // Two children added after one registration: one event.
    other.create("/p", b"", CreateMode::Persistent).await.unwrap();
    let (_, children) = c.children_and_watch("/p").await.unwrap();
    other.create("/p/a", b"", CreateMode::Persistent).await.unwrap();
    other.create("/p/b", b"", CreateMode::Persistent).await.unwrap();
    assert_eq!(fired(children).await.unwrap().kind, WatchEventKind::NodeChildrenChanged);
}

async fn one_controller_wins_and_a_new_one_after_it_goes(f: &dyn Fixture) {
    let contenders: Vec<Arc<dyn Coordinator>> = futures_join(f, 5).await;
    let attempts = contenders.iter().map(|c| {
        let c = c.clone();
        tokio::spawn(async move { c.create("/controller", b"", CreateMode::Ephemeral).await.is_ok() })
    });
    let mut winners = Vec::new();
    for (i, attempt) in attempts.collect::<Vec<_>>().into_iter().enumerate() {
        if attempt.await.unwrap() {
            winners.push(i);
        }
    }
    assert_eq!(winners.len(), 1, "exactly one contender wins");
    let winner = winners[0];
    let watches: Vec<_> = {
        let mut w = Vec::new();
        for (i, c) in contenders.iter().enumerate() {
            if i != winner {
                let (stat, watch) = c.exists_and_watch("/controller").await.unwrap();
                assert_eq!(stat.unwrap().ephemeral_owner, contenders[winner].session_id());
                w.push((i, watch));
            }
        }
        w
    };
    f.kill_session(contenders[winner].as_ref()).await;
    let mut second_round = Vec::new();
    for (i, watch) in watches {
        assert_eq!(fired(watch).await.unwrap().kind, WatchEventKind::NodeDeleted);
        let c = contenders[i].clone();
        second_round.push((
            i,
            tokio::spawn(async move { c.create("/controller", b"", CreateMode::Ephemeral).await.is_ok() }),
        ));
    }
    let mut new_winners = Vec::new();
    for (i, attempt) in second_round {
        if attempt.await.unwrap() {
            new_winners.push(i);
        }
    }
    assert_eq!(new_winners.len(), 1, "exactly one new controller");
    assert_ne!(new_winners[0], winner);
}

async fn futures_join(f: &dyn Fixture, n: usize) -> Vec<Arc<dyn Coordinator>> {
    let mut v = Vec::new();
    for _ in 0..n {
        v.push(f.connect().await);
    }
    v
}

async fn transactions_are_all_or_nothing_and_fence(f: &dyn Fixture) {
    let c = f.connect().await;
    c.create("/epoch", b"1", CreateMode::Persistent).await.unwrap();
    let ok = c
        .multi(vec![
            Op::Check {
                path: "/epoch".into(),
                version: 0,
            },
            Op::Create {
                path: "/state".into(),
                data: b"a".to_vec(),
                mode: CreateMode::Persistent,
            },
            Op::Set {
                path: "/epoch".into(),
                data: b"2".to_vec(),
                version: Some(0),
            },
        ])
        .await
        .unwrap();
    assert_eq!(ok[0], OpResult::Checked);
    assert_eq!(ok[1], OpResult::Created("/state".into()));
    // A stale epoch version: nothing of the transaction is applied.
    let err = c
        .multi(vec![
            Op::Create {
                path: "/other".into(),
                data: vec![],
                mode: CreateMode::Persistent,
            },
            Op::Check {
                path: "/epoch".into(),
                version: 0,
            },
            Op::Set {
                path: "/state".into(),
                data: b"b".to_vec(),
                version: None,
            },
        ])
        .await
        .unwrap_err();
    match err {
        CoordError::TransactionFailed { index, source } => {
            assert_eq!(index, 1);
            assert!(matches!(*source, CoordError::BadVersion(_)), "{source:?}");
        }
        other => panic!("expected a failed transaction, got {other:?}"),
    }
    assert_eq!(c.exists("/other").await.unwrap(), None);
    assert_eq!(c.get("/state").await.unwrap().0, b"a");
}

async fn kafka_layout_registration_and_fencing(f: &dyn Fixture) {
    let broker1 = f.connect().await;
    let broker2 = f.connect().await;
    let meta1 = KafkaMetadata::new(broker1.as_ref());
    let meta2 = KafkaMetadata::new(broker2.as_ref());
    meta1.ensure_layout().await.unwrap();
    let epoch1 = meta1
        .register_broker(1, &BrokerRegistration::plaintext("127.0.0.1", 9092, None))
        .await
        .unwrap();
    assert_eq!(
        meta1
            .register_broker(1, &BrokerRegistration::plaintext("127.0.0.1", 9092, None))
            .await
            .unwrap(),
        epoch1,
        "registering again in the same session keeps the epoch"
    );
    let err = meta2
        .register_broker(1, &BrokerRegistration::plaintext("127.0.0.1", 9093, None))
        .await
        .unwrap_err();
    assert!(matches!(err, CoordError::NodeExists(_)), "{err}");
    assert!(
        err.to_string().contains("broker id 1 is registered by another session"),
        "{err}"
    );
    let epoch2 = meta2
        .register_broker(2, &BrokerRegistration::plaintext("127.0.0.1", 9093, Some("r2".into())))
        .await
        .unwrap();
    assert!(epoch2 > epoch1, "broker epochs grow: {epoch1} then {epoch2}");
    let brokers = meta1.brokers().await.unwrap();
    assert_eq!(brokers.keys().copied().collect::<Vec<_>>(), vec![1, 2]);
    assert_eq!((brokers[&1].broker_epoch, brokers[&2].broker_epoch), (epoch1, epoch2));
    assert_eq!(brokers[&2].rack.as_deref(), Some("r2"));
    let json: serde_json::Value = serde_json::from_slice(&broker1.get("/brokers/ids/1").await.unwrap().0).unwrap();
    assert_eq!(json["endpoints"][0], "PLAINTEXT://127.0.0.1:9092");
    assert_eq!(json["version"], 5);

    assert_eq!(meta1.try_become_controller(1).await.unwrap(), Some(1));
    assert_eq!(meta2.try_become_controller(2).await.unwrap(), None);
    assert_eq!(meta2.controller().await.unwrap(), Some(1));

    let assignment = TopicAssignment::new(&[vec![1, 2], vec![2, 1]], None);
    let config = TopicConfig {
        version: 1,
        config: [("cleanup.policy".to_string(), "compact".to_string())].into(),
    };
    meta1.create_topic("orders", &assignment, &config).await.unwrap();
    assert!(matches!(
        meta1.create_topic("orders", &assignment, &config).await,
        Err(CoordError::NodeExists(_))
    ));
    assert_eq!(
        meta2.topic_assignment("orders").await.unwrap().partitions["1"],
        vec![2, 1]
    );
    assert_eq!(
        meta2.topic_config("orders").await.unwrap().config["cleanup.policy"],
        "compact"
    );

    let (_, epoch_version) = meta1.controller_epoch().await.unwrap().unwrap();
    let state = PartitionState {
        controller_epoch: 1,
        leader: 1,
        version: 1,
        leader_epoch: 0,
        isr: vec![1, 2],
    };
    let v = meta1
        .write_partition_state("orders", 0, &state, epoch_version, None)
        .await
        .unwrap();
    // Broker 2 takes over as controller: the epoch moves, and the old
    // controller's writes are fenced.
    f.kill_session(broker1.as_ref()).await;
    eventually(|| async { meta2.try_become_controller(2).await.unwrap() == Some(2) }).await;
    let stale = PartitionState {
        leader_epoch: 1,
        ..state.clone()
    };
    let fenced = meta2
        .write_partition_state("orders", 0, &stale, epoch_version, Some(v))
        .await;
    assert!(
        matches!(fenced, Err(CoordError::TransactionFailed { index: 0, .. })),
        "{fenced:?}"
    );
    let (_, new_version) = meta2.controller_epoch().await.unwrap().unwrap();
    let fresh = PartitionState {
        controller_epoch: 2,
        leader: 2,
        leader_epoch: 1,
        isr: vec![2],
        ..state
    };
    meta2
        .write_partition_state("orders", 0, &fresh, new_version, Some(v))
        .await
        .unwrap();
    assert_eq!(meta2.partition_state("orders", 0).await.unwrap().0, fresh);
    let raw: serde_json::Value = serde_json::from_slice(
        &broker2
            .get("/brokers/topics/orders/partitions/0/state")
            .await
            .unwrap()
            .0,
    )
    .unwrap();
    assert_eq!(
        raw,
        serde_json::json!({"controller_epoch":2,"leader":2,"version":1,"leader_epoch":1,"isr":[2]})
    );

    // Partitions added, then the topic deleted with everything under it.
    let grown = TopicAssignment::new(&[vec![1, 2], vec![2, 1], vec![2]], None);
    meta2.set_topic_assignment("orders", &grown).await.unwrap();
    assert_eq!(meta2.topic_assignment("orders").await.unwrap().partitions.len(), 3);
    meta2.request_topic_deletion("orders").await.unwrap();
    meta2.delete_topic("orders").await.unwrap();
    assert!(meta2.topics().await.unwrap().is_empty());
    assert!(matches!(meta2.topic_config("orders").await, Err(CoordError::NoNode(_))));
    assert!(broker2.exists("/admin/delete_topics/orders").await.unwrap().is_none());
    meta2.delete_topic("orders").await.unwrap();

    // Producer id blocks: consecutive, never shared.
    let a = meta1.allocate_producer_id_block(1).await;
    let b = meta2.allocate_producer_id_block(2).await.unwrap();
    let c = meta2.allocate_producer_id_block(2).await.unwrap();
    assert!(a.is_err(), "broker 1's session was killed");
    assert_eq!((*b.start(), *b.end()), (0, 999));
    assert_eq!(*c.start(), 1000);
    let raw: serde_json::Value =
        serde_json::from_slice(&broker2.get("/latest_producer_id_block").await.unwrap().0).unwrap();
    assert_eq!(
        raw,
        serde_json::json!({"version":1,"broker":2,"block_start":"1000","block_end":"1999"})
    );
}

/// The controller's batched partition-state writes: all or none, each
/// over its expected version, fenced by the controller epoch; a single
/// write's stale version is a `BadVersion` (which the controller answers
/// by reading the node again).
async fn partition_states_are_written_in_fenced_batches(f: &dyn Fixture) {
    let session = f.connect().await;
    let meta = KafkaMetadata::new(session.as_ref());
    meta.ensure_layout().await.unwrap();
    assert_eq!(meta.try_become_controller(1).await.unwrap(), Some(1));
    let (_, epoch_version) = meta.controller_epoch().await.unwrap().unwrap();
    let state = |leader: i32, leader_epoch: i32| PartitionState {
        controller_epoch: 1,
        leader,
        version: 1,
        leader_epoch,
        isr: vec![leader],
    };
    let mut versions = Vec::new();
    for p in 0..3 {
        versions.push(
            meta.write_partition_state("many", p, &state(1, 0), epoch_version, None)
                .await
                .unwrap(),
        );
    }
    let moved = [state(2, 1), state(3, 1), state(2, 1)];
    let batch = |expected: &[i32]| -> Vec<StateWrite<'_>> {
        (0..3)
            .map(|p| StateWrite {
                topic: "many",
                partition: p as i32,
                state: &moved[p],
                expected_version: expected[p],
            })
            .collect()
    };

    // One state node moved on: nothing is written.
    let stale = [versions[0], versions[1] + 7, versions[2]];
    let refused = meta.write_partition_states(&batch(&stale), epoch_version).await;
    assert!(matches!(refused, Err(CoordError::BadVersion(_))), "{refused:?}");
    // The epoch moved on: fenced, nothing written.
    let fenced = meta.write_partition_states(&batch(&versions), epoch_version + 1).await;
    assert!(
        matches!(fenced, Err(CoordError::TransactionFailed { index: 0, .. })),
        "{fenced:?}"
    );
    for p in 0..3 {
        assert_eq!(meta.partition_state("many", p).await.unwrap().0, state(1, 0));
    }

    let written = meta
        .write_partition_states(&batch(&versions), epoch_version)
        .await
        .unwrap();
    for p in 0..3 {
        let (now, version) = meta.partition_state("many", p as i32).await.unwrap();
        assert_eq!((now, version), (moved[p].clone(), written[p]));
        assert!(written[p] > versions[p]);
    }
    // A single write over a version that moved on.
    let single = meta
        .write_partition_state("many", 0, &state(1, 2), epoch_version, Some(versions[0]))
        .await;
    assert!(matches!(single, Err(CoordError::BadVersion(_))), "{single:?}");
}

/// A controller that stops on an error steps down: only the session
/// holding `/controller` can resign, and an election follows.
async fn only_the_controllers_session_resigns_and_a_new_election_follows(f: &dyn Fixture) {
    let first = f.connect().await;
    let second = f.connect().await;
    let (meta1, meta2) = (KafkaMetadata::new(first.as_ref()), KafkaMetadata::new(second.as_ref()));
    meta1.ensure_layout().await.unwrap();
    let epoch = meta1.try_become_controller(1).await.unwrap().unwrap();
    assert!(!meta2.resign_controller().await.unwrap(), "not its office");
    assert_eq!(meta2.controller().await.unwrap(), Some(1));
    assert_eq!(meta2.try_become_controller(2).await.unwrap(), None);
    assert!(meta1.resign_controller().await.unwrap());
    assert_eq!(meta1.controller().await.unwrap(), None);
    assert!(!meta1.resign_controller().await.unwrap(), "nothing left to resign");
    assert_eq!(meta2.try_become_controller(2).await.unwrap(), Some(epoch + 1));
}

/// The service expires a session whose handle lives: the handle reports
/// `Expired` (not merely disconnected), its calls and watches end with
/// `SessionExpired` — what [`RenewingCoordinator`] acts on, opening a new
/// session whose calls work.
async fn expiry_is_reported_and_a_new_session_replaces_it(f: Arc<dyn Fixture>) {
    let fixture = f.clone();
    let factory: SessionFactory = Arc::new(move || {
        let f = fixture.clone();
        Box::pin(async move { Ok(f.connect().await) })
    });
    let coord = RenewingCoordinator::open(factory).await.unwrap();
    let observer = f.connect().await;
    coord.create_all("/renew").await.unwrap();
    coord.create("/renew/eph", b"", CreateMode::Ephemeral).await.unwrap();
    let (_, watch) = coord.exists_and_watch("/renew/other").await.unwrap();
    let mut sessions = coord.sessions();
    sessions.borrow_and_update();
    let first = coord.session_id();

    f.expire_session(first).await;
    let renewed = tokio::time::timeout(std::time::Duration::from_secs(20), sessions.changed()).await;
    assert!(renewed.is_ok(), "no new session after the expiry");
    assert!(matches!(watch.await, Err(CoordError::SessionExpired)));
    assert_ne!(coord.session_id(), first);
    assert_eq!(observer.exists("/renew/eph").await.unwrap(), None);
    coord.create("/renew/eph", b"", CreateMode::Ephemeral).await.unwrap();
    let (_, stat) = observer.get("/renew/eph").await.unwrap();
    assert_eq!(stat.ephemeral_owner, coord.session_id());
}

macro_rules! conformance_suite {
    ($backend:ident, $fixture:expr) => {
        mod $backend {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn crud_versions_and_errors() {
                let f = $fixture;
                super::crud_versions_and_errors(&f).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn ephemeral_node_goes_with_its_session_and_fires_watches() {
                let f = $fixture;
                super::ephemeral_node_goes_with_its_session_and_fires_watches(&f).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn watches_fire_once_per_registration() {
                let f = $fixture;
                super::watches_fire_once_per_registration(&f).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn one_controller_wins_and_a_new_one_after_it_goes() {
                let f = $fixture;
                super::one_controller_wins_and_a_new_one_after_it_goes(&f).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn transactions_are_all_or_nothing_and_fence() {
                let f = $fixture;
                super::transactions_are_all_or_nothing_and_fence(&f).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn kafka_layout_registration_and_fencing() {
                let f = $fixture;
                super::kafka_layout_registration_and_fencing(&f).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn partition_states_are_written_in_fenced_batches() {
                let f = $fixture;
                super::partition_states_are_written_in_fenced_batches(&f).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn only_the_controllers_session_resigns_and_a_new_election_follows() {
                let f = $fixture;
                super::only_the_controllers_session_resigns_and_a_new_election_follows(&f).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn expiry_is_reported_and_a_new_session_replaces_it() {
                let f: Arc<dyn Fixture> = Arc::new($fixture);
                super::expiry_is_reported_and_a_new_session_replaces_it(f).await;
            }
        }
    };
}

conformance_suite!(embedded_in_process, EmbeddedFixture::new());
conformance_suite!(embedded_tcp, TcpFixture::new().await);
conformance_suite!(zookeeper, ZooKeeperFixture::new());
