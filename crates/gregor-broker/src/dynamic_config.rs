//! Dynamic broker configs, as Kafka's `DynamicBrokerConfig`: properties
//! that change while the broker runs, set per broker (`/config/brokers/<id>`,
//! resource name = the broker id) or as cluster-wide defaults
//! (`/config/brokers/<default>`, the empty resource name). A property's
//! value in force is, most specific first: this broker's dynamic config
//! (DYNAMIC_BROKER_CONFIG), the cluster-wide dynamic default
//! (DYNAMIC_DEFAULT_BROKER_CONFIG), the server's configuration
//! (STATIC_BROKER_CONFIG), the built-in default (DEFAULT_CONFIG).
//!
//! Which properties are dynamic follows Kafka 3.9, limited to what gregor
//! applies live:
//! - the broker-level defaults of topic properties (`log.retention.ms`,
//!   `log.segment.bytes`, `log.cleanup.policy`, `message.max.bytes`,
//!   `min.insync.replicas`, `log.cleaner.delete.retention.ms`, …; Kafka's
//!   `DynamicLogConfig`): every topic without its own override follows
//!   them — except `log.message.format.version` (not dynamic in Kafka) and
//!   `unclean.leader.election.enable` (gregor's controller reads it once);
//! - server properties the server's table marks dynamic
//!   ([`BrokerProperty::dynamic`], e.g. `log.cleaner.backoff.ms`), applied
//!   by the server through [`DynamicBrokerConfig::on_change`];
//! - `leader.replication.throttled.rate` and
//!   `follower.replication.throttled.rate` (Kafka's broker quota configs):
//!   recorded, described and read through
//!   [`DynamicBrokerConfig::leader_replication_throttled_rate`] /
//!   [`DynamicBrokerConfig::follower_replication_throttled_rate`].
//!
//! Any other name is refused as Kafka refuses a static property ("Cannot
//! update these configs dynamically"), including Kafka-dynamic ones gregor
//! has no knob for (`num.io.threads`, `ssl.*`, …) and names Kafka would
//! keep as custom configs.

use std::collections::BTreeMap;

use gregor_log::config::{ConfigError, ConfigType, TopicProperty, TOPIC_PROPERTIES};
use gregor_log::LogConfig;
use parking_lot::{Mutex, RwLock};

use crate::config::BrokerProperty;

/// `leader.replication.throttled.rate`: bytes/s the leaders of throttled
/// replicas send to followers at most.
pub const LEADER_REPLICATION_THROTTLED_RATE: &str = "leader.replication.throttled.rate";
/// `follower.replication.throttled.rate`: bytes/s the followers of
/// throttled replicas fetch at most.
pub const FOLLOWER_REPLICATION_THROTTLED_RATE: &str = "follower.replication.throttled.rate";
/// The broker quota configs (Kafka's `QuotaConfigs.brokerQuotaConfigs`)
/// with their documentation; Kafka's default is `Long.MAX_VALUE`.
pub const REPLICATION_THROTTLED_RATES: [(&str, &str); 2] = [
    (
        LEADER_REPLICATION_THROTTLED_RATE,
        "A long representing the upper bound (bytes/sec) on replication traffic for leaders enumerated in the \
         property leader.replication.throttled.replicas (for each topic).",
    ),
    (
        FOLLOWER_REPLICATION_THROTTLED_RATE,
        "A long representing the upper bound (bytes/sec) on replication traffic for followers enumerated in the \
         property follower.replication.throttled.replicas (for each topic).",
    ),
];
/// Kafka's default of the throttled rates (no limit).
pub const UNTHROTTLED: &str = "9223372036854775807";

/// Broker-level defaults of topic properties that stay static.
const STATIC_TOPIC_DEFAULTS: [&str; 2] = ["log.message.format.version", "unclean.leader.election.enable"];

/// The two dynamic layers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DynamicLayers {
    /// This broker's (`/config/brokers/<id>`).
    pub per_broker: BTreeMap<String, String>,
    /// The cluster-wide defaults (`/config/brokers/<default>`).
    pub cluster_default: BTreeMap<String, String>,
}

impl DynamicLayers {
    /// The layer of a BROKER resource: `Some(id)` this broker's, `None`
    /// the cluster-wide defaults.
    pub fn layer(&self, broker: Option<i32>) -> &BTreeMap<String, String> {
        match broker {
            Some(_) => &self.per_broker,
            None => &self.cluster_default,
        }
    }

    pub(crate) fn layer_mut(&mut self, broker: Option<i32>) -> &mut BTreeMap<String, String> {
        match broker {
            Some(_) => &mut self.per_broker,
            None => &mut self.cluster_default,
        }
    }

