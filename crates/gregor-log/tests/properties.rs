//! Property tests of the log's invariants.
//!
//! `GREGOR_PROPTEST_CASES` raises the number of cases (the test command
//! runs the recovery property with 10 000).

mod common;

use std::sync::Arc;

use common::*;
use gregor_log::batch::{set_base_offset, BatchHeader};
use gregor_log::*;
use proptest::prelude::*;

fn cases(default: u32) -> ProptestConfig {
    let n = std::env::var("GREGOR_PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default);
    ProptestConfig {
        cases: n,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(cases(64))]

    /// Offsets are dense and increasing across rolls and reopen, and a read
    /// at any offset starts with the batch that holds it.
    #[test]
    fn offsets_stay_dense_across_rolls_and_reopen(
        sizes in proptest::collection::vec(1usize..12, 1..60),
        segment_bytes in 300u32..3000,
        probes in proptest::collection::vec(any::<prop::sample::Index>(), 1..20),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let config = small_segments(segment_bytes);
        let total: usize = sizes.iter().sum();
        {
            let log = Log::open(dir.path(), config.clone()).unwrap();
            let mut expected = 0u64;
            for (i, n) in sizes.iter().enumerate() {
                let info = log.append(&mut batch(&format!("p{i}"), *n, 0), 0).unwrap();
                prop_assert_eq!(info.first_offset, expected);
                expected += *n as u64;
            }
        }
        let log = Log::open(dir.path(), config).unwrap();
        prop_assert_eq!(log.end_offset(), total as u64);
        let records = all_records(&log, 0);
        prop_assert!(records.iter().enumerate().all(|(i, (o, _))| *o == i as u64));
        let bases: Vec<u64> = log.segments().iter().map(|s| s.base_offset).collect();
        prop_assert!(bases.windows(2).all(|w| w[0] < w[1]));
        for probe in probes {
            let offset = probe.index(total) as u64;
            let bytes = log.read_bytes(offset, 1).unwrap();
            let h = BatchHeader::parse(&bytes).unwrap();
            prop_assert!(h.base_offset <= offset && offset <= h.last_offset());
        }
    }

    /// Retention never deletes the active segment, never moves the log end,
    /// and leaves every record from the log start readable.
    #[test]
    fn retention_never_deletes_the_active_segment(
        steps in proptest::collection::vec((1usize..8, 0i64..5_000, any::<bool>()), 1..40),
        retention_ms in -1i64..8_000,
        retention_bytes in -1i64..3_000,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::new(1_000_000));
        let config = LogConfig { retention_ms, retention_bytes, ..small_segments(400) };
        let options = LogOpenOptions { clock: clock.clone(), ..Default::default() };
        let log = Log::open_with(dir.path(), config, options).unwrap();
        for (n, advance, retain) in steps {
            log.append(&mut batch("r", n, clock.now_ms()), 0).unwrap();
            clock.advance(advance);
            if retain {
                let active = log.segments().last().unwrap().base_offset;
                let end = log.end_offset();
                log.apply_retention().unwrap();
                prop_assert!(log.segment_count() >= 1);
                prop_assert_eq!(log.segments().last().unwrap().base_offset, active);
                prop_assert_eq!(log.end_offset(), end);
                let start = log.log_start_offset();
                let records = all_records(&log, start);
                prop_assert_eq!(records.len() as u64, end - start);
            }
        }
    }
}

/// Batches laid out as a segment file would hold them, with their end positions.
fn segment_bytes(sizes: &[usize]) -> (Vec<u8>, Vec<(usize, u64)>) {
    let mut file = Vec::new();
    let mut ends = Vec::new();
    let mut offset = 0u64;
    for (i, n) in sizes.iter().enumerate() {
        let mut b = batch(&format!("v{i}"), *n, 1_000 + i as i64);
        set_base_offset(&mut b, offset);
        offset += *n as u64;
        file.extend_from_slice(&b);
        ends.push((file.len(), offset));
    }
    (file, ends)
}

