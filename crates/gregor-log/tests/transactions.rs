//! Transactions through the log (KIP-98): transactional batches open a
//! producer's transaction, markers end it, the last stable offset holds
//! back read_committed consumers, ABORTs go to the `.txnindex` files, and
//! all of it survives rolls, truncation, reopen and crashes.

mod common;

use std::sync::Arc;

use common::small_segments;
use gregor_log::batch::{ControlRecordType, EndTransactionMarker, RecordBatchBuilder};
use gregor_log::producer_state::ProducerError;
use gregor_log::*;

const ABORT: ControlRecordType = ControlRecordType::Abort;
const COMMIT: ControlRecordType = ControlRecordType::Commit;

/// A transactional batch of `n` records of `producer_id`.
fn txn_batch(producer_id: i64, epoch: i16, seq: i32, n: usize) -> Vec<u8> {
    let mut b = RecordBatchBuilder::new(1_000)
        .producer(producer_id, epoch, seq)
        .transactional();
    for i in 0..n {
        b.append(Some(format!("k{i}").as_bytes()), Some(b"v"), &[], 1_000);
    }
    b.build()
}

fn plain(n: usize) -> Vec<u8> {
    common::batch("plain", n, 1_000)
}

fn marker(kind: ControlRecordType, coordinator_epoch: i32) -> EndTransactionMarker {
    EndTransactionMarker {
        kind,
        coordinator_epoch,
    }
}

/// A replicated log (the high watermark moves only when told).
fn replicated(dir: &std::path::Path, config: LogConfig) -> Log {
    let options = LogOpenOptions {
        high_watermark_follows_end: false,
        ..LogOpenOptions::default()
    };
    Log::open_with(dir, config, options).unwrap()
}

#[test]
fn the_last_stable_offset_waits_for_markers_and_the_high_watermark() {
    let dir = tempfile::tempdir().unwrap();
    let log = replicated(dir.path(), LogConfig::default());
    log.append(&mut plain(2), 0).unwrap(); // 0-1
    log.append(&mut txn_batch(7, 0, 0, 2), 0).unwrap(); // 2-3
    log.append(&mut plain(1), 0).unwrap(); // 4
    log.append(&mut txn_batch(8, 0, 0, 1), 0).unwrap(); // 5
    assert_eq!(log.ongoing_transactions(), vec![(2, 7), (5, 8)]);
    log.set_high_watermark(6);
    assert_eq!((log.high_watermark(), log.last_stable_offset()), (6, 2));
    log.append_marker(7, 0, marker(COMMIT, 1), 0).unwrap(); // 6
    assert_eq!(log.last_stable_offset(), 2, "the marker is not replicated yet");
    log.set_high_watermark(6);
    assert_eq!(
        log.last_stable_offset(),
        2,
        "the high watermark has not passed the marker"
    );
    log.set_high_watermark(7);
    assert_eq!(log.last_stable_offset(), 5, "producer 8's transaction is still open");
    log.append_marker(8, 0, marker(ABORT, 1), 0).unwrap(); // 7
    log.set_high_watermark(8);
    assert_eq!(log.last_stable_offset(), 8);
    assert_eq!(log.first_unstable_offset(), None);
    let read = log.read(0, 1 << 20).unwrap();
    assert_eq!((read.high_watermark, read.last_stable_offset), (8, 8));
    assert_eq!(
        log.aborted_transactions(0, 8).unwrap(),
        vec![AbortedTxn {
            producer_id: 8,
            first_offset: 5,
            last_offset: 7,
            last_stable_offset: 8
        }]
    );
}

#[test]
fn an_unreplicated_log_is_stable_up_to_its_end_once_markers_are_written() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), LogConfig::default()).unwrap();
    log.append(&mut txn_batch(7, 0, 0, 3), 0).unwrap();
    assert_eq!((log.high_watermark(), log.last_stable_offset()), (3, 0));
    log.append_marker(7, 0, marker(COMMIT, 0), 0).unwrap();
    assert_eq!(log.last_stable_offset(), 4);
}

