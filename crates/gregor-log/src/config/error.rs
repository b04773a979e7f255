//! Why a topic configuration is refused. The messages are Kafka's, so a
//! broker can pass them on as they are (with INVALID_CONFIG).

/// A refused property or combination of properties.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// No topic-level property has this name.
    #[error("Unknown topic config name: {0}")]
    UnknownName(String),
    /// The value does not parse as the property's type or breaks its rule.
    #[error("Invalid value {value} for configuration {name}: {reason}")]
    InvalidValue {
        /// The property.
        name: String,
        /// The value as given.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Values that are valid alone but not together
    /// (`min.compaction.lag.ms` above `max.compaction.lag.ms`, …).
    #[error("{message}")]
    Conflict {
        /// The first property the rule names.
        name: &'static str,
        /// What is wrong, naming the properties.
        message: String,
    },
}

impl ConfigError {
    /// The property the error is about (for a conflict: the first it names).
    pub fn name(&self) -> &str {
        match self {
            Self::UnknownName(name) | Self::InvalidValue { name, .. } => name,
            Self::Conflict { name, .. } => name,
        }
    }

    pub(super) fn invalid(name: &str, value: impl ToString, reason: impl Into<String>) -> Self {
        Self::InvalidValue {
            name: name.to_string(),
            value: value.to_string(),
            reason: reason.into(),
        }
    }
}
