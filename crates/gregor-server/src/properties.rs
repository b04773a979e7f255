//! The server's properties by Kafka's name: the one table the
//! configuration is loaded by (a TOML file, then `GREGOR_*` variables,
//! then command-line values, typed by it) and describes itself through
//! (DescribeConfigs of a BROKER resource: value, whether it was set,
//! Kafka's type, a line of doc).

use std::path::PathBuf;

use anyhow::Context;
use gregor_broker::BrokerProperty;
use gregor_log::config::ConfigType;

use crate::config::ServerConfig;

/// One property of [`ServerConfig`].
pub(crate) struct Property {
    /// Kafka's name (gregor's own for `coordination.connect`, `metrics.listen`).
    pub(crate) name: &'static str,
    /// Kafka's type.
    pub(crate) config_type: ConfigType,
    /// What it does.
    pub(crate) doc: &'static str,
    /// Its value in a configuration (`None`: unset).
    get: fn(&ServerConfig) -> Option<String>,
}

macro_rules! property {
    ($name:literal, $ty:ident, $field:ident, $doc:literal) => {
        Property {
            name: $name,
            config_type: ConfigType::$ty,
            doc: $doc,
            get: |c| Some(c.$field.to_string()),
        }
    };
    ($name:literal, $ty:ident, ?$field:ident, $doc:literal) => {
        Property {
            name: $name,
            config_type: ConfigType::$ty,
            doc: $doc,
            get: |c| c.$field.clone(),
        }
    };
}

