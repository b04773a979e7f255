//! Compaction throughput: 1M records over 10k keys, MB/s of dirty log.
//!
//! `GREGOR_BENCH_DIR=/var/tmp cargo bench -p gregor-compactor --bench compaction`
//! (results: docs/PERFORMANCE.md).

use std::path::{Path, PathBuf};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use gregor_compactor::{clean_log, cleanable, OffsetMap, Throttler};
use gregor_log::batch::RecordBatchBuilder;
use gregor_log::{CleanupPolicy, Log, LogConfig, LogOpenOptions};

const RECORDS: u64 = 1_000_000;
const KEYS: u64 = 10_000;
const PER_BATCH: u64 = 100;

fn config() -> LogConfig {
    LogConfig {
        cleanup_policy: CleanupPolicy::Compact,
        segment_bytes: 64 << 20,
        retention_ms: -1,
        ..LogConfig::default()
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

fn compaction(c: &mut Criterion) {
    let root = match std::env::var_os("GREGOR_BENCH_DIR") {
        Some(d) => tempfile::tempdir_in(PathBuf::from(d)).unwrap(),
        None => tempfile::tempdir().unwrap(),
    };
    let original = root.path().join("original");
    let dirty_bytes = {
        let log = Log::open(&original, config()).unwrap();
        let value = vec![b'v'; 100];
        for batch in 0..RECORDS / PER_BATCH {
            let mut b = RecordBatchBuilder::new(1_700_000_000_000);
            for i in 0..PER_BATCH {
                let key = format!("key-{:08}", (batch * PER_BATCH + i) % KEYS);
                b.append(Some(key.as_bytes()), Some(&value), &[], 1_700_000_000_000);
            }
            log.append(&mut b.build(), 0).unwrap();
        }
        log.roll().unwrap();
        let size = log.size_bytes();
        log.close().unwrap();
        size
    };
    let mut group = c.benchmark_group("compaction");
    group.throughput(Throughput::Bytes(dirty_bytes));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(30));
    let mut map = OffsetMap::with_memory(64 << 20);
    let throttler = Throttler::new(f64::INFINITY);
    let mut n = 0;
    group.bench_function("1M-records-10k-keys", |b| {
        b.iter_batched(
            || {
                n += 1;
                let dir = root.path().join(format!("copy-{n}"));
                copy_dir(&original, &dir);
                let options = LogOpenOptions {
                    clean_shutdown: true,
                    ..Default::default()
                };
                (Log::open_with(&dir, config(), options).unwrap(), dir)
            },
            |(log, dir)| {
                let now = 1_800_000_000_000;
                let target = cleanable(&log, 0, now).unwrap().unwrap();
                let stats = clean_log(&log, target, &mut map, &throttler, now).unwrap();
                assert_eq!(stats.records_removed, RECORDS - KEYS);
                drop(log);
                std::fs::remove_dir_all(dir).unwrap();
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

criterion_group!(benches, compaction);
criterion_main!(benches);