    /// The dynamic value of `name`, most specific layer first.
    pub fn get(&self, name: &str) -> Option<&String> {
        self.per_broker.get(name).or_else(|| self.cluster_default.get(name))
    }
}

/// What a dynamic property is, which says how its value is checked and
/// applied.
#[derive(Clone, Copy)]
enum Kind {
    /// The broker-level default of this topic property.
    TopicDefault(&'static TopicProperty),
    /// A server property of this type.
    Server(ConfigType),
    /// A replication throttled rate (LONG, at least 0).
    Rate,
}

/// Called after the dynamic configs changed.
pub type ChangeHook = Box<dyn Fn(&DynamicBrokerConfig) + Send + Sync>;

/// This broker's dynamic configs over its static ones.
pub struct DynamicBrokerConfig {
    statics: Vec<BrokerProperty>,
    static_log_config: LogConfig,
    layers: RwLock<DynamicLayers>,
    hooks: Mutex<Vec<ChangeHook>>,
}

impl DynamicBrokerConfig {
    /// Over the server's properties and the static log defaults, with no
    /// dynamic config yet.
    pub fn new(statics: Vec<BrokerProperty>, static_log_config: LogConfig) -> Self {
        Self {
            statics,
            static_log_config,
            layers: RwLock::new(DynamicLayers::default()),
            hooks: Mutex::new(Vec::new()),
        }
    }

    fn kind(&self, name: &str) -> Option<Kind> {
        if REPLICATION_THROTTLED_RATES.iter().any(|(n, _)| *n == name) {
            return Some(Kind::Rate);
        }
        if let Some(p) = TOPIC_PROPERTIES.iter().find(|p| p.server_default == Some(name)) {
            return (!STATIC_TOPIC_DEFAULTS.contains(&name)).then_some(Kind::TopicDefault(p));
        }
        self.statics
            .iter()
            .find(|p| p.name == name && p.dynamic)
            .map(|p| Kind::Server(p.config_type))
    }

    /// Whether `name` can change while the broker runs.
    pub fn is_dynamic(&self, name: &str) -> bool {
        self.kind(name).is_some()
    }

    /// The dynamic configs now in force.
    pub fn layers(&self) -> DynamicLayers {
        self.layers.read().clone()
    }

    /// The value of server property `name` in force: dynamic, else static
    /// (`None`: unset, or not a server property).
    pub fn value(&self, name: &str) -> Option<String> {
        if let Some(v) = self.layers.read().get(name) {
            return Some(v.clone());
        }
        self.statics
            .iter()
            .find(|p| p.name == name)
            .and_then(|p| p.value.clone())
    }

    /// `leader.replication.throttled.rate` in bytes/s; `None`: no limit.
    pub fn leader_replication_throttled_rate(&self) -> Option<u64> {
        self.rate(LEADER_REPLICATION_THROTTLED_RATE)
    }

    /// `follower.replication.throttled.rate` in bytes/s; `None`: no limit.
    pub fn follower_replication_throttled_rate(&self) -> Option<u64> {
        self.rate(FOLLOWER_REPLICATION_THROTTLED_RATE)
    }

    fn rate(&self, name: &str) -> Option<u64> {
        let rate: i64 = self.layers.read().get(name)?.trim().parse().ok()?;
        (rate < i64::MAX).then_some(rate.max(0) as u64)
    }

    /// Checks `configs` as the whole dynamic config of a BROKER resource
    /// (`Some(id)`: this broker's, `None`: the cluster-wide defaults), as
    /// Kafka's `DynamicBrokerConfig.validate`: names first (the message of
    /// a refusal is Kafka's, for INVALID_CONFIG), then each value, then the
    /// log defaults they make together.
    pub fn check(&self, broker: Option<i32>, configs: &BTreeMap<String, String>) -> Result<(), String> {
        let refused: Vec<&str> = configs
            .keys()
            .filter(|name| !self.is_dynamic(name))
            .map(String::as_str)
            .collect();
        if !refused.is_empty() {
            return Err(format!(
                "Cannot update these configs dynamically: Set({})",
                refused.join(", ")
            ));
        }
        for (name, value) in configs {
            self.check_value(name, value)?;
        }
        let mut layers = self.layers();
        *layers.layer_mut(broker) = configs.clone();
        self.log_config(&layers).map(|_| ())
    }

