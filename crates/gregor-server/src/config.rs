//! Server configuration: a TOML file with Kafka's property names, each
//! overridable by an environment variable (`GREGOR_` + upper case, dots
//! as underscores) and by command-line flags.

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde::Deserialize;

/// The settings of one broker.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// `NAME://host:port,…`: where to listen (`PLAINTEXT`, `SSL`,
    /// `SASL_PLAINTEXT`, `SASL_SSL`, or names of
    /// `listener.security.protocol.map`).
    pub listeners: String,
    /// What clients are told, per listener (default: `listeners`).
    #[serde(rename = "advertised.listeners")]
    pub advertised_listeners: Option<String>,
    /// `NAME:PROTOCOL,…`: each listener's security protocol (default: the
    /// four protocols named by themselves).
    #[serde(rename = "listener.security.protocol.map")]
    pub listener_security_protocol_map: Option<String>,
    /// The listener brokers talk to each other through.
    #[serde(rename = "inter.broker.listener.name")]
    pub inter_broker_listener_name: Option<String>,
    /// The inter-broker listener by protocol (the listener of that name),
    /// when `inter.broker.listener.name` is unset (default PLAINTEXT).
    #[serde(rename = "security.inter.broker.protocol")]
    pub security_inter_broker_protocol: Option<String>,
    /// `PEM` (the only keystore type gregor reads).
    #[serde(rename = "ssl.keystore.type")]
    pub ssl_keystore_type: String,
    /// PEM file with the broker's certificate chain and private key.
    #[serde(rename = "ssl.keystore.location")]
    pub ssl_keystore_location: Option<String>,
    /// The certificate chain as PEM text (with `ssl.keystore.key`,
    /// instead of `ssl.keystore.location`).
    #[serde(rename = "ssl.keystore.certificate.chain")]
    pub ssl_keystore_certificate_chain: Option<String>,
    /// The private key as PEM text (with `ssl.keystore.certificate.chain`).
    #[serde(rename = "ssl.keystore.key")]
    pub ssl_keystore_key: Option<String>,
    /// The password of an encrypted private key (PKCS#8).
    #[serde(rename = "ssl.key.password")]
    pub ssl_key_password: Option<String>,
    /// `PEM` (the only truststore type gregor reads).
    #[serde(rename = "ssl.truststore.type")]
    pub ssl_truststore_type: String,
    /// PEM file with the CA certificates client certificates must chain to.
    #[serde(rename = "ssl.truststore.location")]
    pub ssl_truststore_location: Option<String>,
    /// The CA certificates as PEM text (instead of
    /// `ssl.truststore.location`).
    #[serde(rename = "ssl.truststore.certificates")]
    pub ssl_truststore_certificates: Option<String>,
    /// `none`, `requested` or `required`: whether TLS clients present a
    /// certificate.
    #[serde(rename = "ssl.client.auth")]
    pub ssl_client_auth: String,
    /// Hand a TLS connection's keys to the kernel after the handshake
    /// (kernel TLS, where the kernel has it: fetches keep `sendfile`);
    /// gregor's own, on by default.
    #[serde(rename = "ssl.kernel.tls.enable")]
    pub ssl_kernel_tls_enable: bool,
    /// How a certificate's subject becomes a principal name (`DEFAULT`, or
    /// `RULE:pattern/replacement/[LU]` lines).
    #[serde(rename = "ssl.principal.mapping.rules")]
    pub ssl_principal_mapping_rules: String,
    /// SASL mechanisms offered (`PLAIN`, `SCRAM-SHA-256`, `SCRAM-SHA-512`).
    #[serde(rename = "sasl.enabled.mechanisms")]
    pub sasl_enabled_mechanisms: String,
    /// The mechanism brokers authenticate to each other with.
    #[serde(rename = "sasl.mechanism.inter.broker.protocol")]
    pub sasl_mechanism_inter_broker_protocol: String,
    /// JAAS-style login configuration: PLAIN's users (`user_<name>="<pw>"`)
    /// and the broker's own `username`/`password` towards other brokers.
    #[serde(rename = "sasl.jaas.config")]
    pub sasl_jaas_config: Option<String>,
    /// How long a failed authentication waits before its connection closes.
    #[serde(rename = "connection.failed.authentication.delay.ms")]
    pub connection_failed_authentication_delay_ms: u64,
    /// How long a SASL session lasts before the client re-authenticates
    /// (KIP-368; 0: forever).
    #[serde(rename = "connections.max.reauth.ms")]
    pub connections_max_reauth_ms: i64,
    /// Comma-separated data directories.
    #[serde(rename = "log.dirs")]
    pub log_dirs: String,
    /// This broker's id.
    #[serde(rename = "broker.id")]
    pub broker_id: i32,
    /// Partitions of auto-created topics.
    #[serde(rename = "num.partitions")]
    pub num_partitions: u32,
    /// Replication factor of new topics (1 on a single broker).
    #[serde(rename = "default.replication.factor")]
    pub default_replication_factor: u16,
    /// Create topics on first use.
    #[serde(rename = "auto.create.topics.enable")]
    pub auto_create_topics_enable: bool,
    /// Default `segment.bytes`.
    #[serde(rename = "log.segment.bytes")]
    pub log_segment_bytes: u32,
    /// Default `retention.ms`.
    #[serde(rename = "log.retention.ms")]
    pub log_retention_ms: i64,
    /// Largest request accepted.
    #[serde(rename = "socket.request.max.bytes")]
    pub socket_request_max_bytes: usize,
    /// Processor threads doing socket I/O.
    #[serde(rename = "num.network.threads")]
    pub num_network_threads: usize,
    /// Handler threads running requests.
    #[serde(rename = "num.io.threads")]
    pub num_io_threads: usize,
    /// Requests that may wait for a handler before processors stop reading.
    #[serde(rename = "queued.max.requests")]
    pub queued_max_requests: usize,
    /// Connections the kernel queues for each listener before it accepts
    /// them (`listen(2)`'s backlog; capped by `net.core.somaxconn`).
    #[serde(rename = "socket.listen.backlog.size")]
    pub socket_listen_backlog_size: u32,
    /// Connections of the whole broker at most (the inter-broker listener
    /// is exempt when there are others); `listener.name.<l>.max.connections`
    /// limits one listener.
    #[serde(rename = "max.connections")]
    pub max_connections: i32,
    /// Connections from one address at most.
    #[serde(rename = "max.connections.per.ip")]
    pub max_connections_per_ip: i32,
    /// Other per-address limits: `host:count,…`.
    #[serde(rename = "max.connections.per.ip.overrides")]
    pub max_connections_per_ip_overrides: String,
    /// A connection without progress for this long is closed (negative: never).
    #[serde(rename = "connections.max.idle.ms")]
    pub connections_max_idle_ms: i64,
    /// ZooKeeper hosts (`host:port,…`); unset: the embedded coordination store.
    #[serde(rename = "zookeeper.connect")]
    pub zookeeper_connect: Option<String>,
    /// Coordination session timeout: a broker silent this long is gone.
    #[serde(rename = "zookeeper.session.timeout.ms")]
    pub zookeeper_session_timeout_ms: u64,
    /// Create znodes writable only by this broker's ZooKeeper identity
    /// (Kafka's name; needs `zookeeper.auth.digest.file`).
    #[serde(rename = "zookeeper.set.acl")]
    pub zookeeper_set_acl: bool,
    /// A file holding `user:password` for ZooKeeper's digest scheme
    /// (gregor's own; Kafka takes SASL credentials from a JAAS file).
    #[serde(rename = "zookeeper.auth.digest.file")]
    pub zookeeper_auth_digest_file: Option<String>,
    /// Partitions of `__consumer_offsets`.
    #[serde(rename = "offsets.topic.num.partitions")]
    pub offsets_topic_num_partitions: u32,
    /// Replicas of `__consumer_offsets` (capped to the live brokers).
    #[serde(rename = "offsets.topic.replication.factor")]
    pub offsets_topic_replication_factor: u16,
    /// Fetch sessions (KIP-227) the broker keeps at most.
    #[serde(rename = "max.incremental.fetch.session.cache.slots")]
    pub max_incremental_fetch_session_cache_slots: usize,
    /// Segment size of `__consumer_offsets`.
    #[serde(rename = "offsets.topic.segment.bytes")]
    pub offsets_topic_segment_bytes: u32,
    /// How long committed offsets of a group without members are kept.
    #[serde(rename = "offsets.retention.minutes")]
    pub offsets_retention_minutes: i64,
    /// Samples a client quota's rate is kept over.
    #[serde(rename = "quota.window.num")]
    pub quota_window_num: usize,
    /// The span of one quota rate sample, in seconds.
    #[serde(rename = "quota.window.size.seconds")]
    pub quota_window_size_seconds: u32,
    /// How long a new group waits for more members before its first rebalance.
    #[serde(rename = "group.initial.rebalance.delay.ms")]
    pub group_initial_rebalance_delay_ms: i64,
    /// Smallest session timeout a member may ask for.
    #[serde(rename = "group.min.session.timeout.ms")]
    pub group_min_session_timeout_ms: i32,
    /// Largest session timeout a member may ask for.
    #[serde(rename = "group.max.session.timeout.ms")]
    pub group_max_session_timeout_ms: i32,
    /// Silence after which a consumer-protocol (KIP-848) member is fenced.
    #[serde(rename = "group.consumer.session.timeout.ms")]
    pub group_consumer_session_timeout_ms: i32,
    /// How often consumer-protocol members heartbeat.
    #[serde(rename = "group.consumer.heartbeat.interval.ms")]
    pub group_consumer_heartbeat_interval_ms: i32,
    /// The most members a consumer group may have.
    #[serde(rename = "group.consumer.max.size")]
    pub group_consumer_max_size: i32,
    /// The server assignors (`uniform`, `range`, or Kafka's class names),
    /// the first the default.
    #[serde(rename = "group.consumer.assignors")]
    pub group_consumer_assignors: String,
    /// Pause of the log cleaner when nothing needs cleaning.
    #[serde(rename = "log.cleaner.backoff.ms")]
    pub log_cleaner_backoff_ms: u64,
    /// `host:port` of a shared embedded coordination service (`gregor
    /// coordination`); unset with no `zookeeper.connect`: this broker's own
    /// embedded store.
    #[serde(rename = "coordination.connect")]
    pub coordination_connect: Option<String>,
    /// A file holding the secret shared with the coordination service at
    /// `coordination.connect` (`gregor coordination --auth-secret-file`);
    /// the broker and the service prove it to each other on every
    /// connection. Unset: no authentication.
    #[serde(rename = "coordination.auth.secret.file")]
    pub coordination_auth_secret_file: Option<String>,
    /// This broker's rack, for rack-aware replica placement and fetch
    /// from followers.
    #[serde(rename = "broker.rack")]
    pub broker_rack: Option<String>,
    /// How leaders pick the replica a consumer reads from (KIP-392): empty
    /// (Kafka's default: the leader) or
    /// `org.apache.kafka.common.replica.RackAwareReplicaSelector`.
    #[serde(rename = "replica.selector.class")]
    pub replica_selector_class: String,
    /// A follower that has not caught up for this long leaves the ISR.
    #[serde(rename = "replica.lag.time.max.ms")]
    pub replica_lag_time_max_ms: u64,
    /// In-sync replicas an `acks=all` produce needs (topics may override).
    #[serde(rename = "min.insync.replicas")]
    pub min_insync_replicas: usize,
    /// Elect a replica outside the ISR when no ISR member is left (may lose
    /// acknowledged records).
    #[serde(rename = "unclean.leader.election.enable")]
    pub unclean_leader_election_enable: bool,
    /// Move leadership back to preferred replicas periodically (Kafka's
    /// auto leader rebalance).
    #[serde(rename = "auto.leader.rebalance.enable")]
    pub auto_leader_rebalance_enable: bool,
    /// How often the controller checks the leader balance.
    #[serde(rename = "leader.imbalance.check.interval.seconds")]
    pub leader_imbalance_check_interval_seconds: u64,
    /// The share of a broker's preferred partitions led elsewhere (in
    /// percent) above which they move back.
    #[serde(rename = "leader.imbalance.per.broker.percentage")]
    pub leader_imbalance_per_broker_percentage: u32,
    /// On SIGTERM, ask the controller to move this broker's leaderships
    /// before stopping (Kafka's controlled shutdown).
    #[serde(rename = "controlled.shutdown.enable")]
    pub controlled_shutdown_enable: bool,
    /// Controlled shutdown attempts after the first before stopping anyway.
    #[serde(rename = "controlled.shutdown.max.retries")]
    pub controlled_shutdown_max_retries: u32,
    /// Wait between controlled shutdown attempts.
    #[serde(rename = "controlled.shutdown.retry.backoff.ms")]
    pub controlled_shutdown_retry_backoff_ms: u64,
    /// `host:port` serving Prometheus metrics at `/metrics` (empty: none).
    #[serde(rename = "metrics.listen")]
    pub metrics_listen: String,
    /// Partitions of `__transaction_state`.
    #[serde(rename = "transaction.state.log.num.partitions")]
    pub transaction_state_log_num_partitions: u32,
    /// Replicas of `__transaction_state` (capped to the live brokers).
    #[serde(rename = "transaction.state.log.replication.factor")]
    pub transaction_state_log_replication_factor: u16,
    /// `min.insync.replicas` of `__transaction_state`.
    #[serde(rename = "transaction.state.log.min.isr")]
    pub transaction_state_log_min_isr: u16,
    /// Segment size of `__transaction_state`.
    #[serde(rename = "transaction.state.log.segment.bytes")]
    pub transaction_state_log_segment_bytes: u32,
    /// The longest `transaction.timeout.ms` a producer may ask for.
    #[serde(rename = "transaction.max.timeout.ms")]
    pub transaction_max_timeout_ms: i32,
    /// How long a transactional id without transactions is remembered.
    #[serde(rename = "transactional.id.expiration.ms")]
    pub transactional_id_expiration_ms: i64,
    /// How often the coordinator looks for transactions past their timeout.
    #[serde(rename = "transaction.abort.timed.out.transaction.cleanup.interval.ms")]
    pub transaction_abort_timed_out_transaction_cleanup_interval_ms: i64,
    /// How often the coordinator looks for expired transactional ids.
    #[serde(rename = "transaction.remove.expired.transaction.cleanup.interval.ms")]
    pub transaction_remove_expired_transaction_cleanup_interval_ms: i64,
    /// Whether a partition leader verifies with the transaction
    /// coordinator that a transactional batch opening a transaction is
    /// part of it (KIP-890; Kafka 3.9's default: true).
    #[serde(rename = "transaction.partition.verification.enable")]
    pub transaction_partition_verification_enable: bool,
    /// The finalized level of the `transaction.version` feature (Kafka's
    /// feature level: 0, 1 or 2; 2, the default as in a new Kafka 4.x
    /// cluster, is transactions v2, KIP-890 part 2). Every broker of a
    /// cluster must be configured alike.
    #[serde(rename = "transaction.version")]
    pub transaction_version: u8,
    /// Kafka's authorizer class (`kafka.security.authorizer.AclAuthorizer`
    /// or `org.apache.kafka.metadata.authorizer.StandardAuthorizer`):
    /// ACLs are checked. Empty (the default): everything is allowed.
    #[serde(rename = "authorizer.class.name")]
    pub authorizer_class_name: String,
    /// Principals allowed everything (`User:admin;User:broker`).
    #[serde(rename = "super.users")]
    pub super_users: String,
    /// With the authorizer on, a resource no ACL names is open to all.
    #[serde(rename = "allow.everyone.if.no.acl.found")]
    pub allow_everyone_if_no_acl_found: bool,
    /// The properties the file, the environment or the flags name (the
    /// rest keep their defaults): Kafka's STATIC_BROKER_CONFIG.
    #[serde(skip)]
    pub set_properties: BTreeSet<String>,
    /// `listener.name.<listener>.<property>` settings, by their whole name.
    #[serde(skip)]
    pub listener_overrides: std::collections::BTreeMap<String, String>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listeners: "PLAINTEXT://127.0.0.1:9092".into(),
            advertised_listeners: None,
            listener_security_protocol_map: None,
            inter_broker_listener_name: None,
            security_inter_broker_protocol: None,
            ssl_keystore_type: "PEM".into(),
            ssl_keystore_location: None,
            ssl_keystore_certificate_chain: None,
            ssl_keystore_key: None,
            ssl_key_password: None,
            ssl_truststore_certificates: None,
            ssl_truststore_type: "PEM".into(),
            ssl_truststore_location: None,
            ssl_client_auth: "none".into(),
            ssl_kernel_tls_enable: true,
            ssl_principal_mapping_rules: "DEFAULT".into(),
            sasl_enabled_mechanisms: "GSSAPI".into(),
            sasl_mechanism_inter_broker_protocol: "GSSAPI".into(),
            sasl_jaas_config: None,
            connection_failed_authentication_delay_ms: 100,
            connections_max_reauth_ms: 0,
            listener_overrides: std::collections::BTreeMap::new(),
            log_dirs: "./data".into(),
            broker_id: 0,
            num_partitions: 1,
            default_replication_factor: 1,
            auto_create_topics_enable: true,
            log_segment_bytes: 1 << 30,
            log_retention_ms: 7 * 24 * 3_600_000,
            socket_request_max_bytes: 100 * 1024 * 1024,
            num_network_threads: 3,
            num_io_threads: 8,
            queued_max_requests: 500,
            // Kafka's default is 50 (Java's); a SYN dropped on a full
            // queue costs its client a 1 s retransmit, so gregor queues
            // more (docs/ARCHITECTURE.md, the network layer's limits).
            socket_listen_backlog_size: 1024,
            max_connections: i32::MAX,
            max_connections_per_ip: i32::MAX,
            max_connections_per_ip_overrides: String::new(),
            connections_max_idle_ms: 600_000,
            offsets_topic_num_partitions: 50,
            offsets_topic_replication_factor: 3,
            offsets_topic_segment_bytes: 100 * 1024 * 1024,
            max_incremental_fetch_session_cache_slots: 1_000,
            offsets_retention_minutes: 7 * 24 * 60,
            authorizer_class_name: String::new(),
            super_users: String::new(),
            allow_everyone_if_no_acl_found: false,
            quota_window_num: 11,
            quota_window_size_seconds: 1,
            group_initial_rebalance_delay_ms: 0,
            group_min_session_timeout_ms: 6_000,
            group_max_session_timeout_ms: 1_800_000,
            group_consumer_session_timeout_ms: 45_000,
            group_consumer_heartbeat_interval_ms: 5_000,
            group_consumer_max_size: i32::MAX,
            group_consumer_assignors: "uniform,range".to_string(),
            zookeeper_connect: None,
            zookeeper_session_timeout_ms: 18_000,
            zookeeper_set_acl: false,
            zookeeper_auth_digest_file: None,
            log_cleaner_backoff_ms: 15_000,
            coordination_connect: None,
            coordination_auth_secret_file: None,
            broker_rack: None,
            replica_selector_class: String::new(),
            replica_lag_time_max_ms: 30_000,
            min_insync_replicas: 1,
            unclean_leader_election_enable: false,
            auto_leader_rebalance_enable: true,
            leader_imbalance_check_interval_seconds: 300,
            leader_imbalance_per_broker_percentage: 10,
            controlled_shutdown_enable: true,
            controlled_shutdown_max_retries: 3,
            controlled_shutdown_retry_backoff_ms: 5_000,
            metrics_listen: "127.0.0.1:9644".into(),
            transaction_state_log_num_partitions: 50,
            transaction_state_log_replication_factor: 3,
            transaction_state_log_min_isr: 2,
            transaction_state_log_segment_bytes: 100 * 1024 * 1024,
            transaction_max_timeout_ms: 900_000,
            transactional_id_expiration_ms: 604_800_000,
            transaction_abort_timed_out_transaction_cleanup_interval_ms: 10_000,
            transaction_remove_expired_transaction_cleanup_interval_ms: 3_600_000,
            transaction_partition_verification_enable: true,
            transaction_version: 2,
            set_properties: BTreeSet::new(),
        }
    }
}

