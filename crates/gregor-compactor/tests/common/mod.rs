//! Helpers: logs of keyed updates and their key → value view.
#![allow(dead_code)]

pub mod txn;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use gregor_log::batch::{
    record_section, validate_batch_integrity, BatchHeader, BatchIter, Compression, RecordBatchBuilder, Records,
};
use gregor_log::{CleanupPolicy, Log, LogConfig, LogOpenOptions, ManualClock};

/// A compacted-topic configuration with small segments.
pub fn compacted(segment_bytes: u32) -> LogConfig {
    LogConfig {
        cleanup_policy: CleanupPolicy::Compact,
        segment_bytes,
        index_interval_bytes: 256,
        segment_index_bytes: 64 * 1024,
        retention_ms: -1,
        delete_retention_ms: 1000,
        min_cleanable_dirty_ratio: 0.0,
        ..LogConfig::default()
    }
}

pub fn open(dir: &Path, config: LogConfig, clock: &Arc<ManualClock>) -> Log {
    let options = LogOpenOptions {
        clock: clock.clone(),
        ..Default::default()
    };
    Log::open_with(dir, config, options).unwrap()
}

/// Appends `updates` (key, value or tombstone), `per_batch` to a batch.
pub fn write(log: &Log, updates: &[(u32, Option<String>)], per_batch: usize, ts: i64) {
    write_compressed(log, updates, per_batch, ts, Compression::None);
}

/// As [`write`], each batch compressed with `codec`.
pub fn write_compressed(log: &Log, updates: &[(u32, Option<String>)], per_batch: usize, ts: i64, codec: Compression) {
    for chunk in updates.chunks(per_batch.max(1)) {
        let mut b = RecordBatchBuilder::new(ts);
        for (k, v) in chunk {
            let key = format!("key-{k}");
            b.append(Some(key.as_bytes()), v.as_deref().map(str::as_bytes), &[], ts);
        }
        log.append(&mut b.build_compressed(codec).unwrap(), 0).unwrap();
    }
}

/// Calls `f` with every batch from the log start, checked for integrity.
fn for_each_batch(log: &Log, mut f: impl FnMut(&[u8], &BatchHeader)) {
    let mut offset = log.log_start_offset();
    while offset < log.end_offset() {
        let bytes = log.read_bytes(offset, 1 << 20).unwrap();
        if bytes.is_empty() {
            break;
        }
        for item in BatchIter::new(&bytes) {
            let (at, h) = item.unwrap();
            let batch = &bytes[at..at + h.total_size()];
            validate_batch_integrity(batch).unwrap();
            f(batch, &h);
            offset = h.next_offset();
        }
    }
}

/// Every record from the start: (offset, key, value).
pub fn scan(log: &Log) -> Vec<(u64, Vec<u8>, Option<Vec<u8>>)> {
    let mut out = Vec::new();
    for_each_batch(log, |batch, h| {
        let section = record_section(batch, h).unwrap();
        for r in Records::from_section(&section, h.record_count) {
            let r = r.unwrap();
            out.push((
                h.base_offset + r.offset_delta as u64,
                r.key.unwrap().to_vec(),
                r.value.map(<[u8]>::to_vec),
            ));
        }
    });
    out
}

/// The latest value per key; tombstones delete.
pub fn view(log: &Log) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let mut m = BTreeMap::new();
    for (_, k, v) in scan(log) {
        match v {
            Some(v) => {
                m.insert(k, v);
            }
            None => {
                m.remove(&k);
            }
        }
    }
    m
}

/// The codec of every batch from the start, with its record count.
pub fn batch_codecs(log: &Log) -> Vec<(Compression, u32)> {
    let mut out = Vec::new();
    for_each_batch(log, |_, h| out.push((h.compression().unwrap(), h.record_count)));
    out
}

/// Offsets strictly increase.
pub fn offsets_increase(log: &Log) -> bool {
    scan(log).windows(2).all(|w| w[0].0 < w[1].0)
}
