//! `gregor bench produce|consume`: a load generator against any broker,
//! with a progress bar while it runs and, at the end, records/s, MB/s and
//! an HDR latency histogram (p50 … max), or `--json`.

use std::time::{Duration, Instant};

use anyhow::Context;
use gregor_client::{Consumer, ConsumerConfig, Producer, ProducerConfig, StartAt};
use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use crate::clients::{parse_acks, parse_compression};

/// Flags of `gregor bench`.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// `produce` or `consume`.
    #[arg(value_parser = ["produce", "consume"])]
    pub mode: String,
    /// Brokers to reach the cluster through.
    #[arg(long, default_value = "127.0.0.1:9092")]
    pub bootstrap_server: String,
    /// Topic to write or read.
    #[arg(long)]
    pub topic: String,
    /// How many records.
    #[arg(long, default_value_t = 1_000_000)]
    pub num_records: u64,
    /// Bytes per record value (produce).
    #[arg(long, default_value_t = 100)]
    pub record_size: usize,
    /// `all` (or -1), 1 or 0 (produce).
    #[arg(long, default_value = "1")]
    pub acks: String,
    /// Codec of the produced batches.
    #[arg(long, default_value = "none")]
    pub compression: String,
    /// Records per second to aim at (produce; default: as fast as it goes).
    #[arg(long)]
    pub rate: Option<f64>,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs the bench and prints its result.
pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let progress = if args.json {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(args.num_records)
    };
    progress.set_style(
        ProgressStyle::with_template("{spinner} {wide_bar} {pos}/{len} records {per_sec} eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut latency = Histogram::<u64>::new(3).context("a latency histogram")?;
    let started = Instant::now();
    let bytes = if args.mode == "produce" {
        produce(&args, &progress, &mut latency).await?
    } else {
        consume(&args, &progress, &mut latency).await?
    };
    let seconds = started.elapsed().as_secs_f64().max(1e-9);
    progress.finish_and_clear();
    let ms = |q: f64| latency.value_at_quantile(q) as f64 / 1000.0;
    let result = json!({
        "mode": args.mode,
        "topic": args.topic,
        "records": args.num_records,
        "seconds": seconds,
        "records_per_second": args.num_records as f64 / seconds,
        "mb_per_second": bytes as f64 / seconds / 1e6,
        "latency_ms": {
            "p50": ms(0.5), "p95": ms(0.95), "p99": ms(0.99), "p99.9": ms(0.999),
            "max": latency.max() as f64 / 1000.0,
        },
    });
    if args.json {
        println!("{result}");
    } else {
        println!(
            "{}: {} records in {:.2} s: {:.0} records/s, {:.1} MB/s",
            args.mode,
            args.num_records,
            seconds,
            args.num_records as f64 / seconds,
            bytes as f64 / seconds / 1e6
        );
        let what = if args.mode == "produce" { "delivery" } else { "fetch" };
        println!(
            "{what} latency ms: p50 {:.2} p95 {:.2} p99 {:.2} p99.9 {:.2} max {:.2}",
            ms(0.5),
            ms(0.95),
            ms(0.99),
            ms(0.999),
            latency.max() as f64 / 1000.0
        );
    }
    Ok(())
}

async fn produce(args: &BenchArgs, progress: &ProgressBar, latency: &mut Histogram<u64>) -> anyhow::Result<u64> {
    let config = ProducerConfig {
        acks: parse_acks(&args.acks)?,
        compression: parse_compression(&args.compression)?,
        ..ProducerConfig::default()
    };
    let mut producer = Producer::new(&args.bootstrap_server, config);
    let value = vec![b'x'; args.record_size];
    let started = Instant::now();
    let mut record = |deliveries: Vec<gregor_client::Delivery>| {
        let now = Instant::now();
        for d in deliveries {
            for sent in &d.sent {
                let _ = latency.record(now.duration_since(*sent).as_micros() as u64);
            }
            progress.inc(d.sent.len() as u64);
        }
    };
    for i in 0..args.num_records {
        if let Some(rate) = args.rate {
            let due = started + Duration::from_secs_f64(i as f64 / rate.max(1e-3));
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                tokio::time::sleep(wait).await;
            }
        }
        let delivered = producer
            .send(&args.topic, None, Some(&value))
            .await
            .with_context(|| format!("producing to {}", args.topic))?;
        record(delivered);
    }
    let delivered = producer
        .flush()
        .await
        .with_context(|| format!("producing to {}", args.topic))?;
    record(delivered);
    Ok(args.num_records * args.record_size as u64)
}

async fn consume(args: &BenchArgs, progress: &ProgressBar, latency: &mut Histogram<u64>) -> anyhow::Result<u64> {
    let mut consumer = Consumer::new(&args.bootstrap_server, ConsumerConfig::default());
    consumer
        .assign(&args.topic, StartAt::Earliest)
        .await
        .with_context(|| format!("assigning {}", args.topic))?;
    let (mut count, mut bytes, mut idle) = (0u64, 0u64, Instant::now());
    while count < args.num_records {
        let asked = Instant::now();
        let records = consumer
            .poll()
            .await
            .with_context(|| format!("reading {}", args.topic))?;
        let _ = latency.record(asked.elapsed().as_micros() as u64);
        if records.is_empty() {
            anyhow::ensure!(
                idle.elapsed() < Duration::from_secs(10),
                "only {count} of {} records in {} after 10 s without more",
                args.num_records,
                args.topic
            );
            continue;
        }
        idle = Instant::now();
        let take = (args.num_records - count).min(records.len() as u64);
        for r in records.iter().take(take as usize) {
            bytes += r.value.as_ref().map_or(0, Vec::len) as u64 + r.key.as_ref().map_or(0, Vec::len) as u64;
        }
        count += take;
        progress.inc(take);
    }
    Ok(bytes)
}
