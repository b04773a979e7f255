//! # gregor-server
//!
//! Thin: turns a [`ServerConfig`] into a running broker — the log manager
//! over `log.dirs`, the log cleaner, coordination (this broker's embedded
//! store, a shared one with `coordination.connect`, or ZooKeeper with
//! `zookeeper.connect`) with the broker registered and topics recorded,
//! the replica manager with its fetcher and ticker, the controller
//! election, the routing pipeline on every listener — and shuts it
//! down cleanly (logs flushed and closed, clean-shutdown marker written,
//! registration removed).

#![deny(missing_docs)]

mod acl_changes;
pub mod cli;
mod config;
mod config_changes;
pub mod controlled_shutdown;
pub mod controller;
mod coordination;
pub mod fetcher;
pub mod isr_writer;
mod listeners;
mod log_dir_failure;
mod metrics_http;
mod properties;
mod quota_changes;
mod rejoin;
mod security_config;
mod txn_markers;
mod txn_verifier;

pub use config::ServerConfig;
pub use coordination::{register, EMBEDDED_DIR};
pub use gregor_broker::CoordinatedCatalog;
pub use gregor_routing::HugeAllocationGuard;
pub use listeners::{ListenerPlan, ListenerSpec};

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use gregor_broker::acl_store::CoordinatedAclStore;
use gregor_broker::quotas::{CoordinatedQuotaStore, QuotaWindow};
use gregor_broker::{Broker, BrokerConfig, ReplicaManager, TransactionStateSettings};
use gregor_compactor::{CleanerConfig, LogCleaner};
use gregor_coord::kafka::RegisteredEndpoint;
use gregor_coord::Coordinator;
use gregor_log::{Clock, LogConfig, LogManager, LogManagerConfig, SystemClock};
use gregor_replication::ReplicaSettings;
use gregor_routing::{BrokerMetrics, SocketServer};
use gregor_transaction::{TransactionCoordinator, TransactionSettings};
use tokio::net::TcpListener;

/// A running broker.
pub struct Server {
    broker: Arc<Broker>,
    local_addr: SocketAddr,
    listener_addrs: Vec<(String, SocketAddr)>,
    metrics_addr: Option<SocketAddr>,
    logs: Arc<LogManager>,
    cleaner: LogCleaner,
    network: SocketServer,
    coordinator: Arc<dyn Coordinator>,
    group_ticker: gregor_group::Ticker,
    txn_ticker: gregor_transaction::Ticker,
    stop: tokio::sync::watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    replica_ticker: Option<std::thread::JoinHandle<()>>,
    broker_id: i32,
    controlled_shutdown: Option<controlled_shutdown::ShutdownSettings>,
}

