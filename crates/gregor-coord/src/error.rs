//! Errors of coordination operations, with ZooKeeper's meanings.

use serde::{Deserialize, Serialize};

/// What a coordination call can fail with. The node-level variants mean
/// exactly what ZooKeeper's error codes of the same name mean, whichever
/// backend answered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum CoordError {
    /// The node exists already.
    #[error("node {0} already exists")]
    NodeExists(String),
    /// The node (or, for create, its parent) does not exist.
    #[error("node {0} does not exist")]
    NoNode(String),
    /// The expected version did not match.
    #[error("version conflict on {0}")]
    BadVersion(String),
    /// Delete of a node that has children.
    #[error("node {0} has children")]
    NotEmpty(String),
    /// Ephemeral nodes cannot have children.
    #[error("node {0} is ephemeral and cannot have children")]
    NoChildrenForEphemerals(String),
    /// The path is not a valid absolute node path.
    #[error("invalid path {0:?}")]
    InvalidPath(String),
    /// The session has expired: its ephemeral nodes are gone; make a new one.
    #[error("session expired")]
    SessionExpired,
    /// The connection to the coordination service is lost; the call may or
    /// may not have taken effect.
    #[error("connection lost: {0}")]
    ConnectionLoss(String),
    /// A multi-operation transaction failed at `index`; nothing was applied.
    #[error("transaction failed at operation {index}: {source}")]
    TransactionFailed {
        /// Index of the failing operation.
        index: usize,
        /// Why it failed.
        source: Box<CoordError>,
    },
    /// The embedded store could not read or write its files.
    #[error("storage error: {0}")]
    Storage(String),
    /// Anything else the backend reported.
    #[error("coordination error: {0}")]
    Other(String),
    /// The coordination service refused this client's credentials (or
    /// their absence), or could not prove its own.
    #[error("coordination authentication failed: {0}")]
    AuthFailed(String),
}

/// Result alias for coordination calls.
pub type Result<T, E = CoordError> = std::result::Result<T, E>;
