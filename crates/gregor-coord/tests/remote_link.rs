//! A remote session across link faults: a TCP proxy between the client and
//! the coordination service that can stall connections (hold their bytes
//! without closing them, as a link dropping packets does).

mod sessions;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use gregor_coord::*;
use sessions::wait_for_state;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

/// Stalls connections on demand.
struct Proxy {
    addr: std::net::SocketAddr,
    /// Connections numbered below this are stalled.
    stall_below: Arc<AtomicU64>,
    /// Every connection is stalled.
    stall_all: Arc<AtomicBool>,
    next: Arc<AtomicU64>,
}

impl Proxy {
    async fn start(target: std::net::SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let stall_below = Arc::new(AtomicU64::new(0));
        let stall_all = Arc::new(AtomicBool::new(false));
        let next = Arc::new(AtomicU64::new(0));
        let (below, all, counter) = (stall_below.clone(), stall_all.clone(), next.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let number = counter.fetch_add(1, Ordering::SeqCst);
                let Ok(server) = TcpStream::connect(target).await else {
                    continue;
                };
                let stalled = {
                    let (below, all) = (below.clone(), all.clone());
                    Arc::new(move || all.load(Ordering::SeqCst) || number < below.load(Ordering::SeqCst))
                };
                let (cr, cw) = client.into_split();
                let (sr, sw) = server.into_split();
                tokio::spawn(pump(cr, sw, stalled.clone()));
                tokio::spawn(pump(sr, cw, stalled));
            }
        });
        Self {
            addr,
            stall_below,
            stall_all,
            next,
        }
    }

    /// Stalls every connection open now (new ones pass).
    fn stall_existing(&self) {
        self.stall_below
            .store(self.next.load(Ordering::SeqCst), Ordering::SeqCst);
    }

    /// Stalls every connection, now and new, until `heal`.
    fn stall_everything(&self) {
        self.stall_all.store(true, Ordering::SeqCst);
    }

    fn heal(&self) {
        self.stall_all.store(false, Ordering::SeqCst);
        self.stall_below.store(0, Ordering::SeqCst);
    }
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    stalled: Arc<dyn Fn() -> bool + Send + Sync>,
) {
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        while stalled() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

async fn service() -> (Arc<EmbeddedStore>, CoordServer, Proxy) {
    let store = EmbeddedStore::in_memory();
    let server = CoordServer::bind("127.0.0.1:0", store.clone()).await.unwrap();
    let proxy = Proxy::start(server.local_addr()).await;
    (store, server, proxy)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_healthy_link_stays_connected_for_many_timeouts() {
    let (_store, _server, proxy) = service().await;
    let client = RemoteCoordinator::connect(proxy.addr, Duration::from_millis(600))
        .await
        .unwrap();
    let mut state = client.session_state();
    state.borrow_and_update();
    // Pings keep it heard from: no state change in five timeouts.
    let changed = tokio::time::timeout(Duration::from_secs(3), state.changed()).await;
    assert!(changed.is_err(), "state changed to {:?}", *state.borrow());
    client.create("/alive", b"", CreateMode::Ephemeral).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_connection_is_dropped_and_the_session_resumed_on_a_new_one() {
    let (store, _server, proxy) = service().await;
    let timeout = Duration::from_millis(3000);
    let client = RemoteCoordinator::connect(proxy.addr, timeout).await.unwrap();
    let session = client.session_id();
    client.create("/broker", b"1", CreateMode::Ephemeral).await.unwrap();
    let (_, watch) = client.exists_and_watch("/changed-meanwhile").await.unwrap();
    let observer = EmbeddedCoordinator::connect(&store, Duration::from_secs(30));

    proxy.stall_existing();
    let stalled_at = Instant::now();
    // While it stalls, what the client watched changes: the event is stuck
    // in the stalled connection.
    observer
        .create("/changed-meanwhile", b"", CreateMode::Persistent)
        .await
        .unwrap();
    // It gives up on the stalled connection after 2/3 of the timeout and
    // opens a new one (Disconnected lasts only until that one answers).
    let reconnected = async {
        while proxy.next.load(Ordering::SeqCst) < 2 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(timeout, reconnected)
        .await
        .expect("a new connection");
    assert!(stalled_at.elapsed() >= timeout * 2 / 3 - Duration::from_millis(100));
    wait_for_state(&client, SessionState::Connected, timeout).await;

    // The same session: its ephemeral node never went.
    assert_eq!(client.session_id(), session);
    let (_, stat) = observer.get("/broker").await.unwrap();
    assert_eq!(stat.ephemeral_owner, session);
    // The watch set before resolves (read again), and reading works.
    let fired = tokio::time::timeout(Duration::from_secs(1), watch).await;
    assert!(fired.is_ok(), "the watch set before the stall never resolved");
    assert!(client.exists("/changed-meanwhile").await.unwrap().is_some());
    client.set("/broker", b"2", None).await.unwrap();
    // Long after: still the same live session.
    tokio::time::sleep(timeout).await;
    assert_eq!(*client.session_state().borrow(), SessionState::Connected);
    assert_eq!(observer.get("/broker").await.unwrap().0, b"2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_made_while_reconnecting_wait_for_the_resumed_session() {
    let (_store, _server, proxy) = service().await;
    let timeout = Duration::from_millis(3000);
    let client = Arc::new(RemoteCoordinator::connect(proxy.addr, timeout).await.unwrap());
    proxy.stall_everything();
    wait_for_state(client.as_ref(), SessionState::Disconnected, timeout).await;
    let caller = client.clone();
    let call = tokio::spawn(async move { caller.create("/later", b"", CreateMode::Persistent).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !call.is_finished(),
        "a call while disconnected did not wait: {:?}",
        call.await
    );
    proxy.heal();
    let created = tokio::time::timeout(timeout, call)
        .await
        .expect("answered once resumed");
    assert_eq!(created.unwrap().unwrap(), "/later");
    assert_eq!(*client.session_state().borrow(), SessionState::Connected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_says_on_reconnecting_that_the_session_expired() {
    let (store, _server, proxy) = service().await;
    let timeout = Duration::from_millis(3000);
    let client = RemoteCoordinator::connect(proxy.addr, timeout).await.unwrap();
    client.create("/broker", b"1", CreateMode::Ephemeral).await.unwrap();
    proxy.stall_existing();
    let stalled_at = Instant::now();
    // The service ends the session; its word is stuck in the stalled link.
    store.expire_session(client.session_id());
    wait_for_state(&client, SessionState::Expired, timeout * 2).await;
    // Told on reconnecting (after 2/3 of the timeout), not guessed after
    // the whole timeout.
    assert!(
        stalled_at.elapsed() < timeout,
        "expiry seen after {:?}",
        stalled_at.elapsed()
    );
    assert!(matches!(client.get("/broker").await, Err(CoordError::SessionExpired)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_unreachable_for_its_timeout_expires_and_a_new_one_is_opened() {
    let (store, _server, proxy) = service().await;
    let timeout = Duration::from_millis(1500);
    let addr = proxy.addr;
    let factory: SessionFactory = Arc::new(move || {
        Box::pin(async move {
            let session: Arc<dyn Coordinator> = Arc::new(RemoteCoordinator::connect(addr, timeout).await?);
            Ok(session)
        })
    });
    let coord = RenewingCoordinator::open(factory).await.unwrap();
    let first = coord.session_id();
    coord.create("/broker", b"1", CreateMode::Ephemeral).await.unwrap();
    let observer = EmbeddedCoordinator::connect(&store, Duration::from_secs(30));
    let mut sessions = coord.sessions();
    sessions.borrow_and_update();

    proxy.stall_everything();
    wait_for_state(&coord, SessionState::Expired, timeout * 2).await;
    // The service expired it too: the registration is gone.
    let gone = async {
        while observer.exists("/broker").await.unwrap().is_some() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(timeout * 2, gone)
        .await
        .expect("the old session's node removed");
    proxy.heal();

    tokio::time::timeout(Duration::from_secs(10), sessions.changed())
        .await
        .expect("a new session once the link healed")
        .unwrap();
    assert_ne!(coord.session_id(), first);
    wait_for_state(&coord, SessionState::Connected, Duration::from_secs(1)).await;
    coord.create("/broker", b"1", CreateMode::Ephemeral).await.unwrap();
    assert_eq!(
        observer.get("/broker").await.unwrap().1.ephemeral_owner,
        coord.session_id()
    );
}
