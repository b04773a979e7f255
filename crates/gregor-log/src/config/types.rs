//! The small types a log configuration is made of: the typed values of its
//! choice properties, and Kafka's names for property types.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::compression::Compression;

/// A property's type, as Kafka's `ConfigDef.Type` names it and as
/// DescribeConfigs (v3+) reports it in `config_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConfigType {
    /// `true` or `false`, in any case.
    Boolean,
    /// Text, surrounding whitespace removed.
    String,
    /// A 16-bit signed integer (broker properties such as
    /// `offsets.topic.replication.factor`; no topic property has this type).
    Short,
    /// A 32-bit signed integer.
    Int,
    /// A 64-bit signed integer.
    Long,
    /// A 64-bit floating-point number.
    Double,
    /// Comma-separated text items.
    List,
    /// A Java class name (no topic property has this type).
    Class,
    /// A secret string, never shown (no topic property has this type).
    Password,
}

impl ConfigType {
    /// The id DescribeConfigs sends for this type (Kafka's
    /// `DescribeConfigsResponse.ConfigType`).
    pub fn id(self) -> i8 {
        match self {
            Self::Boolean => 1,
            Self::String => 2,
            Self::Int => 3,
            Self::Short => 4,
            Self::Long => 5,
            Self::Double => 6,
            Self::List => 7,
            Self::Class => 8,
            Self::Password => 9,
        }
    }
}

impl fmt::Display for ConfigType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Boolean => "BOOLEAN",
            Self::String => "STRING",
            Self::Int => "INT",
            Self::Short => "SHORT",
            Self::Long => "LONG",
            Self::Double => "DOUBLE",
            Self::List => "LIST",
            Self::Class => "CLASS",
            Self::Password => "PASSWORD",
        })
    }
}

/// Which timestamp a batch carries in the log (`message.timestamp.type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum MessageTimestampType {
    /// Keep the producer's timestamps.
    #[default]
    CreateTime,
    /// Stamp each batch with the broker's clock at append.
    LogAppendTime,
}

impl MessageTimestampType {
    /// Kafka's names of the choices, in Kafka's order.
    pub const NAMES: &'static [&'static str] = &["CreateTime", "LogAppendTime"];

    /// Kafka's name of the choice.
    pub fn name(self) -> &'static str {
        Self::NAMES[self as usize]
    }

    /// The choice Kafka names `name` (case-sensitive).
    pub fn from_name(name: &str) -> Option<Self> {
        [Self::CreateTime, Self::LogAppendTime]
            .into_iter()
            .find(|t| t.name() == name)
    }
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
    /// The names a `cleanup.policy` list may hold, in Kafka's order.
    pub const NAMES: &'static [&'static str] = &["compact", "delete"];

    /// Records are compacted by key.
    pub fn compacts(self) -> bool {
        matches!(self, Self::Compact | Self::CompactDelete)
    }

    /// Old segments are deleted by time and size.
    pub fn deletes(self) -> bool {
        matches!(self, Self::Delete | Self::CompactDelete)
    }

    /// The policy's list, as DescribeConfigs shows it (`compact,delete` for both).
    pub fn names(self) -> &'static [&'static str] {
        match self {
            Self::Delete => &["delete"],
            Self::Compact => &["compact"],
            Self::CompactDelete => Self::NAMES,
        }
    }

    /// The policy a list of names asks for; `None` when it names neither
    /// (Kafka 3.9 accepts an empty list, gregor has no such policy).
    pub fn from_names<S: AsRef<str>>(names: &[S]) -> Option<Self> {
        let has = |n: &str| names.iter().any(|s| s.as_ref() == n);
        match (has("compact"), has("delete")) {
            (true, true) => Some(Self::CompactDelete),
            (true, false) => Some(Self::Compact),
            (false, true) => Some(Self::Delete),
            (false, false) => None,
        }
    }
}

/// A topic's final compression (`compression.type`): what the broker
/// should store batches as. Kafka's `BrokerCompressionType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum TopicCompression {
    /// Store records uncompressed.
    Uncompressed,
    /// Recompress with zstd.
    Zstd,
    /// Recompress with lz4.
    Lz4,
    /// Recompress with snappy.
    Snappy,
    /// Recompress with gzip.
    Gzip,
    /// Keep the producer's codec (the default).
    #[default]
    Producer,
}

impl TopicCompression {
    /// Kafka's names of the choices, in Kafka's order.
    pub const NAMES: &'static [&'static str] = &["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"];

    const ALL: [Self; 6] = [
        Self::Uncompressed,
        Self::Zstd,
        Self::Lz4,
        Self::Snappy,
        Self::Gzip,
        Self::Producer,
    ];

    /// Kafka's name of the choice.
    pub fn name(self) -> &'static str {
        Self::NAMES[self as usize]
    }

    /// The choice Kafka names `name` (case-sensitive).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.name() == name)
    }

    /// The codec batches are stored with; `None` for `producer` (as sent).
    pub fn codec(self) -> Option<Compression> {
        match self {
            Self::Uncompressed => Some(Compression::None),
            Self::Zstd => Some(Compression::Zstd),
            Self::Lz4 => Some(Compression::Lz4),
            Self::Snappy => Some(Compression::Snappy),
            Self::Gzip => Some(Compression::Gzip),
            Self::Producer => None,
        }
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
