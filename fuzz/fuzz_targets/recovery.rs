//! Arbitrary bytes as a segment file: opening the log must recover without
//! panicking, keep only whole valid batches, and leave a log that reads
//! back completely and accepts appends.
#![no_main]

use gregor_log::batch::{validate_batch_integrity, BatchIter, RecordBatchBuilder};
use gregor_log::{Log, LogConfig};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join(format!("{:020}.log", 0)), data).expect("write segment");
    let config = LogConfig {
        segment_index_bytes: 4096,
        index_interval_bytes: 128,
        retention_ms: -1,
        ..LogConfig::default()
    };
    let log = match Log::open(dir.path(), config) {
        Ok(log) => log,
        Err(e) => panic!("recovery must cope with any tail, got: {e}"),
    };
    // What is left is a prefix of the input made of valid batches.
    let kept = log.size_bytes() as usize;
    assert!(kept <= data.len());
    let mut end = 0;
    for item in BatchIter::new(&data[..kept]) {
        let (at, header) = item.expect("kept bytes parse");
        validate_batch_integrity(&data[at..]).expect("kept batches are valid");
        end = at + header.total_size();
    }
    assert_eq!(end, kept, "the kept prefix is whole batches");
    let mut offset = log.log_start_offset();
    while offset < log.end_offset() {
        let read = log.read(offset, 1 << 16).expect("readable");
        let Some(region) = read.region else { break };
        let bytes = region.read_to_vec().expect("read");
        let last = BatchIter::new(&bytes).last().expect("a batch").expect("parses").1;
        offset = last.next_offset();
    }
    let mut batch = RecordBatchBuilder::new(0);
    batch.append(Some(b"k"), Some(b"v"), &[], 0);
    let end = log.end_offset();
    assert_eq!(
        log.append(&mut batch.build(), 0)
            .expect("append after recovery")
            .first_offset,
        end
    );
});
