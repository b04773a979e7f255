//! Values exchanged with a coordinator: node modes, stats, operations, watches.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use crate::error::{CoordError, Result};

/// How a node is created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CreateMode {
    /// Stays until deleted.
    Persistent,
    /// Deleted when the creating session ends.
    Ephemeral,
    /// Persistent, with a 10-digit increasing suffix appended to the name.
    PersistentSequential,
    /// Ephemeral, with a 10-digit increasing suffix appended to the name.
    EphemeralSequential,
}

impl CreateMode {
    /// True for the ephemeral modes.
    pub fn is_ephemeral(self) -> bool {
        matches!(self, Self::Ephemeral | Self::EphemeralSequential)
    }

    /// True for the sequential modes.
    pub fn is_sequential(self) -> bool {
        matches!(self, Self::PersistentSequential | Self::EphemeralSequential)
    }
}

/// Metadata of a node (the part of ZooKeeper's `Stat` gregor uses).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Stat {
    /// Transaction that created the node.
    pub czxid: i64,
    /// Transaction that last changed its data.
    pub mzxid: i64,
    /// Number of data changes; what compare-and-set compares.
    pub version: i32,
    /// Number of changes to its children.
    pub cversion: i32,
    /// Owning session of an ephemeral node, 0 otherwise.
    pub ephemeral_owner: i64,
    /// Bytes of data.
    pub data_length: i32,
    /// Number of children.
    pub num_children: i32,
}

/// One operation of a [`crate::Coordinator::multi`] transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    /// Create a node.
    Create {
        /// Path.
        path: String,
        /// Data.
        data: Vec<u8>,
        /// Mode.
        mode: CreateMode,
    },
    /// Replace a node's data if its version matches (`None`: any version).
    Set {
        /// Path.
        path: String,
        /// Data.
        data: Vec<u8>,
        /// Expected version.
        version: Option<i32>,
    },
    /// Delete a node if its version matches (`None`: any version).
    Delete {
        /// Path.
        path: String,
        /// Expected version.
        version: Option<i32>,
    },
    /// Require a node's version (the fencing check of a transaction).
    Check {
        /// Path.
        path: String,
        /// Required version.
        version: i32,
    },
}

/// The result of one operation of a committed transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum OpResult {
    /// The created node's path.
    Created(String),
    /// The node's stat after the set.
    Set(Stat),
    /// Deleted.
    Deleted,
    /// The check passed.
    Checked,
}

/// What a watch saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum WatchEventKind {
    /// The watched (absent) node was created.
    NodeCreated,
    /// The watched node was deleted.
    NodeDeleted,
    /// The watched node's data changed.
    NodeDataChanged,
    /// A child of the watched node was added or removed.
    NodeChildrenChanged,
}

/// A fired watch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatchEvent {
    /// What happened.
    pub kind: WatchEventKind,
    /// The watched path.
    pub path: String,
}

/// State of a coordinator's session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SessionState {
    /// Connected and alive.
    Connected,
    /// Temporarily disconnected; the session may still be alive.
    Disconnected,
    /// Expired: ephemeral nodes are gone.
    Expired,
    /// Closed by its owner.
    Closed,
}

/// A one-shot watch: resolves once with the first change of what was
/// watched, or with [`CoordError::SessionExpired`] if the session ends first.
pub struct Watch {
    inner: Pin<Box<dyn Future<Output = Result<WatchEvent>> + Send>>,
}

impl Watch {
    /// A watch resolved by `future`.
    pub fn new(future: impl Future<Output = Result<WatchEvent>> + Send + 'static) -> Self {
        Self {
            inner: Box::pin(future),
        }
    }

    /// A watch fed through a channel; a dropped sender means the session ended.
    pub(crate) fn from_channel(receiver: oneshot::Receiver<WatchEvent>) -> Self {
        Self::new(async move { receiver.await.map_err(|_| CoordError::SessionExpired) })
    }
}

impl Future for Watch {
    type Output = Result<WatchEvent>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.inner.as_mut().poll(cx)
    }
}

impl std::fmt::Debug for Watch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Watch")
    }
}

/// Checks that `path` is absolute, without a trailing or double slash.
pub(crate) fn validate_path(path: &str) -> Result<()> {
    let ok = path == "/"
        || (path.starts_with('/')
            && !path.ends_with('/')
            && !path.contains("//")
            && !path.split('/').any(|c| c == "." || c == "..")
            && !path.contains('\0'));
    if ok {
        Ok(())
    } else {
        Err(CoordError::InvalidPath(path.to_string()))
    }
}

/// The parent of a valid non-root path.
pub(crate) fn parent_of(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &path[..i],
    }
}
