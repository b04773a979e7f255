//! A coordinator that outlives its sessions: when the session expires it
//! opens a new one, as Kafka's `ZooKeeperClient` reinitializes its
//! ZooKeeper handle on expiry. What the old session owned (ephemeral nodes,
//! watches) is gone; [`RenewingCoordinator::sessions`] tells its owner to
//! register again and set its watches again.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use parking_lot::RwLock;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::coordinator::Coordinator;
use crate::error::Result;
use crate::types::{CreateMode, Op, OpResult, SessionState, Stat, Watch};

/// Opens a new session (with the backend and settings of the first).
pub type SessionFactory =
    Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Result<Arc<dyn Coordinator>>> + Send>> + Send + Sync>;

/// Pause between attempts to open a new session.
const RENEW_PAUSE: Duration = Duration::from_millis(500);

/// A [`Coordinator`] that opens a new session whenever its session expires;
/// every call goes to the current session. Its [`Coordinator::session_state`]
/// follows the current session, except that `Expired` is not final here: it
/// turns `Connected` again with the next session. Closing it is final.
pub struct RenewingCoordinator {
    current: Arc<RwLock<Arc<dyn Coordinator>>>,
    sessions: watch::Receiver<u64>,
    state: watch::Receiver<SessionState>,
    state_tx: Arc<watch::Sender<SessionState>>,
    task: JoinHandle<()>,
}

impl RenewingCoordinator {
    /// Opens the first session with `factory` (failing if it fails), and
    /// each later one with it too.
    pub async fn open(factory: SessionFactory) -> Result<Self> {
        let first = factory().await?;
        let current = Arc::new(RwLock::new(first));
        let (sessions_tx, sessions) = watch::channel(1u64);
        let (state_tx, state) = watch::channel(SessionState::Connected);
        let state_tx = Arc::new(state_tx);
        let task = tokio::spawn(renew(current.clone(), factory, sessions_tx, state_tx.clone()));
        Ok(Self {
            current,
            sessions,
            state,
            state_tx,
            task,
        })
    }

    /// The number of the current session (1 for the first), changing each
    /// time a new one replaces an expired one.
    pub fn sessions(&self) -> watch::Receiver<u64> {
        self.sessions.clone()
    }

    fn current(&self) -> Arc<dyn Coordinator> {
        self.current.read().clone()
    }
}

/// Follows the current session; opens the next when it expires.
async fn renew(
    current: Arc<RwLock<Arc<dyn Coordinator>>>,
    factory: SessionFactory,
    sessions: watch::Sender<u64>,
    state: Arc<watch::Sender<SessionState>>,
) {
    loop {
        let session = current.read().clone();
        let mut followed = session.session_state();
        let ended = loop {
            let now = *followed.borrow_and_update();
            match now {
                SessionState::Connected | SessionState::Disconnected => {
                    state.send_if_modified(|s| std::mem::replace(s, now) != now);
                }
                SessionState::Expired | SessionState::Closed => break now,
            }
            if followed.changed().await.is_err() {
                break SessionState::Expired;
            }
        };
        if ended == SessionState::Closed {
            state.send_replace(SessionState::Closed);
            return;
        }
        state.send_replace(SessionState::Expired);
        tracing::warn!(
            session = session.session_id(),
            "coordination session expired: opening a new one"
        );
        let next = loop {
            match factory().await {
                Ok(next) => break next,
                Err(e) => {
                    tracing::warn!("opening a new coordination session: {e}");
                    tokio::time::sleep(RENEW_PAUSE).await;
                }
            }
        };
        tracing::info!(session = next.session_id(), "new coordination session");
        *current.write() = next;
        sessions.send_modify(|n| *n += 1);
    }
}

impl Drop for RenewingCoordinator {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[async_trait]
impl Coordinator for RenewingCoordinator {
    fn session_id(&self) -> i64 {
        self.current().session_id()
    }

    fn session_state(&self) -> watch::Receiver<SessionState> {
        self.state.clone()
    }

