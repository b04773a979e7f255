//! One Kafka API per file: decoding is done by the dispatcher, each file
//! turns a request into a response against the [`gregor_broker::Broker`].

pub mod acls;
pub mod add_offsets_to_txn;
pub mod add_partitions_to_txn;
pub mod alter_client_quotas;
pub mod alter_configs;
pub mod api_versions;
mod config_resources;
pub mod consumer_group_describe;
pub mod consumer_group_heartbeat;
pub mod controlled_shutdown;
mod controller_request;
pub mod create_partitions;
pub mod create_topics;
pub mod delete_groups;
pub mod delete_records;
pub mod delete_topics;
pub mod describe_client_quotas;
pub mod describe_cluster;
pub mod describe_configs;
pub mod describe_groups;
pub mod describe_log_dirs;
pub mod describe_producers;
pub mod describe_transactions;
pub mod elect_leaders;
pub mod end_txn;
pub mod fetch;
pub mod find_coordinator;
mod grouping;
pub mod heartbeat;
pub mod incremental_alter_configs;
pub mod init_producer_id;
pub mod join_group;
pub mod leader_and_isr;
pub mod leave_group;
pub mod list_groups;
pub mod list_offsets;
pub mod list_transactions;
pub mod metadata;
pub mod offset_commit;
mod offset_commits;
pub mod offset_delete;
pub mod offset_fetch;
pub mod offset_for_leader_epoch;
pub mod produce;
mod produce_records;
pub mod reassignments;
pub mod stop_replica;
pub mod sync_group;
mod transaction;
pub mod txn_offset_commit;
pub mod update_metadata;
pub mod user_scram_credentials;
pub mod write_txn_markers;

use kafka_protocol::protocol::StrBytes;

/// Whether `name` is one of Kafka's internal topics (the coordinators'
/// `__consumer_offsets` and `__transaction_state`).
pub(crate) fn is_internal_topic(name: &str) -> bool {
    name == gregor_group::OFFSETS_TOPIC || name == gregor_transaction::TRANSACTION_STATE_TOPIC
}

/// A protocol string from a Rust string.
pub(crate) fn str_bytes(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}
