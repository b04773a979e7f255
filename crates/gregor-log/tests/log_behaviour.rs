//! One test per behaviour of a partition log.

mod common;

use std::sync::Arc;

use common::*;
use gregor_log::batch::{validate_batch, BatchHeader, BatchIter, TimestampType};
use gregor_log::*;

fn open_with_clock(dir: &std::path::Path, config: LogConfig, clock: &Arc<ManualClock>) -> Log {
    let options = LogOpenOptions {
        clock: clock.clone(),
        ..Default::default()
    };
    Log::open_with(dir, config, options).unwrap()
}

#[test]
fn append_assigns_dense_offsets_and_the_leader_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), LogConfig::default()).unwrap();
    let mut two = batch("a", 2, 10);
    two.extend_from_slice(&batch("b", 3, 20));
    // A producer sends one batch per append (Kafka's rule); a coordinator
    // may append several.
    assert!(matches!(
        log.append(&mut two.clone(), 5),
        Err(LogError::InvalidAppend(_))
    ));
    let info = log.append_with_origin(&mut two, 5, AppendOrigin::Coordinator).unwrap();
    assert_eq!(
        (info.first_offset, info.last_offset, info.batch_count, info.record_count),
        (0, 4, 2, 5)
    );
    let info = log.append(&mut batch("c", 1, 30), 5).unwrap();
    assert_eq!(info.first_offset, 5);
    let bytes = log.read_bytes(0, 1 << 20).unwrap();
    let headers: Vec<BatchHeader> = BatchIter::new(&bytes).map(|r| r.unwrap().1).collect();
    assert_eq!(headers.iter().map(|h| h.base_offset).collect::<Vec<_>>(), vec![0, 2, 5]);
    assert!(headers.iter().all(|h| h.partition_leader_epoch == 5));
    assert_eq!(log.latest_epoch(), Some(5));
    assert_eq!(log.end_offset_for_epoch(5), Some((5, 6)));
}

#[test]
fn corrupt_or_oversized_appends_are_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        max_message_bytes: 200,
        ..LogConfig::default()
    };
    let log = Log::open(dir.path(), config).unwrap();
    let mut bad = batch("x", 2, 0);
    let last = bad.len() - 1;
    bad[last] ^= 0xff;
    assert!(matches!(log.append(&mut bad, 0), Err(LogError::CorruptBatch { .. })));
    let mut big = batch(&"y".repeat(300), 1, 0);
    assert!(matches!(log.append(&mut big, 0), Err(LogError::RecordTooLarge { .. })));
    let mut trailing = batch("z", 1, 0);
    trailing.extend_from_slice(&[0, 0, 0]);
    assert!(matches!(
        log.append(&mut trailing, 0),
        Err(LogError::CorruptBatch { .. })
    ));
    assert!(matches!(log.append(&mut [], 0), Err(LogError::InvalidAppend(_))));
    assert_eq!(log.end_offset(), 0);
    assert_eq!(log.size_bytes(), 0);
}

#[test]
fn read_returns_whole_batches_from_the_one_holding_the_offset() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), small_segments(1 << 20)).unwrap();
    let one = batch("r", 10, 0);
    for _ in 0..20 {
        log.append(&mut one.clone(), 0).unwrap();
    }
    // Offset 25 lies in the third batch (20..30).
    let read = log.read(25, 3 * one.len() as u64 + 10).unwrap();
    assert_eq!(read.first_batch_offset, Some(20));
    let region = read.region.unwrap();
    assert_eq!(region.len(), 3 * one.len() as u64);
    assert_eq!(region.position(), 2 * one.len() as u64);
    // max_bytes smaller than a batch still returns that one batch.
    assert_eq!(log.read(25, 10).unwrap().region.unwrap().len(), one.len() as u64);
    // Bounded by an end offset: only batches wholly below it.
    let bounded = log.read_bounded(0, 1 << 20, 35, true).unwrap();
    assert_eq!(bounded.region.unwrap().len(), 3 * one.len() as u64);
    // At the end: empty; past it: out of range.
    assert!(log.read(200, 100).unwrap().region.is_none());
    assert!(matches!(log.read(201, 100), Err(LogError::OffsetOutOfRange { .. })));
}