proptest! {
    #![proptest_config(cases(256))]

    /// Cutting the tail at any byte, or corrupting any byte, then opening
    /// keeps exactly the batches wholly before the damage.
    #[test]
    fn recovery_keeps_exactly_the_valid_prefix(
        sizes in proptest::collection::vec(1usize..6, 1..12),
        at in any::<prop::sample::Index>(),
        corrupt in any::<bool>(),
        flip in 1u8..=255,
    ) {
        let (mut file, ends) = segment_bytes(&sizes);
        let pos = at.index(file.len());
        // baseOffset and partitionLeaderEpoch (the first 8 and bytes 12..16
        // of each batch) lie outside the CRC by the format's design, so the
        // broker can rewrite them: a flip there is not detectable and is
        // left out. Every other byte is covered by the length, magic or CRC.
        let batch_start = ends.iter().map(|(end, _)| *end).take_while(|end| *end <= pos).last().unwrap_or(0);
        let in_batch = pos - batch_start;
        prop_assume!(!corrupt || !(in_batch < 8 || (12..16).contains(&in_batch)));
        if corrupt {
            file[pos] ^= flip;
        } else {
            file.truncate(pos);
        }
        // Batches that end at or before the damaged byte survive (a cut at
        // `pos` keeps a batch ending exactly there; a flipped byte at `pos`
        // ruins the batch holding it).
        let survivors = ends.iter().take_while(|(end, _)| *end <= pos).count();
        let expected_end = if survivors == 0 { 0 } else { ends[survivors - 1].1 };
        let expected_len = if survivors == 0 { 0 } else { ends[survivors - 1].0 };

        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(format!("{:020}.log", 0)), &file).unwrap();
        let config = LogConfig { segment_index_bytes: 1024, index_interval_bytes: 100, ..LogConfig::default() };
        let log = Log::open(dir.path(), config).unwrap();
        prop_assert_eq!(log.end_offset(), expected_end);
        prop_assert_eq!(log.size_bytes(), expected_len as u64);
        let records = all_records(&log, 0);
        prop_assert_eq!(records.len() as u64, expected_end);
        prop_assert!(records.iter().enumerate().all(|(i, (o, _))| *o == i as u64));
    }
}

proptest! {
    #![proptest_config(cases(64))]

    /// A leader's append of a shared buffer (`append_shared`: stamped
    /// prefixes written ahead of the untouched records) writes exactly the
    /// bytes of an append that stamps its buffer in place — one batch from
    /// a producer or several from a coordinator, across rolls, with either
    /// timestamp type.
    #[test]
    fn a_shared_append_writes_what_an_in_place_append_writes(
        appends in proptest::collection::vec((proptest::collection::vec(1usize..8, 1..4), 0i32..5), 1..30),
        segment_bytes in 1000u32..4000,
        log_append_time in any::<bool>(),
    ) {
        let timestamp_type = if log_append_time {
            MessageTimestampType::LogAppendTime
        } else {
            MessageTimestampType::CreateTime
        };
        let config = LogConfig { message_timestamp_type: timestamp_type, ..small_segments(segment_bytes) };
        let clock = Arc::new(ManualClock::new(1_000));
        let (in_place_dir, shared_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let open = |dir: &std::path::Path| {
            Log::open_with(dir, config.clone(), LogOpenOptions { clock: clock.clone(), ..LogOpenOptions::default() })
                .unwrap()
        };
        let (in_place, shared) = (open(in_place_dir.path()), open(shared_dir.path()));
        for (i, (sizes, epoch)) in appends.iter().enumerate() {
            let batches: Vec<u8> = sizes.iter().enumerate().flat_map(|(j, n)| batch(&format!("a{i}-{j}"), *n, 0)).collect();
            let origin = if sizes.len() == 1 { AppendOrigin::Client } else { AppendOrigin::Coordinator };
            clock.advance(7);
            let mut stamped = batches.clone();
            let expected = in_place.append_verified(&mut stamped, *epoch, origin, TxnVerification::Skip);
            let got = shared.append_shared(&batches, *epoch, origin, TxnVerification::Skip);
            prop_assert_eq!(format!("{got:?}"), format!("{expected:?}"));
        }
        prop_assert_eq!(shared.end_offset(), in_place.end_offset());
        let files = |dir: &std::path::Path| {
            let mut logs: Vec<_> = std::fs::read_dir(dir)
                .unwrap()
                .map(|e| e.unwrap().path())
                .filter(|p| p.extension().is_some_and(|x| x == "log"))
                .map(|p| (p.file_name().unwrap().to_owned(), std::fs::read(&p).unwrap()))
                .collect();
            logs.sort();
            logs
        };
        let written = files(shared_dir.path());
        prop_assert!(written.len() == shared.segments().len() && !written.is_empty());
        prop_assert_eq!(written, files(in_place_dir.path()));
    }
}