    async fn create(&self, path: &str, data: &[u8], mode: CreateMode) -> Result<String> {
        self.current().create(path, data, mode).await
    }

    async fn get(&self, path: &str) -> Result<(Vec<u8>, Stat)> {
        self.current().get(path).await
    }

    async fn get_and_watch(&self, path: &str) -> Result<(Vec<u8>, Stat, Watch)> {
        self.current().get_and_watch(path).await
    }

    async fn set(&self, path: &str, data: &[u8], version: Option<i32>) -> Result<Stat> {
        self.current().set(path, data, version).await
    }

    async fn delete(&self, path: &str, version: Option<i32>) -> Result<()> {
        self.current().delete(path, version).await
    }

    async fn exists(&self, path: &str) -> Result<Option<Stat>> {
        self.current().exists(path).await
    }

    async fn exists_and_watch(&self, path: &str) -> Result<(Option<Stat>, Watch)> {
        self.current().exists_and_watch(path).await
    }

    async fn children(&self, path: &str) -> Result<Vec<String>> {
        self.current().children(path).await
    }

    async fn children_and_watch(&self, path: &str) -> Result<(Vec<String>, Watch)> {
        self.current().children_and_watch(path).await
    }

    async fn multi(&self, ops: Vec<Op>) -> Result<Vec<OpResult>> {
        self.current().multi(ops).await
    }

    async fn close(&self) -> Result<()> {
        // No new session after this one.
        self.task.abort();
        let closed = self.current().close().await;
        self.state_tx.send_replace(SessionState::Closed);
        closed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{EmbeddedCoordinator, EmbeddedStore};

    fn factory(store: &Arc<EmbeddedStore>) -> SessionFactory {
        let store = store.clone();
        Arc::new(move || {
            let store = store.clone();
            Box::pin(async move {
                let session: Arc<dyn Coordinator> =
                    Arc::new(EmbeddedCoordinator::connect(&store, Duration::from_secs(6)));
                Ok(session)
            })
        })
    }

    #[tokio::test]
    async fn an_expired_session_is_replaced_by_a_new_one() {
        let store = EmbeddedStore::in_memory();
        let coord = RenewingCoordinator::open(factory(&store)).await.unwrap();
        let first = coord.session_id();
        coord.create("/broker", b"1", CreateMode::Ephemeral).await.unwrap();
        let (_, watch) = coord.exists_and_watch("/elsewhere").await.unwrap();
        let mut sessions = coord.sessions();
        assert_eq!(*sessions.borrow_and_update(), 1);

        store.expire_session(first);
        // The old session's watch ends with it; its owner watches again.
        assert!(matches!(watch.await, Err(crate::CoordError::SessionExpired)));
        tokio::time::timeout(Duration::from_secs(5), sessions.changed())
            .await
            .expect("a new session within 5 s")
            .unwrap();
        assert_eq!(*sessions.borrow(), 2);
        assert_ne!(coord.session_id(), first);
        assert_eq!(*coord.session_state().borrow(), SessionState::Connected);
        // The old ephemeral node went with the old session; the new session
        // works and owns what it creates.
        assert_eq!(coord.exists("/broker").await.unwrap(), None);
        coord.create("/broker", b"1", CreateMode::Ephemeral).await.unwrap();
        let (_, stat) = coord.get("/broker").await.unwrap();
        assert_eq!(stat.ephemeral_owner, coord.session_id());
    }

    #[tokio::test]
    async fn closing_it_opens_no_new_session() {
        let store = EmbeddedStore::in_memory();
        let coord = RenewingCoordinator::open(factory(&store)).await.unwrap();
        coord.close().await.unwrap();
        let mut state = coord.session_state();
        tokio::time::timeout(Duration::from_secs(5), state.wait_for(|s| *s == SessionState::Closed))
            .await
            .expect("closed")
            .unwrap();
        assert_eq!(*coord.sessions().borrow(), 1);
    }
}