#[test]
fn file_region_sends_with_sendfile() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path().join("p"), LogConfig::default()).unwrap();
    log.append(&mut batch("s", 5, 0), 0).unwrap();
    let region = log.read(0, 1 << 20).unwrap().region.unwrap();
    let out = std::fs::File::create(dir.path().join("copy")).unwrap();
    let mut sent = 0;
    region.send_to(&out, &mut sent).unwrap();
    assert_eq!(sent, region.len());
    assert_eq!(
        std::fs::read(dir.path().join("copy")).unwrap(),
        region.read_to_vec().unwrap()
    );
}

#[test]
fn rolls_by_size_time_and_full_index() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(1_000_000));
    // Size.
    let log = open_with_clock(&dir.path().join("size"), small_segments(1000), &clock);
    let b = batch("s", 5, 1_000_000);
    for _ in 0..30 {
        log.append(&mut b.clone(), 0).unwrap();
    }
    let segs = log.segments();
    assert!(segs.len() >= 3);
    assert!(segs.iter().all(|s| s.size <= 1000));
    // Time: segment.ms measured from the first batch's timestamp.
    let config = LogConfig {
        segment_ms: 1000,
        ..LogConfig::default()
    };
    let log = open_with_clock(&dir.path().join("time"), config, &clock);
    log.append(&mut batch("t", 1, 1_000_000), 0).unwrap();
    log.append(&mut batch("t", 1, 1_000_500), 0).unwrap();
    assert_eq!(log.segment_count(), 1);
    log.append(&mut batch("t", 1, 1_001_500), 0).unwrap();
    assert_eq!(log.segment_count(), 2);
    // Full index: room for three offset entries.
    let config = LogConfig {
        segment_index_bytes: 24,
        index_interval_bytes: 1,
        ..LogConfig::default()
    };
    let log = open_with_clock(&dir.path().join("index"), config, &clock);
    for _ in 0..10 {
        log.append(&mut batch("i", 1, 1_000_000), 0).unwrap();
    }
    assert!(log.segment_count() >= 3, "{:?}", log.segments());
    assert_eq!(all_records(&log, 0).len(), 10);
}

#[test]
fn indexes_are_trimmed_on_roll_and_close() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), small_segments(2000)).unwrap();
    for _ in 0..20 {
        log.append(&mut batch("x", 5, 0), 0).unwrap();
    }
    let active = log.segments().last().unwrap().base_offset;
    let index_len = |base: u64, ext: &str| {
        std::fs::metadata(dir.path().join(format!("{base:020}.{ext}")))
            .unwrap()
            .len()
    };
    assert_eq!(index_len(active, "index"), 4096, "active index preallocated");
    let first = log.segments()[0].clone();
    assert_eq!(
        index_len(0, "index"),
        8 * first.index_entries as u64,
        "rolled index trimmed"
    );
    log.close().unwrap();
    assert!(index_len(active, "index") < 4096);
    assert_eq!(index_len(active, "timeindex") % 12, 0);
}

#[test]
fn offset_for_timestamp_finds_the_first_record_at_or_after() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), small_segments(1500)).unwrap();
    for i in 0..40i64 {
        log.append(&mut batch("t", 4, 10_000 + i * 10), 0).unwrap(); // records at +0..+3
    }
    assert!(log.segment_count() > 2);
    assert_eq!(log.offset_for_timestamp(0).unwrap(), Some((0, 10_000)));
    assert_eq!(log.offset_for_timestamp(10_002).unwrap(), Some((2, 10_002)));
    // 10_105 is between batch 10 (10_100..10_103) and batch 11 (10_110..).
    assert_eq!(log.offset_for_timestamp(10_105).unwrap(), Some((44, 10_110)));
    assert_eq!(log.offset_for_timestamp(10_393).unwrap(), Some((159, 10_393)));
    assert_eq!(log.offset_for_timestamp(10_394).unwrap(), None);
}

