//! `gregor-server`: a single Kafka-compatible broker.

use clap::Parser;
use gregor_routing::HugeAllocationGuard;
use gregor_server::cli::{init_logging, run, ServerArgs};

/// Decoding untrusted requests must not be able to abort the process
/// through one impossible allocation (see `HugeAllocationGuard`).
#[global_allocator]
static ALLOCATOR: HugeAllocationGuard = HugeAllocationGuard;

/// Start a gregor broker.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(flatten)]
    server: ServerArgs,
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    init_logging(cli.server.log_format.as_deref());
    if let Err(e) = run(cli.server).await {
        eprintln!("gregor-server: {e:#}");
        std::process::exit(1);
    }
}
