//! Topic-level settings: a topic's overrides over the broker's defaults,
//! and Kafka's rule for topic names.

use std::collections::BTreeMap;

use gregor_log::{CleanupPolicy, LogConfig, MessageTimestampType};
use kafka_protocol::error::ResponseError;

/// The defaults with `overrides` applied.
pub fn topic_config(defaults: &LogConfig, overrides: &BTreeMap<String, String>) -> Result<LogConfig, String> {
    let mut config = defaults.clone();
    for (key, value) in overrides {
        apply_topic_config(&mut config, key, value)?;
    }
    Ok(config)
}

/// Applies one topic-level config (`retention.ms=…`) to `config`.
pub fn apply_topic_config(config: &mut LogConfig, key: &str, value: &str) -> Result<(), String> {
    fn num<T: std::str::FromStr>(key: &str, value: &str) -> Result<T, String> {
        value
            .trim()
            .parse()
            .map_err(|_| format!("invalid value {value:?} for {key}"))
    }
    match key {
        "cleanup.policy" => {
            config.cleanup_policy = match value.replace(' ', "").as_str() {
                "delete" => CleanupPolicy::Delete,
                "compact" => CleanupPolicy::Compact,
                "compact,delete" | "delete,compact" => CleanupPolicy::CompactDelete,
                other => return Err(format!("invalid cleanup.policy {other:?}")),
            }
        }
        "retention.ms" => config.retention_ms = num(key, value)?,
        "retention.bytes" => config.retention_bytes = num(key, value)?,
        "segment.bytes" => config.segment_bytes = num(key, value)?,
        "segment.ms" => config.segment_ms = num(key, value)?,
        "segment.index.bytes" => config.segment_index_bytes = num(key, value)?,
        "index.interval.bytes" => config.index_interval_bytes = num(key, value)?,
        "max.message.bytes" => config.max_message_bytes = num(key, value)?,
        "flush.messages" => config.flush_messages = num(key, value)?,
        "flush.ms" => config.flush_ms = num(key, value)?,
        "min.cleanable.dirty.ratio" => config.min_cleanable_dirty_ratio = num(key, value)?,
        "min.compaction.lag.ms" => config.min_compaction_lag_ms = num(key, value)?,
        "max.compaction.lag.ms" => config.max_compaction_lag_ms = num(key, value)?,
        "delete.retention.ms" => config.delete_retention_ms = num(key, value)?,
        // Replication settings: read by the replica manager, checked here.
        "min.insync.replicas" => {
            if num::<usize>(key, value)? == 0 {
                return Err("min.insync.replicas must be at least 1".into());
            }
        }
        "unclean.leader.election.enable" => {
            num::<bool>(key, value)?;
        }
        "message.timestamp.type" => {
            config.message_timestamp_type = match value {
                "CreateTime" => MessageTimestampType::CreateTime,
                "LogAppendTime" => MessageTimestampType::LogAppendTime,
                other => return Err(format!("invalid message.timestamp.type {other:?}")),
            }
        }
        other => return Err(format!("unknown topic config {other}")),
    }
    config.validate().map_err(|e| e.to_string())
}

/// Kafka's rule: 1–249 characters of `[a-zA-Z0-9._-]`, not `.` or `..`.
pub fn validate_topic_name(name: &str) -> Result<(), ResponseError> {
    let legal = !name.is_empty()
        && name.len() <= 249
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-');
    if legal {
        Ok(())
    } else {
        Err(ResponseError::InvalidTopicException)
    }
}
