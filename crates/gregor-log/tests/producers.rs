//! Idempotent producers through the log: retries are answered with their
//! original offsets, gaps and fenced epochs are refused, and the state
//! survives a clean restart (snapshot) and a crash (rebuilt from the log).

use std::collections::BTreeMap;

use gregor_log::batch::RecordBatchBuilder;
use gregor_log::producer_state::{BatchSequence, ProducerError};
use gregor_log::{Log, LogConfig, LogError, LogOpenOptions};
use proptest::prelude::*;

fn batch(producer_id: i64, epoch: i16, first_seq: i32, records: usize) -> Vec<u8> {
    let mut b = RecordBatchBuilder::new(1_000).producer(producer_id, epoch, first_seq);
    for i in 0..records {
        b.append(Some(format!("k{i}").as_bytes()), Some(b"v"), &[], 1_000);
    }
    b.build()
}

fn small_segments() -> LogConfig {
    LogConfig {
        segment_bytes: 600,
        ..LogConfig::default()
    }
}

/// Each producer's epoch and remembered batches.
fn view(log: &Log) -> BTreeMap<i64, (i16, Vec<BatchSequence>)> {
    log.producer_states()
        .iter()
        .map(|(id, e)| (id, (e.epoch, e.batches.iter().copied().collect())))
        .collect()
}

#[test]
fn a_retried_batch_is_answered_with_its_offsets_and_not_written_again() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), LogConfig::default()).unwrap();
    let first = log.append(&mut batch(9, 0, 0, 3), 0).unwrap();
    let second = log.append(&mut batch(9, 0, 3, 2), 0).unwrap();
    assert_eq!((first.first_offset, second.first_offset), (0, 3));
    let retry = log.append(&mut batch(9, 0, 0, 3), 0).unwrap();
    assert!(retry.duplicate);
    assert_eq!((retry.first_offset, retry.last_offset), (0, 2));
    assert_eq!(log.end_offset(), 5);
    // Non-idempotent batches are never deduplicated.
    log.append(&mut batch(-1, -1, -1, 1), 0).unwrap();
    log.append(&mut batch(-1, -1, -1, 1), 0).unwrap();
    assert_eq!(log.end_offset(), 7);
}

#[test]
fn gaps_and_fenced_epochs_are_refused_and_unknown_producers_start_anywhere() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), LogConfig::default()).unwrap();
    log.append(&mut batch(9, 1, 0, 3), 0).unwrap();
    let gap = log.append(&mut batch(9, 1, 7, 1), 0).unwrap_err();
    assert!(
        matches!(
            gap,
            LogError::Producer(ProducerError::OutOfOrderSequence {
                expected: 3,
                got: 7,
                ..
            })
        ),
        "{gap}"
    );
    let fenced = log.append(&mut batch(9, 0, 3, 1), 0).unwrap_err();
    assert!(
        matches!(fenced, LogError::Producer(ProducerError::InvalidEpoch { .. })),
        "{fenced}"
    );
    // A producer the log does not know may start at any sequence (Kafka
    // since KIP-360); its next batch must follow.
    log.append(&mut batch(10, 0, 5, 1), 0).unwrap();
    let after = log.append(&mut batch(10, 0, 7, 1), 0).unwrap_err();
    assert!(
        matches!(
            after,
            LogError::Producer(ProducerError::OutOfOrderSequence { expected: 6, .. })
        ),
        "{after}"
    );
    // A new epoch starts again at sequence 0.
    log.append(&mut batch(9, 2, 0, 1), 0).unwrap();
    assert_eq!(log.end_offset(), 5);
    // Two idempotent batches in one append are refused (Kafka's rule).
    let mut two = batch(11, 0, 0, 1);
    two.extend_from_slice(&batch(11, 0, 1, 1));
    assert!(matches!(log.append(&mut two, 0), Err(LogError::InvalidAppend(_))));
}

