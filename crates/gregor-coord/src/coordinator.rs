//! The `Coordinator` trait: what brokers need from ZooKeeper, backend-free.

use async_trait::async_trait;
use tokio::sync::watch;

use crate::error::Result;
use crate::types::{CreateMode, Op, OpResult, SessionState, Stat, Watch};

/// A session with a coordination service, with ZooKeeper's semantics:
/// a tree of nodes, versions for compare-and-set, ephemeral nodes tied to
/// the session, one-shot watches, and all-or-nothing transactions.
#[async_trait]
pub trait Coordinator: Send + Sync {
    /// This session's id (the owner recorded on its ephemeral nodes).
    fn session_id(&self) -> i64;

    /// Follows the session's state; `Expired` is final.
    fn session_state(&self) -> watch::Receiver<SessionState>;

    /// Creates a node; returns its path (with the suffix, when sequential).
    async fn create(&self, path: &str, data: &[u8], mode: CreateMode) -> Result<String>;

    /// Reads a node's data and stat.
    async fn get(&self, path: &str) -> Result<(Vec<u8>, Stat)>;

    /// Reads a node and watches its data (changed or deleted).
    async fn get_and_watch(&self, path: &str) -> Result<(Vec<u8>, Stat, Watch)>;

    /// Replaces a node's data if its version is `version` (`None`: any).
    async fn set(&self, path: &str, data: &[u8], version: Option<i32>) -> Result<Stat>;

    /// Deletes a childless node if its version is `version` (`None`: any).
    async fn delete(&self, path: &str, version: Option<i32>) -> Result<()>;

    /// The node's stat, or `None` when it does not exist.
    async fn exists(&self, path: &str) -> Result<Option<Stat>>;

    /// Like `exists`, watching for creation (if absent) or change/deletion.
    async fn exists_and_watch(&self, path: &str) -> Result<(Option<Stat>, Watch)>;

    /// Names of the node's children, sorted.
    async fn children(&self, path: &str) -> Result<Vec<String>>;

    /// Children, watching for a child added or removed (or the node deleted).
    async fn children_and_watch(&self, path: &str) -> Result<(Vec<String>, Watch)>;

    /// Applies every operation or none.
    async fn multi(&self, ops: Vec<Op>) -> Result<Vec<OpResult>>;

    /// Ends the session now: its ephemeral nodes go and watchers are told.
    async fn close(&self) -> Result<()>;

    /// Creates `path` and its missing ancestors as empty persistent nodes.
    async fn create_all(&self, path: &str) -> Result<()> {
        let mut prefix = String::new();
        for component in path.split('/').filter(|c| !c.is_empty()) {
            prefix.push('/');
            prefix.push_str(component);
            match self.create(&prefix, b"", CreateMode::Persistent).await {
                Ok(_) | Err(crate::CoordError::NodeExists(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}