#[test]
fn markers_of_fenced_producer_or_coordinator_epochs_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), LogConfig::default()).unwrap();
    log.append(&mut txn_batch(7, 3, 0, 1), 0).unwrap();
    log.append_marker(7, 3, marker(COMMIT, 5), 0).unwrap();
    log.append(&mut txn_batch(7, 3, 1, 1), 0).unwrap();
    let end = log.end_offset();
    let err = log.append_marker(7, 2, marker(ABORT, 5), 0).unwrap_err();
    assert!(
        matches!(err, LogError::Producer(ProducerError::InvalidEpoch { current: 3, .. })),
        "{err}"
    );
    let err = log.append_marker(7, 3, marker(ABORT, 4), 0).unwrap_err();
    assert!(
        matches!(
            err,
            LogError::Producer(ProducerError::CoordinatorFenced {
                coordinator_epoch: 4,
                current: 5,
                ..
            })
        ),
        "{err}"
    );
    assert_eq!(log.end_offset(), end, "nothing written");
    assert_eq!(log.ongoing_transactions(), vec![(2, 7)]);
    // A newer coordinator and a bumped producer epoch are accepted.
    log.append_marker(7, 4, marker(ABORT, 6), 0).unwrap();
    let entry = log.producer_states().get(7).cloned().unwrap();
    assert_eq!((entry.epoch, entry.coordinator_epoch), (4, 6));
    assert_eq!(entry.current_txn_first_offset, None);
}

#[test]
fn clients_may_not_append_control_batches_coordinators_may() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), LogConfig::default()).unwrap();
    log.append(&mut txn_batch(7, 0, 0, 1), 0).unwrap();
    let mut control = marker(COMMIT, 0).batch(7, 0, 1_000);
    let err = log.append(&mut control, 0).unwrap_err();
    assert!(matches!(err, LogError::ControlBatchFromClient { position: 0 }), "{err}");
    assert_eq!(log.end_offset(), 1);
    log.append_with_origin(&mut control, 0, AppendOrigin::Coordinator)
        .unwrap();
    assert!(log.ongoing_transactions().is_empty());
}

#[test]
fn transactional_batches_without_sequence_work_from_a_client_or_a_coordinator() {
    // The group coordinator writes transactional offset commits with base
    // sequence -1.
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), LogConfig::default()).unwrap();
    log.append(&mut txn_batch(7, 0, -1, 1), 0).unwrap();
    log.append_with_origin(&mut txn_batch(7, 0, -1, 1), 0, AppendOrigin::Coordinator)
        .unwrap();
    log.append_with_origin(&mut txn_batch(8, 0, -1, 1), 0, AppendOrigin::Coordinator)
        .unwrap();
    assert_eq!(log.ongoing_transactions(), vec![(0, 7), (2, 8)]);
    // Coordinators skip sequence checks, but not epochs.
    log.append_with_origin(&mut txn_batch(8, 0, 17, 1), 0, AppendOrigin::Coordinator)
        .unwrap();
    let err = log
        .append_with_origin(&mut txn_batch(8, -1, -1, 1), 0, AppendOrigin::Coordinator)
        .unwrap_err();
    assert!(
        matches!(err, LogError::Producer(ProducerError::InvalidEpoch { .. })),
        "{err}"
    );
    // A non-transactional batch inside the open transaction is refused.
    let mut idempotent = RecordBatchBuilder::new(0).producer(7, 0, 0);
    idempotent.append(None, Some(b"v"), &[], 0);
    let err = log.append(&mut idempotent.build(), 0).unwrap_err();
    assert!(
        matches!(err, LogError::Producer(ProducerError::InvalidTxnState { .. })),
        "{err}"
    );
}

#[test]
fn producers_with_open_transactions_never_expire() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(1_000));
    let options = LogOpenOptions {
        clock: clock.clone(),
        ..LogOpenOptions::default()
    };
    let config = LogConfig {
        producer_id_expiration_ms: 10,
        ..LogConfig::default()
    };
    let log = Log::open_with(dir.path(), config, options).unwrap();
    log.append(&mut txn_batch(7, 0, 0, 1), 0).unwrap();
    log.append(&mut txn_batch(8, 0, 0, 1), 0).unwrap();
    log.append_marker(8, 0, marker(COMMIT, 0), 0).unwrap();
    clock.advance(100);
    assert_eq!(log.expire_producers(), 1);
    let left: Vec<i64> = log.producer_states().iter().map(|(id, _)| id).collect();
    assert_eq!(left, vec![7]);
}

#[test]
fn describe_producers_sees_epochs_sequences_and_transactions() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), LogConfig::default()).unwrap();
    log.append(&mut txn_batch(7, 2, 0, 3), 0).unwrap();
    log.append_marker(7, 2, marker(ABORT, 4), 0).unwrap();
    log.append(&mut txn_batch(7, 2, 3, 1), 0).unwrap();
    let states = log.producer_states();
    let entry = states.get(7).unwrap();
    assert_eq!(entry.epoch, 2);
    assert_eq!(entry.last_sequence(), 3);
    assert_eq!(entry.last_timestamp, 1_000);
    assert_eq!(entry.coordinator_epoch, 4);
    assert_eq!(entry.current_txn_first_offset, Some(4));
}

