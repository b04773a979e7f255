//! One Kafka API per file: decoding is done by the dispatcher, each file
//! turns a request into a response against the [`crate::Broker`].

pub mod api_versions;
pub mod create_partitions;
pub mod create_topics;
pub mod delete_topics;
pub mod describe_configs;
pub mod fetch;
pub mod init_producer_id;
pub mod list_offsets;
pub mod metadata;
pub mod produce;

use kafka_protocol::protocol::StrBytes;

/// A protocol string from a Rust string.
pub(crate) fn str_bytes(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}
