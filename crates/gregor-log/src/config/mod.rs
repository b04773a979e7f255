//! Per-log configuration: every topic-level property of Kafka 3.9, with
//! Kafka's names, types, defaults and rules.
//!
//! [`LogConfig`] holds one typed field per property; [`TOPIC_PROPERTIES`]
//! is the table that parses, checks and describes them by name.
//! [`LogConfig::with_overrides`] builds a topic's configuration from the
//! broker's defaults and the topic's overrides; [`LogConfig::set`] changes
//! one property; [`LogConfig::describe`] lists them all as DescribeConfigs
//! shows them. Each property's [`Effect`] says whether gregor acts on it.
//!
//! ```
//! use std::collections::BTreeMap;
//! use gregor_log::{CleanupPolicy, LogConfig};
//!
//! let overrides = BTreeMap::from([
//!     ("cleanup.policy".to_string(), "compact".to_string()),
//!     ("compression.type".to_string(), "zstd".to_string()),
//! ]);
//! let config = LogConfig::with_overrides(&LogConfig::default(), &overrides)?;
//! assert_eq!(config.cleanup_policy, CleanupPolicy::Compact);
//! let shown = config.describe();
//! assert!(shown.iter().any(|e| e.name == "compression.type" && e.value == "zstd"));
//!
//! let refused = LogConfig::default().set("segment.bytes", "10").unwrap_err();
//! assert_eq!(
//!     refused.to_string(),
//!     "Invalid value 10 for configuration segment.bytes: Value must be at least 14"
//! );
//! # Ok::<(), gregor_log::ConfigError>(())
//! ```

mod error;
mod log_config;
mod table;
mod types;
mod value;

use std::collections::BTreeMap;

pub use error::ConfigError;
pub use log_config::{LogConfig, DEFAULT_MAX_MESSAGE_BYTES};
pub use table::{topic_property, Effect, TopicProperty, Validator, TOPIC_PROPERTIES};
pub use types::{CleanupPolicy, ConfigType, FlushPolicy, MessageTimestampType, TopicCompression};

use crate::batch::BATCH_HEADER_SIZE;
use crate::error::{LogError, Result};

/// One property as DescribeConfigs shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigEntry {
    /// Kafka's name.
    pub name: &'static str,
    /// The current value in Kafka's text form (lists comma-separated,
    /// doubles as Java prints them).
    pub value: String,
    /// Kafka's type (DescribeConfigs v3+ `config_type`: [`ConfigType::id`]).
    pub config_type: ConfigType,
    /// Whether the value must be hidden (never, for topic properties).
    pub sensitive: bool,
    /// Whether it cannot be changed (never, for topic properties).
    pub read_only: bool,
    /// What it does, in one line.
    pub documentation: &'static str,
}

impl LogConfig {
    /// Sets one topic-level property from its text, as Kafka parses and
    /// checks it, then checks the whole configuration; on error nothing
    /// changes. Unknown names and bad values are refused with a message
    /// naming the property.
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), ConfigError> {
        let mut next = self.clone();
        property(name)?.set(&mut next, value)?;
        next.check()?;
        *self = next;
        Ok(())
    }

    /// `defaults` with every override applied, checked as a whole once
    /// they all are (so their order does not matter).
    pub fn with_overrides(
        defaults: &LogConfig,
        overrides: &BTreeMap<String, String>,
    ) -> Result<LogConfig, ConfigError> {
        let mut config = defaults.clone();
        for (name, value) in overrides {
            property(name)?.set(&mut config, value)?;
        }
        config.check()?;
        Ok(config)
    }

    /// Every topic-level property with its current value, by name.
    pub fn describe(&self) -> Vec<ConfigEntry> {
        TOPIC_PROPERTIES
            .iter()
            .map(|p| ConfigEntry {
                name: p.name,
                value: p.value_of(self),
                config_type: p.config_type,
                sensitive: p.sensitive,
                read_only: false,
                documentation: p.doc,
            })
            .collect()
    }

    /// The in-sync replicas an `acks=all` write needs (`min.insync.replicas`).
    pub fn min_insync_replicas(&self) -> usize {
        self.min_insync_replicas as usize
    }

    /// Checks every property against its rule, the rules across
    /// properties, and what gregor's on-disk format can hold.
    pub fn validate(&self) -> Result<()> {
        self.check().map_err(|e| LogError::InvalidConfig(e.to_string()))
    }

    fn check(&self) -> Result<(), ConfigError> {
        for p in TOPIC_PROPERTIES {
            p.check_in(self)?;
        }
        // gregor's own limits, above Kafka's.
        if self.segment_index_bytes < 24 {
            let reason = "gregor's index files need at least 24 bytes";
            return Err(ConfigError::invalid(
                "segment.index.bytes",
                self.segment_index_bytes,
                reason,
            ));
        }
        if self.max_message_bytes < BATCH_HEADER_SIZE as u32 {
            let reason = format!("Value must be at least {BATCH_HEADER_SIZE} (one batch header)");
            return Err(ConfigError::invalid(
                "max.message.bytes",
                self.max_message_bytes,
                reason,
            ));
        }
        self.check_across()
    }

    /// Kafka's rules across properties (`LogConfig.validateValues` and the
    /// topic-level tiered-storage checks).
    fn check_across(&self) -> Result<(), ConfigError> {
        let conflict = |name: &'static str, message: String| Err(ConfigError::Conflict { name, message });
        if self.min_compaction_lag_ms > self.max_compaction_lag_ms {
            return conflict(
                "min.compaction.lag.ms",
                format!(
                    "conflict topic config setting min.compaction.lag.ms ({}) > max.compaction.lag.ms ({})",
                    self.min_compaction_lag_ms, self.max_compaction_lag_ms
                ),
            );
        }
        if !self.remote_storage_enable {
            return Ok(());
        }
        if self.cleanup_policy.compacts() {
            return conflict(
                "remote.storage.enable",
                "Remote log storage is unsupported for the compacted topics".into(),
            );
        }
        let limits = [
            (
                "local.retention.bytes",
                self.local_retention_bytes,
                "retention.bytes",
                self.retention_bytes,
            ),
            (
                "local.retention.ms",
                self.local_retention_ms,
                "retention.ms",
                self.retention_ms,
            ),
        ];
        for (local_name, local, name, total) in limits {
            if total < 0 || local == -2 {
                continue;
            }
            if local == -1 {
                let reason = format!("Value must not be -1 as {name} value is set as {total}.");
                return Err(ConfigError::invalid(local_name, local, reason));
            }
            if local > total {
                let reason = format!("Value must not be more than {name} property value: {total}");
                return Err(ConfigError::invalid(local_name, local, reason));
            }
        }
        if self.remote_log_copy_disable {
            for (local_name, local, name, total) in limits {
                if local != -2 && local != total {
                    return conflict(
                        local_name,
                        format!(
                            "When `remote.log.copy.disable` is set to true, the `{local_name}` and `{name}` \
                             must be set to the identical value because there will be no more logs copied to \
                             the remote storage."
                        ),
                    );
                }
            }
        }
        Ok(())
    }
}

fn property(name: &str) -> Result<&'static TopicProperty, ConfigError> {
    topic_property(name).ok_or_else(|| ConfigError::UnknownName(name.to_string()))
}

#[cfg(test)]
mod tests;