    /// `configs` without what cannot be applied (not dynamic, or a bad
    /// value), each dropped with a warning — as Kafka loads what another
    /// version or a hand edit left in coordination.
    pub fn sanitized(&self, configs: BTreeMap<String, String>) -> BTreeMap<String, String> {
        configs
            .into_iter()
            .filter(|(name, value)| match self.check_value(name, value) {
                Ok(()) => true,
                Err(e) => {
                    tracing::warn!("ignoring dynamic broker config {name}: {e}");
                    false
                }
            })
            .collect()
    }

    fn check_value(&self, name: &str, value: &str) -> Result<(), String> {
        match self.kind(name) {
            None => Err(format!("Cannot update these configs dynamically: Set({name})")),
            Some(Kind::TopicDefault(p)) => {
                let overrides = BTreeMap::from([(p.name.to_string(), value.to_string())]);
                LogConfig::with_overrides(&self.static_log_config, &overrides)
                    .map(|_| ())
                    .map_err(broker_message)
            }
            Some(Kind::Server(config_type)) => check_typed(name, value, config_type),
            Some(Kind::Rate) => check_typed(name, value, ConfigType::Long),
        }
    }

    /// The log defaults `layers` make over the static ones.
    pub fn log_config(&self, layers: &DynamicLayers) -> Result<LogConfig, String> {
        let mut overrides = BTreeMap::new();
        for (name, value) in layers.cluster_default.iter().chain(&layers.per_broker) {
            if let Some(Kind::TopicDefault(p)) = self.kind(name) {
                overrides.insert(p.name.to_string(), value.clone());
            }
        }
        LogConfig::with_overrides(&self.static_log_config, &overrides).map_err(broker_message)
    }

    /// Makes `layers` the dynamic configs in force and tells the hooks.
    pub(crate) fn set_layers(&self, layers: DynamicLayers) {
        *self.layers.write() = layers;
        for hook in self.hooks.lock().iter() {
            hook(self);
        }
    }