#[test]
fn the_state_survives_a_clean_restart_and_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), small_segments()).unwrap();
    let mut seq = 0;
    for _ in 0..20 {
        log.append(&mut batch(4, 0, seq, 2), 0).unwrap();
        seq += 2;
    }
    assert!(log.segments().len() > 2, "the test needs rolls");
    log.close().unwrap();
    let options = LogOpenOptions {
        clean_shutdown: true,
        ..Default::default()
    };
    let log = Log::open_with(dir.path(), small_segments(), options).unwrap();
    let retry = log.append(&mut batch(4, 0, seq - 2, 2), 0).unwrap();
    assert!(retry.duplicate, "the last batch is known after a clean restart");
    log.append(&mut batch(4, 0, seq, 2), 0).unwrap();
    seq += 2;
    // A crash: no close, no snapshot at the end; rebuilt from the log tail.
    drop(log);
    let log = Log::open(dir.path(), small_segments()).unwrap();
    assert!(log.append(&mut batch(4, 0, seq - 2, 2), 0).unwrap().duplicate);
    assert!(matches!(
        log.append(&mut batch(4, 0, seq + 4, 2), 0),
        Err(LogError::Producer(ProducerError::OutOfOrderSequence { .. }))
    ));
}

#[test]
fn truncation_and_retention_forget_what_they_remove() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), small_segments()).unwrap();
    log.append(&mut batch(1, 0, 0, 2), 0).unwrap();
    log.append(&mut batch(1, 0, 2, 2), 0).unwrap();
    log.truncate_to(2).unwrap();
    // The batch at 2..3 is gone: sending it again appends it anew.
    let again = log.append(&mut batch(1, 0, 2, 2), 0).unwrap();
    assert!(!again.duplicate);
    assert_eq!(again.first_offset, 2);
    for _ in 0..10 {
        log.append(&mut batch(-1, -1, -1, 3), 0).unwrap();
    }
    log.delete_records(log.end_offset()).unwrap();
    assert!(log.producer_states().is_empty());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, failure_persistence: None, ..ProptestConfig::default() })]

    /// The state rebuilt from the log alone (no snapshots) equals the state
    /// kept live; with snapshots, every producer's epoch and last batch.
    #[test]
    fn state_rebuilt_from_the_log_equals_the_live_state(
        steps in proptest::collection::vec((0i64..4, 0u8..10, 1usize..4), 1..60),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let log = Log::open(dir.path(), small_segments()).unwrap();
        let mut producers: BTreeMap<i64, (i16, i32)> = BTreeMap::new();
        for (id, action, records) in steps {
            let (epoch, seq) = producers.entry(id).or_insert((0, 0));
            match action {
                0 => { *epoch += 1; *seq = 0; }                              // new epoch
                1 if *seq >= records as i32 => {                             // a retry
                    let info = log.append(&mut batch(id, *epoch, *seq - records as i32, records), 0);
                    prop_assert!(matches!(info, Ok(ref i) if i.duplicate) || info.is_err());
                    continue;
                }
                _ => {}
            }
            log.append(&mut batch(id, *epoch, *seq, records), 0).unwrap();
            *seq += records as i32;
        }
        let live = view(&log);
        drop(log);
        // Without snapshots: everything from the log.
        let bare = tempfile::tempdir().unwrap();
        for entry in std::fs::read_dir(dir.path()).unwrap() {
            let entry = entry.unwrap();
            if !entry.file_name().to_string_lossy().ends_with(".snapshot") {
                std::fs::copy(entry.path(), bare.path().join(entry.file_name())).unwrap();
            }
        }
        let rebuilt = Log::open(bare.path(), small_segments()).unwrap();
        prop_assert_eq!(view(&rebuilt), live.clone());
        // With the snapshots written at each roll.
        let reopened = Log::open(dir.path(), small_segments()).unwrap();
        let from_snapshots = view(&reopened);
        prop_assert_eq!(from_snapshots.len(), live.len());
        for (id, (epoch, batches)) in &live {
            let (e, b) = &from_snapshots[id];
            prop_assert_eq!(e, epoch);
            prop_assert_eq!(b.last(), batches.last());
        }
    }
}