#[test]
fn aborted_transactions_are_collected_across_segments() {
    let dir = tempfile::tempdir().unwrap();
    let log = replicated(dir.path(), small_segments(400));
    log.append(&mut txn_batch(1, 0, 0, 2), 0).unwrap(); // 0-1
    log.append(&mut txn_batch(2, 0, 0, 2), 0).unwrap(); // 2-3
    log.roll().unwrap();
    log.append_marker(2, 0, marker(ABORT, 0), 0).unwrap(); // 4: LSO 0 (producer 1 open)
    log.append(&mut plain(3), 0).unwrap(); // 5-7
    log.roll().unwrap();
    log.append_marker(1, 0, marker(ABORT, 0), 0).unwrap(); // 8: LSO 9
    log.append(&mut txn_batch(3, 0, 0, 1), 0).unwrap(); // 9
    log.roll().unwrap();
    log.append_marker(3, 0, marker(ABORT, 0), 0).unwrap(); // 10: LSO 11
    let a = |p, f, l, s| AbortedTxn {
        producer_id: p,
        first_offset: f,
        last_offset: l,
        last_stable_offset: s,
    };
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".txnindex"))
        .collect();
    assert_eq!(names.len(), 3, "one index per segment holding an ABORT: {names:?}");
    assert!(!dir.path().join("00000000000000000000.txnindex").exists());
    assert_eq!(
        log.aborted_transactions(0, 11).unwrap(),
        vec![a(2, 2, 4, 0), a(1, 0, 8, 9), a(3, 9, 10, 11)]
    );
    // From offset 5: producer 2's marker lies before it.
    assert_eq!(
        log.aborted_transactions(5, 11).unwrap(),
        vec![a(1, 0, 8, 9), a(3, 9, 10, 11)]
    );
    // Up to 9: the entry with LSO 9 ends the search; 3's starts at 9.
    assert_eq!(
        log.aborted_transactions(0, 9).unwrap(),
        vec![a(2, 2, 4, 0), a(1, 0, 8, 9)]
    );
    assert_eq!(log.aborted_transactions(0, 2).unwrap(), vec![a(1, 0, 8, 9)]);
}

#[test]
fn truncation_reopens_transactions_and_cuts_the_index() {
    let dir = tempfile::tempdir().unwrap();
    let log = replicated(dir.path(), small_segments(400));
    log.append(&mut txn_batch(1, 0, 0, 2), 0).unwrap(); // 0-1
    log.roll().unwrap();
    log.append(&mut txn_batch(2, 0, 0, 1), 0).unwrap(); // 2
    log.append_marker(1, 0, marker(ABORT, 0), 0).unwrap(); // 3
    log.roll().unwrap();
    log.append_marker(2, 0, marker(ABORT, 0), 0).unwrap(); // 4
    log.set_high_watermark(2);
    assert!(log.ongoing_transactions().is_empty());
    log.truncate_to(4).unwrap();
    assert_eq!(log.ongoing_transactions(), vec![(2, 2)]);
    assert_eq!(log.aborted_transactions(0, 5).unwrap().len(), 1);
    log.truncate_to(3).unwrap();
    assert_eq!(log.ongoing_transactions(), vec![(0, 1), (2, 2)]);
    assert!(log.aborted_transactions(0, 5).unwrap().is_empty());
    assert_eq!(log.last_stable_offset(), 0);
    // The producers can end them again.
    log.append_marker(1, 0, marker(COMMIT, 0), 0).unwrap();
    log.append_marker(2, 0, marker(ABORT, 0), 0).unwrap();
    log.set_high_watermark(5);
    assert_eq!(log.last_stable_offset(), 5);
    log.truncate_fully_and_start_at(10).unwrap();
    assert!(log.ongoing_transactions().is_empty());
    assert!(log.aborted_transactions(10, 20).unwrap().is_empty());
    let left = std::fs::read_dir(dir.path())
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().ends_with(".txnindex"))
        .count();
    assert_eq!(left, 0);
}

#[test]
fn retention_deletes_transaction_indexes_with_their_segments() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), small_segments(400)).unwrap();
    log.append(&mut txn_batch(1, 0, 0, 2), 0).unwrap();
    log.append_marker(1, 0, marker(ABORT, 0), 0).unwrap();
    log.roll().unwrap();
    log.append(&mut plain(1), 0).unwrap();
    let indexes = || {
        std::fs::read_dir(dir.path())
            .unwrap()
            .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().ends_with(".txnindex"))
            .count()
    };
    assert_eq!(indexes(), 1);
    log.delete_records(3).unwrap();
    assert_eq!(indexes(), 0);
    assert!(log.aborted_transactions(3, 4).unwrap().is_empty());
}