/// Every property of the server's configuration.
pub(crate) const PROPERTIES: &[Property] = &[
    property!("listeners", String, listeners, "Where the broker listens (PLAINTEXT://host:port)."),
    property!("advertised.listeners", String, ?advertised_listeners, "What clients are told to connect to (default: listeners)."),
    property!("log.dirs", String, log_dirs, "The directories in which the log data is kept."),
    property!("broker.id", Int, broker_id, "The broker id for this server."),
    property!("num.partitions", Int, num_partitions, "The default number of log partitions per topic."),
    property!("default.replication.factor", Int, default_replication_factor, "The replication factor of automatically created topics and of CreateTopics without one."),
    property!("auto.create.topics.enable", Boolean, auto_create_topics_enable, "Enable auto creation of topics on the server."),
    property!("log.segment.bytes", Int, log_segment_bytes, "The maximum size of a single log file."),
    property!("log.retention.ms", Long, log_retention_ms, "The number of milliseconds to keep a log file before deleting it."),
    property!("socket.request.max.bytes", Int, socket_request_max_bytes, "The maximum number of bytes in a socket request."),
    property!("num.network.threads", Int, num_network_threads, "The number of threads receiving requests from the network and sending responses."),
    property!("num.io.threads", Int, num_io_threads, "The number of threads processing requests, which may include disk I/O."),
    property!("socket.listen.backlog.size", Int, socket_listen_backlog_size, "The maximum number of pending connections on each listener's socket (capped by net.core.somaxconn)."),
    property!("queued.max.requests", Int, queued_max_requests, "The number of queued requests allowed before the network threads stop reading."),
    property!("max.connections", Int, max_connections, "The maximum number of connections allowed in the broker at any time (listener.name.<l>.max.connections: per listener); the inter-broker listener is exempt when there are others."),
    property!("max.connections.per.ip", Int, max_connections_per_ip, "The maximum number of connections allowed from each ip address; new connections over it are dropped."),
    property!("max.connections.per.ip.overrides", String, max_connections_per_ip_overrides, "Per-ip or hostname overrides of max.connections.per.ip (host:count,...)."),
    property!("connections.max.idle.ms", Long, connections_max_idle_ms, "Idle connections timeout: connections that make no progress for longer are closed."),
    property!("zookeeper.connect", String, ?zookeeper_connect, "ZooKeeper hosts (host:port,...); unset: gregor's embedded coordination."),
    property!("zookeeper.set.acl", Boolean, zookeeper_set_acl, "Set client to use secure ACLs."),
    property!("zookeeper.auth.digest.file", String, ?zookeeper_auth_digest_file, "A file with user:password for ZooKeeper's digest authentication (gregor's own)."),
    property!("zookeeper.session.timeout.ms", Int, zookeeper_session_timeout_ms, "The coordination session timeout: a broker silent this long is gone."),
    property!("offsets.topic.num.partitions", Int, offsets_topic_num_partitions, "The number of partitions of the offset commit topic."),
    property!("offsets.topic.segment.bytes", Int, offsets_topic_segment_bytes, "The segment size of the offsets topic."),
    property!("offsets.topic.replication.factor", Short, offsets_topic_replication_factor, "The replication factor of the offsets topic (capped to the live brokers)."),
    property!("max.incremental.fetch.session.cache.slots", Int, max_incremental_fetch_session_cache_slots, "The maximum number of incremental fetch sessions kept."),
    property!("offsets.retention.minutes", Int, offsets_retention_minutes, "How long committed offsets of a group without members are kept."),
    property!("authorizer.class.name", String, authorizer_class_name, "The authorizer (Kafka's AclAuthorizer or StandardAuthorizer class name); empty: none."),
    property!("super.users", String, super_users, "Principals allowed every operation (User:a;User:b)."),
    property!("allow.everyone.if.no.acl.found", Boolean, allow_everyone_if_no_acl_found, "Allow an operation on a resource no ACL names."),
    property!("quota.window.num", Int, quota_window_num, "The number of samples to retain in memory for client quotas."),
    property!("quota.window.size.seconds", Int, quota_window_size_seconds, "The time span of each sample for client quotas."),
    property!("group.initial.rebalance.delay.ms", Int, group_initial_rebalance_delay_ms, "How long a new group waits for more members before its first rebalance."),
    property!("group.min.session.timeout.ms", Int, group_min_session_timeout_ms, "The minimum session timeout of a group member."),
    property!("group.max.session.timeout.ms", Int, group_max_session_timeout_ms, "The maximum session timeout of a group member."),
    property!("group.consumer.session.timeout.ms", Int, group_consumer_session_timeout_ms, "The session timeout of consumer-protocol (KIP-848) group members."),
    property!("group.consumer.heartbeat.interval.ms", Int, group_consumer_heartbeat_interval_ms, "How often consumer-protocol group members heartbeat."),
    property!("group.consumer.max.size", Int, group_consumer_max_size, "The maximum number of members of a consumer-protocol group."),
    property!("group.consumer.assignors", List, group_consumer_assignors, "The server-side assignors (uniform, range), the first the default."),
    property!("log.cleaner.backoff.ms", Long, log_cleaner_backoff_ms, "The pause of the log cleaner when there are no logs to clean."),
    property!("coordination.connect", String, ?coordination_connect, "host:port of a shared embedded coordination service (gregor's own)."),
    property!("coordination.auth.secret.file", String, ?coordination_auth_secret_file, "A file with the secret shared with the coordination service at coordination.connect (gregor's own; unset: no authentication)."),
    property!("broker.rack", String, ?broker_rack, "The rack of the broker, for rack-aware replica placement and fetch from followers."),
    property!("replica.selector.class", String, replica_selector_class, "The ReplicaSelector leaders send consumers to a preferred read replica with (org.apache.kafka.common.replica.RackAwareReplicaSelector); empty: consumers read from leaders."),
    property!("replica.lag.time.max.ms", Long, replica_lag_time_max_ms, "A follower that has not caught up for this long leaves the ISR."),
    property!("min.insync.replicas", Int, min_insync_replicas, "The in-sync replicas an acks=all produce needs."),
    property!("unclean.leader.election.enable", Boolean, unclean_leader_election_enable, "Elect a replica outside the ISR as a last resort, even though data may be lost."),
    property!("auto.leader.rebalance.enable", Boolean, auto_leader_rebalance_enable, "Enables auto leader balancing. A background thread checks the distribution of partition leaders at regular intervals, configurable by leader.imbalance.check.interval.seconds."),
    property!("leader.imbalance.check.interval.seconds", Long, leader_imbalance_check_interval_seconds, "The frequency with which the partition rebalance check is triggered by the controller."),
    property!("leader.imbalance.per.broker.percentage", Int, leader_imbalance_per_broker_percentage, "The ratio of leader imbalance allowed per broker. The controller would trigger a leader balance if it goes above this value per broker. The value is specified in percentage."),
    property!("controlled.shutdown.enable", Boolean, controlled_shutdown_enable, "Enable controlled shutdown of the server."),
    property!("controlled.shutdown.max.retries", Int, controlled_shutdown_max_retries, "Controlled shutdown can fail for multiple reasons. This determines the number of retries when such failure happens."),
    property!("controlled.shutdown.retry.backoff.ms", Long, controlled_shutdown_retry_backoff_ms, "Before each retry, the system needs time to recover from the state that caused the previous failure."),
    property!("metrics.listen", String, metrics_listen, "host:port serving Prometheus metrics at /metrics (gregor's own; empty: none)."),
    property!("transaction.state.log.num.partitions", Int, transaction_state_log_num_partitions, "The number of partitions of the transaction topic."),
    property!("transaction.state.log.replication.factor", Short, transaction_state_log_replication_factor, "The replication factor of the transaction topic (capped to the live brokers)."),
    property!("transaction.state.log.min.isr", Int, transaction_state_log_min_isr, "min.insync.replicas of the transaction topic."),
    property!("transaction.state.log.segment.bytes", Int, transaction_state_log_segment_bytes, "The segment size of the transaction topic."),
    property!("transaction.max.timeout.ms", Int, transaction_max_timeout_ms, "The maximum transaction timeout a producer may ask for."),
    property!("transactional.id.expiration.ms", Int, transactional_id_expiration_ms, "How long a transactional id without transactions is remembered."),
    property!("transaction.abort.timed.out.transaction.cleanup.interval.ms", Int, transaction_abort_timed_out_transaction_cleanup_interval_ms, "How often transactions past their timeout are looked for."),
    property!("transaction.remove.expired.transaction.cleanup.interval.ms", Int, transaction_remove_expired_transaction_cleanup_interval_ms, "How often expired transactional ids are looked for."),
    property!("transaction.version", Short, transaction_version, "The finalized level of the transaction.version feature: 0, 1 or 2 (transactions v2, KIP-890; the default). Every broker of a cluster must have the same."),
    property!("transaction.partition.verification.enable", Boolean, transaction_partition_verification_enable, "Verify with the transaction coordinator a transactional batch that opens a transaction in a partition (KIP-890)."),
    property!("listener.security.protocol.map", String, ?listener_security_protocol_map, "Map between listener names and security protocols (NAME:PROTOCOL,...)."),
    property!("inter.broker.listener.name", String, ?inter_broker_listener_name, "Name of listener used for communication between brokers."),
    property!("security.inter.broker.protocol", String, ?security_inter_broker_protocol, "Security protocol used to communicate between brokers (when inter.broker.listener.name is unset)."),
    property!("ssl.keystore.type", String, ssl_keystore_type, "The file format of the key store file (PEM)."),
    property!("ssl.keystore.location", String, ?ssl_keystore_location, "The location of the key store file: the certificate chain and private key, PEM."),
    property!("ssl.keystore.certificate.chain", Password, ?ssl_keystore_certificate_chain, "The certificate chain as PEM text, with ssl.keystore.key, instead of ssl.keystore.location."),
    property!("ssl.keystore.key", Password, ?ssl_keystore_key, "The private key as PEM text (PKCS#8, encrypted with ssl.key.password or not), with ssl.keystore.certificate.chain."),
    property!("ssl.key.password", Password, ?ssl_key_password, "The password of the private key in the key store file: an encrypted PKCS#8 key (BEGIN ENCRYPTED PRIVATE KEY); unset for an unencrypted key."),
    property!("ssl.truststore.type", String, ssl_truststore_type, "The file format of the trust store file (PEM)."),
    property!("ssl.truststore.location", String, ?ssl_truststore_location, "The location of the trust store file: CA certificates, PEM."),
    property!("ssl.truststore.certificates", Password, ?ssl_truststore_certificates, "The CA certificates as PEM text, instead of ssl.truststore.location."),
    property!("ssl.client.auth", String, ssl_client_auth, "Client authentication: none, requested or required."),
    property!("ssl.kernel.tls.enable", Boolean, ssl_kernel_tls_enable, "Hand each TLS connection's keys to the kernel after the handshake (kernel TLS, where the kernel has the tls module), so fetches keep sendfile; else TLS runs in userspace (gregor's own)."),
    property!("ssl.principal.mapping.rules", String, ssl_principal_mapping_rules, "Rules mapping a client certificate's distinguished name to a short name (DEFAULT or RULE:pattern/replacement/[LU])."),
    property!("sasl.enabled.mechanisms", List, sasl_enabled_mechanisms, "The SASL mechanisms enabled in the server (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512)."),
    property!("sasl.mechanism.inter.broker.protocol", String, sasl_mechanism_inter_broker_protocol, "SASL mechanism used for inter-broker communication."),
    property!("sasl.jaas.config", Password, ?sasl_jaas_config, "JAAS login context parameters for SASL connections (PLAIN users as user_<name>=\"<password>\")."),
    property!("connection.failed.authentication.delay.ms", Int, connection_failed_authentication_delay_ms, "Connection close delay on failed authentication."),
    property!("connections.max.reauth.ms", Long, connections_max_reauth_ms, "When positive, the longest a SASL session lasts before the client must re-authenticate (KIP-368)."),
];