impl Server {
    /// Opens the logs and starts listening.
    pub async fn start(config: ServerConfig) -> anyhow::Result<Self> {
        let mut log_config = LogManagerConfig::new(config.log_dirs());
        // High watermarks move as followers catch up, not with the log end.
        log_config.replicated = true;
        log_config.default_log_config = LogConfig {
            segment_bytes: config.log_segment_bytes,
            retention_ms: config.log_retention_ms,
            ..LogConfig::default()
        };
        let default_log_config = log_config.default_log_config.clone();
        // The one clock of the broker: log roll and retention, the cleaner,
        // replica lag, group timeouts, commit times.
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let logs = Arc::new(LogManager::open_with_clock(log_config, clock.clone()).context("opening the logs")?);
        // Compacts topics with cleanup.policy=compact in the background.
        let cleaner_config = CleanerConfig {
            backoff: std::time::Duration::from_millis(config.log_cleaner_backoff_ms),
            ..CleanerConfig::default()
        };
        let mut cleaner = LogCleaner::new(logs.clone(), cleaner_config, clock.clone());
        let plan = listeners::ListenerPlan::of(&config)?;
        // Every listener's security is checked (files read) before the
        // broker opens anything.
        let scram_cache = Arc::new(gregor_auth::sasl::CredentialCache::new());
        let inter_broker_security = security_config::inter_broker_security(&config, &plan)?;
        let mut bound = Vec::new();
        for spec in &plan.listeners {
            let mut context = security_config::listener_context(&config, spec, scram_cache.clone())?;
            context.inter_broker = spec.name == plan.inter_broker;
            let listener = spec
                .bind(config.socket_listen_backlog_size)
                .await
                .with_context(|| format!("listening on {}://{}", spec.name, spec.address()))?;
            bound.push((listener, Arc::new(context)));
        }
        let listener_addrs: Vec<(String, SocketAddr)> = bound
            .iter()
            .map(|(l, c)| Ok((c.name.clone(), l.local_addr()?)))
            .collect::<std::io::Result<_>>()?;
        let local_addr = listener_addrs[0].1;
        // Advertised endpoints; port 0 is the port the listener got.
        let advertised: Vec<ListenerSpec> = plan
            .advertised
            .iter()
            .map(|a| {
                let mut a = a.clone();
                if a.port == 0 {
                    if let Some((_, addr)) = listener_addrs.iter().find(|(n, _)| *n == a.name) {
                        a.port = addr.port();
                    }
                }
                a
            })
            .collect();
        let inter_broker = advertised
            .iter()
            .find(|a| a.name == plan.inter_broker)
            .cloned()
            .context("the inter-broker listener is not advertised")?;
        let (host, port) = (inter_broker.host.clone(), inter_broker.port);
        let first_dir = config.log_dirs().into_iter().next().context("log.dirs is empty")?;
        let zookeeper_auth = coordination::zookeeper_auth(
            config.zookeeper_set_acl,
            config.zookeeper_auth_digest_file.as_deref().map(std::path::Path::new),
        )?;
        let renewing = coordination::connect(
            config.zookeeper_connect.as_deref(),
            zookeeper_auth,
            config.coordination_connect.as_deref(),
            config
                .coordination_auth_secret_file
                .as_deref()
                .map(std::path::Path::new),
            &first_dir,
            std::time::Duration::from_millis(config.zookeeper_session_timeout_ms),
        )
        .await?;
        let coordinator: Arc<dyn Coordinator> = renewing.clone();
        let catalog = Arc::new(CoordinatedCatalog::new(
            coordinator.clone(),
            tokio::runtime::Handle::current(),
            config.broker_id,
        ));
        let broker_config = BrokerConfig {
            node_id: config.broker_id,
            advertised_host: host.clone(),
            advertised_port: port,
            advertised_listeners: advertised
                .iter()
                .map(|a| (a.name.clone(), (a.host.clone(), a.port)))
                .collect(),
            inter_broker_listener: plan.inter_broker.clone(),
            num_partitions: config.num_partitions,
            auto_create_topics: config.auto_create_topics_enable,
            default_log_config,
            offsets_topic_partitions: config.offsets_topic_num_partitions,
            offsets_topic_segment_bytes: config.offsets_topic_segment_bytes,
            offsets_topic_replication_factor: config.offsets_topic_replication_factor,
            fetch_session_slots: config.max_incremental_fetch_session_cache_slots,
            default_replication_factor: config.default_replication_factor,
            transaction_state: TransactionStateSettings {
                partitions: config.transaction_state_log_num_partitions,
                replication_factor: config.transaction_state_log_replication_factor,
                min_isr: config.transaction_state_log_min_isr,
                segment_bytes: config.transaction_state_log_segment_bytes,
            },
            transactions: TransactionSettings {
                max_timeout_ms: config.transaction_max_timeout_ms,
                transactional_id_expiration_ms: config.transactional_id_expiration_ms,
                abort_timed_out_interval_ms: config.transaction_abort_timed_out_transaction_cleanup_interval_ms,
                remove_expired_interval_ms: config.transaction_remove_expired_transaction_cleanup_interval_ms,
                transaction_version: config.transaction_version_level()?,
                ..TransactionSettings::default()
            },
            transaction_partition_verification: config.transaction_partition_verification_enable,
            properties: config.broker_properties(),
            quota_window: QuotaWindow {
                samples: config.quota_window_num.max(1),
                window_ms: i64::from(config.quota_window_size_seconds.max(1)) * 1000,
            },
            authorizer: config.authorizer_config()?,
            ..BrokerConfig::default()
        };
        let replicas = Arc::new(ReplicaManager::new(
            config.broker_id,
            ReplicaSettings {
                replica_lag_time_max_ms: config.replica_lag_time_max_ms,
                min_insync_replicas: config.min_insync_replicas.max(1),
            },
            clock.clone(),
        ));
        // An unknown selector is refused at start, as Kafka fails to load
        // the class.
        let selector = gregor_replication::ReplicaSelector::from_class_name(&config.replica_selector_class)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        replicas.set_replica_selector(selector);
        let group_config = gregor_group::GroupConfig {
            min_session_timeout_ms: config.group_min_session_timeout_ms,
            max_session_timeout_ms: config.group_max_session_timeout_ms,
            initial_rebalance_delay_ms: config.group_initial_rebalance_delay_ms,
            offsets_retention_ms: config.offsets_retention_minutes.saturating_mul(60_000),
            consumer_session_timeout_ms: config.group_consumer_session_timeout_ms,
            consumer_heartbeat_interval_ms: config.group_consumer_heartbeat_interval_ms,
            consumer_max_size: usize::try_from(config.group_consumer_max_size.max(1)).unwrap_or(1),
            consumer_assignors: config.consumer_assignors()?,
            ..gregor_group::GroupConfig::default()
        };
        let (broker_logs, broker_replicas) = (logs.clone(), replicas.clone());
        let broker = tokio::task::spawn_blocking(move || {
            Broker::open(
                broker_config,
                group_config,
                broker_logs,
                catalog,
                broker_replicas,
                clock,
            )
        })
        .await?
        .map_err(|e| anyhow::anyhow!("opening the broker's state: {e}"))?;
        let quota_store = Arc::new(CoordinatedQuotaStore::new(
            coordinator.clone(),
            tokio::runtime::Handle::current(),
        ));
        let broker = Arc::new(broker);
        // Only now that every log has its topic's config (the broker applied
        // the catalog's overrides): until then the logs run with the broker
        // defaults, and retention must not treat a compacted topic as a
        // delete-policy one (Kafka loads logs with their topic configs
        // before its log manager starts).
        logs.start_background();
        cleaner.start();
        apply_dynamic_server_configs(&broker, &cleaner);
        let quota_broker = broker.clone();
        tokio::task::spawn_blocking(move || {
            quota_broker.quotas().attach_store(quota_store.clone())?;
            // SCRAM credentials live beside the quotas, in /config/users.
            quota_broker.scram_credentials().attach_store(quota_store, scram_cache)
        })
        .await?
        .map_err(|e| anyhow::anyhow!("reading client quotas and SCRAM credentials: {e}"))?;
        let acl_store = Arc::new(CoordinatedAclStore::new(
            coordinator.clone(),
            tokio::runtime::Handle::current(),
        ));
        let acl_broker = broker.clone();
        tokio::task::spawn_blocking(move || acl_broker.authorizer().attach_store(acl_store))
            .await?
            .map_err(|e| anyhow::anyhow!("reading ACLs: {e}"))?;
        let group_ticker =
            gregor_group::GroupCoordinator::spawn_ticker(broker.groups().coordinator().clone(), GROUP_TICK)
                .context("starting the group coordinator's ticker")?;
        let txn_ticker = TransactionCoordinator::spawn_ticker(broker.transactions().coordinator().clone(), TXN_TICK)
            .context("starting the transaction coordinator's ticker")?;
        let metrics = Arc::new(BrokerMetrics::new());
        let (shrinks, expands) = replicas.isr_change_counters();
        metrics.register_isr_changes(shrinks, expands);
        let (throttled, throttle_ms) = broker.quotas().throttle_counters();
        metrics.register_quota_throttles(throttled, throttle_ms);
        let network = SocketServer::start(bound, broker.clone(), metrics.clone(), config.network_config()?)
            .context("starting the network threads")?;
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let replica_ticker = spawn_replica_ticker(replicas.clone(), stopped.clone())?;
        let mut tasks = Vec::new();
        let mut metrics_addr = None;
        if !config.metrics_listen.trim().is_empty() {
            let metrics_listener = TcpListener::bind(config.metrics_listen.trim())
                .await
                .with_context(|| format!("serving metrics on {} (metrics.listen)", config.metrics_listen))?;
            metrics_addr = Some(metrics_listener.local_addr()?);
            tasks.push(metrics_http::spawn(
                metrics_listener,
                broker.clone(),
                metrics,
                stopped.clone(),
            ));
        }
        tasks.extend([
            config_changes::spawn(coordinator.clone(), broker.clone(), stopped.clone()),
            quota_changes::spawn(coordinator.clone(), broker.clone(), stopped.clone()),
            acl_changes::spawn(coordinator.clone(), broker.clone(), stopped.clone()),
            fetcher::spawn(broker.clone(), inter_broker_security.clone(), stopped.clone()),
            isr_writer::spawn(coordinator.clone(), replicas, stopped.clone()),
            log_dir_failure::spawn(coordinator.clone(), broker.clone(), stopped.clone()),
            txn_markers::spawn(broker.clone(), inter_broker_security.clone(), stopped.clone()),
            txn_verifier::spawn(broker.clone(), inter_broker_security.clone(), stopped.clone()),
            controller::spawn(
                coordinator.clone(),
                broker.clone(),
                controller::Settings {
                    security: inter_broker_security.clone(),
                    ..controller::Settings::of(&config)
                },
                stopped.clone(),
            ),
        ]);
        // A previous run's registration may outlive it by a session
        // timeout (after a crash): wait that long, with some slack.
        let registration_wait =
            std::time::Duration::from_millis(config.zookeeper_session_timeout_ms.saturating_mul(3) / 2)
                + std::time::Duration::from_secs(2);
        let endpoints: Vec<RegisteredEndpoint> = advertised
            .iter()
            .map(|a| RegisteredEndpoint {
                listener: a.name.clone(),
                security_protocol: a.protocol.name().to_string(),
                host: a.host.clone(),
                port: a.port,
            })
            .collect();
        let registered_in = *renewing.sessions().borrow();
        let broker_epoch = coordination::register(
            coordinator.as_ref(),
            config.broker_id,
            &endpoints,
            config.broker_rack.clone(),
            registration_wait,
        )
        .await?;
        broker.replicas().set_broker_epoch(broker_epoch);
        // After a session expiry: a new session, and the broker registered
        // again on it.
        let registration = rejoin::Registration {
            id: config.broker_id,
            endpoints,
            rack: config.broker_rack.clone(),
            wait: registration_wait,
        };
        tasks.push(rejoin::spawn(
            renewing,
            broker.clone(),
            registration,
            registered_in,
            stopped,
        ));
        tracing::info!(%local_addr, ?listener_addrs, ?metrics_addr, broker = config.broker_id, broker_epoch, "gregor broker started");
        Ok(Self {
            broker: broker.clone(),
            local_addr,
            listener_addrs,
            metrics_addr,
            logs,
            cleaner,
            network,
            coordinator,
            group_ticker,
            txn_ticker,
            stop,
            tasks,
            replica_ticker: Some(replica_ticker),
            broker_id: config.broker_id,
            controlled_shutdown: config
                .controlled_shutdown_enable
                .then_some(controlled_shutdown::ShutdownSettings {
                    inter_broker_listener: plan.inter_broker.clone(),
                    security: inter_broker_security,
                    max_retries: config.controlled_shutdown_max_retries,
                    retry_backoff: std::time::Duration::from_millis(config.controlled_shutdown_retry_backoff_ms),
                }),
        })
    }

