//! A rolled segment's lost tail, a follower's legitimate gap and a cleaned
//! segment, each recovered after an unclean shutdown.

use std::path::Path;

use crate::batch::{set_base_offset, BatchIter, RecordBatchBuilder};
use crate::file_names::file_name;
use crate::{Log, LogConfig, LogOpenOptions};

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 1200,
        ..LogConfig::default()
    }
}

fn batch(records: usize, value_len: usize) -> Vec<u8> {
    let mut builder = RecordBatchBuilder::new(0);
    for _ in 0..records {
        builder.append(None, Some(&vec![b'v'; value_len]), &[], 0);
    }
    builder.build()
}

/// Opens `dir` as after a crash: no clean shutdown, every segment recovered.
fn reopen_unclean(dir: &Path) -> Log {
    Log::open_with(dir, config(), LogOpenOptions::default()).unwrap()
}

/// Offsets readable from the log start, in order, stopping at a hole.
fn readable(log: &Log) -> Vec<u64> {
    let mut out = Vec::new();
    let mut offset = log.log_start_offset();
    while offset < log.end_offset() {
        let bytes = log.read_bytes(offset, 1 << 20).unwrap();
        if bytes.is_empty() {
            break;
        }
        for item in BatchIter::new(&bytes) {
            let (_, h) = item.unwrap();
            out.extend(h.base_offset..h.next_offset());
            offset = h.next_offset();
        }
    }
    out
}

#[test]
fn a_rolled_segment_that_lost_its_tail_cuts_the_log_there() {
    let dir = tempfile::tempdir().unwrap();
    let kept_len = {
        let log = Log::open(dir.path(), config()).unwrap();
        log.append(&mut batch(3, 10), 0).unwrap(); // 0..3
        let kept_len = log.size_bytes();
        log.append(&mut batch(4, 10), 0).unwrap(); // 3..7
        log.roll().unwrap();
        log.append(&mut batch(5, 10), 0).unwrap(); // 7..12, in segment 7
        assert_eq!(crate::segment_end::recorded(dir.path(), 0), Some(7));
        kept_len
    };
    // The power cut kept segment 7's bytes and lost segment 0's last batch.
    let first = std::fs::OpenOptions::new()
        .write(true)
        .open(dir.path().join(file_name(0, ".log")))
        .unwrap();
    first.set_len(kept_len).unwrap();
    drop(first);

    let log = reopen_unclean(dir.path());
    assert_eq!(log.end_offset(), 3, "the log is cut at the hole");
    assert_eq!(readable(&log), vec![0, 1, 2]);
    assert_eq!(log.segment_count(), 1);
    assert!(!dir.path().join(file_name(7, ".log")).exists());
    assert_eq!(
        crate::segment_end::recorded(dir.path(), 0),
        None,
        "active again, unmarked"
    );
    assert_eq!(log.append(&mut batch(1, 10), 0).unwrap().first_offset, 3);
}

#[test]
fn a_follower_keeps_the_gap_its_compacted_leader_left_at_a_roll() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = Log::open(dir.path(), config()).unwrap();
        let mut first = batch(2, 500);
        set_base_offset(&mut first, 0);
        log.append_replicated(&first).unwrap(); // 0..2
        let mut second = batch(2, 500);
        set_base_offset(&mut second, 10);
        log.append_replicated(&second).unwrap(); // 10..12: rolls at 10
        assert_eq!(log.segment_count(), 2);
        assert_eq!(
            crate::segment_end::recorded(dir.path(), 0),
            Some(2),
            "its own end, not 10"
        );
    }
    let log = reopen_unclean(dir.path());
    assert_eq!(log.end_offset(), 12);
    assert_eq!(readable(&log), vec![0, 1, 10, 11]);
}

#[test]
fn a_cleaned_segment_drops_the_end_markers_of_those_it_replaced() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = Log::open(dir.path(), config()).unwrap();
        log.append(&mut batch(3, 10), 0).unwrap(); // 0..3
        log.append(&mut batch(4, 10), 0).unwrap(); // 3..7
        log.roll().unwrap();
        log.append(&mut batch(5, 10), 0).unwrap(); // 7..12
                                                   // The cleaner keeps only the first batch of segment 0.
        let bytes = log.read_bytes(0, 1 << 20).unwrap();
        let (at, h) = BatchIter::new(&bytes).next().unwrap().unwrap();
        let mut rewrite = log.begin_rewrite(&[0]).unwrap();
        rewrite.append(&bytes[at..at + h.total_size()]).unwrap();
        log.commit_rewrite(rewrite).unwrap();
        assert_eq!(crate::segment_end::recorded(dir.path(), 0), None);
    }
    let log = reopen_unclean(dir.path());
    assert_eq!(log.end_offset(), 12, "a cleaner's gap is no hole");
    assert_eq!(readable(&log), vec![0, 1, 2, 7, 8, 9, 10, 11]);
}

#[test]
fn truncating_into_a_rolled_segment_drops_its_marker_and_deleting_it_too() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), config()).unwrap();
    log.append(&mut batch(3, 10), 0).unwrap();
    log.roll().unwrap();
    log.append(&mut batch(3, 10), 0).unwrap();
    log.roll().unwrap();
    assert_eq!(crate::segment_end::recorded(dir.path(), 3), Some(6));
    log.truncate_to(4).unwrap();
    assert_eq!(crate::segment_end::recorded(dir.path(), 3), None);
    assert_eq!(crate::segment_end::recorded(dir.path(), 0), Some(3));
    log.truncate_fully_and_start_at(20).unwrap();
    assert_eq!(crate::segment_end::recorded(dir.path(), 0), None);
}
