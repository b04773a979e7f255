//! Transactions against plain idempotence, in one run, alternating (issue
//! 17's goals): librdkafka producing 100-byte records to a gregor broker
//! started in this process, idempotent (acks=all) vs transactional (the
//! same, committing every 1,000 records); and one librdkafka consumer
//! reading the transactional partition at read_uncommitted vs
//! read_committed. Each pair runs `GREGOR_BENCH_ROUNDS` times (default 3),
//! alternating, and the medians are compared.
//!
//! `cargo bench --bench transactions` — optional env:
//! `GREGOR_BENCH_RECORDS` (default 1 000 000 per run), `GREGOR_BENCH_ROUNDS`,
//! `GREGOR_BENCH_DIR` (data dir parent), `GREGOR_BENCH_BOOTSTRAP` (measure
//! that broker instead, e.g. Kafka 3.9 from `python3 -m bench.kafka.kafka`). Results go in docs/PERFORMANCE.md.

#[path = "support/latency.rs"]
mod latency;

#[path = "support/load.rs"]
mod load;

use gregor::server::{Server, ServerConfig};

/// Records per transaction.
const PER_TRANSACTION: usize = 1_000;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    let records = env("GREGOR_BENCH_RECORDS", 1_000_000);
    let rounds = env("GREGOR_BENCH_ROUNDS", 3).max(1);
    // GREGOR_BENCH_BOOTSTRAP: measure another broker (a Kafka 3.9 started
    // by bench/kafka/kafka.py) instead of a gregor broker in this process.
    let external = std::env::var("GREGOR_BENCH_BOOTSTRAP").ok();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let parent = std::env::var_os("GREGOR_BENCH_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let data = tempfile::tempdir_in(parent).unwrap();
    let server = match &external {
        Some(_) => None,
        None => {
            let config = ServerConfig::load(
                None,
                &[
                    ("listeners", "PLAINTEXT://127.0.0.1:0".to_string()),
                    ("log.dirs", data.path().display().to_string()),
                    // A single broker: its internal topics have one replica.
                    ("offsets.topic.replication.factor", "1".to_string()),
                    ("transaction.state.log.replication.factor", "1".to_string()),
                    ("transaction.state.log.min.isr", "1".to_string()),
                ],
            )
            .unwrap();
            Some(runtime.block_on(Server::start(config)).unwrap())
        }
    };
    let bootstrap = match (&external, &server) {
        (Some(address), _) => address.clone(),
        (None, Some(server)) => server.local_addr().to_string(),
        (None, None) => unreachable!("a server is started when no bootstrap is given"),
    };

    let idempotent = [("enable.idempotence", "true"), ("acks", "all")];
    // Warm-up: topics exist and have leaders, the coordinator is loaded.
    load::produce(&bootstrap, "idempotent", 1_000, 100, &idempotent, None);
    let transactional = [
        ("enable.idempotence", "true"),
        ("acks", "all"),
        ("transactional.id", "bench"),
    ];
    load::produce(
        &bootstrap,
        "transactional",
        1_000,
        100,
        &transactional,
        Some(PER_TRANSACTION),
    );

    let (mut plain_rates, mut txn_rates) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        plain_rates.push(load::produce(&bootstrap, "idempotent", records, 100, &idempotent, None).0);
        txn_rates.push(
            load::produce(
                &bootstrap,
                "transactional",
                records,
                100,
                &transactional,
                Some(PER_TRANSACTION),
            )
            .0,
        );
    }
    let (plain, txn) = (median(plain_rates.clone()), median(txn_rates.clone()));
    println!("produce 100 B idempotent acks=all: median {plain:.0} records/s (runs {plain_rates:.0?})");
    println!(
        "produce 100 B transactional, {PER_TRANSACTION} per transaction: median {txn:.0} records/s (runs {txn_rates:.0?}) = {:.1}% of idempotent",
        txn / plain * 100.0
    );

    // Everything written transactionally, read at both isolation levels.
    let total = 1_000 + rounds * records;
    let (mut uncommitted, mut committed) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        let isolation = |level| [("isolation.level", level)];
        uncommitted.push(load::consume(&bootstrap, "transactional", total, &isolation("read_uncommitted")).0);
        committed.push(load::consume(&bootstrap, "transactional", total, &isolation("read_committed")).0);
    }
    let (u, c) = (median(uncommitted.clone()), median(committed.clone()));
    println!(
        "consume 100 B read_uncommitted: median {:.1} MB/s; read_committed: median {:.1} MB/s = {:.1}% (runs MB/s {:.1?} / {:.1?})",
        u / 1e6,
        c / 1e6,
        c / u * 100.0,
        uncommitted.iter().map(|v| v / 1e6).collect::<Vec<_>>(),
        committed.iter().map(|v| v / 1e6).collect::<Vec<_>>()
    );
    if let Some(server) = server {
        runtime.block_on(server.shutdown()).unwrap();
    }
}
