//! The broker's settings that its state needs (Kafka's names in comments).

use gregor_log::config::ConfigType;
use gregor_log::LogConfig;
use gregor_transaction::TransactionSettings;

use crate::transactions::TransactionStateSettings;

/// Broker settings the broker's state and its request handlers need.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// `broker.id`.
    pub node_id: i32,
    /// Host clients are told to connect to (`advertised.listeners`).
    pub advertised_host: String,
    /// Port clients are told to connect to.
    pub advertised_port: u16,
    /// Every advertised listener: name → (host, port). Metadata answers a
    /// client with the endpoints of the listener it connected through
    /// (empty: `advertised_host`/`advertised_port` for every listener).
    pub advertised_listeners: std::collections::BTreeMap<String, (String, u16)>,
    /// `inter.broker.listener.name`: the listener brokers reach each other
    /// through (`advertised_host`/`advertised_port` are its endpoint).
    pub inter_broker_listener: String,
    /// `num.partitions` for auto-created topics.
    pub num_partitions: u32,
    /// `auto.create.topics.enable`.
    pub auto_create_topics: bool,
    /// Topic configuration defaults (`log.segment.bytes`, …).
    pub default_log_config: LogConfig,
    /// The cluster id reported in Metadata.
    pub cluster_id: String,
    /// `offsets.topic.num.partitions`.
    pub offsets_topic_partitions: u32,
    /// `offsets.topic.segment.bytes`.
    pub offsets_topic_segment_bytes: u32,
    /// `offsets.topic.replication.factor` (capped to the live brokers).
    pub offsets_topic_replication_factor: u16,
    /// `default.replication.factor` for auto-created topics and
    /// CreateTopics without a factor.
    pub default_replication_factor: u16,
    /// `max.incremental.fetch.session.cache.slots`.
    pub fetch_session_slots: usize,
    /// `transaction.state.log.*`.
    pub transaction_state: TransactionStateSettings,
    /// The transaction coordinator's settings (`transaction.max.timeout.ms`,
    /// …; the partition counts come from the fields above).
    pub transactions: TransactionSettings,
    /// `transaction.partition.verification.enable` (true, KIP-890): a
    /// transactional batch that would open its producer's transaction in a
    /// partition is appended only once the transaction coordinator confirms
    /// the partition is in that transaction.
    pub transaction_partition_verification: bool,
    /// Every property of the server's configuration, as DescribeConfigs
    /// shows a BROKER resource (the server fills it in; empty: only the
    /// defaults of the topic-level properties are shown).
    pub properties: Vec<BrokerProperty>,
    /// How client quota rates are sampled (`quota.window.num` samples of
    /// `quota.window.size.seconds`).
    pub quota_window: crate::quotas::QuotaWindow,
    /// `authorizer.class.name`, `super.users`,
    /// `allow.everyone.if.no.acl.found` (off by default).
    pub authorizer: gregor_auth::acl::AuthorizerConfig,
}

/// One broker property as DescribeConfigs shows it: Kafka's name, its
/// value, and where the value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerProperty {
    /// Kafka's name (`num.partitions`).
    pub name: &'static str,
    /// The value in force (`None`: unset, Kafka's null).
    pub value: Option<String>,
    /// The built-in default (`None`: null).
    pub default: Option<String>,
    /// Whether the configuration sets it (the file, a `GREGOR_*`
    /// variable or a flag: Kafka's STATIC_BROKER_CONFIG), rather than
    /// leaving the default (DEFAULT_CONFIG).
    pub set: bool,
    /// Whether it can change while the broker runs (a dynamic broker
    /// config gregor applies live; see [`crate::DynamicBrokerConfig`]).
    pub dynamic: bool,
    /// Kafka's type of the property.
    pub config_type: ConfigType,
    /// What it does, in one line.
    pub documentation: &'static str,
}

impl BrokerConfig {
    /// Where clients of listener `name` reach this broker (its advertised
    /// endpoint of that listener; the inter-broker one when listeners are
    /// not told apart).
    pub fn advertised_for(&self, name: &str) -> Option<(&str, u16)> {
        if self.advertised_listeners.is_empty() {
            return Some((self.advertised_host.as_str(), self.advertised_port));
        }
        self.advertised_listeners.get(name).map(|(h, p)| (h.as_str(), *p))
    }
}

impl Default for BrokerConfig {
    fn default() -> Self {
        Self {
            node_id: 0,
            advertised_host: "127.0.0.1".into(),
            advertised_port: 9092,
            advertised_listeners: std::collections::BTreeMap::new(),
            inter_broker_listener: "PLAINTEXT".into(),
            num_partitions: 1,
            auto_create_topics: true,
            default_log_config: LogConfig::default(),
            cluster_id: "gregor-cluster".into(),
            offsets_topic_partitions: 50,
            offsets_topic_segment_bytes: 100 * 1024 * 1024,
            offsets_topic_replication_factor: 3,
            default_replication_factor: 1,
            fetch_session_slots: 1_000,
            transaction_state: TransactionStateSettings::default(),
            transactions: TransactionSettings::default(),
            transaction_partition_verification: true,
            properties: Vec::new(),
            quota_window: crate::quotas::QuotaWindow::default(),
            authorizer: gregor_auth::acl::AuthorizerConfig::default(),
        }
    }
}
