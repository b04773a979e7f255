//! The embedded store: the tree, the sessions that own ephemeral nodes, and
//! (optionally) the files that make persistent nodes survive a restart.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::{oneshot, watch};
use tokio::time::Instant;
use tracing::{info, warn};

use super::persist::Durable;
use super::tree::Tree;
use crate::error::{CoordError, Result};
use crate::types::{Op, OpResult, SessionState, Stat, WatchEvent};

/// How often idle sessions are looked for.
const REAPER_PERIOD: Duration = Duration::from_millis(50);

struct Session {
    timeout: Duration,
    last_seen: Instant,
    state: watch::Sender<SessionState>,
}

struct State {
    tree: Tree,
    sessions: HashMap<i64, Session>,
    durable: Option<Durable>,
    failed: Option<String>,
    reaper_running: bool,
}

/// An in-process coordination store with ZooKeeper's semantics. Share it
/// (`Arc`) between in-process [`super::EmbeddedCoordinator`]s, or serve it
/// over TCP with [`super::CoordServer`].
pub struct EmbeddedStore {
    state: Mutex<State>,
    next_session: AtomicI64,
}

impl EmbeddedStore {
    /// A store that lives in memory only.
    pub fn in_memory() -> Arc<Self> {
        Self::build(Tree::new(), None)
    }

    /// A durable store in `dir`: every write is appended to a change log and
    /// fsynced before it is acknowledged; restart recovers persistent nodes
    /// (sessions, and so ephemeral nodes, do not survive a restart).
    pub fn open(dir: impl AsRef<Path>) -> Result<Arc<Self>> {
        let (durable, recovered) = Durable::open(dir.as_ref(), true)?;
        info!(dir = %dir.as_ref().display(), nodes = recovered.nodes.len(), "opened embedded coordination store");
        Ok(Self::build(
            Tree::from_stored(recovered.nodes, recovered.zxid),
            Some(durable),
        ))
    }