    /// The broker's state, as the request handlers see it (for requests
    /// dispatched in process, as the dispatch fuzz target does).
    pub fn broker(&self) -> &Arc<Broker> {
        &self.broker
    }

    /// The address of its first listener.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The address listener `name` listens on.
    pub fn listener_addr(&self, name: &str) -> Option<SocketAddr> {
        self.listener_addrs.iter().find(|(n, _)| n == name).map(|(_, a)| *a)
    }

    /// Where it serves `/metrics`, if it does.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// Stops: first a controlled shutdown (unless disabled) while still
    /// serving, then stops serving and cleaning, flushes and closes every
    /// log.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        if let Some(settings) = self.controlled_shutdown {
            // The epoch of the broker's current registration (a new one
            // after a session expiry).
            let broker_epoch = self.broker.replicas().broker_epoch();
            controlled_shutdown::run(self.coordinator.as_ref(), self.broker_id, broker_epoch, settings).await;
        }
        let _ = self.stop.send(true);
        for task in self.tasks.drain(..) {
            task.abort();
            let _ = task.await;
        }
        if let Some(ticker) = self.replica_ticker.take() {
            let _ = tokio::task::spawn_blocking(move || ticker.join()).await;
        }
        self.network.shutdown().await;
        self.group_ticker.stop();
        self.txn_ticker.stop();
        self.cleaner.stop();
        self.logs.close().context("closing the logs")?;
        // Ends the session: the broker's registration (and the controller
        // role) go with it.
        self.coordinator.close().await.context("leaving coordination")?;
        tracing::info!("gregor broker stopped cleanly");
        Ok(())
    }
}

