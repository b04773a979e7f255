//! Compaction of single logs: what survives, tombstones, offsets, the
//! active segment, bounded memory, and a large log.

mod common;

use std::sync::Arc;

use common::*;
use gregor_compactor::*;
use gregor_log::batch::Compression;
use gregor_log::*;

fn clean(log: &Log, checkpoint: u64, memory: usize, now: i64) -> Option<CleanStats> {
    let target = cleanable(log, checkpoint, now).unwrap()?;
    let mut map = OffsetMap::with_memory(memory);
    Some(clean_log(log, target, &mut map, &Throttler::new(f64::INFINITY), now).unwrap())
}

#[test]
fn keeps_the_latest_value_per_key_and_never_touches_the_active_segment() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(1_000_000));
    let log = open(dir.path(), compacted(2048), &clock);
    let mut updates = Vec::new();
    for round in 0..20 {
        for k in 0..10 {
            updates.push((k, Some(format!("v{round}"))));
        }
    }
    write(&log, &updates, 5, 1_000_000);
    let before = view(&log);
    let active_before = log.segments().last().unwrap().clone();
    let size_before = log.size_bytes();
    let stats = clean(&log, 0, 1 << 20, clock.now_ms()).unwrap();
    assert!(stats.records_removed > 0);
    assert_eq!(stats.cleaned_up_to, active_before.base_offset);
    assert_eq!(view(&log), before);
    assert!(offsets_increase(&log));
    assert_eq!(
        log.segments().last().unwrap(),
        &active_before,
        "active segment untouched"
    );
    assert!(
        log.size_bytes() < size_before / 2,
        "{} vs {size_before}",
        log.size_bytes()
    );
    // Only the latest record per key is left below the active segment.
    let cleaned: Vec<_> = scan(&log)
        .into_iter()
        .filter(|(o, _, _)| *o < active_before.base_offset)
        .collect();
    let mut keys: Vec<_> = cleaned.iter().map(|(_, k, _)| k.clone()).collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), cleaned.len());
    // The log reopens (recovery validates every rewritten batch).
    drop(log);
    let log = open(dir.path(), compacted(2048), &clock);
    assert_eq!(view(&log), before);
}

#[test]
fn tombstones_stay_for_delete_retention_after_they_become_clean() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(10_000_000));
    let log = open(dir.path(), compacted(1024), &clock);
    let mut updates: Vec<_> = (0..20).map(|k| (k, Some("v".to_string()))).collect();
    updates.extend((0..10).map(|k| (k, None)));
    updates.extend((100..160).map(|k| (k, Some("filler".to_string()))));
    write(&log, &updates, 4, clock.now_ms());
    let stats = clean(&log, 0, 1 << 20, clock.now_ms()).unwrap();
    let tombstones = |log: &Log| scan(log).iter().filter(|(_, _, v)| v.is_none()).count();
    assert_eq!(tombstones(&log), 10, "fresh tombstones are kept");
    // Within delete.retention.ms (1 s): still there.
    clock.advance(500);
    write(&log, &[(999, Some("x".into()))], 1, clock.now_ms());
    log.roll().unwrap();
    let stats2 = clean(&log, stats.cleaned_up_to, 1 << 20, clock.now_ms()).unwrap();
    assert_eq!(tombstones(&log), 10);
    // Past it, measured from when they were cleaned: gone, and so are the values.
    clock.advance(5_000);
    write(&log, &[(998, Some("y".into()))], 1, clock.now_ms());
    log.roll().unwrap();
    clean(&log, stats2.cleaned_up_to, 1 << 20, clock.now_ms()).unwrap();
    assert_eq!(tombstones(&log), 0);
    let v = view(&log);
    assert!((0..10).all(|k| !v.contains_key(format!("key-{k}").as_bytes())));
    assert!((10..20).all(|k| v.contains_key(format!("key-{k}").as_bytes())));
}