/// Opens, writes transactions, closes (cleanly or not), reopens: the same
/// ongoing transactions, last stable offset and aborted transactions.
fn survives_reopen(clean: bool, keep_snapshots: bool) {
    let dir = tempfile::tempdir().unwrap();
    let config = small_segments(400);
    let expected = {
        let log = replicated(dir.path(), config.clone());
        log.append(&mut txn_batch(1, 0, 0, 2), 0).unwrap(); // 0-1
        log.append(&mut txn_batch(2, 0, 0, 1), 0).unwrap(); // 2
        log.roll().unwrap();
        log.append_marker(2, 0, marker(ABORT, 3), 0).unwrap(); // 3
        log.append_marker(1, 0, marker(COMMIT, 3), 0).unwrap(); // 4
        log.roll().unwrap();
        log.append(&mut txn_batch(3, 0, 0, 1), 0).unwrap(); // 5
        log.append(&mut plain(2), 0).unwrap(); // 6-7
        log.set_high_watermark(4);
        if clean {
            log.close().unwrap();
        } else {
            log.flush().unwrap();
        }
        (
            log.ongoing_transactions(),
            log.last_stable_offset(),
            log.aborted_transactions(0, 100).unwrap(),
            log.producer_states(),
        )
    };
    if !keep_snapshots {
        for entry in std::fs::read_dir(dir.path()).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "snapshot") {
                std::fs::remove_file(path).unwrap();
            }
        }
    }
    if !clean {
        // A crash can leave an index short or long: recovery rebuilds it.
        std::fs::write(dir.path().join("00000000000000000003.txnindex"), [0u8; 20]).unwrap();
    }
    let options = LogOpenOptions {
        clean_shutdown: clean,
        recovery_point: Some(0),
        high_watermark: Some(4),
        high_watermark_follows_end: false,
        ..LogOpenOptions::default()
    };
    let log = Log::open_with(dir.path(), config, options).unwrap();
    assert_eq!(log.ongoing_transactions(), expected.0);
    assert_eq!(log.last_stable_offset(), expected.1);
    assert_eq!(log.aborted_transactions(0, 100).unwrap(), expected.2);
    let producers = |s: &producer_state::ProducerStates| {
        s.iter()
            .map(|(id, e)| {
                (
                    id,
                    e.epoch,
                    e.coordinator_epoch,
                    e.current_txn_first_offset,
                    e.last_sequence(),
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(producers(&log.producer_states()), producers(&expected.3));
    // Producer 1's commit at 4 is not replicated yet: its transaction
    // still holds the last stable offset at 0, then producer 3's at 5.
    assert_eq!(expected.1, 0);
    assert_eq!(expected.0, vec![(5, 3)]);
    log.set_high_watermark(6);
    assert_eq!(log.last_stable_offset(), 5);
}

#[test]
fn transactions_survive_a_clean_reopen() {
    survives_reopen(true, true);
}

#[test]
fn transactions_survive_a_clean_reopen_without_snapshots() {
    survives_reopen(true, false);
}

#[test]
fn transactions_survive_a_crash() {
    survives_reopen(false, true);
}

#[test]
fn transactions_survive_a_crash_without_snapshots() {
    survives_reopen(false, false);
}

#[test]
fn a_follower_builds_its_leaders_transaction_state() {
    let leader_dir = tempfile::tempdir().unwrap();
    let follower_dir = tempfile::tempdir().unwrap();
    let leader = replicated(leader_dir.path(), LogConfig::default());
    let follower = replicated(follower_dir.path(), LogConfig::default());
    leader.append(&mut txn_batch(1, 0, 0, 2), 0).unwrap();
    leader.append(&mut txn_batch(2, 0, 0, 1), 0).unwrap();
    leader.append_marker(1, 0, marker(ABORT, 2), 0).unwrap();
    leader.append(&mut plain(1), 0).unwrap();
    // Batch by batch: the marker's broker timestamp rolled the leader.
    let mut offset = 0;
    while offset < leader.end_offset() {
        let bytes = leader.read_bytes(offset, 1 << 20).unwrap();
        follower.append_replicated(&bytes).unwrap();
        offset = follower.end_offset();
    }
    assert_eq!(follower.ongoing_transactions(), leader.ongoing_transactions());
    assert_eq!(
        follower.aborted_transactions(0, 10).unwrap(),
        leader.aborted_transactions(0, 10).unwrap()
    );
    assert_eq!(follower.producer_states().get(1).map(|e| e.coordinator_epoch), Some(2));
    leader.set_high_watermark(5);
    follower.set_high_watermark(5);
    assert_eq!(follower.last_stable_offset(), leader.last_stable_offset());
    assert_eq!(follower.last_stable_offset(), 2);
}
