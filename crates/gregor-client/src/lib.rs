//! # gregor-client
//!
//! An async Kafka client built on the `kafka-protocol` crate: the
//! [`Connection`] brokers use to talk to each other (the controller's
//! requests, replica fetches) and the [`Admin`] client for topics. It
//! speaks to any Kafka broker.
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

mod admin;
mod connection;

pub use admin::{Admin, PartitionInfo, TopicInfo};
pub use connection::{ClientError, Connection};
