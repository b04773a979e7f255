//! The embedded backend: no external service. One [`EmbeddedStore`] per
//! cluster; brokers in the same process use an [`EmbeddedCoordinator`],
//! brokers elsewhere reach it through a [`CoordServer`] with a
//! [`RemoteCoordinator`].

mod auth;
#[cfg(test)]
mod auth_tests;
mod link;
mod persist;
mod remote;
mod server;
mod store;
mod tree;
mod wire;

pub use auth::CoordSecret;
pub use remote::RemoteCoordinator;
pub use server::CoordServer;
pub use store::EmbeddedStore;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use crate::coordinator::Coordinator;
use crate::error::Result;
use crate::types::{CreateMode, Op, OpResult, SessionState, Stat, Watch};

/// A session on an in-process [`EmbeddedStore`]. A background task
/// heartbeats while it lives; dropping it stops the heartbeats, so the
/// session expires after its timeout, as a crashed ZooKeeper client's would.
pub struct EmbeddedCoordinator {
    store: Arc<EmbeddedStore>,
    session: i64,
    state: watch::Receiver<SessionState>,
    heartbeat: JoinHandle<()>,
}

impl EmbeddedCoordinator {
    /// Opens a session on `store` (within a tokio runtime).
    pub fn connect(store: &Arc<EmbeddedStore>, session_timeout: Duration) -> Self {
        let (session, state) = store.open_session(session_timeout);
        let weak = Arc::downgrade(store);
        let heartbeat = tokio::spawn(async move {
            let mut tick = tokio::time::interval(session_timeout / 3);
            loop {
                tick.tick().await;
                match weak.upgrade() {
                    Some(store) if store.touch(session).is_ok() => {}
                    _ => return,
                }
            }
        });
        Self {
            store: store.clone(),
            session,
            state,
            heartbeat,
        }
    }

    /// The store this session lives in.
    pub fn store(&self) -> &Arc<EmbeddedStore> {
        &self.store
    }

    fn write_one(&self, op: Op) -> Result<OpResult> {
        let mut results = self.store.write(self.session, &[op])?;
        Ok(results.remove(0))
    }
}

impl Drop for EmbeddedCoordinator {
    fn drop(&mut self) {
        self.heartbeat.abort();
    }
}

#[async_trait]
impl Coordinator for EmbeddedCoordinator {
    fn session_id(&self) -> i64 {
        self.session
    }

    fn session_state(&self) -> watch::Receiver<SessionState> {
        self.state.clone()
    }

    async fn create(&self, path: &str, data: &[u8], mode: CreateMode) -> Result<String> {
        let op = Op::Create {
            path: path.to_string(),
            data: data.to_vec(),
            mode,
        };
        match self.write_one(op)? {
            OpResult::Created(path) => Ok(path),
            other => Err(unexpected(other)),
        }
    }

    async fn get(&self, path: &str) -> Result<(Vec<u8>, Stat)> {
        self.store.get(self.session, path, None)
    }

    async fn get_and_watch(&self, path: &str) -> Result<(Vec<u8>, Stat, Watch)> {
        let (tx, rx) = oneshot::channel();
        let (data, stat) = self.store.get(self.session, path, Some(tx))?;
        Ok((data, stat, Watch::from_channel(rx)))
    }

    async fn set(&self, path: &str, data: &[u8], version: Option<i32>) -> Result<Stat> {
        let op = Op::Set {
            path: path.to_string(),
            data: data.to_vec(),
            version,
        };
        match self.write_one(op)? {
            OpResult::Set(stat) => Ok(stat),
            other => Err(unexpected(other)),
        }
    }

    async fn delete(&self, path: &str, version: Option<i32>) -> Result<()> {
        self.write_one(Op::Delete {
            path: path.to_string(),
            version,
        })
        .map(|_| ())
    }

    async fn exists(&self, path: &str) -> Result<Option<Stat>> {
        self.store.exists(self.session, path, None)
    }

    async fn exists_and_watch(&self, path: &str) -> Result<(Option<Stat>, Watch)> {
        let (tx, rx) = oneshot::channel();
        let stat = self.store.exists(self.session, path, Some(tx))?;
        Ok((stat, Watch::from_channel(rx)))
    }

    async fn children(&self, path: &str) -> Result<Vec<String>> {
        self.store.children(self.session, path, None)
    }

    async fn children_and_watch(&self, path: &str) -> Result<(Vec<String>, Watch)> {
        let (tx, rx) = oneshot::channel();
        let children = self.store.children(self.session, path, Some(tx))?;
        Ok((children, Watch::from_channel(rx)))
    }

    async fn multi(&self, ops: Vec<Op>) -> Result<Vec<OpResult>> {
        self.store.write(self.session, &ops)
    }

    async fn close(&self) -> Result<()> {
        self.heartbeat.abort();
        self.store.close_session(self.session);
        Ok(())
    }
}

fn unexpected(result: OpResult) -> crate::CoordError {
    crate::CoordError::Other(format!("unexpected result {result:?}"))
}
