//! What the cluster records beyond this broker's disks: topics, and blocks
//! of producer ids. A server backs it with coordination
//! (`/brokers/topics/<t>`, `/config/topics/<t>`, `/latest_producer_id_block`);
//! a broker without one keeps topics in its partition directories only and
//! draws producer ids from its clock.

use std::collections::BTreeMap;

use gregor_log::TopicPartition;
use gregor_replication::LeaderAndIsr;

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
    /// The replication factor cannot be met by the live brokers.
    #[error("{0}")]
    InvalidReplicationFactor(String),
}

/// Where a new topic's replicas go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// This many replicas of each partition, spread over the live brokers.
    Replicated(u16),
    /// One replica, on this broker (a topic found only on its disk).
    Here,
}

/// The cluster's record of topics and producer ids. Called from handler
/// threads, so an implementation may block (on the network, for
/// coordination).
pub trait ClusterCatalog: Send + Sync {
    /// Every recorded topic.
    fn topics(&self) -> Result<BTreeMap<String, Topic>, CatalogError>;
    /// Records a new topic with its replicas placed as `placement` says;
    /// [`CatalogError::AlreadyExists`] if it is there.
    fn create(&self, name: &str, topic: &Topic, placement: Placement) -> Result<(), CatalogError>;
    /// One recorded topic.
    fn topic(&self, name: &str) -> Result<Option<Topic>, CatalogError> {
        Ok(self.topics()?.remove(name))
    }
    /// Records a topic's grown partition count.
    fn update(&self, name: &str, topic: &Topic) -> Result<(), CatalogError>;
    /// Forgets a topic.
    fn delete(&self, name: &str) -> Result<(), CatalogError>;
    /// Records a topic's new config overrides (every broker learns them).
    fn set_config(&self, name: &str, overrides: &BTreeMap<String, String>) -> Result<(), CatalogError>;
    /// Claims the next block of producer ids for this broker: ids no other
    /// broker hands out, now or after a restart.
    fn allocate_producer_ids(&self) -> Result<std::ops::RangeInclusive<i64>, CatalogError>;
    /// How many brokers are registered (caps internal topics' replication).
    fn live_brokers(&self) -> Result<usize, CatalogError> {
        Ok(1)
    }
    /// Records a leader's new ISR for `partition` if its state is still at
    /// `expected_version`, and tells the controller; `Ok(None)` when the
    /// state moved on.
    fn write_isr(
        &self,
        partition: &TopicPartition,
        state: &LeaderAndIsr,
        expected_version: i32,
    ) -> Result<Option<i32>, CatalogError> {
        let _ = (partition, state, expected_version);
        Err(CatalogError::Unavailable(
            "this catalog does not record partition states".into(),
        ))
    }
}