#[test]
fn tombstones_go_an_hour_after_their_first_pass_however_often_they_are_rewritten() {
    const HOUR: i64 = 3_600_000;
    const PASS_EVERY: i64 = 5 * 60_000;
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(10_000_000));
    let config = LogConfig {
        delete_retention_ms: HOUR,
        ..compacted(1024)
    };
    let log = open(dir.path(), config, &clock);
    let start = clock.now_ms();
    write(
        &log,
        &[(1, Some("v".into())), (1, None), (2, Some("v".into()))],
        1,
        start,
    );
    log.roll().unwrap();
    let tombstones = |log: &Log| scan(log).iter().filter(|(_, _, v)| v.is_none()).count();
    let mut checkpoint = 0;
    for i in 0..100 {
        let now = clock.now_ms();
        let stats = clean(&log, checkpoint, 1 << 20, now).expect("something is dirty");
        checkpoint = stats.cleaned_up_to;
        if now >= start + HOUR {
            assert_eq!(tombstones(&log), 0, "pass {i} at +{} ms", now - start);
            break;
        }
        assert_eq!(tombstones(&log), 1, "pass {i} at +{} ms", now - start);
        // The segment holding it is rewritten (its modified time renewed).
        assert!(i == 0 || stats.segments_replaced > 1);
        clock.advance(PASS_EVERY);
        write(&log, &[(100 + i, Some("filler".into()))], 1, clock.now_ms());
        log.roll().unwrap();
    }
    assert_eq!(clock.now_ms(), start + HOUR);
    let v = view(&log);
    assert!(!v.contains_key(&b"key-1"[..]) && v.contains_key(&b"key-2"[..]));
}

#[test]
fn a_full_offset_map_cleans_the_part_that_fit_and_the_rest_next_time() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(1_000_000));
    let log = open(dir.path(), compacted(4096), &clock);
    let updates: Vec<_> = (0..3)
        .flat_map(|r| (0..400).map(move |k| (k, Some(format!("r{r}")))))
        .collect();
    write(&log, &updates, 10, clock.now_ms());
    let before = view(&log);
    // Room for ~200 keys: the map fills early.
    let first = clean(&log, 0, 24 * 230, clock.now_ms()).unwrap();
    let active = log.segments().last().unwrap().base_offset;
    assert!(first.cleaned_up_to < active, "stopped early at {}", first.cleaned_up_to);
    assert_eq!(view(&log), before);
    let mut checkpoint = first.cleaned_up_to;
    while let Some(next) = clean(&log, checkpoint, 24 * 230, clock.now_ms()) {
        assert!(next.cleaned_up_to > checkpoint, "progress");
        checkpoint = next.cleaned_up_to;
    }
    assert_eq!(view(&log), before);
    assert!(offsets_increase(&log));
}

#[test]
fn min_compaction_lag_holds_recent_segments_back() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(1_000_000));
    let config = LogConfig {
        min_compaction_lag_ms: 10_000,
        ..compacted(1024)
    };
    let log = open(dir.path(), config, &clock);
    let updates: Vec<_> = (0..100).map(|i| (i % 5, Some(format!("v{i}")))).collect();
    write(&log, &updates, 5, clock.now_ms());
    assert!(cleanable(&log, 0, clock.now_ms()).unwrap().is_none());
    clock.advance(20_000);
    assert!(cleanable(&log, 0, clock.now_ms()).unwrap().is_some());
}

#[test]
fn records_without_a_key_are_refused_on_a_compacted_log() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), compacted(1 << 20)).unwrap();
    let mut b = gregor_log::batch::RecordBatchBuilder::new(0);
    b.append(None, Some(b"no key"), &[], 0);
    let err = log.append(&mut b.build(), 0).unwrap_err();
    let LogError::InvalidRecords(refused) = &err else {
        panic!("{err}");
    };
    let partition = dir.path().file_name().unwrap().to_string_lossy();
    assert_eq!(
        refused.records,
        vec![(
            0,
            format!("Compacted topic cannot accept message without key in topic partition {partition}")
        )]
    );
    assert!(!refused.invalid_timestamp);
}

const CODECS: [Compression; 4] = [
    Compression::Gzip,
    Compression::Snappy,
    Compression::Lz4,
    Compression::Zstd,
];

