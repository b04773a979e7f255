//! A coordination service with a shared secret: which clients it serves,
//! and a session that resumes on new connections (each one authenticated).

mod sessions;

use std::time::Duration;

use gregor_coord::*;
use sessions::wait_for_state;
use tokio::time::Instant;

const TIMEOUT: Duration = Duration::from_millis(1500);

fn secret(s: &str) -> Option<CoordSecret> {
    Some(CoordSecret::new(s).unwrap())
}

const RIGHT: &str = "the cluster's own secret, 0123456789";
const WRONG: &str = "somebody else's secret, 0123456789";

async fn refused(addr: std::net::SocketAddr, secret: Option<CoordSecret>) -> String {
    match RemoteCoordinator::connect_with_secret(addr, TIMEOUT, secret).await {
        Err(e @ CoordError::AuthFailed(_)) => e.to_string(),
        Err(e) => panic!("refused with {e}, not AuthFailed"),
        Ok(c) => panic!("served session {}", c.session_id()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_a_client_with_the_secret_is_served() {
    let store = EmbeddedStore::in_memory();
    let server = CoordServer::bind_with_secret("127.0.0.1:0", store.clone(), secret(RIGHT))
        .await
        .unwrap();
    let addr = server.local_addr();
    let first = RemoteCoordinator::connect_with_secret(addr, TIMEOUT, secret(RIGHT))
        .await
        .unwrap();

    let none = refused(addr, None).await;
    assert!(none.contains("authentication required"), "{none}");
    // A wrong secret: the service's proof does not check out, so the client
    // stops before sending its own.
    let wrong = refused(addr, secret(WRONG)).await;
    assert!(wrong.contains("did not prove the shared secret"), "{wrong}");

    let c = RemoteCoordinator::connect_with_secret(addr, TIMEOUT, secret(RIGHT))
        .await
        .unwrap();
    c.create("/config", b"", CreateMode::Persistent).await.unwrap();
    assert_eq!(c.children("/").await.unwrap(), vec!["config".to_string()]);
    // The refused clients opened no session in between.
    assert_eq!(c.session_id(), first.session_id() + 1);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_with_a_secret_refuses_a_service_without_one() {
    let store = EmbeddedStore::in_memory();
    let server = CoordServer::bind("127.0.0.1:0", store).await.unwrap();
    let message = refused(server.local_addr(), secret(RIGHT)).await;
    assert!(message.contains("has none configured"), "{message}");
    server.shutdown().await;
}

/// The service restarts on the same store and address: with the same
/// secret the session resumes; with another, the resume is refused and
/// the session expires.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resumed_session_authenticates_again() {
    let store = EmbeddedStore::in_memory();
    let server = CoordServer::bind_with_secret("127.0.0.1:0", store.clone(), secret(RIGHT))
        .await
        .unwrap();
    let addr = server.local_addr();
    let timeout = Duration::from_secs(3);
    let broker = RemoteCoordinator::connect_with_secret(addr, timeout, secret(RIGHT))
        .await
        .unwrap();
    let session = broker.session_id();
    broker.create("/broker", b"1", CreateMode::Ephemeral).await.unwrap();

    server.shutdown().await;
    wait_for_state(&broker, SessionState::Disconnected, timeout).await;
    let server = CoordServer::bind_with_secret(addr, store.clone(), secret(RIGHT))
        .await
        .unwrap();
    wait_for_state(&broker, SessionState::Connected, timeout).await;
    assert_eq!(broker.session_id(), session);
    broker
        .create("/after-resume", b"", CreateMode::Persistent)
        .await
        .unwrap();
    assert!(
        broker.exists("/broker").await.unwrap().is_some(),
        "the ephemeral node lives on"
    );

    // The service comes back with another secret: resuming is refused, and
    // the session ends with its timeout.
    server.shutdown().await;
    wait_for_state(&broker, SessionState::Disconnected, timeout).await;
    let lost_at = Instant::now();
    let server = CoordServer::bind_with_secret(addr, store.clone(), secret(WRONG))
        .await
        .unwrap();
    wait_for_state(&broker, SessionState::Expired, timeout * 2).await;
    assert!(
        lost_at.elapsed() >= timeout / 2,
        "expired after {:?}",
        lost_at.elapsed()
    );
    let observer = EmbeddedCoordinator::connect(&store, Duration::from_secs(30));
    let deadline = Instant::now() + timeout * 2;
    while observer.exists("/broker").await.unwrap().is_some() {
        assert!(Instant::now() < deadline, "the ephemeral node outlived the session");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(observer.exists("/after-resume").await.unwrap().is_some());
    server.shutdown().await;
}