/// Server properties that change while the broker runs (dynamic broker
/// configs, applied by the server through the broker's change hooks). The
/// broker-level topic defaults among the properties (`log.segment.bytes`,
/// `log.retention.ms`, `min.insync.replicas`) are dynamic through the
/// broker's log defaults, whatever this list says.
pub(crate) const DYNAMIC: &[&str] = &["log.cleaner.backoff.ms"];

/// The property named `name`.
pub(crate) fn property(name: &str) -> Option<&'static Property> {
    PROPERTIES.iter().find(|p| p.name == name)
}

/// Every property of `config` as DescribeConfigs shows it: set when the
/// configuration names it or its value is not the default.
pub(crate) fn describe(config: &ServerConfig) -> Vec<BrokerProperty> {
    let defaults = ServerConfig::default();
    PROPERTIES
        .iter()
        .map(|p| {
            // Passwords are never shown (Kafka answers them as null).
            let secret = p.config_type == ConfigType::Password;
            let value = (p.get)(config).filter(|_| !secret);
            let default = (p.get)(&defaults).filter(|_| !secret);
            BrokerProperty {
                name: p.name,
                set: config.set_properties.contains(p.name) || value != default,
                dynamic: DYNAMIC.contains(&p.name),
                value,
                default,
                config_type: p.config_type,
                documentation: p.doc,
            }
        })
        .collect()
}