#[test]
fn max_timestamp_offset_finds_the_first_record_with_the_largest_timestamp() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), small_segments(1500)).unwrap();
    assert_eq!(log.max_timestamp_offset().unwrap(), None, "an empty log");
    // Timestamps go up, then a late batch (offsets 80..83) carries the
    // largest ones, then they go down again; segments roll in between.
    for i in 0..20i64 {
        log.append(&mut batch("t", 4, 10_000 + i * 10), 0).unwrap();
    }
    log.append(&mut batch("t", 4, 50_000), 0).unwrap();
    for i in 0..20i64 {
        log.append(&mut batch("t", 4, 20_000 + i), 0).unwrap();
    }
    assert!(log.segment_count() > 2);
    assert_eq!(log.max_timestamp_offset().unwrap(), Some((83, 50_003)));
}

#[test]
fn log_append_time_stamps_batches() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(777_000));
    let config = LogConfig {
        message_timestamp_type: MessageTimestampType::LogAppendTime,
        ..LogConfig::default()
    };
    let log = open_with_clock(dir.path(), config, &clock);
    let info = log.append(&mut batch("l", 2, 5), 0).unwrap();
    assert_eq!(info.log_append_time, Some(777_000));
    let bytes = log.read_bytes(0, 1 << 20).unwrap();
    let header = validate_batch(&bytes).unwrap();
    assert_eq!(header.timestamp_type(), TimestampType::LogAppendTime);
    assert_eq!(header.max_timestamp, 777_000);
}

#[test]
fn retention_by_time_deletes_old_segments_but_not_the_active_one() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(1_000_000));
    let config = LogConfig {
        retention_ms: 10_000,
        ..small_segments(600)
    };
    let log = open_with_clock(dir.path(), config, &clock);
    for i in 0..30 {
        log.append(&mut batch("old", 3, 1_000_000 + i), 0).unwrap();
    }
    let before = log.segment_count();
    assert!(before > 2);
    clock.advance(5_000);
    assert_eq!(log.apply_retention().unwrap().deleted_segments, 0);
    clock.advance(100_000);
    let outcome = log.apply_retention().unwrap();
    assert_eq!(outcome.deleted_segments, before - 1);
    assert_eq!(log.segment_count(), 1, "the active segment stays");
    assert_eq!(log.log_start_offset(), log.segments()[0].base_offset);
    assert!(matches!(log.read(0, 100), Err(LogError::OffsetOutOfRange { .. })));
    let files = std::fs::read_dir(dir.path())
        .unwrap()
        .filter(|e| {
            let name = e.as_ref().unwrap().file_name().into_string().unwrap();
            [".log", ".index", ".timeindex"].iter().any(|ext| name.ends_with(ext))
        })
        .count();
    assert_eq!(files, 3, "only the active segment's three files remain");
}

#[test]
fn retention_by_bytes_keeps_the_log_under_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        retention_bytes: 2000,
        ..small_segments(700)
    };
    let log = Log::open(dir.path(), config).unwrap();
    for _ in 0..30 {
        log.append(&mut batch("b", 3, 0), 0).unwrap();
    }
    let total_before = log.size_bytes();
    assert!(total_before > 2000);
    log.apply_retention().unwrap();
    let segs = log.segments();
    let total: u64 = segs.iter().map(|s| s.size).sum();
    assert!(total < total_before, "nothing was deleted");
    // Kafka's rule: delete the oldest while the excess covers it whole, so
    // what remains exceeds the limit by less than its oldest segment.
    assert!(total.saturating_sub(2000) < segs[0].size, "{total} {:?}", segs);
}

#[test]
fn delete_records_moves_the_log_start_and_drops_whole_segments() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), small_segments(500)).unwrap();
    for _ in 0..20 {
        log.append(&mut batch("d", 3, 0), 0).unwrap();
    }
    let segments = log.segments();
    let third = segments[2].base_offset;
    assert_eq!(log.delete_records(third + 1).unwrap(), third + 1);
    assert_eq!(log.segments()[0].base_offset, third);
    assert!(matches!(log.read(third, 100), Err(LogError::OffsetOutOfRange { .. })));
    assert_eq!(all_records(&log, third + 1)[0].0, third + 1);
    assert!(log.delete_records(log.end_offset() + 1).is_err());
}

