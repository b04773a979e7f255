//! Load generator: librdkafka (the `rdkafka` crate, vendored) against a
//! gregor broker started in this process, with loopback TCP measured in the
//! same run as the ceiling, so results read as ratios.
//!
//! `cargo bench --bench broker` — optional env: `GREGOR_BENCH_RECORDS`
//! (default 2 000 000), `GREGOR_BENCH_DIR` (data dir parent).
//! Results go in docs/PERFORMANCE.md.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use gregor::server::{Server, ServerConfig};
use hdrhistogram::Histogram;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::{ClientContext, Offset, TopicPartitionList};

/// Loopback TCP throughput: one writer, one reader, 1 MiB writes.
fn loopback_bytes_per_second(total: usize) -> f64 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let reader = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut buf = vec![0u8; 1 << 20];
        let mut n = 0;
        while n < total {
            n += s.read(&mut buf).unwrap();
        }
    });
    let mut s = TcpStream::connect(addr).unwrap();
    let buf = vec![7u8; 1 << 20];
    let start = Instant::now();
    let mut sent = 0;
    while sent < total {
        s.write_all(&buf).unwrap();
        sent += buf.len();
    }
    reader.join().unwrap();
    total as f64 / start.elapsed().as_secs_f64()
}

struct Latency {
    histogram: std::sync::Mutex<Histogram<u64>>,
}

impl ClientContext for Latency {}

impl ProducerContext for Latency {
    type DeliveryOpaque = Box<Instant>;
    fn delivery(&self, result: &DeliveryResult<'_>, sent: Self::DeliveryOpaque) {
        assert!(result.is_ok(), "delivery failed: {result:?}");
        let _ = self.histogram.lock().unwrap().record(sent.elapsed().as_micros() as u64);
    }
}

fn produce(bootstrap: &str, topic: &str, records: usize, size: usize) -> (f64, Histogram<u64>) {
    let context = Latency {
        histogram: std::sync::Mutex::new(Histogram::new(3).unwrap()),
    };
    let producer: BaseProducer<Latency> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("acks", "1")
        .set("linger.ms", "5")
        .set("queue.buffering.max.messages", "1000000")
        .create_with_context(context)
        .unwrap();
    let value = vec![b'x'; size];
    let start = Instant::now();
    for _ in 0..records {
        let mut record: BaseRecord<(), [u8], Box<Instant>> =
            BaseRecord::with_opaque_to(topic, Box::new(Instant::now())).payload(&value[..]);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((_, back)) => {
                    producer.poll(Duration::from_millis(1));
                    record = back;
                }
            }
        }
        producer.poll(Duration::ZERO);
    }
    producer.flush(Duration::from_secs(120)).unwrap();
    let rate = records as f64 / start.elapsed().as_secs_f64();
    let histogram = producer.context().histogram.lock().unwrap().clone();
    (rate, histogram)
}

fn consume(bootstrap: &str, topic: &str, records: usize) -> (f64, u64) {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "bench")
        .set("enable.auto.commit", "false")
        .set("fetch.max.bytes", "52428800")
        .set("max.partition.fetch.bytes", "10485760")
        .create()
        .unwrap();
    let mut assignment = TopicPartitionList::new();
    assignment.add_partition_offset(topic, 0, Offset::Beginning).unwrap();
    consumer.assign(&assignment).unwrap();
    let start = Instant::now();
    let (mut n, mut bytes) = (0usize, 0u64);
    let deadline = start + Duration::from_secs(300);
    while n < records && Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            n += 1;
            bytes += m.payload_len() as u64;
        }
    }
    assert_eq!(n, records, "consumed everything");
    (bytes as f64 / start.elapsed().as_secs_f64(), bytes)
}

fn main() {
    // `cargo test --benches` runs bench targets with --bench too; keep it bounded.
    let records: usize = std::env::var("GREGOR_BENCH_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000_000);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let parent = std::env::var_os("GREGOR_BENCH_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let data = tempfile::tempdir_in(parent).unwrap();
    let config = ServerConfig::load(
        None,
        &[
            ("listeners", "PLAINTEXT://127.0.0.1:0".to_string()),
            ("log.dirs", data.path().display().to_string()),
        ],
    )
    .unwrap();
    let server = runtime.block_on(Server::start(config)).unwrap();
    let bootstrap = server.local_addr().to_string();

    let loopback = loopback_bytes_per_second(4 << 30);
    println!("loopback TCP: {:.2} GB/s (ceiling)", loopback / 1e9);

    let (rate, latency) = produce(&bootstrap, "produce-100b", records, 100);
    println!(
        "produce 100 B acks=1: {:.0} records/s, {:.1} MB/s ({:.1}% of loopback); latency µs p50 {} p95 {} p99 {} p99.9 {} max {}",
        rate,
        rate * 100.0 / 1e6,
        rate * 100.0 / loopback * 100.0,
        latency.value_at_quantile(0.5),
        latency.value_at_quantile(0.95),
        latency.value_at_quantile(0.99),
        latency.value_at_quantile(0.999),
        latency.max()
    );

    let big = (records / 10).max(1);
    produce(&bootstrap, "consume-1k", big, 1024);
    let (bytes_per_second, bytes) = consume(&bootstrap, "consume-1k", big);
    println!(
        "consume 1 KiB: {:.2} GB/s ({:.1}% of loopback) over {} MB",
        bytes_per_second / 1e9,
        bytes_per_second / loopback * 100.0,
        bytes / 1_000_000
    );
    runtime.block_on(server.shutdown()).unwrap();
}
