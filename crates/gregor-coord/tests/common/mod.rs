//! Fixtures for the conformance suite: one per backend.
#![allow(dead_code)]

pub mod zookeeper_server;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use gregor_coord::*;
use parking_lot::Mutex;

/// Session timeout the suite uses.
pub const SESSION_TIMEOUT: Duration = Duration::from_millis(2000);

/// A backend under test.
#[async_trait]
pub trait Fixture: Send + Sync {
    /// A new session.
    async fn connect(&self) -> Arc<dyn Coordinator>;
    /// Ends `coord`'s session from outside, as a lost broker's would end.
    async fn kill_session(&self, coord: &dyn Coordinator);
    /// Makes the service expire `coord`'s session while its handle lives
    /// on (as after a partition longer than the session timeout): the
    /// handle learns it from the service.
    async fn expire_session(&self, session: i64);
}

/// Embedded store, in-process sessions.
pub struct EmbeddedFixture {
    pub store: Arc<EmbeddedStore>,
}

impl EmbeddedFixture {
    pub fn new() -> Self {
        Self {
            store: EmbeddedStore::in_memory(),
        }
    }
}

#[async_trait]
impl Fixture for EmbeddedFixture {
    async fn connect(&self) -> Arc<dyn Coordinator> {
        Arc::new(EmbeddedCoordinator::connect(&self.store, SESSION_TIMEOUT))
    }
    async fn kill_session(&self, coord: &dyn Coordinator) {
        self.store.expire_session(coord.session_id());
    }
    async fn expire_session(&self, session: i64) {
        self.store.expire_session(session);
    }
}

/// Embedded store served over TCP.
pub struct TcpFixture {
    pub store: Arc<EmbeddedStore>,
    pub server: CoordServer,
}

impl TcpFixture {
    pub async fn new() -> Self {
        let store = EmbeddedStore::in_memory();
        let server = CoordServer::bind("127.0.0.1:0", store.clone()).await.unwrap();
        Self { store, server }
    }
}

#[async_trait]
impl Fixture for TcpFixture {
    async fn connect(&self) -> Arc<dyn Coordinator> {
        Arc::new(
            RemoteCoordinator::connect(self.server.local_addr(), SESSION_TIMEOUT)
                .await
                .unwrap(),
        )
    }
    async fn kill_session(&self, coord: &dyn Coordinator) {
        self.store.expire_session(coord.session_id());
    }
    async fn expire_session(&self, session: i64) {
        self.store.expire_session(session);
    }
}

/// A real ZooKeeper started for the test. Sessions are detached, so that
/// killing one is what a crashed broker does: its handle goes away without
/// closing the session, and ZooKeeper expires it after the timeout.
pub struct ZooKeeperFixture {
    pub server: zookeeper_server::ZooKeeperServer,
    sessions: Mutex<HashMap<i64, Arc<ZooKeeperCoordinator>>>,
}

impl ZooKeeperFixture {
    pub fn new() -> Self {
        Self {
            server: zookeeper_server::ZooKeeperServer::start(),
            sessions: Mutex::new(HashMap::new()),
        }
    }
}

#[async_trait]
impl Fixture for ZooKeeperFixture {
    async fn connect(&self) -> Arc<dyn Coordinator> {
        let coord = ZooKeeperCoordinator::connect_detached(&self.server.hosts(), SESSION_TIMEOUT)
            .await
            .unwrap_or_else(|e| panic!("connecting to ZooKeeper: {e}\n{}", self.server.log()));
        let coord = Arc::new(coord);
        self.sessions.lock().insert(coord.session_id(), coord.clone());
        coord
    }
    async fn kill_session(&self, coord: &dyn Coordinator) {
        let zk = self.sessions.lock().get(&coord.session_id()).cloned().unwrap();
        zk.abandon();
    }
    async fn expire_session(&self, session: i64) {
        // ZooKeeper's way to expire a live client's session: another
        // client takes the session up (its id and password) and closes it.
        let zk = self.sessions.lock().get(&session).cloned().unwrap();
        let session = zk.client().unwrap().session().clone();
        // A loaded machine (the test command runs everything at once) can
        // keep ZooKeeper's answer past the default connection timeout (2/5
        // of the short session timeout): a longer one, and a few tries.
        let mut attempts = 0;
        let thief = loop {
            let connecting = zookeeper_client::Client::connector()
                .with_session(session.clone())
                .with_connection_timeout(Duration::from_secs(10))
                .connect(&self.server.hosts())
                .await;
            match connecting {
                Ok(thief) => break Some(thief),
                // Ended on its own meanwhile: what the caller waits for.
                Err(zookeeper_client::Error::SessionExpired) => break None,
                // The session's own client reconnects at once and takes
                // it back (ZooKeeper keeps the newest connection): try
                // again after a pause that varies, so one attempt lands
                // between its reconnections.
                Err(e) if attempts < 20 => {
                    attempts += 1;
                    eprintln!("taking over session {session:?} failed ({e}); again");
                    tokio::time::sleep(Duration::from_millis(50 + 37 * (attempts % 7))).await;
                }
                Err(e) => panic!("taking over the session: {e}\n{}", self.server.log()),
            }
        };
        // Dropping a (not detached) client closes its session.
        drop(thief);
    }
}

/// Waits (polling, with a deadline) until `coord`'s session has ended.
pub async fn wait_until_ended(coord: &dyn Coordinator) {
    let mut state = coord.session_state();
    let ended = tokio::time::timeout(
        Duration::from_secs(20),
        state.wait_for(|s| matches!(s, SessionState::Expired | SessionState::Closed)),
    )
    .await;
    assert!(ended.is_ok(), "session never ended");
}

/// Awaits a watch with a deadline.
pub async fn fired(watch: Watch) -> Result<WatchEvent> {
    tokio::time::timeout(Duration::from_secs(20), watch)
        .await
        .expect("watch never fired")
}

/// Polls `check` until it is true or 20 s pass.
pub async fn eventually<F, Fut>(mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(20);
    while !check().await {
        assert!(Instant::now() < deadline, "condition never held");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
