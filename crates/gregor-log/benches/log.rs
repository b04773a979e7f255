//! gregor-log hot paths, with the `commitlog` crate appending the same
//! records in the same run as a baseline.
//!
//! `cargo bench -p gregor-log --bench log` (results: docs/PERFORMANCE.md).
//! `GREGOR_BENCH_DIR` picks the directory (default: the system temp dir,
//! which must be on a real disk for the fsync numbers to mean anything).

use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use gregor_log::batch::RecordBatchBuilder;
use gregor_log::index::OffsetIndex;
use gregor_log::{Log, LogConfig, LogOpenOptions};

const RECORD: usize = 1024;
const RECORDS_PER_BATCH: usize = 100;
/// Start a fresh log after this many bytes so the disk never fills.
const RESET_AFTER: u64 = 1 << 30;

fn bench_dir() -> tempfile::TempDir {
    match std::env::var_os("GREGOR_BENCH_DIR") {
        Some(d) => tempfile::tempdir_in(PathBuf::from(d)).unwrap(),
        None => tempfile::tempdir().unwrap(),
    }
}

fn record_batch() -> Vec<u8> {
    let value = vec![b'x'; RECORD];
    let mut b = RecordBatchBuilder::new(1_700_000_000_000);
    for i in 0..RECORDS_PER_BATCH {
        b.append(
            Some(format!("key-{i}").as_bytes()),
            Some(&value),
            &[],
            1_700_000_000_000,
        );
    }
    b.build()
}

fn config(group_commit: bool) -> LogConfig {
    LogConfig {
        flush_group_commit: group_commit,
        retention_ms: -1,
        ..LogConfig::default()
    }
}

/// Appends `batches` batches from each of `writers` threads; returns the time taken.
fn timed_appends(log: &Arc<Log>, batch: &[u8], writers: usize, batches: u64) -> Duration {
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..writers {
            s.spawn(|| {
                let mut buf = batch.to_vec();
                for _ in 0..batches {
                    log.append(&mut buf, 0).unwrap();
                }
            });
        }
    });
    start.elapsed()
}

fn append(c: &mut Criterion) {
    let batch = record_batch();
    let mut group = c.benchmark_group("append");
    group.throughput(Throughput::Bytes(batch.len() as u64));
    group.measurement_time(Duration::from_secs(5));

    for (name, writers, group_commit) in [
        ("gregor/buffered/1-writer", 1, false),
        ("gregor/buffered/64-writers", 64, false),
        ("gregor/group-commit/64-writers", 64, true),
    ] {
        let dir = bench_dir();
        let log = Arc::new(Log::open(dir.path(), config(group_commit)).unwrap());
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                if log.size_bytes() > RESET_AFTER {
                    log.truncate_fully_and_start_at(0).unwrap();
                }
                let per_writer = iters.div_ceil(writers as u64);
                let elapsed = timed_appends(&log, &batch, writers, per_writer);
                // Normalise to the requested iteration count.
                elapsed.mul_f64(iters as f64 / (per_writer * writers as u64) as f64)
            })
        });
    }

    // Baseline: the commitlog crate with the same 100 × 1 KiB records per append.
    let dir = bench_dir();
    let mut options = commitlog::LogOptions::new(dir.path());
    options.segment_max_bytes(1 << 30);
    let mut baseline = commitlog::CommitLog::new(options).unwrap();
    let value = vec![b'x'; RECORD];
    group.bench_function("commitlog/buffered/1-writer", |b| {
        b.iter_batched_ref(
            || {
                let mut buf = commitlog::message::MessageBuf::default();
                for _ in 0..RECORDS_PER_BATCH {
                    buf.push(&value).unwrap();
                }
                buf
            },
            |buf| baseline.append(buf).unwrap(),
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

fn sequential_read(c: &mut Criterion) {
    let dir = bench_dir();
    let log = Log::open(dir.path(), config(false)).unwrap();
    let batch = record_batch();
    let total = 256u64 << 20;
    while log.size_bytes() < total {
        log.append(&mut batch.clone(), 0).unwrap();
    }
    let mut group = c.benchmark_group("read");
    group.throughput(Throughput::Bytes(log.size_bytes()));
    group.sample_size(20);
    let mut buf = vec![0u8; 1 << 20];
    group.bench_function("sequential/cached/1MiB-reads", |b| {
        b.iter(|| {
            let mut offset = 0;
            while offset < log.end_offset() {
                let read = log.read(offset, buf.len() as u64).unwrap();
                let region = read.region.unwrap();
                let len = region.len() as usize;
                region.file().read_exact_at(&mut buf[..len], region.position()).unwrap();
                let last = gregor_log::batch::BatchIter::new(&buf[..len])
                    .last()
                    .unwrap()
                    .unwrap()
                    .1;
                offset = last.next_offset();
            }
        })
    });
    group.finish();
}

fn index_lookup(c: &mut Criterion) {
    let dir = bench_dir();
    let entries = 1_000_000u64;
    let mut index = OffsetIndex::open(&dir.path().join("bench.index"), 0, Some(entries as usize * 8)).unwrap();
    for i in 1..=entries {
        index.append(i * 100, (i * 4096) as u32);
    }
    let mut state = 0x2545F4914F6CDD1Du64;
    c.bench_function("index/offset-lookup/1M-entries", |b| {
        b.iter(|| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            index.lookup(state % (entries * 100))
        })
    });
}

fn recovery(c: &mut Criterion) {
    let dir = bench_dir();
    let size = std::env::var("GREGOR_BENCH_RECOVERY_BYTES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1u64 << 30);
    {
        let log = Log::open(dir.path(), config(false)).unwrap();
        let batch = record_batch();
        while log.size_bytes() < size {
            log.append(&mut batch.clone(), 0).unwrap();
        }
        log.flush().unwrap();
    }
    let mut group = c.benchmark_group("recovery");
    group.throughput(Throughput::Bytes(size));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    group.bench_with_input(
        BenchmarkId::new("full-scan", format!("{}MiB", size >> 20)),
        &size,
        |b, _| {
            b.iter(|| {
                let options = LogOpenOptions {
                    clean_shutdown: false,
                    recovery_point: None,
                    ..Default::default()
                };
                let log = Log::open_with(dir.path(), config(false), options).unwrap();
                assert!(log.size_bytes() >= size);
            })
        },
    );
    group.finish();
}

criterion_group!(benches, append, sequential_read, index_lookup, recovery);
criterion_main!(benches);