#[test]
fn truncate_to_removes_the_tail_and_appends_continue() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), small_segments(600)).unwrap();
    for epoch in 0..3 {
        for _ in 0..5 {
            log.append(&mut batch("e", 2, 0), epoch).unwrap();
        }
    }
    assert_eq!(log.end_offset(), 30);
    log.truncate_to(14).unwrap();
    assert_eq!(log.end_offset(), 14);
    assert_eq!(log.latest_epoch(), Some(1));
    // A straddled batch (12..14 exists, truncating to 13 cuts it whole).
    log.truncate_to(13).unwrap();
    assert_eq!(log.end_offset(), 12);
    let info = log.append(&mut batch("after", 2, 0), 7).unwrap();
    assert_eq!(info.first_offset, 12);
    let recs = all_records(&log, 0);
    assert_eq!(recs.len(), 14);
    assert_eq!(recs.last().unwrap().1, b"after-1".to_vec());
    drop(log);
    let log = Log::open(dir.path(), small_segments(600)).unwrap();
    assert_eq!(log.end_offset(), 14);
    assert_eq!(log.latest_epoch(), Some(7));
    log.truncate_fully_and_start_at(100).unwrap();
    assert_eq!(
        (log.log_start_offset(), log.end_offset(), log.segment_count()),
        (100, 100, 1)
    );
    assert_eq!(log.append(&mut batch("new", 1, 0), 8).unwrap().first_offset, 100);
}

#[test]
fn replicated_appends_keep_offsets_and_reject_going_backwards() {
    let dir = tempfile::tempdir().unwrap();
    let leader = Log::open(dir.path().join("leader"), LogConfig::default()).unwrap();
    for _ in 0..3 {
        leader.append(&mut batch("rep", 4, 0), 3).unwrap();
    }
    let follower = Log::open(dir.path().join("follower"), LogConfig::default()).unwrap();
    let bytes = leader.read_bytes(4, 1 << 20).unwrap();
    assert!(matches!(
        follower.append_replicated(&bytes),
        Ok(AppendInfo {
            first_offset: 4,
            last_offset: 11,
            ..
        })
    ));
    assert_eq!(follower.end_offset(), 12);
    assert_eq!(follower.latest_epoch(), Some(3));
    assert!(matches!(
        follower.append_replicated(&bytes),
        Err(LogError::OffsetsOutOfOrder { .. })
    ));
}

#[test]
fn cut_mid_batch_then_reopen_keeps_the_whole_batches() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), LogConfig::default()).unwrap();
    let b = batch("crash", 10, 0);
    for _ in 0..5 {
        log.append(&mut b.clone(), 0).unwrap();
    }
    drop(log); // no close: as if the process died
    let file = dir.path().join(format!("{:020}.log", 0));
    let len = std::fs::metadata(&file).unwrap().len();
    let f = std::fs::OpenOptions::new().write(true).open(&file).unwrap();
    f.set_len(len - (b.len() as u64 / 2)).unwrap();
    let log = Log::open(dir.path(), LogConfig::default()).unwrap();
    assert_eq!(log.end_offset(), 40);
    assert_eq!(std::fs::metadata(&file).unwrap().len(), 4 * b.len() as u64);
    assert_eq!(log.append(&mut b.clone(), 0).unwrap().first_offset, 40);
    assert_eq!(all_records(&log, 0).len(), 50);
}

#[test]
fn corruption_in_an_older_segment_drops_everything_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), small_segments(600)).unwrap();
    for _ in 0..20 {
        log.append(&mut batch("c", 3, 0), 0).unwrap();
    }
    let segs = log.segments();
    drop(log);
    let second = dir.path().join(format!("{:020}.log", segs[1].base_offset));
    let mut bytes = std::fs::read(&second).unwrap();
    let n = bytes.len();
    bytes[n - 5] ^= 0x55; // corrupt the last batch of the second segment
    std::fs::write(&second, &bytes).unwrap();
    let log = Log::open(dir.path(), small_segments(600)).unwrap();
    assert_eq!(log.segment_count(), 2);
    let recs = all_records(&log, 0);
    assert_eq!(recs.len() as u64, log.end_offset());
    assert!(log.end_offset() < segs[2].base_offset);
}

