//! The table of every topic-level property of Kafka 3.9: name, type,
//! default, rule, what gregor does with it, and which [`LogConfig`] field
//! holds it. Parsing, checking and describing all go through this table.

use std::fmt;

use super::error::ConfigError;
use super::log_config::LogConfig;
use super::types::{CleanupPolicy, ConfigType, MessageTimestampType, TopicCompression};
use super::value::{FieldValue, Value};

/// What gregor does with a property.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// The log or its compactor acts on it.
    Log,
    /// The replica manager reads it.
    Replication,
    /// Accepted, validated, kept and described; no effect in gregor yet.
    Kept,
}

/// The rule a property's values follow (Kafka's validators).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validator {
    /// Any value of the property's type.
    Any,
    /// A number at least this.
    AtLeast(i64),
    /// A number between these, both included.
    Between(i64, i64),
    /// A number between the first two, or equal to the third (gzip's
    /// level, where -1 is zlib's default).
    BetweenOr(i64, i64, i64),
    /// One of these strings (case-sensitive).
    OneOf(&'static [&'static str]),
    /// A list whose every item is one of these strings.
    ListOf(&'static [&'static str]),
    /// `*`, or a list of `partition:broker` items.
    ThrottledReplicas,
    /// A Kafka version, as `message.format.version` takes it (`2.8`, `3.0-IV1`, `0.10.2`).
    KafkaVersion,
}

impl Validator {
    /// Checks a value; the error is Kafka's reason.
    fn check(self, name: &str, value: &Value) -> Result<(), String> {
        let number = match value {
            Value::Int(n) => Some(*n as f64),
            Value::Double(x) => Some(*x),
            _ => None,
        };
        let is_in = |min: i64, max: Option<i64>| {
            let n = number.unwrap_or(f64::NAN);
            if n.is_nan() || n < min as f64 {
                Err(format!("Value must be at least {min}"))
            } else if max.is_some_and(|max| n > max as f64) {
                Err(format!("Value must be no more than {}", max.unwrap_or_default()))
            } else {
                Ok(())
            }
        };
        let one_of = |s: &str, choices: &[&str]| {
            if choices.contains(&s) {
                Ok(())
            } else {
                Err(format!("String must be one of: {}", choices.join(", ")))
            }
        };
        match (self, value) {
            (Self::Any, _) => Ok(()),
            (Self::AtLeast(min), _) => is_in(min, None),
            (Self::Between(min, max), _) => is_in(min, Some(max)),
            (Self::BetweenOr(min, max, or), _) => {
                if number == Some(or as f64) || is_in(min, Some(max)).is_ok() {
                    Ok(())
                } else {
                    Err(format!("Value must be between {min} and {max} or equal to {or}"))
                }
            }
            (Self::OneOf(choices), Value::Text(s)) => one_of(s, choices),
            (Self::ListOf(choices), Value::List(items)) => items.iter().try_for_each(|s| one_of(s, choices)),
            (Self::ThrottledReplicas, Value::List(items)) => {
                let pair = |s: &str| {
                    s.is_empty()
                        || s.split_once(':').is_some_and(|(p, b)| {
                            [p, b]
                                .iter()
                                .all(|n| !n.is_empty() && n.bytes().all(|c| c.is_ascii_digit()))
                        })
                };
                if items.iter().all(|s| pair(s)) || items.concat() == "*" {
                    Ok(())
                } else {
                    Err(format!(
                        "{name} must be the literal '*' or a list of replicas in the following format: \
                         [partitionId]:[brokerId],[partitionId]:[brokerId],..."
                    ))
                }
            }
            (Self::KafkaVersion, Value::Text(s)) if is_kafka_version(s) => Ok(()),
            (Self::KafkaVersion, Value::Text(s)) => Err(format!("Version {s} is not a valid version")),
            (_, other) => Err(format!("value {other} has the wrong type")),
        }
    }
}

/// Kafka's text for the rule (the "Valid Values" of its documentation).
impl fmt::Display for Validator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Any => Ok(()),
            Self::AtLeast(min) => write!(f, "[{min},...]"),
            Self::Between(min, max) => write!(f, "[{min},...,{max}]"),
            Self::BetweenOr(min, max, or) => write!(f, "[{min},...,{max}] or {or}"),
            Self::OneOf(choices) | Self::ListOf(choices) => write!(f, "[{}]", choices.join(", ")),
            Self::ThrottledReplicas => f.write_str("[partitionId]:[brokerId],[partitionId]:[brokerId],..."),
            Self::KafkaVersion => write!(f, "[{}]", KAFKA_VERSIONS.join(", ")),
        }
    }
}