/// Applies the dynamic broker configs of the server's own parts now and on
/// every change (the broker applies the log defaults itself):
/// `log.cleaner.backoff.ms`.
fn apply_dynamic_server_configs(broker: &Broker, cleaner: &LogCleaner) {
    let backoff = cleaner.backoff_ms();
    let apply = move |dynamic: &gregor_broker::DynamicBrokerConfig| {
        if let Some(ms) = dynamic
            .value("log.cleaner.backoff.ms")
            .and_then(|v| v.trim().parse().ok())
        {
            backoff.store(ms, std::sync::atomic::Ordering::Release);
        }
    };
    apply(broker.dynamic_config());
    broker.dynamic_config().on_change(Box::new(apply));
}

/// How often the transaction coordinator looks at its timers (it aborts
/// timed-out transactions and expires ids at its own configured intervals).
const TXN_TICK: std::time::Duration = std::time::Duration::from_millis(100);

/// How often the group coordinator expires members and rebalances.
const GROUP_TICK: std::time::Duration = std::time::Duration::from_millis(100);

/// A thread that finds lagging followers (their ISR shrinks are queued for
/// the ISR writer) and expires waiting produces every 100 ms, until
/// `stopped` turns true. A thread, not a task: it takes the replicas'
/// locks, which appends hold across disk writes.
pub fn spawn_replica_ticker(
    replicas: Arc<ReplicaManager>,
    stopped: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("replica-ticker".into())
        .spawn(move || {
            while !*stopped.borrow() {
                replicas.tick();
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
        })
        .context("starting the replica ticker")
}