impl ServerConfig {
    /// The authorizer's settings (`authorizer.class.name`, `super.users`,
    /// `allow.everyone.if.no.acl.found`).
    pub fn authorizer_config(&self) -> anyhow::Result<gregor_auth::acl::AuthorizerConfig> {
        gregor_auth::acl::AuthorizerConfig::from_properties(
            &self.authorizer_class_name,
            &self.super_users,
            self.allow_everyone_if_no_acl_found,
        )
        .map_err(|e| anyhow::anyhow!(e))
    }

    /// `group.consumer.assignors` as assignors: Kafka's names (`uniform`,
    /// `range`) or class names; an unknown one is refused at start, as
    /// Kafka fails to load the class (and so is a heartbeat interval not
    /// below the session timeout).
    pub fn consumer_assignors(&self) -> anyhow::Result<Vec<gregor_group::consumer::Assignor>> {
        let assignors = self
            .group_consumer_assignors
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|name| {
                let short = match name {
                    "org.apache.kafka.coordinator.group.assignor.UniformAssignor" => "uniform",
                    "org.apache.kafka.coordinator.group.assignor.RangeAssignor" => "range",
                    other => other,
                };
                gregor_group::consumer::Assignor::named(short)
                    .ok_or_else(|| anyhow::anyhow!("group.consumer.assignors: unknown assignor {name}"))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        if assignors.is_empty() {
            anyhow::bail!("group.consumer.assignors: at least one assignor is needed");
        }
        // Kafka requires members to heartbeat within their session.
        if self.group_consumer_heartbeat_interval_ms >= self.group_consumer_session_timeout_ms {
            anyhow::bail!(
                "group.consumer.heartbeat.interval.ms ({}) must be less than group.consumer.session.timeout.ms ({})",
                self.group_consumer_heartbeat_interval_ms,
                self.group_consumer_session_timeout_ms
            );
        }
        Ok(assignors)
    }

    /// `transaction.version`, checked: Kafka's levels are 0, 1 and 2.
    pub fn transaction_version_level(&self) -> anyhow::Result<u8> {
        match self.transaction_version {
            level @ 0..=2 => Ok(level),
            other => anyhow::bail!("transaction.version={other}: the levels are 0, 1 and 2"),
        }
    }

    /// The network layer's sizes and limits (`num.network.threads`,
    /// `socket.request.max.bytes`, `max.connections*`,
    /// `connections.max.idle.ms`, …), checked as Kafka checks them.
    pub fn network_config(&self) -> anyhow::Result<gregor_routing::NetworkConfig> {
        let at_least_zero = |name: &str, value: i32| {
            usize::try_from(value).map_err(|_| anyhow::anyhow!("{name}={value}: the value must be at least 0"))
        };
        let overrides = gregor_routing::parse_per_ip_overrides(&self.max_connections_per_ip_overrides)
            .map_err(|e| anyhow::anyhow!("max.connections.per.ip.overrides: {e}"))?;
        let per_ip = at_least_zero("max.connections.per.ip", self.max_connections_per_ip)?;
        if per_ip == 0 && overrides.is_empty() {
            anyhow::bail!("max.connections.per.ip can be set to zero only if max.connections.per.ip.overrides is set");
        }
        Ok(gregor_routing::NetworkConfig {
            num_network_threads: self.num_network_threads,
            num_io_threads: self.num_io_threads,
            queued_max_requests: self.queued_max_requests,
            socket_request_max_bytes: self.socket_request_max_bytes,
            connection_limits: gregor_routing::ConnectionLimits {
                max_connections: at_least_zero("max.connections", self.max_connections)?,
                max_connections_per_ip: per_ip,
                max_connections_per_ip_overrides: overrides,
            },
            connections_max_idle: u64::try_from(self.connections_max_idle_ms)
                .ok()
                .map(std::time::Duration::from_millis),
        })
    }

    /// The data directories (`log.dirs`, comma-separated).
    pub fn log_dirs(&self) -> Vec<PathBuf> {
        self.log_dirs
            .split(',')
            .map(|d| PathBuf::from(d.trim()))
            .filter(|d| !d.as_os_str().is_empty())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_then_flags_with_kafka_names() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("server.toml");
        std::fs::write(
            &file,
            "\"broker.id\" = 3\n\"log.dirs\" = \"/a,/b\"\nlisteners = \"PLAINTEXT://0.0.0.0:9999\"\n",
        )
        .unwrap();
        let config = ServerConfig::load(Some(&file), &[("num.partitions", "6".into())]).unwrap();
        assert_eq!(config.broker_id, 3);
        assert_eq!(config.log_dirs(), vec![PathBuf::from("/a"), PathBuf::from("/b")]);
        assert_eq!(config.num_partitions, 6);
        assert_eq!(config.listeners, "PLAINTEXT://0.0.0.0:9999");
        assert!(ServerConfig::load(None, &[("listeners", "SSL://x:1".into())]).is_err());
    }

    #[test]
    fn connection_limits_with_kafka_names_and_checks() {
        let network = ServerConfig::default().network_config().unwrap();
        assert_eq!(network.connection_limits.max_connections, i32::MAX as usize);
        assert_eq!(network.connections_max_idle, Some(std::time::Duration::from_secs(600)));
        let set = |pairs: &[(&str, &str)]| {
            let pairs: Vec<(&str, String)> = pairs.iter().map(|(k, v)| (*k, v.to_string())).collect();
            ServerConfig::load(None, &pairs)
        };
        let c = set(&[
            ("max.connections", "100"),
            ("max.connections.per.ip", "0"),
            ("max.connections.per.ip.overrides", "127.0.0.2:5"),
            ("connections.max.idle.ms", "-1"),
        ])
        .unwrap();
        let n = c.network_config().unwrap();
        assert_eq!(n.connection_limits.max_connections, 100);
        assert_eq!(n.connection_limits.max_connections_per_ip_overrides.len(), 1);
        assert_eq!(n.connections_max_idle, None);
        assert!(set(&[("max.connections.per.ip", "0")]).is_err());
        assert!(set(&[("max.connections", "-1")]).is_err());
        assert!(set(&[("max.connections.per.ip.overrides", "127.0.0.2")]).is_err());
    }

    #[test]
    fn transaction_verification_is_on_unless_turned_off() {
        assert!(ServerConfig::default().transaction_partition_verification_enable);
        let off = [("transaction.partition.verification.enable", "false".to_string())];
        assert!(
            !ServerConfig::load(None, &off)
                .unwrap()
                .transaction_partition_verification_enable
        );
    }

    #[test]
    fn transaction_version_is_2_unless_set_to_another_kafka_level() {
        let level = |v: &str| {
            ServerConfig::load(None, &[("transaction.version", v.to_string())])
                .and_then(|c| c.transaction_version_level())
        };
        assert_eq!(ServerConfig::default().transaction_version_level().unwrap(), 2);
        assert_eq!(level("0").unwrap(), 0);
        assert!(level("3").is_err());
    }

    #[test]
    fn consumer_group_assignors_by_kafka_name_or_class() {
        use gregor_group::consumer::Assignor;
        let set = |pairs: &[(&str, &str)]| {
            let pairs: Vec<(&str, String)> = pairs.iter().map(|(k, v)| (*k, v.to_string())).collect();
            ServerConfig::load(None, &pairs).unwrap().consumer_assignors()
        };
        assert_eq!(set(&[]).unwrap(), [Assignor::Uniform, Assignor::Range]);
        let classes = "org.apache.kafka.coordinator.group.assignor.RangeAssignor, uniform";
        assert_eq!(
            set(&[("group.consumer.assignors", classes)]).unwrap(),
            [Assignor::Range, Assignor::Uniform]
        );
        assert!(set(&[("group.consumer.assignors", "sticky")]).is_err());
        assert!(set(&[("group.consumer.heartbeat.interval.ms", "45000")]).is_err());
    }
}
