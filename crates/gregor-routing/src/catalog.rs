//! What the cluster records beyond this broker's disks: topics, and blocks
//! of producer ids. A server backs it with coordination
//! (`/brokers/topics/<t>`, `/config/topics/<t>`, `/latest_producer_id_block`);
//! a broker without one keeps topics in its partition directories only and
//! draws producer ids from its clock.

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

/// The cluster's record of topics and producer ids. Called from handler
/// threads, so an implementation may block (on the network, for
/// coordination).
pub trait ClusterCatalog: Send + Sync {
    /// Every recorded topic.
    fn topics(&self) -> Result<BTreeMap<String, Topic>, CatalogError>;
    /// Records a new topic; [`CatalogError::AlreadyExists`] if it is there.
    fn create(&self, name: &str, topic: &Topic) -> Result<(), CatalogError>;
    /// Records a topic's grown partition count.
    fn update(&self, name: &str, topic: &Topic) -> Result<(), CatalogError>;
    /// Forgets a topic.
    fn delete(&self, name: &str) -> Result<(), CatalogError>;
    /// Claims the next block of producer ids for this broker: ids no other
    /// broker hands out, now or after a restart.
    fn allocate_producer_ids(&self) -> Result<std::ops::RangeInclusive<i64>, CatalogError>;
}
