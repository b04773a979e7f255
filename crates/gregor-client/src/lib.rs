//! # gregor-client
//!
//! An async Kafka client built on the `kafka-protocol` crate: the
//! [`Connection`] brokers use to talk to each other (the controller's
//! requests, replica fetches), the [`Admin`] client for topics,
//! [`BrokerConfigs`] for broker configs (the dynamic ones changed), the
//! [`GroupAdmin`] client for consumer groups, the [`PartitionAdmin`]
//! client for reassignments, leader elections, record deletion and log
//! directories, a
//! [`Producer`] (batching, compression, acks, retries, Kafka's murmur2
//! partitioner) and a [`Consumer`] (assigned partitions, committed offsets
//! of a group). It speaks to any Kafka broker.
//!
//! ```no_run
//! # async fn run() -> Result<(), gregor_client::ClientError> {
//! use gregor_client::Connection;
//! use kafka_protocol::messages::MetadataRequest;
//!
//! let mut conn = Connection::connect("127.0.0.1:9092", "example").await?;
//! let metadata = conn.send(MetadataRequest::default(), 9).await?;
//! println!("{} brokers", metadata.brokers.len());
//! # Ok(()) }
//! ```

#![deny(missing_docs)]

mod acl_admin;
mod admin;
mod broker_config;
mod cluster;
mod connection;
mod consumer;
mod fetch_session;
pub mod group;
mod group_admin;
mod offsets;
mod partition_admin;
mod producer;
mod quota_admin;
mod scram_admin;
mod security;

pub use admin::{Admin, PartitionInfo, TopicInfo};
pub use broker_config::{config_source_name, BrokerConfigEntry, BrokerConfigs};
pub use cluster::Cluster;
pub use connection::{Address, ClientError, Connection};
pub use consumer::{fetch_request, ConsumedRecord, Consumer, ConsumerConfig, StartAt};
pub use fetch_session::FetchSession;
pub use gregor_log::batch::Compression;
pub use group_admin::{GroupAdmin, GroupDescription, GroupMember, ListedGroup};
pub use offsets::OffsetMap;
pub use partition_admin::{
    ElectionType, LogDir, LogDirReplica, OngoingReassignment, PartitionAdmin, PartitionAnswer, TopicPartition,
    BROKER_RESOURCE, ELECTION_NOT_NEEDED, TOPIC_RESOURCE,
};
pub use producer::{murmur2, partition_for_key, Delivery, Producer, ProducerConfig};
pub use quota_admin::{QuotaEntry, QuotaMatch};
pub use scram_admin::UserCredentials;
pub use security::{install_default_security, read_properties, ClientSecurity, SaslCredentials};
