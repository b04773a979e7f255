//! A crash between any two steps of the segment swap leaves a log that
//! opens with the same key → value view; and, for random logs, compaction
//! keeps exactly the view a full scan gives.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use common::*;
use gregor_compactor::*;
use gregor_log::batch::Compression;
use gregor_log::*;
use proptest::prelude::*;

fn clean_fully(log: &Log, now: i64) {
    let mut checkpoint = 0;
    let mut map = OffsetMap::with_memory(1 << 20);
    while let Some(target) = cleanable(log, checkpoint, now).unwrap() {
        checkpoint = clean_log(log, target, &mut map, &Throttler::new(f64::INFINITY), now)
            .unwrap()
            .cleaned_up_to;
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

fn segment_files(dir: &Path, base: u64) -> Vec<(String, std::path::PathBuf)> {
    [".log", ".index", ".timeindex"]
        .iter()
        .map(|ext| (format!("{base:020}{ext}"), dir.join(format!("{base:020}{ext}"))))
        .collect()
}

#[test]
fn a_crash_at_any_step_of_the_swap_leaves_the_same_view() {
    let root = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(1_000_000));
    let (orig, cleaned) = (root.path().join("orig"), root.path().join("cleaned"));
    let expected = {
        let log = open(&orig, compacted(1500), &clock);
        let updates: Vec<_> = (0..300).map(|i| (i % 17, Some(format!("value-{i}")))).collect();
        write(&log, &updates, 6, clock.now_ms());
        // A first pass leaves small cleaned segments, which the pass under
        // test groups into fewer ones.
        clean_fully(&log, clock.now_ms());
        let more: Vec<_> = (0..60).map(|i| (i % 17, Some(format!("newer-{i}")))).collect();
        write(&log, &more, 6, clock.now_ms());
        log.roll().unwrap();
        let v = view(&log);
        log.close().unwrap();
        v
    };
    copy_dir(&orig, &cleaned);
    let (old_bases, new_bases) = {
        let log = open(&cleaned, compacted(1500), &clock);
        let old: Vec<u64> = log.segments().iter().map(|s| s.base_offset).collect();
        clean_fully(&log, clock.now_ms());
        let new: Vec<u64> = log.segments().iter().map(|s| s.base_offset).collect();
        assert_eq!(view(&log), expected);
        log.close().unwrap();
        (old, new)
    };
    let active = *old_bases.last().unwrap();
    let rewritten: Vec<u64> = new_bases.iter().copied().filter(|b| *b != active).collect();
    assert!(
        old_bases.len() > rewritten.len() + 1,
        "segments were grouped: {old_bases:?} -> {new_bases:?}"
    );

    let check = |dir: &Path, what: &str| {
        let log = open(dir, compacted(1500), &clock);
        assert_eq!(view(&log), expected, "{what}");
        assert!(offsets_increase(&log), "{what}");
        assert!(
            !std::fs::read_dir(dir).unwrap().any(|e| {
                let n = e.unwrap().file_name().into_string().unwrap();
                n.ends_with(".swap") || n.ends_with(".cleaned") || n.ends_with(".deleted")
            }),
            "{what}: leftovers remain"
        );
    };
    let stage = |name: &str, suffix: &str, retire: usize, from_cleaned: bool| {
        let dir = root.path().join(name);
        copy_dir(if from_cleaned { &cleaned } else { &orig }, &dir);
        if !from_cleaned {
            for &b in &rewritten {
                for (file, path) in segment_files(&cleaned, b) {
                    std::fs::copy(path, dir.join(file + suffix)).unwrap();
                }
            }
        }
        // Old segments already renamed to .deleted (the first `retire` of them).
        for &b in old_bases.iter().filter(|b| **b != active).take(retire) {
            for (file, path) in segment_files(&orig, b) {
                let live = dir.join(&file);
                if !from_cleaned {
                    let _ = std::fs::remove_file(&live);
                }
                std::fs::copy(path, dir.join(file + ".deleted")).unwrap();
            }
        }
        dir
    };
    // 1. Cleaned files written, not yet renamed: dropped, the old log stands.
    check(
        &stage("cleaned-written", ".cleaned", 0, false),
        "crash before .cleaned -> .swap",
    );
    // 2. Renamed to .swap, old segments all live: the swap completes.
    check(
        &stage("swap-renamed", ".swap", 0, false),
        "crash after .cleaned -> .swap",
    );
    // 3. Some old segments already retired to .deleted.
    check(
        &stage("old-retiring", ".swap", 2, false),
        "crash while retiring old segments",
    );
    // 4. Swap in place, .deleted files not yet removed.
    check(
        &stage("deleting", "", 3, true),
        "crash before .deleted files were removed",
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, failure_persistence: None, ..ProptestConfig::default() })]

    /// For any sequence of updates and tombstones, compaction keeps the
    /// view, keeps offsets increasing, and leaves the active segment alone;
    /// once tombstones have expired, they and their keys stay gone.
    #[test]
    fn compaction_keeps_the_view(
        updates in proptest::collection::vec((0u32..12, proptest::option::weighted(0.8, "[a-z]{0,20}")), 1..250),
        per_batch in 1usize..8,
        segment_bytes in 400u32..3000,
        codec in proptest::sample::select(vec![
            Compression::None, Compression::Gzip, Compression::Snappy, Compression::Lz4, Compression::Zstd,
        ]),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::new(1_000_000));
        let log = open(dir.path(), compacted(segment_bytes), &clock);
        write_compressed(&log, &updates, per_batch, clock.now_ms(), codec);
        let expected: BTreeMap<_, _> = view(&log);
        let active = log.segments().last().unwrap().clone();
        clean_fully(&log, clock.now_ms());
        prop_assert_eq!(view(&log), expected.clone());
        prop_assert!(offsets_increase(&log));
        let segments = log.segments();
        prop_assert_eq!(segments.last().unwrap(), &active);
        // After delete.retention.ms, a second pass drops expired tombstones.
        clock.advance(10_000);
        log.roll().unwrap();
        clean_fully(&log, clock.now_ms());
        prop_assert_eq!(view(&log), expected);
        prop_assert!(offsets_increase(&log));
    }
}
