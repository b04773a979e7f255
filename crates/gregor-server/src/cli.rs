//! The broker's command line, shared by `gregor-server` and `gregor server`:
//! flags that override the TOML file and `GREGOR_*` variables, and the run
//! loop that stops cleanly on SIGTERM or SIGINT.

use std::path::PathBuf;

use crate::{Server, ServerConfig};

/// Flags of a broker.
#[derive(Debug, Clone, clap::Args)]
pub struct ServerArgs {
    /// TOML file with Kafka property names (`listeners`, `log.dirs`, …).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// `PLAINTEXT://host:port` to listen on.
    #[arg(long)]
    pub listeners: Option<String>,
    /// What clients are told to connect to.
    #[arg(long)]
    pub advertised_listeners: Option<String>,
    /// Comma-separated data directories.
    #[arg(long)]
    pub log_dirs: Option<String>,
    /// This broker's id.
    #[arg(long)]
    pub broker_id: Option<i32>,
    /// Partitions of auto-created topics.
    #[arg(long)]
    pub num_partitions: Option<u32>,
    /// ZooKeeper to coordinate through (`host:port,…`) instead of the
    /// embedded store.
    #[arg(long)]
    pub zookeeper: Option<String>,
    /// A shared embedded coordination service (`gregor coordination`) at
    /// `host:port`.
    #[arg(long)]
    pub coordination: Option<String>,
    /// Where to serve Prometheus metrics (`host:port`, `/metrics`).
    #[arg(long)]
    pub metrics_listen: Option<String>,
    /// Log lines as `text` (default) or `json` (also `GREGOR_LOG_FORMAT`).
    #[arg(long, value_parser = ["text", "json"])]
    pub log_format: Option<String>,
    /// Any other property, as `name=value` (repeatable).
    #[arg(long = "override", value_name = "NAME=VALUE")]
    pub overrides: Vec<String>,
}

impl ServerArgs {
    /// The configuration: file, then environment, then these flags.
    pub fn config(&self) -> anyhow::Result<ServerConfig> {
        let pairs = [
            ("listeners", self.listeners.clone()),
            ("advertised.listeners", self.advertised_listeners.clone()),
            ("log.dirs", self.log_dirs.clone()),
            ("broker.id", self.broker_id.map(|v| v.to_string())),
            ("num.partitions", self.num_partitions.map(|v| v.to_string())),
            ("zookeeper.connect", self.zookeeper.clone()),
            ("coordination.connect", self.coordination.clone()),
            ("metrics.listen", self.metrics_listen.clone()),
        ];
        let mut overrides: Vec<(&str, String)> = pairs.into_iter().filter_map(|(p, v)| v.map(|v| (p, v))).collect();
        for o in &self.overrides {
            let (name, value) = o
                .split_once('=')
                .ok_or_else(|| anyhow::anyhow!("--override {o:?}: expected NAME=VALUE"))?;
            overrides.push((name.trim(), value.trim().to_string()));
        }
        ServerConfig::load(self.config.as_ref(), &overrides)
    }
}

/// Runs a broker until SIGTERM or SIGINT, then shuts it down cleanly.
pub async fn run(args: ServerArgs) -> anyhow::Result<()> {
    let config = args.config()?;
    // Handlers first: a signal during startup stops the broker once it is
    // up, cleanly, instead of killing it half-started.
    use tokio::signal::unix::{signal, SignalKind};
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    let server = Server::start(config).await?;
    println!("gregor broker listening on {}", server.local_addr());
    tokio::select! {
        _ = interrupt.recv() => {}
        _ = terminate.recv() => {}
    }
    server.shutdown().await
}

/// Logs to stderr with `RUST_LOG`-style filtering (default `info`), as
/// text or, with `format` (or `GREGOR_LOG_FORMAT`) `json`, one JSON object
/// per line.
pub fn init_logging(format: Option<&str>) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let json = match format {
        Some(f) => f == "json",
        None => std::env::var("GREGOR_LOG_FORMAT").is_ok_and(|f| f == "json"),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}