/// Kafka 3.9's versions (`MetadataVersion`), oldest first.
const KAFKA_VERSIONS: &[&str] = &[
    "0.8.0",
    "0.8.1",
    "0.8.2",
    "0.9.0",
    "0.10.0-IV0",
    "0.10.0-IV1",
    "0.10.1-IV0",
    "0.10.1-IV1",
    "0.10.1-IV2",
    "0.10.2-IV0",
    "0.11.0-IV0",
    "0.11.0-IV1",
    "0.11.0-IV2",
    "1.0-IV0",
    "1.1-IV0",
    "2.0-IV0",
    "2.0-IV1",
    "2.1-IV0",
    "2.1-IV1",
    "2.1-IV2",
    "2.2-IV0",
    "2.2-IV1",
    "2.3-IV0",
    "2.3-IV1",
    "2.4-IV0",
    "2.4-IV1",
    "2.5-IV0",
    "2.6-IV0",
    "2.7-IV0",
    "2.7-IV1",
    "2.7-IV2",
    "2.8-IV0",
    "2.8-IV1",
    "3.0-IV0",
    "3.0-IV1",
    "3.1-IV0",
    "3.2-IV0",
    "3.3-IV0",
    "3.3-IV1",
    "3.3-IV2",
    "3.3-IV3",
    "3.4-IV0",
    "3.5-IV0",
    "3.5-IV1",
    "3.5-IV2",
    "3.6-IV0",
    "3.6-IV1",
    "3.6-IV2",
    "3.7-IV0",
    "3.7-IV1",
    "3.7-IV2",
    "3.7-IV3",
    "3.7-IV4",
    "3.8-IV0",
    "3.9-IV0",
    "4.0-IV0",
    "4.0-IV1",
];

/// The newest production version: releases up to it may be named without
/// their `-IVn` suffix.
const LATEST_PRODUCTION: &str = "3.9-IV0";

/// Kafka's `MetadataVersion.fromVersionString`: a full version
/// (`3.0-IV1`), a production release (`3.0`), or either followed by more
/// dot-separated parts (`3.0.1`, `0.10.2.0`).
fn is_kafka_version(s: &str) -> bool {
    let mut parts: Vec<&str> = s.split('.').collect();
    while parts.len() > 1 && parts.last() == Some(&"") {
        parts.pop(); // Java's split drops trailing empty strings
    }
    let wanted = if s.starts_with("0.") { 3 } else { 2 };
    let key = if wanted >= parts.len() {
        s.to_string()
    } else {
        parts[..wanted].join(".")
    };
    let production = KAFKA_VERSIONS
        .iter()
        .position(|v| *v == LATEST_PRODUCTION)
        .map_or(KAFKA_VERSIONS, |i| &KAFKA_VERSIONS[..=i]);
    KAFKA_VERSIONS.contains(&key.as_str()) || production.iter().any(|v| v.split('-').next() == Some(key.as_str()))
}

/// One topic-level property.
#[derive(Debug)]
pub struct TopicProperty {
    /// Kafka's name (`retention.ms`).
    pub name: &'static str,
    /// Kafka's type.
    pub config_type: ConfigType,
    /// Kafka's default, as DescribeConfigs shows it.
    pub default: &'static str,
    /// The rule values follow.
    pub validator: Validator,
    /// Whether DescribeConfigs must hide the value (no topic property is).
    pub sensitive: bool,
    /// What gregor does with it.
    pub effect: Effect,
    /// The broker property whose value is the default, if any (`log.retention.ms`).
    pub server_default: Option<&'static str>,
    /// What it does, in one line.
    pub doc: &'static str,
    get: fn(&LogConfig) -> Value,
    put: fn(&mut LogConfig, Value) -> Result<(), String>,
}

impl TopicProperty {
    /// The property's value in `config`, as DescribeConfigs shows it.
    pub fn value_of(&self, config: &LogConfig) -> String {
        (self.get)(config).to_string()
    }

    /// Parses `raw`, checks it and stores it in `config` (only this
    /// property: rules across properties are [`LogConfig::validate`]'s).
    pub(super) fn set(&self, config: &mut LogConfig, raw: &str) -> Result<(), ConfigError> {
        let value =
            Value::parse(self.config_type, raw).map_err(|reason| ConfigError::invalid(self.name, raw, reason))?;
        self.check(&value)
            .map_err(|reason| ConfigError::invalid(self.name, raw, reason))?;
        (self.put)(config, value).map_err(|reason| ConfigError::invalid(self.name, raw, reason))
    }

