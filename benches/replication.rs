//! acks=all latency on a 3-broker cluster: three gregor brokers in this
//! process sharing an embedded coordination service, a topic with
//! replication factor 3 and `min.insync.replicas=2`, librdkafka producing
//! 1 KiB records at a fixed rate (50 MB/s by default). The baseline,
//! measured in the same run on the same cluster and topic, is acks=1
//! (the leader alone), so the ratio is the price of waiting for the
//! followers.
//!
//! `cargo bench --bench replication` — optional env:
//! `GREGOR_BENCH_SECONDS` (default 10), `GREGOR_BENCH_MBPS` (default 50).
//! Results go in docs/PERFORMANCE.md.

#[path = "support/latency.rs"]
mod latency;

use std::time::{Duration, Instant};

use gregor::coord::{CoordServer, EmbeddedStore};
use gregor::server::{Server, ServerConfig};
use hdrhistogram::Histogram;
use latency::Latency;
use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

const RECORD: usize = 1024;
const TOPIC: &str = "acks-bench";

fn producer(bootstrap: &str, acks: &str) -> BaseProducer<Latency> {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("acks", acks)
        .set("linger.ms", "1")
        .set("queue.buffering.max.messages", "1000000")
        .create_with_context(Latency::new())
        .unwrap()
}

/// Produces `RECORD`-byte records through `producer` at
/// `bytes_per_second` for `seconds`, then waits for every delivery;
/// returns the bytes sent and the seconds spent sending.
fn produce_at(producer: &BaseProducer<Latency>, bytes_per_second: f64, seconds: f64) -> (f64, f64) {
    let value = vec![b'x'; RECORD];
    let per_ms = bytes_per_second / RECORD as f64 / 1000.0;
    let start = Instant::now();
    let mut sent = 0u64;
    while start.elapsed().as_secs_f64() < seconds {
        let due = (start.elapsed().as_secs_f64() * 1000.0 * per_ms) as u64;
        while sent < due {
            let record: BaseRecord<(), [u8], Box<Instant>> =
                BaseRecord::with_opaque_to(TOPIC, Box::new(Instant::now())).payload(&value[..]);
            if producer.send(record).is_err() {
                break;
            }
            sent += 1;
        }
        producer.poll(Duration::from_micros(200));
    }
    let sending = start.elapsed().as_secs_f64();
    producer.flush(Duration::from_secs(60)).unwrap();
    ((sent as usize * RECORD) as f64, sending)
}

fn report(label: &str, h: &Histogram<u64>, rate: f64) {
    println!(
        "{label}: {:.1} MB/s, latency ms p50 {:.2} p95 {:.2} p99 {:.2} p99.9 {:.2} max {:.2}",
        rate / 1e6,
        h.value_at_quantile(0.5) as f64 / 1000.0,
        h.value_at_quantile(0.95) as f64 / 1000.0,
        h.value_at_quantile(0.99) as f64 / 1000.0,
        h.value_at_quantile(0.999) as f64 / 1000.0,
        h.max() as f64 / 1000.0,
    );
}

fn main() {
    let env = |name: &str, default: f64| std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default);
    // `cargo test --benches` runs bench targets too: keep that short.
    let quick = std::env::args().any(|a| a == "--bench").then_some(()).is_none();
    let seconds = if quick { 1.0 } else { env("GREGOR_BENCH_SECONDS", 10.0) };
    let rate = env("GREGOR_BENCH_MBPS", 50.0) * 1e6;
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let data = tempfile::tempdir().unwrap();
    let coordination = runtime
        .block_on(CoordServer::bind("127.0.0.1:0", EmbeddedStore::in_memory()))
        .unwrap();
    let servers: Vec<Server> = (0..3)
        .map(|id| {
            let config = ServerConfig::load(
                None,
                &[
                    ("listeners", "PLAINTEXT://127.0.0.1:0".to_string()),
                    (
                        "log.dirs",
                        data.path().join(format!("broker-{id}")).display().to_string(),
                    ),
                    ("broker.id", id.to_string()),
                    ("coordination.connect", coordination.local_addr().to_string()),
                    ("default.replication.factor", "3".into()),
                    ("min.insync.replicas", "2".into()),
                    ("num.network.threads", "2".into()),
                    ("num.io.threads", "2".into()),
                    ("metrics.listen", "127.0.0.1:0".into()),
                ],
            )
            .unwrap();
            runtime.block_on(Server::start(config)).unwrap()
        })
        .collect();
    let bootstrap = servers
        .iter()
        .map(|s| s.local_addr().to_string())
        .collect::<Vec<_>>()
        .join(",");
    // Creates the topic (auto-created, 3 replicas), waits for its leader,
    // and warms up at the full rate.
    let (one, all) = (producer(&bootstrap, "1"), producer(&bootstrap, "all"));
    produce_at(&all, 1e6, 1.0);
    produce_at(&one, rate, seconds.min(2.0));
    produce_at(&all, rate, seconds.min(2.0));
    for p in [&one, &all] {
        p.context().histogram.lock().unwrap().reset();
    }
    // Alternating one-second rounds, so both see the same disk and page
    // cache conditions (the kernel's writeback starts after a few GB).
    let (mut one_bytes, mut all_bytes) = (0.0, 0.0);
    let (mut one_time, mut all_time) = (0.0, 0.0);
    for _ in 0..seconds.ceil() as usize {
        let (bytes, time) = produce_at(&one, rate, 1.0);
        (one_bytes, one_time) = (one_bytes + bytes, one_time + time);
        let (bytes, time) = produce_at(&all, rate, 1.0);
        (all_bytes, all_time) = (all_bytes + bytes, all_time + time);
    }
    let (one_rate, all_rate) = (one_bytes / one_time, all_bytes / all_time);
    let one = one.context().histogram.lock().unwrap().clone();
    let all = all.context().histogram.lock().unwrap().clone();
    report("acks=1   (baseline)", &one, one_rate);
    report("acks=all (3 replicas, min.insync.replicas=2)", &all, all_rate);
    println!(
        "acks=all / acks=1: p50 {:.2}x, p99 {:.2}x",
        all.value_at_quantile(0.5) as f64 / one.value_at_quantile(0.5).max(1) as f64,
        all.value_at_quantile(0.99) as f64 / one.value_at_quantile(0.99).max(1) as f64,
    );
    for server in servers {
        runtime.block_on(server.shutdown()).unwrap();
    }
    runtime.block_on(coordination.shutdown());
}
