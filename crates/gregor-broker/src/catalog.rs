//! What the cluster records beyond this broker's disks: topics, and blocks
//! of producer ids. [`crate::CoordinatedCatalog`] keeps them in
//! coordination (`/brokers/topics/<t>`, `/config/topics/<t>`,
//! `/latest_producer_id_block`).

use std::collections::BTreeMap;

use uuid::Uuid;

/// A topic as the cluster records it: its id, partition count and config
/// overrides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topic {
    /// Kafka topic id.
    pub id: Uuid,
    /// Number of partitions.
    pub partitions: u32,
    /// Topic-level settings given at creation or altered since
    /// (`retention.ms` → `…`).
    pub overrides: BTreeMap<String, String>,
}

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
    /// A given replica assignment is wrong (why).
    #[error("{0}")]
    InvalidReplicaAssignment(String),
}

/// Where new partitions' replicas go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    /// This many replicas each, spread over the live brokers (Kafka's
    /// rack-aware round robin).
    Spread(u16),
    /// As given: one replica list per new partition, in order.
    Given(Vec<Vec<i32>>),
}

/// The cluster's record of topics and producer ids. Called from handler
/// threads, so an implementation may block (on the network, for
/// coordination).
pub trait ClusterCatalog: Send + Sync {
    /// Every recorded topic.
    fn topics(&self) -> Result<BTreeMap<String, Topic>, CatalogError>;
    /// Records a new topic with its partitions' replicas placed as
    /// `placement` says; [`CatalogError::AlreadyExists`] if it is there.
    fn create(&self, name: &str, topic: &Topic, placement: &Placement) -> Result<(), CatalogError>;
    /// One recorded topic.
    fn topic(&self, name: &str) -> Result<Option<Topic>, CatalogError> {
        Ok(self.topics()?.remove(name))
    }
    /// Records a topic's grown partition count, the new partitions' replicas
    /// as `given` (one list each) or spread like the first partition's.
    fn update(&self, name: &str, topic: &Topic, given: Option<&[Vec<i32>]>) -> Result<(), CatalogError>;
    /// Marks a topic for deletion (the controller deletes it).
    fn delete(&self, name: &str) -> Result<(), CatalogError>;
    /// Records a topic's new config overrides (every broker learns them).
    fn set_config(&self, name: &str, overrides: &BTreeMap<String, String>) -> Result<(), CatalogError>;
    /// The dynamic configs of a broker (`Some(id)`) or the cluster-wide
    /// defaults (`None`); none recorded: empty.
    fn broker_config(&self, broker: Option<i32>) -> Result<BTreeMap<String, String>, CatalogError>;
    /// Records `config` as the whole dynamic config of a broker or the
    /// cluster-wide defaults (every broker learns it).
    fn set_broker_config(&self, broker: Option<i32>, config: &BTreeMap<String, String>) -> Result<(), CatalogError>;
    /// Claims the next block of producer ids for this broker: ids no other
    /// broker hands out, now or after a restart.
    fn allocate_producer_ids(&self) -> Result<std::ops::RangeInclusive<i64>, CatalogError>;
    /// The registered brokers' ids.
    fn broker_ids(&self) -> Result<std::collections::BTreeSet<i32>, CatalogError>;
    /// How many brokers are registered (caps internal topics' replication).
    fn live_brokers(&self) -> Result<usize, CatalogError> {
        Ok(self.broker_ids()?.len())
    }
}
