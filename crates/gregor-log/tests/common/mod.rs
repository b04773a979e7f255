//! Helpers shared by the integration tests.
#![allow(dead_code)]

use gregor_log::batch::{validate_batch_integrity, BatchIter, RecordBatchBuilder, Records};
use gregor_log::{Log, LogConfig};

/// A batch of `n` records `"{tag}-{i}"` with timestamps `ts..`.
pub fn batch(tag: &str, n: usize, ts: i64) -> Vec<u8> {
    let mut b = RecordBatchBuilder::new(ts);
    for i in 0..n {
        let key = format!("k{i}");
        let value = format!("{tag}-{i}");
        b.append(Some(key.as_bytes()), Some(value.as_bytes()), &[], ts + i as i64);
    }
    b.build()
}

/// A small-segment configuration for roll tests.
pub fn small_segments(segment_bytes: u32) -> LogConfig {
    LogConfig {
        segment_bytes,
        index_interval_bytes: 64,
        segment_index_bytes: 4096,
        retention_ms: -1,
        ..LogConfig::default()
    }
}

/// Every record in the log from `from`: (offset, value).
pub fn all_records(log: &Log, from: u64) -> Vec<(u64, Vec<u8>)> {
    let mut out = Vec::new();
    let mut offset = from;
    while offset < log.end_offset() {
        let bytes = log.read_bytes(offset, 64 * 1024).unwrap();
        assert!(!bytes.is_empty(), "no data at {offset} below end {}", log.end_offset());
        for item in BatchIter::new(&bytes) {
            let (at, h) = item.unwrap();
            let batch = &bytes[at..at + h.total_size()];
            validate_batch_integrity(batch).unwrap();
            for r in Records::new(batch, &h) {
                let r = r.unwrap();
                let o = h.base_offset + r.offset_delta as u64;
                if o >= offset {
                    out.push((o, r.value.unwrap_or_default().to_vec()));
                }
            }
            offset = h.next_offset();
        }
    }
    out
}