    /// Checks the value `config` holds (it may have been set in code).
    pub(super) fn check_in(&self, config: &LogConfig) -> Result<(), ConfigError> {
        let value = (self.get)(config);
        self.check(&value)
            .map_err(|reason| ConfigError::invalid(self.name, &value, reason))
    }

    fn check(&self, value: &Value) -> Result<(), String> {
        if !value.fits(self.config_type) {
            return Err(format!("Not a number of type {}", self.config_type));
        }
        self.validator.check(self.name, value)
    }
}

/// The property named `name`, if it is one.
pub fn topic_property(name: &str) -> Option<&'static TopicProperty> {
    TOPIC_PROPERTIES
        .binary_search_by(|p| p.name.cmp(name))
        .ok()
        .map(|i| &TOPIC_PROPERTIES[i])
}

/// One row: `name, field: TYPE = "default", validator, effect, server default, doc`.
macro_rules! property {
    ($name:literal, $field:ident: $ty:ident = $default:literal, $validator:expr, $effect:ident, $server:expr, $doc:literal) => {
        TopicProperty {
            name: $name,
            config_type: ConfigType::$ty,
            default: $default,
            validator: $validator,
            sensitive: false,
            effect: Effect::$effect,
            server_default: $server,
            doc: $doc,
            get: |c| FieldValue::to_value(&c.$field),
            put: |c, v| {
                c.$field = FieldValue::from_value(v)?;
                Ok(())
            },
        }
    };
}

use Validator::{Any, AtLeast, Between, BetweenOr, KafkaVersion, ListOf, OneOf, ThrottledReplicas};

