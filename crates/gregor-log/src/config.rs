//! Per-log configuration, with Kafka's topic-level names and defaults.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{LogError, Result};

/// Which timestamp a batch carries in the log (`message.timestamp.type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum MessageTimestampType {
    /// Keep the producer's timestamps.
    #[default]
    CreateTime,
    /// Stamp each batch with the broker's clock at append.
    LogAppendTime,
}

/// What happens to old records (`cleanup.policy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum CleanupPolicy {
    /// Delete whole old segments by time and size.
    #[default]
    #[serde(rename = "delete")]
    Delete,
    /// Keep the latest record per key (log compaction).
    #[serde(rename = "compact")]
    Compact,
    /// Both.
    #[serde(rename = "compact,delete", alias = "delete,compact")]
    CompactDelete,
}

impl CleanupPolicy {
    /// Records are compacted by key.
    pub fn compacts(self) -> bool {
        matches!(self, Self::Compact | Self::CompactDelete)
    }

    /// Old segments are deleted by time and size.
    pub fn deletes(self) -> bool {
        matches!(self, Self::Delete | Self::CompactDelete)
    }
}

/// When appended bytes are forced to disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlushPolicy {
    /// Leave it to the OS (Kafka's default: durability comes from replication).
    None,
    /// fsync after every N records.
    EveryMessages(u64),
    /// fsync when the last flush is older than this.
    Interval(Duration),
    /// Every append waits until its bytes are durable; concurrent appenders
    /// share one `fdatasync`.
    GroupCommit,
}

/// Configuration of one partition log. Field names serialize as Kafka's
/// topic-level properties (`segment.bytes`, `retention.ms`, …).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LogConfig {
    /// Roll when the active segment would exceed this many bytes.
    #[serde(rename = "segment.bytes")]
    pub segment_bytes: u32,
    /// Roll when the active segment's first record is older than this.
    #[serde(rename = "segment.ms")]
    pub segment_ms: i64,
    /// Maximum size of each index file (preallocated for the active segment).
    #[serde(rename = "segment.index.bytes")]
    pub segment_index_bytes: u32,
    /// Bytes between offset-index entries.
    #[serde(rename = "index.interval.bytes")]
    pub index_interval_bytes: u32,
    /// Delete segments whose newest record is older than this; -1 keeps forever.
    #[serde(rename = "retention.ms")]
    pub retention_ms: i64,
    /// Delete the oldest segments while the log is larger than this; -1: no limit.
    #[serde(rename = "retention.bytes")]
    pub retention_bytes: i64,
    /// Largest batch accepted.
    #[serde(rename = "max.message.bytes")]
    pub max_message_bytes: u32,
    /// CreateTime or LogAppendTime.
    #[serde(rename = "message.timestamp.type")]
    pub message_timestamp_type: MessageTimestampType,
    /// fsync after this many records (`i64::MAX`: never).
    #[serde(rename = "flush.messages")]
    pub flush_messages: i64,
    /// fsync when the last flush is older than this (`i64::MAX`: never).
    #[serde(rename = "flush.ms")]
    pub flush_ms: i64,
    /// gregor's group-commit mode: every append waits for a shared fdatasync.
    #[serde(rename = "flush.group.commit")]
    pub flush_group_commit: bool,
    /// `delete`, `compact` or `compact,delete`.
    #[serde(rename = "cleanup.policy")]
    pub cleanup_policy: CleanupPolicy,
    /// Compact when dirty bytes / cleanable bytes reach this.
    #[serde(rename = "min.cleanable.dirty.ratio")]
    pub min_cleanable_dirty_ratio: f64,
    /// A record stays uncompacted at least this long.
    #[serde(rename = "min.compaction.lag.ms")]
    pub min_compaction_lag_ms: i64,
    /// A record is compacted at the latest this long after it was written,
    /// whatever the dirty ratio.
    #[serde(rename = "max.compaction.lag.ms")]
    pub max_compaction_lag_ms: i64,
    /// How long a tombstone stays after it was compacted.
    #[serde(rename = "delete.retention.ms")]
    pub delete_retention_ms: i64,
    /// How long an idempotent producer's state is kept after its last
    /// append (Kafka's broker setting `producer.id.expiration.ms`).
    #[serde(rename = "producer.id.expiration.ms")]
    pub producer_id_expiration_ms: i64,
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

    /// Checks the values against what the on-disk format can hold.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(LogError::InvalidConfig(m));
        if self.segment_bytes < 14 || self.segment_bytes > i32::MAX as u32 {
            return bad(format!("segment.bytes {} is not in [14, 2^31-1]", self.segment_bytes));
        }
        if self.segment_index_bytes < 24 {
            return bad(format!("segment.index.bytes {} is below 24", self.segment_index_bytes));
        }
        if self.segment_ms <= 0 {
            return bad(format!("segment.ms {} must be positive", self.segment_ms));
        }
        if !(0.0..=1.0).contains(&self.min_cleanable_dirty_ratio) {
            return bad(format!(
                "min.cleanable.dirty.ratio {} is not in [0, 1]",
                self.min_cleanable_dirty_ratio
            ));
        }
        if self.max_message_bytes < crate::batch::BATCH_HEADER_SIZE as u32 {
            return bad(format!(
                "max.message.bytes {} is below one batch header",
                self.max_message_bytes
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_kafkas() {
        let c = LogConfig::default();
        assert_eq!(c.segment_bytes, 1_073_741_824);
        assert_eq!(c.index_interval_bytes, 4096);
        assert_eq!(c.retention_ms, 604_800_000);
        assert_eq!(c.flush_policy(), FlushPolicy::None);
        c.validate().unwrap();
    }

    #[test]
    fn flush_policy_follows_the_settings() {
        let c = LogConfig {
            flush_messages: 10,
            ..Default::default()
        };
        assert_eq!(c.flush_policy(), FlushPolicy::EveryMessages(10));
        let c = LogConfig {
            flush_ms: 50,
            ..Default::default()
        };
        assert_eq!(c.flush_policy(), FlushPolicy::Interval(Duration::from_millis(50)));
        let c = LogConfig {
            flush_group_commit: true,
            flush_ms: 5,
            ..Default::default()
        };
        assert_eq!(c.flush_policy(), FlushPolicy::GroupCommit);
    }

    #[test]
    fn cleanup_policy_uses_kafkas_names() {
        let c: CleanupPolicy = serde_json_like("compact,delete");
        assert_eq!(c, CleanupPolicy::CompactDelete);
        assert!(c.compacts() && c.deletes());
    }

    fn serde_json_like(name: &str) -> CleanupPolicy {
        use serde::de::IntoDeserializer;
        let de: serde::de::value::StrDeserializer<serde::de::value::Error> = name.into_deserializer();
        CleanupPolicy::deserialize(de).unwrap()
    }

    #[test]
    fn out_of_range_values_are_refused() {
        let c = LogConfig {
            segment_bytes: u32::MAX,
            ..Default::default()
        };
        assert!(c.validate().is_err());
    }
}