impl ServerConfig {
    /// Reads the TOML file (if any), then applies `GREGOR_*` variables and
    /// the `overrides` (property, value) given on the command line.
    pub fn load(file: Option<&PathBuf>, overrides: &[(&str, String)]) -> anyhow::Result<Self> {
        let mut table = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
                text.parse::<toml::Table>()
                    .with_context(|| format!("parsing {}", path.display()))?
            }
            None => toml::Table::new(),
        };
        for property in PROPERTIES.iter().map(|p| p.name) {
            let var = format!("GREGOR_{}", property.to_uppercase().replace('.', "_"));
            if let Ok(value) = std::env::var(&var) {
                table.insert(property.to_string(), typed(property, &value));
            }
        }
        for (property, value) in overrides {
            table.insert(property.to_string(), typed(property, value));
        }
        // Per-listener settings (`listener.name.internal.ssl.keystore.location`)
        // have open-ended names: kept aside by their whole name.
        let prefixed: Vec<String> = table
            .keys()
            .filter(|k| k.starts_with("listener.name."))
            .cloned()
            .collect();
        let mut listener_overrides = std::collections::BTreeMap::new();
        for name in prefixed {
            if let Some(value) = table.remove(&name) {
                let value = match value {
                    toml::Value::String(s) => s,
                    other => other.to_string(),
                };
                listener_overrides.insert(name, value);
            }
        }
        let set_properties = table.keys().cloned().collect();
        let mut config: Self = table.try_into().context("invalid configuration")?;
        config.set_properties = set_properties;
        config.listener_overrides = listener_overrides;
        crate::listeners::ListenerPlan::of(&config)?;
        config.network_config()?;
        Ok(config)
    }

    /// Every property with its value and whether it was set, as
    /// DescribeConfigs shows a BROKER resource.
    pub fn broker_properties(&self) -> Vec<BrokerProperty> {
        describe(self)
    }
}

/// A TOML value of the type the property takes.
fn typed(name: &str, value: &str) -> toml::Value {
    let integer = || value.parse().map(toml::Value::Integer).unwrap_or_else(|_| value.into());
    match property(name).map(|p| p.config_type) {
        Some(ConfigType::Boolean) => value.parse().map(toml::Value::Boolean).unwrap_or_else(|_| value.into()),
        Some(ConfigType::Int | ConfigType::Short | ConfigType::Long) => integer(),
        _ => toml::Value::String(value.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_property_is_set_when_named_or_changed() {
        let named = [("num.partitions", "1".to_string()), ("broker.rack", "r1".to_string())];
        let config = ServerConfig::load(None, &named).unwrap();
        let shown = describe(&config);
        let get = |name: &str| shown.iter().find(|p| p.name == name).unwrap().clone();
        // Named with its default value: still set (Kafka's STATIC_BROKER_CONFIG).
        assert!(get("num.partitions").set);
        assert_eq!(get("num.partitions").value.as_deref(), Some("1"));
        assert_eq!(get("broker.rack").value.as_deref(), Some("r1"));
        assert_eq!(get("broker.rack").default, None);
        let untouched = get("log.segment.bytes");
        assert!(!untouched.set);
        assert_eq!(untouched.value.as_deref(), Some("1073741824"));
        assert_eq!(get("offsets.topic.replication.factor").config_type, ConfigType::Short);
        assert_eq!(shown.len(), PROPERTIES.len());
    }
}
