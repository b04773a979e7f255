//! `zookeeper.set.acl`: against a real ZooKeeper, znodes created by an
//! authenticated session carry Kafka's ACLs — readable but not writable by
//! an unauthenticated client, unreadable below `/config/users`.

mod common;

use std::time::Duration;

use common::zookeeper_server::ZooKeeperServer;
use gregor_coord::*;

const TIMEOUT: Duration = Duration::from_secs(10);

fn secured(digest: &str) -> ZooKeeperAuth {
    ZooKeeperAuth {
        digest: Some(digest.into()),
        set_acl: true,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_authenticated_identity_writes_what_it_created() {
    let server = ZooKeeperServer::start();
    let hosts = server.hosts();
    let broker = ZooKeeperCoordinator::connect_with_auth(&hosts, TIMEOUT, &secured("kafka:broker-secret"))
        .await
        .unwrap();
    broker.create("/brokers", b"", CreateMode::Persistent).await.unwrap();
    broker
        .create("/brokers/topics", b"{}", CreateMode::Persistent)
        .await
        .unwrap();
    broker.create("/config", b"", CreateMode::Persistent).await.unwrap();
    broker
        .create("/config/users", b"", CreateMode::Persistent)
        .await
        .unwrap();
    broker
        .create("/config/users/alice", b"scram", CreateMode::Persistent)
        .await
        .unwrap();
    broker
        .multi(vec![Op::Create {
            path: "/brokers/ids".into(),
            data: vec![],
            mode: CreateMode::Persistent,
        }])
        .await
        .unwrap();

    let stranger = ZooKeeperCoordinator::connect(&hosts, TIMEOUT).await.unwrap();
    let other = ZooKeeperCoordinator::connect_with_auth(&hosts, TIMEOUT, &secured("mallory:guess"))
        .await
        .unwrap();
    for intruder in [&stranger, &other] {
        // World-readable, as Kafka leaves topics.
        assert_eq!(intruder.get("/brokers/topics").await.unwrap().0, b"{}");
        let denied = [
            intruder
                .set("/brokers/topics", b"{\"owned\":1}", None)
                .await
                .map(|_| ()),
            intruder
                .create("/brokers/topics/evil", b"", CreateMode::Persistent)
                .await
                .map(|_| ()),
            intruder
                .create("/brokers/ids/9", b"", CreateMode::Ephemeral)
                .await
                .map(|_| ()),
            intruder.delete("/brokers/topics", None).await,
            // Credentials: not even readable.
            intruder.get("/config/users/alice").await.map(|_| ()),
        ];
        for result in denied {
            assert!(matches!(result, Err(CoordError::AuthFailed(_))), "{result:?}");
        }
    }
    assert_eq!(broker.get("/brokers/topics").await.unwrap().0, b"{}");
    assert_eq!(broker.get("/config/users/alice").await.unwrap().0, b"scram");

    // Another session of the same identity (a restarted broker) may write.
    let again = ZooKeeperCoordinator::connect_with_auth(&hosts, TIMEOUT, &secured("kafka:broker-secret"))
        .await
        .unwrap();
    again.set("/brokers/topics", b"{\"v\":2}", None).await.unwrap();
    again
        .create("/brokers/topics/t", b"", CreateMode::Persistent)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_acl_without_credentials_is_refused_and_open_acls_stay_open() {
    let refused = ZooKeeperCoordinator::connect_with_auth(
        "127.0.0.1:1",
        TIMEOUT,
        &ZooKeeperAuth {
            digest: None,
            set_acl: true,
        },
    )
    .await;
    assert!(matches!(refused, Err(CoordError::AuthFailed(_))));

    let server = ZooKeeperServer::start();
    let hosts = server.hosts();
    let plain = ZooKeeperCoordinator::connect(&hosts, TIMEOUT).await.unwrap();
    plain.create("/brokers", b"", CreateMode::Persistent).await.unwrap();
    let stranger = ZooKeeperCoordinator::connect(&hosts, TIMEOUT).await.unwrap();
    stranger.set("/brokers", b"x", None).await.unwrap();
}