    fn build(tree: Tree, durable: Option<Durable>) -> Arc<Self> {
        // Session ids carry the start time so they stay unique across restarts.
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_millis() as i64)
            << 16;
        Arc::new(Self {
            state: Mutex::new(State {
                tree,
                sessions: HashMap::new(),
                durable,
                failed: None,
                reaper_running: false,
            }),
            next_session: AtomicI64::new(seed),
        })
    }

    /// Opens a session that expires after `timeout` without a heartbeat.
    /// Must be called within a tokio runtime (it runs the expiry reaper).
    pub fn open_session(self: &Arc<Self>, timeout: Duration) -> (i64, watch::Receiver<SessionState>) {
        let id = self.next_session.fetch_add(1, Ordering::Relaxed) + 1;
        let (tx, rx) = watch::channel(SessionState::Connected);
        let mut state = self.state.lock();
        state.sessions.insert(
            id,
            Session {
                timeout,
                last_seen: Instant::now(),
                state: tx,
            },
        );
        if !state.reaper_running {
            state.reaper_running = true;
            tokio::spawn(reap(Arc::downgrade(self)));
        }
        (id, rx)
    }

    /// Records a heartbeat of `session`.
    pub fn touch(&self, session: i64) -> Result<()> {
        let mut state = self.state.lock();
        let s = state.sessions.get_mut(&session).ok_or(CoordError::SessionExpired)?;
        s.last_seen = Instant::now();
        Ok(())
    }

    /// Takes `session` up again on a new connection: a heartbeat, and its
    /// state to follow; `None` when the session has ended (expired or
    /// closed) — the client must open a new one.
    pub(crate) fn resume(&self, session: i64) -> Option<watch::Receiver<SessionState>> {
        let mut state = self.state.lock();
        let s = state.sessions.get_mut(&session)?;
        s.last_seen = Instant::now();
        Some(s.state.subscribe())
    }

    /// Ends `session` as expired: its ephemeral nodes are deleted, their
    /// watchers told, its own watches dropped.
    pub fn expire_session(&self, session: i64) {
        self.end_session(session, SessionState::Expired);
    }

    /// Ends `session` at its owner's request.
    pub fn close_session(&self, session: i64) {
        self.end_session(session, SessionState::Closed);
    }

    fn end_session(&self, session: i64, final_state: SessionState) {
        let mut state = self.state.lock();
        let Some(s) = state.sessions.remove(&session) else {
            return;
        };
        let mut ephemerals = state.tree.ephemerals_of(session);
        ephemerals.sort_by_key(|p| std::cmp::Reverse(p.len()));
        for path in ephemerals {
            // Ephemeral nodes have no children and no persistent changes to log.
            if let Err(e) = state.tree.apply(
                session,
                &[Op::Delete {
                    path: path.clone(),
                    version: None,
                }],
            ) {
                warn!(path, "could not delete an ephemeral node: {e}");
            }
        }
        state.tree.drop_watches_of(session);
        let _ = s.state.send(final_state);
        info!(session, state = ?final_state, "session ended");
    }

    /// Expires every session idle for longer than its timeout.
    fn expire_idle(&self) {
        let now = Instant::now();
        let idle: Vec<i64> = self
            .state
            .lock()
            .sessions
            .iter()
            .filter(|(_, s)| now.duration_since(s.last_seen) > s.timeout)
            .map(|(id, _)| *id)
            .collect();
        for id in idle {
            self.expire_session(id);
        }
    }

    /// Applies `ops` all-or-nothing for `session`, logging persistent
    /// changes before answering.
    pub(crate) fn write(&self, session: i64, ops: &[Op]) -> Result<Vec<OpResult>> {
        let mut state = self.state.lock();
        Self::check(&mut state, session)?;
        let (results, changes) = state.tree.apply(session, ops)?;
        let State {
            tree, durable, failed, ..
        } = &mut *state;
        if let (Some(durable), false) = (durable.as_mut(), changes.is_empty()) {
            let logged = durable.append(tree.zxid(), changes).and_then(|_| {
                if durable.wants_snapshot() {
                    durable.snapshot(tree.zxid(), tree.persistent_nodes())
                } else {
                    Ok(())
                }
            });
            if let Err(e) = logged {
                // Memory is ahead of disk now: refuse everything after.
                *failed = Some(e.to_string());
                return Err(e);
            }
        }
        Ok(results)
    }

    pub(crate) fn get(
        &self,
        session: i64,
        path: &str,
        watch: Option<oneshot::Sender<WatchEvent>>,
    ) -> Result<(Vec<u8>, Stat)> {
        let mut state = self.state.lock();
        Self::check(&mut state, session)?;
        state.tree.get(path, watch.map(|w| (session, w)))
    }

    pub(crate) fn exists(
        &self,
        session: i64,
        path: &str,
        watch: Option<oneshot::Sender<WatchEvent>>,
    ) -> Result<Option<Stat>> {
        let mut state = self.state.lock();
        Self::check(&mut state, session)?;
        state.tree.exists(path, watch.map(|w| (session, w)))
    }

    pub(crate) fn children(
        &self,
        session: i64,
        path: &str,
        watch: Option<oneshot::Sender<WatchEvent>>,
    ) -> Result<Vec<String>> {
        let mut state = self.state.lock();
        Self::check(&mut state, session)?;
        state.tree.children(path, watch.map(|w| (session, w)))
    }

    /// Every call is a heartbeat; a failed store refuses all calls.
    fn check(state: &mut State, session: i64) -> Result<()> {
        if let Some(reason) = &state.failed {
            return Err(CoordError::Storage(reason.clone()));
        }
        let s = state.sessions.get_mut(&session).ok_or(CoordError::SessionExpired)?;
        s.last_seen = Instant::now();
        Ok(())
    }
}

async fn reap(store: Weak<EmbeddedStore>) {
    let mut tick = tokio::time::interval(REAPER_PERIOD);
    loop {
        tick.tick().await;
        match store.upgrade() {
            Some(store) => store.expire_idle(),
            None => return,
        }
    }
}