#[test]
fn compressed_batches_are_compacted_and_keep_their_codec() {
    for codec in CODECS {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::new(1_000_000));
        let log = open(dir.path(), compacted(2048), &clock);
        let updates: Vec<_> = (0..30)
            .flat_map(|round| (0..10).map(move |k| (k, Some(format!("v{round}")))))
            .collect();
        write_compressed(&log, &updates, 7, clock.now_ms(), codec);
        log.roll().unwrap();
        let before = view(&log);
        let stats = clean(&log, 0, 1 << 20, clock.now_ms()).unwrap();
        assert_eq!(stats.records_read, 300, "{codec:?}");
        assert_eq!(stats.records_removed, 290, "{codec:?}");
        assert_eq!(view(&log), before, "{codec:?}");
        assert_eq!(scan(&log).len(), 10, "{codec:?}");
        assert!(offsets_increase(&log));
        let batches = batch_codecs(&log);
        assert!(
            batches
                .iter()
                .all(|&(c, n)| c == codec || (n == 0 && c == Compression::None)),
            "{codec:?}: {batches:?}"
        );
    }
}

#[test]
fn compressed_records_without_a_key_are_refused_on_a_compacted_log() {
    for codec in CODECS {
        let dir = tempfile::tempdir().unwrap();
        let log = Log::open(dir.path(), compacted(1 << 20)).unwrap();
        let mut b = batch::RecordBatchBuilder::new(0);
        b.append(Some(b"k"), Some(b"keyed"), &[], 0);
        b.append(None, Some(b"no key"), &[], 0);
        let err = log.append(&mut b.build_compressed(codec).unwrap(), 0).unwrap_err();
        let LogError::InvalidRecords(refused) = &err else {
            panic!("{codec:?}: {err}");
        };
        let indexes: Vec<i32> = refused.records.iter().map(|(i, _)| *i).collect();
        assert_eq!(indexes, vec![1], "{codec:?}: the keyless record's index in its batch");
        assert_eq!(log.end_offset(), 0);
    }
}

/// A batch whose CRC is right but whose compressed records are garbage.
fn garbage_compressed_batch(codec: Compression) -> Vec<u8> {
    let mut b = batch::RecordBatchBuilder::new(0);
    b.append(Some(b"k"), Some(b"v"), &[], 0);
    let mut bytes = b.build_compressed(codec).unwrap();
    for byte in &mut bytes[batch::BATCH_HEADER_SIZE..] {
        *byte ^= 0x5a;
    }
    let crc = batch::compute_crc(&bytes);
    bytes[17..21].copy_from_slice(&crc.to_be_bytes());
    bytes
}

#[test]
fn unreadable_compressed_batches_are_refused_by_a_compacted_log_and_kept_by_the_cleaner() {
    for codec in CODECS {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::new(1_000_000));
        let log = open(dir.path(), compacted(1 << 20), &clock);
        let err = log.append(&mut garbage_compressed_batch(codec), 0).unwrap_err();
        assert!(matches!(err, LogError::CorruptBatch { .. }), "{codec:?}: {err}");
        // A replica copies what its leader has; the cleaner keeps such a
        // batch as it is and cleans the rest.
        let updates: Vec<_> = (0..20).map(|i| (i % 2, Some(format!("v{i}")))).collect();
        write(&log, &updates[..10], 5, clock.now_ms());
        let garbage = garbage_compressed_batch(codec);
        let mut replicated = garbage.clone();
        batch::set_base_offset(&mut replicated, log.end_offset());
        log.append_replicated(&replicated).unwrap();
        write(&log, &updates[10..], 5, clock.now_ms());
        log.roll().unwrap();
        let stats = clean(&log, 0, 1 << 20, clock.now_ms()).unwrap();
        assert_eq!(stats.records_removed, 18, "{codec:?}");
        let kept = log.read_bytes(10, 1 << 20).unwrap();
        assert_eq!(&kept[8..garbage.len()], &replicated[8..], "{codec:?}");
    }
}

#[test]
fn compacts_a_log_of_100k_records() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(1_000_000));
    let log = open(dir.path(), compacted(1 << 20), &clock);
    let updates: Vec<_> = (0..100_000u32)
        .map(|i| (i % 1000, Some(format!("value-{i}"))))
        .collect();
    write(&log, &updates, 100, clock.now_ms());
    log.roll().unwrap();
    let before = view(&log);
    let stats = clean(&log, 0, 1 << 20, clock.now_ms()).unwrap();
    assert_eq!(stats.records_read, 100_000);
    assert_eq!(stats.records_removed, 99_000);
    assert_eq!(view(&log), before);
    assert_eq!(scan(&log).len(), 1000);
    assert!(offsets_increase(&log));
}
