//! A broker assembled by hand from the crates, with other parts than
//! `gregor server` picks: coordination through ZooKeeper when an address
//! is given (`host:port`; otherwise an in-memory store that lives as long
//! as the process), every append fsynced before it is acknowledged
//! (`flush.messages=1`), two network threads and four handler threads.
//! The replica manager, fetcher, ISR writer, controller and group
//! coordinator are the same as the server's, so brokers built like this form clusters with
//! `gregor server` brokers.
//!
//! `cargo run --example custom_broker -- [zookeeper host:port] [port]`

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use gregor::broker::{Broker, BrokerConfig, CoordinatedCatalog, ReplicaManager};
use gregor::coord::kafka::{KafkaMetadata, RegisteredEndpoint};
use gregor::coord::{Coordinator, EmbeddedCoordinator, EmbeddedStore, ZooKeeperCoordinator};
use gregor::log::{Clock, LogConfig, LogManager, LogManagerConfig, SystemClock};
use gregor::replication::ReplicaSettings;
use gregor::routing::{BrokerMetrics, ListenerContext, NetworkConfig, SocketServer};
use gregor::server::{controller, fetcher, isr_writer, register, spawn_replica_ticker};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let zookeeper = std::env::args().nth(1).filter(|a| a.contains(':'));
    let port: u16 = std::env::args().nth(2).map_or(Ok(9092), |p| p.parse())?;
    let broker_id = 0;
    let session = Duration::from_secs(6);

    // Coordination: the part this example swaps.
    let coordinator: Arc<dyn Coordinator> = match &zookeeper {
        Some(hosts) => Arc::new(ZooKeeperCoordinator::connect(hosts, session).await?),
        None => Arc::new(EmbeddedCoordinator::connect(&EmbeddedStore::in_memory(), session)),
    };
    KafkaMetadata::new(coordinator.as_ref()).ensure_layout().await?;

    // Storage: every append on disk before it is acknowledged.
    let data = tempfile::tempdir()?;
    let mut log_config = LogManagerConfig::new(vec![data.path().to_path_buf()]);
    log_config.replicated = true;
    log_config.default_log_config = LogConfig {
        flush_messages: 1,
        ..LogConfig::default()
    };
    let logs = Arc::new(LogManager::open(log_config.clone())?);
    logs.start_background();

    // Replication and the broker's state.
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let replicas = Arc::new(ReplicaManager::new(
        broker_id,
        ReplicaSettings::default(),
        clock.clone(),
    ));
    let catalog = Arc::new(CoordinatedCatalog::new(
        coordinator.clone(),
        tokio::runtime::Handle::current(),
        broker_id,
    ));
    let broker_config = BrokerConfig {
        node_id: broker_id,
        advertised_port: port,
        default_log_config: log_config.default_log_config,
        ..BrokerConfig::default()
    };
    let (broker_logs, broker_replicas) = (logs.clone(), replicas.clone());
    let broker = tokio::task::spawn_blocking(move || {
        Broker::open(
            broker_config,
            Default::default(),
            broker_logs,
            catalog,
            broker_replicas,
            clock,
        )
    })
    .await?
    .map_err(anyhow::Error::msg)?;
    let broker = Arc::new(broker);
    let groups = broker.groups().coordinator().clone();
    let group_ticker = gregor::group::GroupCoordinator::spawn_ticker(groups, Duration::from_millis(100))?;

    // The network: a smaller pipeline than the default.
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .with_context(|| format!("listening on port {port}"))?;
    let network = SocketServer::start(
        vec![(listener, Arc::new(ListenerContext::plaintext("PLAINTEXT")))],
        broker.clone(),
        Arc::new(BrokerMetrics::new()),
        NetworkConfig {
            num_network_threads: 2,
            num_io_threads: 4,
            ..NetworkConfig::default()
        },
    )?;

    // The same fetcher and controller election as `gregor server`.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let ticking = spawn_replica_ticker(replicas.clone(), stopped.clone())?;
    let fetching = fetcher::spawn(broker.clone(), Default::default(), stopped.clone());
    let writing_isr = isr_writer::spawn(coordinator.clone(), replicas, stopped.clone());
    // Kafka's defaults: no unclean elections, a leader rebalance every 300 s.
    let settings = controller::Settings::of(&gregor_server::ServerConfig::default());
    let controlling = controller::spawn(coordinator.clone(), broker.clone(), settings, stopped);
    let registration_wait = std::time::Duration::from_secs(20);
    let broker_epoch = register(
        coordinator.as_ref(),
        broker_id,
        &[RegisteredEndpoint {
            listener: "PLAINTEXT".into(),
            security_protocol: "PLAINTEXT".into(),
            host: "127.0.0.1".into(),
            port,
        }],
        None,
        registration_wait,
    )
    .await?;
    broker.replicas().set_broker_epoch(broker_epoch);
    println!(
        "custom broker on 127.0.0.1:{port}, coordination: {}; Ctrl-C stops it",
        zookeeper.as_deref().unwrap_or("in memory")
    );

    tokio::signal::ctrl_c().await?;
    let _ = stop.send(true);
    fetching.abort();
    writing_isr.abort();
    controlling.abort();
    let _ = tokio::task::spawn_blocking(move || ticking.join()).await;
    network.shutdown().await;
    group_ticker.stop();
    logs.close()?;
    coordinator.close().await?;
    Ok(())
}
