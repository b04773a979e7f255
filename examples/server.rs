//! A broker assembled from the library crates in a few lines: logs in a
//! temporary directory, the Kafka protocol on 127.0.0.1:9092 (or the port
//! given as the first argument), until Ctrl-C.
//!
//! `cargo run --example server [port]`

use gregor::server::{Server, ServerConfig};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let port = std::env::args().nth(1).unwrap_or_else(|| "9092".into());
    let data = tempfile::tempdir()?;
    let config = ServerConfig::load(
        None,
        &[
            ("listeners", format!("PLAINTEXT://127.0.0.1:{port}")),
            ("log.dirs", data.path().display().to_string()),
        ],
    )?;
    let server = Server::start(config).await?;
    println!(
        "broker on {} (data in {}); Ctrl-C stops it",
        server.local_addr(),
        data.path().display()
    );
    tokio::signal::ctrl_c().await?;
    server.shutdown().await
}