/// Every topic-level property of Kafka 3.9, sorted by name.
pub static TOPIC_PROPERTIES: &[TopicProperty] = &[
    property!("cleanup.policy", cleanup_policy: List = "delete", ListOf(CleanupPolicy::NAMES), Log,
        Some("log.cleanup.policy"), "Old segments are deleted (`delete`), compacted by key (`compact`), or both."),
    property!("compression.gzip.level", compression_gzip_level: Int = "-1", BetweenOr(1, 9, -1), Kept,
        Some("compression.gzip.level"), "Level for compression.type=gzip."),
    property!("compression.lz4.level", compression_lz4_level: Int = "9", Between(1, 17), Kept,
        Some("compression.lz4.level"), "Level for compression.type=lz4."),
    property!("compression.type", compression_type: String = "producer", OneOf(TopicCompression::NAMES), Kept,
        Some("compression.type"), "Codec batches are stored with; `producer` keeps the producer's."),
    property!("compression.zstd.level", compression_zstd_level: Int = "3", Between(-131_072, 22), Kept,
        Some("compression.zstd.level"), "Level for compression.type=zstd."),
    property!("delete.retention.ms", delete_retention_ms: Long = "86400000", AtLeast(0), Log,
        Some("log.cleaner.delete.retention.ms"), "How long tombstones stay in a compacted log."),
    property!("file.delete.delay.ms", file_delete_delay_ms: Long = "60000", AtLeast(0), Kept,
        Some("log.segment.delete.delay.ms"), "Wait before a deleted segment's files are removed."),
    property!("flush.messages", flush_messages: Long = "9223372036854775807", AtLeast(1), Log,
        Some("log.flush.interval.messages"), "Force an fsync after this many records."),
    property!("flush.ms", flush_ms: Long = "9223372036854775807", AtLeast(0), Log,
        Some("log.flush.interval.ms"), "Force an fsync when the last one is older than this."),
    property!("follower.replication.throttled.replicas", follower_replication_throttled_replicas: List = "",
        ThrottledReplicas, Kept, None, "Replicas whose replication is throttled on the follower side."),
    property!("index.interval.bytes", index_interval_bytes: Int = "4096", AtLeast(0), Log,
        Some("log.index.interval.bytes"), "Bytes between offset-index entries."),
    property!("leader.replication.throttled.replicas", leader_replication_throttled_replicas: List = "",
        ThrottledReplicas, Kept, None, "Replicas whose replication is throttled on the leader side."),
    property!("local.retention.bytes", local_retention_bytes: Long = "-2", AtLeast(-2), Kept,
        Some("log.local.retention.bytes"), "Local size limit with tiered storage; -2: retention.bytes."),
    property!("local.retention.ms", local_retention_ms: Long = "-2", AtLeast(-2), Kept,
        Some("log.local.retention.ms"), "Local time limit with tiered storage; -2: retention.ms."),
    property!("max.compaction.lag.ms", max_compaction_lag_ms: Long = "9223372036854775807", AtLeast(1), Log,
        Some("log.cleaner.max.compaction.lag.ms"), "Longest a record stays ineligible for compaction."),
    property!("max.message.bytes", max_message_bytes: Int = "1048588", AtLeast(0), Log,
        Some("message.max.bytes"), "Largest record batch accepted (after compression)."),
    property!("message.downconversion.enable", message_downconversion_enable: Boolean = "true", Any, Kept,
        Some("log.message.downconversion.enable"), "Whether fetches from old clients may be down-converted."),
    property!("message.format.version", message_format_version: String = "3.0-IV1", KafkaVersion, Kept,
        Some("log.message.format.version"), "Deprecated message format version; ignored from 3.0."),
    property!("message.timestamp.after.max.ms", message_timestamp_after_max_ms: Long = "9223372036854775807",
        AtLeast(0), Kept, Some("log.message.timestamp.after.max.ms"),
        "How far ahead of the broker's clock a CreateTime timestamp may be."),
    property!("message.timestamp.before.max.ms", message_timestamp_before_max_ms: Long = "9223372036854775807",
        AtLeast(0), Kept, Some("log.message.timestamp.before.max.ms"),
        "How far behind the broker's clock a CreateTime timestamp may be."),
    property!("message.timestamp.difference.max.ms", message_timestamp_difference_max_ms: Long =
        "9223372036854775807", AtLeast(0), Kept, Some("log.message.timestamp.difference.max.ms"),
        "Deprecated: how far from the broker's clock a CreateTime timestamp may be."),
    property!("message.timestamp.type", message_timestamp_type: String = "CreateTime",
        OneOf(MessageTimestampType::NAMES), Log, Some("log.message.timestamp.type"),
        "Keep the producer's timestamps (CreateTime) or stamp the append time (LogAppendTime)."),
    property!("min.cleanable.dirty.ratio", min_cleanable_dirty_ratio: Double = "0.5", Between(0, 1), Log,
        Some("log.cleaner.min.cleanable.ratio"), "Dirty share of a log at which compaction starts."),
    property!("min.compaction.lag.ms", min_compaction_lag_ms: Long = "0", AtLeast(0), Log,
        Some("log.cleaner.min.compaction.lag.ms"), "Shortest a record stays uncompacted."),
    property!("min.insync.replicas", min_insync_replicas: Int = "1", AtLeast(1), Replication,
        Some("min.insync.replicas"), "In-sync replicas an acks=all write needs."),
    property!("preallocate", preallocate: Boolean = "false", Any, Kept, Some("log.preallocate"),
        "Preallocate new segment files on disk."),
    property!("remote.log.copy.disable", remote_log_copy_disable: Boolean = "false", Any, Kept, None,
        "Tiered data becomes read-only; nothing more is uploaded."),
    property!("remote.log.delete.on.disable", remote_log_delete_on_disable: Boolean = "false", Any, Kept, None,
        "Delete tiered data when tiered storage is turned off for the topic."),
    property!("remote.storage.enable", remote_storage_enable: Boolean = "false", Any, Kept, None,
        "Tiered storage for the topic."),
    property!("retention.bytes", retention_bytes: Long = "-1", Any, Log, Some("log.retention.bytes"),
        "Delete the oldest segments while a partition is larger than this; -1: no limit."),
    property!("retention.ms", retention_ms: Long = "604800000", AtLeast(-1), Log, Some("log.retention.ms"),
        "Delete segments whose records are all older than this; -1: no limit."),
    property!("segment.bytes", segment_bytes: Int = "1073741824", AtLeast(14), Log, Some("log.segment.bytes"),
        "Size at which a segment file is rolled."),
    property!("segment.index.bytes", segment_index_bytes: Int = "10485760", AtLeast(4), Log,
        Some("log.index.size.max.bytes"), "Size of each segment's index files."),
    property!("segment.jitter.ms", segment_jitter_ms: Long = "0", AtLeast(0), Kept, Some("log.roll.jitter.ms"),
        "Largest random jitter subtracted from the time-based roll."),
    property!("segment.ms", segment_ms: Long = "604800000", AtLeast(1), Log, Some("log.roll.ms"),
        "Age at which a segment is rolled even if not full."),
    property!("unclean.leader.election.enable", unclean_leader_election_enable: Boolean = "false", Any,
        Replication, Some("unclean.leader.election.enable"),
        "A replica outside the ISR may become leader as a last resort, losing data."),
];
