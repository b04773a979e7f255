//! # gregor-routing
//!
//! The network request pipeline of a gregor broker and the Kafka API
//! handlers, speaking the real Kafka protocol through the `kafka-protocol`
//! crate: `network` is the pipeline (acceptor, processors, request queue,
//! handler pool), `request` decodes frames, `dispatch` is the table from
//! API key to handler, and `api/` holds one file per Kafka API.
//!
//! What it is not: it does not own storage or coordination; it works on a
//! [`Broker`] (logs and topics) that the server assembles.

#![deny(missing_docs)]

mod allocator;
pub mod api;
mod broker;
mod catalog;
mod dispatch;
pub mod error;
pub mod metrics;
mod network;
mod offsets_store;
mod replicas;
mod request;

pub use allocator::HugeAllocationGuard;
pub use broker::{apply_topic_config, topic_config, validate_topic_name, Broker, BrokerConfig, Topic};
pub use catalog::{CatalogError, ClusterCatalog, Placement};
pub use network::{NetworkConfig, SocketServer};
pub use replicas::{
    BrokerEndpoint, ClusterView, FollowedPartition, IsrWriter, LeaderAppend, ReplicaAppendError, ReplicaManager,
};
pub use request::{decode_frame, Frame, Request};