    /// Calls `hook` after every change of the dynamic configs (the server
    /// applies those of its own parts: the cleaner's backoff, …).
    pub fn on_change(&self, hook: ChangeHook) {
        self.hooks.lock().push(hook);
    }
}

/// A topic config error with the broker property's name in place of the
/// topic property's (`log.retention.ms` rather than `retention.ms`).
fn broker_message(e: ConfigError) -> String {
    match e {
        ConfigError::InvalidValue { name, value, reason } => {
            let broker_name = TOPIC_PROPERTIES
                .iter()
                .find(|p| p.name == name)
                .and_then(|p| p.server_default)
                .unwrap_or(&name);
            format!("Invalid value {value} for configuration {broker_name}: {reason}")
        }
        other => other.to_string(),
    }
}

/// Kafka's `ConfigDef.parse` of a server property's value, with
/// `AtLeast(0)` for numbers (the rule of gregor's dynamic ones).
fn check_typed(name: &str, value: &str, config_type: ConfigType) -> Result<(), String> {
    let trimmed = value.trim();
    let invalid = |reason: String| Err(format!("Invalid value {value} for configuration {name}: {reason}"));
    let number = match config_type {
        ConfigType::Boolean => {
            return match trimmed.to_ascii_lowercase().as_str() {
                "true" | "false" => Ok(()),
                _ => invalid("Expected value to be either true or false".into()),
            }
        }
        ConfigType::Short => trimmed.parse::<i16>().map(i64::from).ok(),
        ConfigType::Int => trimmed.parse::<i32>().map(i64::from).ok(),
        ConfigType::Long => trimmed.parse::<i64>().ok(),
        _ => return Ok(()),
    };
    match number {
        None => invalid(format!("Not a number of type {config_type}")),
        Some(n) if n < 0 => invalid("Value must be at least 0".into()),
        Some(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn property(name: &'static str, value: &str, dynamic: bool) -> BrokerProperty {
        BrokerProperty {
            name,
            value: Some(value.to_string()),
            default: Some(value.to_string()),
            set: false,
            dynamic,
            config_type: ConfigType::Long,
            documentation: "",
        }
    }

    fn config() -> DynamicBrokerConfig {
        let statics = vec![
            property("log.cleaner.backoff.ms", "15000", true),
            property("num.partitions", "1", false),
        ];
        let log = LogConfig {
            retention_ms: 1000,
            ..LogConfig::default()
        };
        DynamicBrokerConfig::new(statics, log)
    }

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn per_broker_beats_the_cluster_default_which_beats_the_static_value() {
        let c = config();
        assert_eq!(c.log_config(&c.layers()).unwrap().retention_ms, 1000);
        assert_eq!(c.value("log.cleaner.backoff.ms").as_deref(), Some("15000"));
        let mut layers = DynamicLayers {
            cluster_default: map(&[("log.retention.ms", "2000"), ("log.cleaner.backoff.ms", "50")]),
            ..DynamicLayers::default()
        };
        c.set_layers(layers.clone());
        assert_eq!(c.log_config(&c.layers()).unwrap().retention_ms, 2000);
        assert_eq!(c.value("log.cleaner.backoff.ms").as_deref(), Some("50"));
        layers.per_broker = map(&[("log.retention.ms", "3000"), ("log.segment.bytes", "4096")]);
        c.set_layers(layers.clone());
        let log = c.log_config(&c.layers()).unwrap();
        assert_eq!((log.retention_ms, log.segment_bytes), (3000, 4096));
        assert_eq!(c.layers().get("log.retention.ms").map(String::as_str), Some("3000"));
        // Removing the per-broker value uncovers the cluster default.
        layers.per_broker.clear();
        c.set_layers(layers);
        assert_eq!(c.log_config(&c.layers()).unwrap().retention_ms, 2000);
    }

    #[test]
    fn static_names_are_refused_with_kafkas_message_and_bad_values_name_the_broker_property() {
        let c = config();
        let refused = c.check(
            Some(0),
            &map(&[("num.partitions", "3"), ("broker.id", "2"), ("log.retention.ms", "5")]),
        );
        assert_eq!(
            refused.unwrap_err(),
            "Cannot update these configs dynamically: Set(broker.id, num.partitions)"
        );
        for name in [
            "log.retention.hours",
            "log.message.format.version",
            "unclean.leader.election.enable",
        ] {
            assert!(c.check(None, &map(&[(name, "1")])).is_err(), "{name}");
        }
        assert_eq!(
            c.check(None, &map(&[("log.retention.ms", "soon")])).unwrap_err(),
            "Invalid value soon for configuration log.retention.ms: Not a number of type LONG"
        );
        assert_eq!(
            c.check(Some(0), &map(&[("log.segment.bytes", "10")])).unwrap_err(),
            "Invalid value 10 for configuration log.segment.bytes: Value must be at least 14"
        );
        assert!(c
            .check(Some(0), &map(&[(LEADER_REPLICATION_THROTTLED_RATE, "-1")]))
            .is_err());
        assert!(c.check(Some(0), &map(&[("log.cleaner.backoff.ms", "x")])).is_err());
        // Valid alone, refused together with the other layer.
        c.set_layers(DynamicLayers {
            cluster_default: map(&[("log.cleaner.max.compaction.lag.ms", "100")]),
            ..DynamicLayers::default()
        });
        let conflict = c.check(Some(0), &map(&[("log.cleaner.min.compaction.lag.ms", "200")]));
        assert!(conflict.unwrap_err().contains("min.compaction.lag.ms"));
        assert!(c
            .check(
                Some(0),
                &map(&[("log.cleanup.policy", "compact"), ("message.max.bytes", "2000000")])
            )
            .is_ok());
    }

    #[test]
    fn throttled_rates_are_read_as_bytes_per_second() {
        let c = config();
        assert_eq!(c.leader_replication_throttled_rate(), None);
        c.set_layers(DynamicLayers {
            per_broker: map(&[(LEADER_REPLICATION_THROTTLED_RATE, "1048576")]),
            cluster_default: map(&[(FOLLOWER_REPLICATION_THROTTLED_RATE, UNTHROTTLED)]),
        });
        assert_eq!(c.leader_replication_throttled_rate(), Some(1_048_576));
        assert_eq!(c.follower_replication_throttled_rate(), None);
    }

    #[test]
    fn what_cannot_apply_is_dropped_on_load_and_hooks_hear_of_changes() {
        let c = config();
        let kept = c.sanitized(map(&[
            ("num.partitions", "3"),
            ("log.retention.ms", "x"),
            ("message.max.bytes", "5000"),
        ]));
        assert_eq!(kept, map(&[("message.max.bytes", "5000")]));
        let heard = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let h = heard.clone();
        c.on_change(Box::new(move |c| {
            let backoff: usize = c.value("log.cleaner.backoff.ms").unwrap().parse().unwrap();
            h.store(backoff, std::sync::atomic::Ordering::SeqCst);
        }));
        c.set_layers(DynamicLayers {
            per_broker: map(&[("log.cleaner.backoff.ms", "77")]),
            ..DynamicLayers::default()
        });
        assert_eq!(heard.load(std::sync::atomic::Ordering::SeqCst), 77);
    }
}