#[test]
fn missing_or_corrupt_indexes_are_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), small_segments(1500)).unwrap();
    for _ in 0..40 {
        log.append(&mut batch("i", 3, 0), 0).unwrap();
    }
    let segs = log.segments();
    log.close().unwrap();
    std::fs::remove_file(dir.path().join(format!("{:020}.index", 0))).unwrap();
    std::fs::write(
        dir.path().join(format!("{:020}.index", segs[1].base_offset)),
        [0xffu8; 16],
    )
    .unwrap();
    let options = LogOpenOptions {
        clean_shutdown: true,
        ..Default::default()
    };
    let log = Log::open_with(dir.path(), small_segments(1500), options).unwrap();
    assert!(segs.len() > 2);
    assert_eq!(log.segments()[0].index_entries, segs[0].index_entries);
    assert_eq!(log.segments()[1].index_entries, segs[1].index_entries);
    assert_eq!(all_records(&log, 0).len(), 120);
}

#[test]
fn flush_every_n_messages_advances_the_recovery_point() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        flush_messages: 5,
        ..LogConfig::default()
    };
    let log = Log::open(dir.path(), config).unwrap();
    log.append(&mut batch("f", 3, 0), 0).unwrap();
    assert_eq!(log.recovery_point(), 0);
    log.append(&mut batch("f", 3, 0), 0).unwrap();
    assert_eq!(log.recovery_point(), 6);
}

#[test]
fn interval_flush_happens_when_due() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(0));
    let config = LogConfig {
        flush_ms: 1000,
        ..LogConfig::default()
    };
    let log = open_with_clock(dir.path(), config, &clock);
    log.append(&mut batch("f", 3, 0), 0).unwrap();
    assert!(!log.flush_if_due().unwrap());
    clock.advance(1000);
    assert!(log.flush_if_due().unwrap());
    assert_eq!(log.recovery_point(), 3);
}

#[test]
fn group_commit_appends_return_durable_and_share_syncs() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        flush_group_commit: true,
        ..LogConfig::default()
    };
    let log = Arc::new(Log::open(dir.path(), config).unwrap());
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let log = log.clone();
            std::thread::spawn(move || {
                for _ in 0..50 {
                    let info = log.append(&mut batch(&format!("g{t}"), 2, 0), 0).unwrap();
                    assert!(log.recovery_point() > info.last_offset, "returned before durable");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(log.end_offset(), 800);
    assert_eq!(log.recovery_point(), 800);
}

#[test]
fn readers_run_while_a_writer_appends() {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(Log::open(dir.path(), small_segments(8192)).unwrap());
    let writer = {
        let log = log.clone();
        std::thread::spawn(move || {
            for i in 0..400 {
                log.append(&mut batch(&format!("w{i}"), 5, i), 0).unwrap();
            }
        })
    };
    let readers: Vec<_> = (0..3)
        .map(|_| {
            let log = log.clone();
            std::thread::spawn(move || {
                let mut seen = 0u64;
                while seen < 2000 {
                    let end = log.end_offset();
                    if end > seen {
                        let recs = all_records(&log, seen);
                        assert!(recs.iter().enumerate().all(|(i, (o, _))| *o == seen + i as u64));
                        seen += recs.len() as u64;
                    }
                }
            })
        })
        .collect();
    writer.join().unwrap();
    for r in readers {
        r.join().unwrap();
    }
}

#[test]
fn a_closed_log_refuses_appends() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), LogConfig::default()).unwrap();
    log.close().unwrap();
    assert!(matches!(
        log.append(&mut batch("x", 1, 0), 0),
        Err(LogError::Offline(_))
    ));
}

#[test]
fn reads_skip_batches_the_cleaner_emptied() {
    use gregor_log::batch::{rebuild_with_records, set_base_offset, validate_batch};
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), LogConfig::default()).unwrap();
    // Offsets 0..=4 survive only as an empty batch, in a segment of their own.
    let mut full = batch("gone", 5, 0);
    set_base_offset(&mut full, 0);
    let header = validate_batch(&full).unwrap();
    let empty = rebuild_with_records(&full, &header, &[]).unwrap();
    log.append_replicated(&empty).unwrap();
    log.roll().unwrap();
    assert_eq!(log.end_offset(), 5);
    log.append(&mut batch("kept", 2, 0), 0).unwrap();
    let read = log.read(0, 1 << 20).unwrap();
    assert_eq!(
        read.first_batch_offset,
        Some(5),
        "the empty batch and its segment are skipped"
    );
    assert_eq!(all_records(&log, 5).len(), 2);
}
