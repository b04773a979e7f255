//! `gregor-server`: a single Kafka-compatible broker.

use std::path::PathBuf;

use clap::Parser;
use gregor_routing::HugeAllocationGuard;
use gregor_server::{Server, ServerConfig};

/// Decoding untrusted requests must not be able to abort the process
/// through one impossible allocation (see `HugeAllocationGuard`).
#[global_allocator]
static ALLOCATOR: HugeAllocationGuard = HugeAllocationGuard;

/// Start a gregor broker.
#[derive(Parser)]
#[command(version, about)]
struct Args {
    /// TOML file with Kafka property names (`listeners`, `log.dirs`, …).
    #[arg(long)]
    config: Option<PathBuf>,
    /// `PLAINTEXT://host:port` to listen on.
    #[arg(long)]
    listeners: Option<String>,
    /// What clients are told to connect to.
    #[arg(long)]
    advertised_listeners: Option<String>,
    /// Comma-separated data directories.
    #[arg(long)]
    log_dirs: Option<String>,
    /// This broker's id.
    #[arg(long)]
    broker_id: Option<i32>,
    /// Partitions of auto-created topics.
    #[arg(long)]
    num_partitions: Option<u32>,
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    if let Err(e) = run(Args::parse()).await {
        eprintln!("gregor-server: {e:#}");
        std::process::exit(1);
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let mut overrides = Vec::new();
    let pairs = [
        ("listeners", args.listeners),
        ("advertised.listeners", args.advertised_listeners),
        ("log.dirs", args.log_dirs),
        ("broker.id", args.broker_id.map(|v| v.to_string())),
        ("num.partitions", args.num_partitions.map(|v| v.to_string())),
    ];
    for (property, value) in pairs {
        if let Some(value) = value {
            overrides.push((property, value));
        }
    }
    let config = ServerConfig::load(args.config.as_ref(), &overrides)?;
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
