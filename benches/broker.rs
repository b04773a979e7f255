//! Load generator: librdkafka (the `rdkafka` crate, vendored) against a
//! gregor broker started in this process. Ceilings are measured in the same
//! run, so results read as ratios: for produce, the same client code against
//! librdkafka's in-process mock broker (records kept in RAM, no I/O: the
//! most this client sends to any broker here); for consume, the same
//! consumer against a minimal peer serving the same batches from memory
//! (`support/ram_broker.rs`; librdkafka's mock broker serves one batch per
//! fetch, so it is no consume ceiling), and loopback TCP.
//!
//! `cargo bench --bench broker` — optional env: `GREGOR_BENCH_RECORDS`
//! (default 2 000 000), `GREGOR_BENCH_DIR` (data dir parent).
//! Results go in docs/PERFORMANCE.md.

#[path = "support/ram_broker.rs"]
mod ram_broker;

#[path = "support/latency.rs"]
mod latency;

#[path = "support/load.rs"]
mod load;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Instant;

use gregor::server::{Server, ServerConfig};
use hdrhistogram::Histogram;

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

/// CPU seconds used so far by this process's threads whose names start
/// with `prefix` (from /proc: user + system time).
fn thread_cpu_seconds(prefix: &str) -> f64 {
    let ticks_per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let mut ticks = 0u64;
    for task in std::fs::read_dir("/proc/self/task").into_iter().flatten().flatten() {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
            continue;
        };
        // pid (comm) state … utime stime: fields 14 and 15, counted after ')'.
        let Some((comm, rest)) = stat.split_once(" (").and_then(|(_, r)| r.rsplit_once(") ")) else {
            continue;
        };
        if !comm.starts_with(prefix) {
            continue;
        }
        let fields: Vec<&str> = rest.split_whitespace().collect();
        ticks += fields.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        ticks += fields.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    }
    ticks as f64 / ticks_per_second
}

/// CPU seconds used so far by the whole process, exited threads included.
fn process_cpu_seconds() -> f64 {
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

/// The bench's producer: acks=1.
fn produce(bootstrap: &str, topic: &str, records: usize, size: usize) -> (f64, Histogram<u64>) {
    load::produce(bootstrap, topic, records, size, &[("acks", "1")], None)
}

/// The bench's consumer.
fn consume(bootstrap: &str, topic: &str, records: usize) -> (f64, u64) {
    load::consume(bootstrap, topic, records, &[])
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
    let mock = rdkafka::mocking::MockCluster::new(1).unwrap();
    mock.create_topic("produce-100b", 1, 1).unwrap();
    // Both peers get a warm-up first: the topic exists and has a leader
    // before the clock starts.
    produce(&mock.bootstrap_servers(), "produce-100b", 1_000, 100);
    let (ceiling, _) = produce(&mock.bootstrap_servers(), "produce-100b", records, 100);
    println!("client ceiling (librdkafka mock broker): produce 100 B {ceiling:.0} records/s");
    drop(mock);

    produce(&bootstrap, "produce-100b", 1_000, 100);
    let (rate, latency) = produce(&bootstrap, "produce-100b", records, 100);
    println!(
        "produce 100 B acks=1: {:.0} records/s, {:.1} MB/s = {:.1}% of the client ceiling; latency µs p50 {} p95 {} p99 {} p99.9 {} max {}",
        rate,
        rate * 100.0 / 1e6,
        rate / ceiling * 100.0,
        latency.value_at_quantile(0.5),
        latency.value_at_quantile(0.95),
        latency.value_at_quantile(0.99),
        latency.value_at_quantile(0.999),
        latency.max()
    );

    let big = (records / 2).max(1);
    produce(&bootstrap, "consume-1k", big, 1024);
    let broker_cpu = thread_cpu_seconds("gregor-");
    let process_cpu = process_cpu_seconds();
    let (bytes_per_second, bytes) = consume(&bootstrap, "consume-1k", big);
    let broker_cpu = thread_cpu_seconds("gregor-") - broker_cpu;
    let process_cpu = process_cpu_seconds() - process_cpu;
    runtime.block_on(server.shutdown()).unwrap();

    // The consume ceiling: the very same batches served from memory by a
    // peer that does nothing else.
    let partition = data.path().join("consume-1k-0");
    let mut segments: Vec<_> = std::fs::read_dir(&partition)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    segments.sort();
    let records: Vec<u8> = segments.iter().flat_map(|p| std::fs::read(p).unwrap()).collect();
    let ram = ram_broker::start("consume-1k", records);
    let (ceiling, _) = consume(&ram.to_string(), "consume-1k", big);
    println!(
        "client ceiling (a peer serving the same batches from RAM): consume 1 KiB {:.2} GB/s",
        ceiling / 1e9
    );
    println!(
        "consume 1 KiB: {:.2} GB/s = {:.1}% of the client ceiling, {:.1}% of loopback, over {} MB; CPU: broker threads {:.2} s, client {:.2} s",
        bytes_per_second / 1e9,
        bytes_per_second / ceiling * 100.0,
        bytes_per_second / loopback * 100.0,
        bytes / 1_000_000,
        broker_cpu,
        process_cpu - broker_cpu
    );
}
