//! Compaction throughput: 1M records over 10k keys, MB/s of dirty log,
//! uncompressed and in zstd batches (throughput counts the stored, compressed
//! bytes; the records' uncompressed size is printed too).
//!
//! `GREGOR_BENCH_DIR=/var/tmp cargo bench -p gregor-compactor --bench compaction`
//! (results: docs/PERFORMANCE.md).

use std::path::{Path, PathBuf};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use gregor_compactor::{clean_log, cleanable, OffsetMap, Throttler};
use gregor_log::batch::{Compression, RecordBatchBuilder};
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
    let mut group = c.benchmark_group("compaction");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(30));
    let mut map = OffsetMap::with_memory(64 << 20);
    let throttler = Throttler::new(f64::INFINITY);
    for (name, codec) in [("none", Compression::None), ("zstd", Compression::Zstd)] {
        let original = root.path().join(format!("original-{name}"));
        let (dirty_bytes, record_bytes) = write_log(&original, codec);
        println!("compaction/{name}: {dirty_bytes} bytes stored, {record_bytes} bytes of records");
        group.throughput(Throughput::Bytes(dirty_bytes));
        let mut n = 0;
        group.bench_function(format!("1M-records-10k-keys/{name}"), |b| {
            b.iter_batched(
                || {
                    n += 1;
                    let dir = root.path().join(format!("copy-{name}-{n}"));
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
    }
    group.finish();
}

/// Writes the dirty log; returns its size on disk and the records' size.
fn write_log(dir: &Path, codec: Compression) -> (u64, u64) {
    let log = Log::open(dir, config()).unwrap();
    let mut record_bytes = 0;
    for batch in 0..RECORDS / PER_BATCH {
        let mut b = RecordBatchBuilder::new(1_700_000_000_000);
        for i in 0..PER_BATCH {
            let n = batch * PER_BATCH + i;
            let key = format!("key-{:08}", n % KEYS);
            // Values compress about as well as typical JSON does (~4x).
            let value = format!(
                "{{\"n\":{n},\"payload\":\"{:064x}\"}}",
                n.wrapping_mul(0x9e37_79b9_7f4a_7c15)
            );
            b.append(Some(key.as_bytes()), Some(value.as_bytes()), &[], 1_700_000_000_000);
        }
        record_bytes += b.size() as u64;
        log.append(&mut b.build_compressed(codec).unwrap(), 0).unwrap();
    }
    log.roll().unwrap();
    let size = log.size_bytes();
    log.close().unwrap();
    (size, record_bytes)
}

criterion_group!(benches, compaction);
criterion_main!(benches);
