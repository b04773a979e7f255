//! `/metrics` over HTTP for Prometheus: a tiny server that answers
//! `GET /metrics` with the broker's metrics in the text format and 404
//! otherwise.

use std::net::SocketAddr;
use std::sync::Arc;

use gregor_broker::Broker;
use gregor_routing::BrokerMetrics;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// Largest request head read.
const MAX_HEAD: usize = 8 * 1024;

/// Serves `metrics` (with `broker`'s gauges read at each scrape) on
/// `listener` until `stop` turns true.
pub fn spawn(
    listener: TcpListener,
    broker: Arc<Broker>,
    metrics: Arc<BrokerMetrics>,
    mut stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let Ok((stream, peer)) = accepted else { continue };
                    tokio::spawn(answer(stream, peer, broker.clone(), metrics.clone()));
                }
                _ = stop.changed() => return,
            }
        }
    })
}

async fn answer(mut stream: TcpStream, peer: SocketAddr, broker: Arc<Broker>, metrics: Arc<BrokerMetrics>) {
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < MAX_HEAD {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = path.split('?').next().unwrap_or("");
    let response = if method == "GET" && path == "/metrics" {
        let body = tokio::task::spawn_blocking(move || {
            metrics.render(broker.logs(), broker.replicas(), broker.fetch_sessions().len())
        })
        .await
        .unwrap_or_default();
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/openmetrics-text; version=1.0.0; charset=utf-8\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    } else {
        tracing::debug!(%peer, %line, "not a metrics request");
        "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_string()
    };
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}
