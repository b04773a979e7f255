//! Where topics are recorded beyond this broker's disks. A server backs it
//! with coordination (`/brokers/topics/<t>`, `/config/topics/<t>`); a broker
//! without one keeps topics in its partition directories only.

use std::collections::BTreeMap;

use crate::broker::Topic;

/// Why the catalog refused or failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CatalogError {
    /// The topic is recorded already.
    #[error("topic already exists")]
    AlreadyExists,
    /// The catalog could not be reached or read.
    #[error("topic catalog unavailable: {0}")]
    Unavailable(String),
}

/// The cluster's record of topics. Called from handler threads, so an
/// implementation may block (on the network, for coordination).
pub trait TopicCatalog: Send + Sync {
    /// Every recorded topic.
    fn topics(&self) -> Result<BTreeMap<String, Topic>, CatalogError>;
    /// Records a new topic; [`CatalogError::AlreadyExists`] if it is there.
    fn create(&self, name: &str, topic: &Topic) -> Result<(), CatalogError>;
    /// Records a topic's grown partition count.
    fn update(&self, name: &str, topic: &Topic) -> Result<(), CatalogError>;
    /// Forgets a topic.
    fn delete(&self, name: &str) -> Result<(), CatalogError>;
}
