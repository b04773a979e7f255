//! # gregor-broker
//!
//! A gregor broker's state, beneath the request pipeline: everything a
//! Kafka API handler works on, and nothing of the network.
//!
//! - [`Topics`]: the cluster's topics (recorded in a [`ClusterCatalog`],
//!   in coordination by [`CoordinatedCatalog`]) reconciled with the logs
//!   on disk; creation, growth, deletion, config overrides.
//! - [`ReplicaManager`]: this broker's role for each partition as the
//!   controller assigned it, around gregor-replication's state machines —
//!   appends as leader, `acks=all`, follower progress, the high watermark,
//!   ISR changes queued for the ISR writer, the cluster view.
//! - [`Groups`]: the group coordinator over `__consumer_offsets`
//!   ([`OffsetsTopic`]), serving the groups of the partitions led here.
//! - [`Transactions`]: the transaction coordinator over
//!   `__transaction_state` ([`TransactionStateTopic`]), serving the
//!   transactional ids of the partitions led here; the marker requests it
//!   makes go to the server's marker sender; as a partition leader,
//!   transaction verification (KIP-890) before a transaction opens.
//! - [`ProducerIds`]: producer ids from blocks claimed in the catalog.
//! - [`quotas`]: client quotas (Kafka's `ClientQuotaManager`): configs
//!   in coordination, rates, throttle times.
//! - [`fetch_sessions`]: the fetch sessions of KIP-227.
//! - [`ControllerInbox`]: requests for the controller (ControlledShutdown)
//!   on their way to the controller running here.
//! - [`DynamicBrokerConfig`]: the broker configs that change while it
//!   runs (per broker and cluster-wide, recorded in the catalog).
//! - [`Broker`]: the parts assembled, with one injected clock.
//! - [`errors`]: the one place where gregor's errors become Kafka error
//!   codes.
//!
//! A single broker is a cluster of one: the controller (in gregor-server)
//! makes it leader of its partitions through the same requests as in a
//! cluster.

#![deny(missing_docs)]

pub mod acl_store;
mod broker;
mod catalog;
mod config;
mod controller_inbox;
mod coordinated_catalog;
mod dynamic_config;
pub mod errors;
pub mod fetch_sessions;
mod groups;
mod internal_topic;
mod producer_ids;
pub mod quotas;
mod replicas;
mod replication_throttle;
pub mod scram_credentials;
mod topics;
mod transactions;

pub use broker::Broker;
pub use catalog::{CatalogError, ClusterCatalog, Topic};
pub use config::{BrokerConfig, BrokerProperty};
pub use controller_inbox::{ControllerAsk, ControllerInbox, PartitionOutcome, ReassignmentListing, Reply, ShutdownAsk};
pub use coordinated_catalog::CoordinatedCatalog;
pub use dynamic_config::{
    ChangeHook, DynamicBrokerConfig, DynamicLayers, FOLLOWER_REPLICATION_THROTTLED_RATE,
    LEADER_REPLICATION_THROTTLED_RATE, REPLICATION_THROTTLED_RATES, UNTHROTTLED,
};
pub use groups::{Groups, OffsetsTopic, OffsetsTopicSettings};
pub use producer_ids::ProducerIds;
pub use replicas::{
    BrokerEndpoint, ClusterView, FollowedPartition, IsrUpdate, LeaderAppend, ReplicaAppendError, ReplicaManager,
    TopicView,
};
pub use replication_throttle::{names_replica, ReplicationThrottle, FOLLOWER_THROTTLED_REPLICAS};
pub use topics::{new_topic_assignment, validate_topic_name, Placement, Refusal, TopicDefaults, Topics};
pub use transactions::{
    coordinator_error, ProduceRefusal, RemoteVerification, TransactionStateSettings, TransactionStateTopic,
    Transactions, TxnMarker, Unverified, Verdicts, ADD_ATTEMPTS,
};
