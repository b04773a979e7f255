//! The [`LogConfig`] struct: one typed field per topic-level property.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::types::{CleanupPolicy, FlushPolicy, MessageTimestampType, TopicCompression};

/// Configuration of one partition log: every topic-level property of
/// Kafka 3.9, typed, with Kafka's defaults. Fields serialize under Kafka's
/// names (`segment.bytes`, `retention.ms`, …).
///
/// gregor acts on the fields marked *acts*; the replica manager reads
/// those marked *replication*; the others are accepted, validated, kept
/// and described, and have no effect yet. Two fields are gregor's own and
/// not topic properties: `flush.group.commit` and
/// `producer.id.expiration.ms` (a broker setting in Kafka).
///
/// Set properties by name with [`LogConfig::set`] or
/// [`LogConfig::with_overrides`]; list them with [`LogConfig::describe`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LogConfig {
    /// *Acts*: roll when the active segment would exceed this many bytes.
    #[serde(rename = "segment.bytes")]
    pub segment_bytes: u32,
    /// *Acts*: roll when the active segment's first record is older than this.
    #[serde(rename = "segment.ms")]
    pub segment_ms: i64,
    /// *Acts*: maximum size of each index file (preallocated for the active segment).
    #[serde(rename = "segment.index.bytes")]
    pub segment_index_bytes: u32,
    /// *Acts*: bytes between offset-index entries.
    #[serde(rename = "index.interval.bytes")]
    pub index_interval_bytes: u32,
    /// *Acts*: delete segments whose newest record is older than this; -1 keeps forever.
    #[serde(rename = "retention.ms")]
    pub retention_ms: i64,
    /// *Acts*: delete the oldest segments while the log is larger than this; -1: no limit.
    #[serde(rename = "retention.bytes")]
    pub retention_bytes: i64,
    /// *Acts*: largest batch accepted.
    #[serde(rename = "max.message.bytes")]
    pub max_message_bytes: u32,
    /// *Acts*: CreateTime or LogAppendTime.
    #[serde(rename = "message.timestamp.type")]
    pub message_timestamp_type: MessageTimestampType,
    /// *Acts*: fsync after this many records (`i64::MAX`: never).
    #[serde(rename = "flush.messages")]
    pub flush_messages: i64,
    /// *Acts*: fsync when the last flush is older than this (`i64::MAX`: never).
    #[serde(rename = "flush.ms")]
    pub flush_ms: i64,
    /// gregor's group-commit mode: every append waits for a shared fdatasync.
    /// Not a topic property.
    #[serde(rename = "flush.group.commit")]
    pub flush_group_commit: bool,
    /// *Acts*: `delete`, `compact` or `compact,delete`.
    #[serde(rename = "cleanup.policy")]
    pub cleanup_policy: CleanupPolicy,
    /// *Acts* (the compactor): compact when dirty bytes / cleanable bytes reach this.
    #[serde(rename = "min.cleanable.dirty.ratio")]
    pub min_cleanable_dirty_ratio: f64,
    /// *Acts* (the compactor): a record stays uncompacted at least this long.
    #[serde(rename = "min.compaction.lag.ms")]
    pub min_compaction_lag_ms: i64,
    /// *Acts* (the compactor): a record is compacted at the latest this long
    /// after it was written, whatever the dirty ratio.
    #[serde(rename = "max.compaction.lag.ms")]
    pub max_compaction_lag_ms: i64,
    /// *Acts* (the compactor): how long a tombstone stays after it was compacted.
    #[serde(rename = "delete.retention.ms")]
    pub delete_retention_ms: i64,
    /// How long an idempotent producer's state is kept after its last
    /// append (Kafka's broker setting `producer.id.expiration.ms`; not a
    /// topic property).
    #[serde(rename = "producer.id.expiration.ms")]
    pub producer_id_expiration_ms: i64,
    /// *Replication*: the in-sync replicas an `acks=all` write needs.
    #[serde(rename = "min.insync.replicas")]
    pub min_insync_replicas: u32,
    /// *Replication*: a replica outside the ISR may become leader as a last resort.
    #[serde(rename = "unclean.leader.election.enable")]
    pub unclean_leader_election_enable: bool,
    /// Kept: the codec the broker would store batches with (`producer`: as sent).
    #[serde(rename = "compression.type")]
    pub compression_type: TopicCompression,
    /// Kept: gzip level for `compression.type=gzip` (1–9, or -1 for zlib's default).
    #[serde(rename = "compression.gzip.level")]
    pub compression_gzip_level: i32,
    /// Kept: lz4 level for `compression.type=lz4` (1–17).
    #[serde(rename = "compression.lz4.level")]
    pub compression_lz4_level: i32,
    /// Kept: zstd level for `compression.type=zstd` (-131072–22).
    #[serde(rename = "compression.zstd.level")]
    pub compression_zstd_level: i32,
    /// Kept: preallocate new segment files on disk.
    #[serde(rename = "preallocate")]
    pub preallocate: bool,
    /// Kept: random jitter subtracted from the time-based roll.
    #[serde(rename = "segment.jitter.ms")]
    pub segment_jitter_ms: i64,
    /// Kept: wait before deleting a file from the file system.
    #[serde(rename = "file.delete.delay.ms")]
    pub file_delete_delay_ms: i64,
    /// Kept: whether fetches from old clients may be down-converted.
    #[serde(rename = "message.downconversion.enable")]
    pub message_downconversion_enable: bool,
    /// Kept: the deprecated message format version (a Kafka version, `3.0-IV1`).
    #[serde(rename = "message.format.version")]
    pub message_format_version: String,
    /// Kept: deprecated; how far a CreateTime timestamp may be from the broker's clock.
    #[serde(rename = "message.timestamp.difference.max.ms")]
    pub message_timestamp_difference_max_ms: i64,
    /// Kept: how far a CreateTime timestamp may be behind the broker's clock.
    #[serde(rename = "message.timestamp.before.max.ms")]
    pub message_timestamp_before_max_ms: i64,
    /// Kept: how far a CreateTime timestamp may be ahead of the broker's clock.
    #[serde(rename = "message.timestamp.after.max.ms")]
    pub message_timestamp_after_max_ms: i64,
    /// Kept: replicas throttled on the leader side (`*` or `partition:broker` items).
    #[serde(rename = "leader.replication.throttled.replicas")]
    pub leader_replication_throttled_replicas: Vec<String>,
    /// Kept: replicas throttled on the follower side (`*` or `partition:broker` items).
    #[serde(rename = "follower.replication.throttled.replicas")]
    pub follower_replication_throttled_replicas: Vec<String>,
    /// Kept: tiered storage for the topic.
    #[serde(rename = "remote.storage.enable")]
    pub remote_storage_enable: bool,
    /// Kept: local retention time with tiered storage (-2: `retention.ms`).
    #[serde(rename = "local.retention.ms")]
    pub local_retention_ms: i64,
    /// Kept: local retention size with tiered storage (-2: `retention.bytes`).
    #[serde(rename = "local.retention.bytes")]
    pub local_retention_bytes: i64,
    /// Kept: tiered data becomes read-only.
    #[serde(rename = "remote.log.copy.disable")]
    pub remote_log_copy_disable: bool,
    /// Kept: delete tiered data when tiered storage is turned off.
    #[serde(rename = "remote.log.delete.on.disable")]
    pub remote_log_delete_on_disable: bool,
}

