//! What only the embedded backend has: durability across restarts, and
//! expiry of sessions whose heartbeats stop.

mod common;

use std::time::Duration;

use common::*;
use gregor_coord::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_store_keeps_persistent_nodes_and_drops_ephemeral_ones() {
    let dir = tempfile::tempdir().unwrap();
    let (version, seq) = {
        let store = EmbeddedStore::open(dir.path()).unwrap();
        let c = EmbeddedCoordinator::connect(&store, SESSION_TIMEOUT);
        c.create_all("/brokers/topics").await.unwrap();
        c.create("/brokers/topics/orders", b"{}", CreateMode::Persistent)
            .await
            .unwrap();
        let stat = c.set("/brokers/topics/orders", b"{\"v\":2}", Some(0)).await.unwrap();
        c.create("/brokers/ids", b"", CreateMode::Persistent).await.unwrap();
        c.create("/brokers/ids/1", b"alive", CreateMode::Ephemeral)
            .await
            .unwrap();
        c.create("/gone", b"", CreateMode::Persistent).await.unwrap();
        c.delete("/gone", None).await.unwrap();
        let seq = c
            .create("/brokers/seq-", b"", CreateMode::PersistentSequential)
            .await
            .unwrap();
        (stat.version, seq)
    };
    let store = EmbeddedStore::open(dir.path()).unwrap();
    let c = EmbeddedCoordinator::connect(&store, SESSION_TIMEOUT);
    let (data, stat) = c.get("/brokers/topics/orders").await.unwrap();
    assert_eq!((data.as_slice(), stat.version), (&b"{\"v\":2}"[..], version));
    assert_eq!(c.exists("/gone").await.unwrap(), None);
    assert!(c.exists(&seq).await.unwrap().is_some());
    assert_eq!(
        c.children("/brokers/ids").await.unwrap(),
        Vec::<String>::new(),
        "ephemeral nodes do not survive"
    );
    // Versions keep counting where they were.
    assert!(matches!(
        c.set("/brokers/topics/orders", b"x", Some(0)).await,
        Err(CoordError::BadVersion(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_torn_change_log_tail_is_cut_on_restart() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = EmbeddedStore::open(dir.path()).unwrap();
        let c = EmbeddedCoordinator::connect(&store, SESSION_TIMEOUT);
        c.create("/a", b"1", CreateMode::Persistent).await.unwrap();
        c.create("/b", b"2", CreateMode::Persistent).await.unwrap();
    }
    let log = dir.path().join("changes.log");
    let len = std::fs::metadata(&log).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&log)
        .unwrap()
        .set_len(len - 3)
        .unwrap();
    let store = EmbeddedStore::open(dir.path()).unwrap();
    let c = EmbeddedCoordinator::connect(&store, SESSION_TIMEOUT);
    assert!(c.exists("/a").await.unwrap().is_some());
    assert_eq!(c.exists("/b").await.unwrap(), None);
    c.create("/c", b"3", CreateMode::Persistent).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_without_heartbeats_expires_in_process() {
    let store = EmbeddedStore::in_memory();
    let observer = EmbeddedCoordinator::connect(&store, Duration::from_secs(30));
    let (_, watch) = {
        let crashed = EmbeddedCoordinator::connect(&store, Duration::from_millis(300));
        crashed.create("/eph", b"", CreateMode::Ephemeral).await.unwrap();
        let watch = observer.exists_and_watch("/eph").await.unwrap();
        (crashed.session_id(), watch)
        // Dropped: heartbeats stop, as when a broker dies.
    };
    let event = fired(watch.1).await.unwrap();
    assert_eq!(event.kind, WatchEventKind::NodeDeleted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_session_expires_after_its_connection_dies_and_the_restarted_service_keeps_data() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path()).unwrap();
    let server = CoordServer::bind("127.0.0.1:0", store.clone()).await.unwrap();
    let observer = RemoteCoordinator::connect(server.local_addr(), Duration::from_secs(30))
        .await
        .unwrap();
    let crashed = RemoteCoordinator::connect(server.local_addr(), Duration::from_millis(400))
        .await
        .unwrap();
    crashed
        .create("/persistent", b"kept", CreateMode::Persistent)
        .await
        .unwrap();
    crashed.create("/eph", b"", CreateMode::Ephemeral).await.unwrap();
    let (_, watch) = observer.exists_and_watch("/eph").await.unwrap();
    drop(crashed); // the connection closes without a Close: the session times out
    assert_eq!(fired(watch).await.unwrap().kind, WatchEventKind::NodeDeleted);

    // Restart the service on the same files.
    let addr = server.local_addr();
    server.shutdown().await;
    drop(observer);
    drop(store);
    let store = EmbeddedStore::open(dir.path()).unwrap();
    let server = CoordServer::bind(addr, store).await.unwrap();
    let c = RemoteCoordinator::connect(server.local_addr(), SESSION_TIMEOUT)
        .await
        .unwrap();
    assert_eq!(c.get("/persistent").await.unwrap().0, b"kept");
    assert_eq!(c.exists("/eph").await.unwrap(), None);
    c.close().await.unwrap();
    assert!(matches!(c.get("/persistent").await, Err(CoordError::SessionExpired)));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_on_the_wire_closes_only_that_connection() {
    use tokio::io::AsyncWriteExt;
    let store = EmbeddedStore::in_memory();
    let server = CoordServer::bind("127.0.0.1:0", store).await.unwrap();
    let mut raw = tokio::net::TcpStream::connect(server.local_addr()).await.unwrap();
    raw.write_all(&[0xff, 0xff, 0xff, 0xff, 1, 2, 3]).await.unwrap();
    let mut raw2 = tokio::net::TcpStream::connect(server.local_addr()).await.unwrap();
    raw2.write_all(&[0, 0, 0, 3, 9, 9, 9]).await.unwrap();
    let c = RemoteCoordinator::connect(server.local_addr(), SESSION_TIMEOUT)
        .await
        .unwrap();
    c.create("/ok", b"", CreateMode::Persistent).await.unwrap();
    server.shutdown().await;
}