/// Kafka's default `max.message.bytes`.
pub const DEFAULT_MAX_MESSAGE_BYTES: u32 = 1_048_588;

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            segment_bytes: 1 << 30,
            segment_ms: 7 * 24 * 3_600_000,
            segment_index_bytes: 10 * 1024 * 1024,
            index_interval_bytes: 4096,
            retention_ms: 7 * 24 * 3_600_000,
            retention_bytes: -1,
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            message_timestamp_type: MessageTimestampType::CreateTime,
            flush_messages: i64::MAX,
            flush_ms: i64::MAX,
            flush_group_commit: false,
            cleanup_policy: CleanupPolicy::Delete,
            min_cleanable_dirty_ratio: 0.5,
            min_compaction_lag_ms: 0,
            max_compaction_lag_ms: i64::MAX,
            delete_retention_ms: 86_400_000,
            producer_id_expiration_ms: 86_400_000,
            min_insync_replicas: 1,
            unclean_leader_election_enable: false,
            compression_type: TopicCompression::Producer,
            compression_gzip_level: -1,
            compression_lz4_level: 9,
            compression_zstd_level: 3,
            preallocate: false,
            segment_jitter_ms: 0,
            file_delete_delay_ms: 60_000,
            message_downconversion_enable: true,
            message_format_version: "3.0-IV1".to_string(),
            message_timestamp_difference_max_ms: i64::MAX,
            message_timestamp_before_max_ms: i64::MAX,
            message_timestamp_after_max_ms: i64::MAX,
            leader_replication_throttled_replicas: Vec::new(),
            follower_replication_throttled_replicas: Vec::new(),
            remote_storage_enable: false,
            local_retention_ms: -2,
            local_retention_bytes: -2,
            remote_log_copy_disable: false,
            remote_log_delete_on_disable: false,
        }
    }
}

impl LogConfig {
    /// The flush policy the settings describe: group commit first, then
    /// `flush.messages`, then `flush.ms`.
    pub fn flush_policy(&self) -> FlushPolicy {
        if self.flush_group_commit {
            FlushPolicy::GroupCommit
        } else if self.flush_messages > 0 && self.flush_messages < i64::MAX {
            FlushPolicy::EveryMessages(self.flush_messages as u64)
        } else if self.flush_ms >= 0 && self.flush_ms < i64::MAX {
            FlushPolicy::Interval(Duration::from_millis(self.flush_ms as u64))
        } else {
            FlushPolicy::None
        }
    }
}
