//! Kafka's cleaner rules for transactions, case by case (after Kafka's
//! `LogCleanerTest`): when COMMIT and ABORT markers go, what happens to the
//! transaction index, and the batches kept for each producer's state — and
//! that a cleaned log reopens (cleanly or after a crash) with the same
//! producer state, last stable offset and read_committed view.

mod common;

use std::sync::Arc;

use common::txn::*;
use common::{compacted, open};
use gregor_log::*;

/// `delete.retention.ms` of [`compacted`].
const RETENTION: i64 = 1000;

fn setup() -> (tempfile::TempDir, Arc<ManualClock>, Log) {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(1_000_000));
    let log = open(dir.path(), compacted(1024), &clock);
    (dir, clock, log)
}

#[test]
fn a_commit_marker_goes_once_its_records_are_cleaned_away_and_the_horizon_passed() {
    let (_dir, clock, log) = setup();
    let now = clock.now_ms();
    let mut p = Producer::new(1);
    p.txn(&log, &[1]); // 0
    p.txn(&log, &[2, 3]); // 1, 2
    p.commit(&log); // 3
    p.txn(&log, &[2]); // 4
    p.commit(&log); // 5
    log.roll().unwrap();
    let mut passes = Passes::new(1 << 20);
    passes.force(&log, now);
    // The marker at 3 stays: its transaction still has records.
    assert_eq!(keys_in_log(&log), [1, 3, 2]);
    assert_eq!(offsets_in_log(&log), [0, 2, 3, 4, 5]);

    p.txn(&log, &[1, 3]); // 6, 7
    p.commit(&log); // 8
    log.roll().unwrap();
    passes.force(&log, now);
    // Still there: this pass read (and dropped) its last records.
    assert_eq!(keys_in_log(&log), [2, 1, 3]);
    assert_eq!(offsets_in_log(&log), [3, 4, 5, 6, 7, 8]);
    // Nothing of its transaction is left, but the horizon has not passed.
    let stats = passes.force(&log, now);
    assert_eq!(stats.markers_removed, 0);
    assert_eq!(offsets_in_log(&log), [3, 4, 5, 6, 7, 8]);
    // Past delete.retention.ms: gone (5 and 8 still have records).
    clock.advance(RETENTION + 1);
    let stats = passes.force(&log, clock.now_ms());
    assert_eq!(stats.markers_removed, 1);
    assert_eq!(keys_in_log(&log), [2, 1, 3]);
    assert_eq!(offsets_in_log(&log), [4, 5, 6, 7, 8]);
}

#[test]
fn an_abort_marker_and_its_index_entry_go_once_the_aborted_records_are_gone() {
    let (_dir, clock, log) = setup();
    let now = clock.now_ms();
    let mut p = Producer::new(1);
    p.txn(&log, &[1]); // 0
    p.txn(&log, &[2, 3]); // 1, 2
    p.abort(&log); // 3
    p.txn(&log, &[3]); // 4
    p.commit(&log); // 5
    log.roll().unwrap();
    let indexed = log.aborted_transactions(0, log.end_offset()).unwrap();
    assert_eq!(indexed.len(), 1);
    let mut passes = Passes::new(1 << 20);
    passes.force(&log, now);
    // The aborted records are dropped; the marker and its entry stay (this
    // pass read the records).
    assert_eq!(keys_in_log(&log), [3]);
    assert_eq!(offsets_in_log(&log), [3, 4, 5]);
    assert_eq!(log.aborted_transactions(0, log.end_offset()).unwrap(), indexed);
    // The next pass finds no record of it: the entry goes, the marker waits
    // for the horizon.
    passes.force(&log, now);
    assert_eq!(offsets_in_log(&log), [3, 4, 5]);
    assert!(log.aborted_transactions(0, log.end_offset()).unwrap().is_empty());
    clock.advance(RETENTION + 1);
    passes.force(&log, clock.now_ms());
    assert_eq!(keys_in_log(&log), [3]);
    assert_eq!(offsets_in_log(&log), [4, 5]);
    assert!(log.aborted_transactions(0, log.end_offset()).unwrap().is_empty());
}

#[test]
fn markers_whose_transactions_were_dropped_in_one_pass_go_in_a_later_one() {
    // Kafka's testDeletedBatchesWithNoMessagesRead.
    let (_dir, clock, log) = setup();
    let now = clock.now_ms();
    let mut p = Producer::new(1);
    p.txn(&log, &[1]); // 0
    p.abort(&log); // 1
    p.txn(&log, &[2]); // 2
    p.txn(&log, &[2]); // 3
    p.commit(&log); // 4
    log.roll().unwrap();
    let mut passes = Passes::new(1 << 20);
    passes.force(&log, now);
    assert_eq!(keys_in_log(&log), [2]);
    assert_eq!(offsets_in_log(&log), [1, 3, 4]);
    passes.force(&log, now);
    clock.advance(RETENTION + 1);
    passes.force(&log, clock.now_ms());
    assert_eq!(keys_in_log(&log), [2]);
    assert_eq!(offsets_in_log(&log), [3, 4]);
}

#[test]
fn a_marker_stays_while_an_emptied_batch_of_its_transaction_holds_a_producer_sequence() {
    // Kafka's testCommitMarkerRetentionWithEmptyBatch.
    let (_dir, clock, log) = setup();
    let now = clock.now_ms();
    let (mut p1, mut p2) = (Producer::new(1), Producer::new(2));
    p1.txn(&log, &[2, 3]); // 0, 1
    log.roll().unwrap();
    p2.txn(&log, &[2, 3]); // 2, 3
    p2.commit(&log); // 4
    log.roll().unwrap();
    plain(&log, &[2]); // 5
    plain(&log, &[3]); // 6
    p1.commit(&log); // 7
    log.roll().unwrap();
    let mut passes = Passes::new(1 << 20);
    passes.force(&log, now);
    // Both transactions' batches are emptied, and kept: each is its
    // producer's last.
    assert_eq!(keys_in_log(&log), [2, 3]);
    assert_eq!(offsets_in_log(&log), [4, 5, 6, 7]);
    assert_eq!(last_offsets_per_batch(&log), [1, 3, 4, 5, 6, 7]);
    // Again, past the horizon: the empty batches still hold the sequences,
    // so their markers stay too.
    clock.advance(RETENTION + 1);
    passes.force(&log, clock.now_ms());
    clock.advance(RETENTION + 1);
    passes.force(&log, clock.now_ms());
    assert_eq!(offsets_in_log(&log), [4, 5, 6, 7]);
    assert_eq!(last_offsets_per_batch(&log), [1, 3, 4, 5, 6, 7]);

    // Producer 2 moves on: its empty batch goes, its old marker follows
    // once a pass has found nothing of its transaction for the horizon.
    p2.txn(&log, &[1]); // 8
    p2.commit(&log); // 9
    log.roll().unwrap();
    let now = clock.now_ms();
    passes.force(&log, now);
    assert_eq!(keys_in_log(&log), [2, 3, 1]);
    assert_eq!(offsets_in_log(&log), [4, 5, 6, 7, 8, 9]);
    assert_eq!(last_offsets_per_batch(&log), [1, 4, 5, 6, 7, 8, 9]);
    passes.force(&log, now);
    clock.advance(RETENTION + 1);
    passes.force(&log, clock.now_ms());
    assert_eq!(keys_in_log(&log), [2, 3, 1]);
    assert_eq!(offsets_in_log(&log), [5, 6, 7, 8, 9]);
    assert_eq!(last_offsets_per_batch(&log), [1, 5, 6, 7, 8, 9]);
}

#[test]
fn transactions_spanning_segments_keep_their_batch_and_marker() {
    // Kafka's testCommittedTransactionSpanningSegments and
    // testAbortedTransactionSpanningSegments.
    for abort in [false, true] {
        let (_dir, clock, log) = setup();
        let mut p = Producer::new(1);
        p.txn(&log, &[1]); // 0
        log.roll().unwrap();
        if abort {
            p.abort(&log); // 1
        } else {
            p.commit(&log); // 1
        }
        log.roll().unwrap();
        let mut passes = Passes::new(1 << 20);
        for _ in 0..3 {
            passes.force(&log, clock.now_ms());
            clock.advance(RETENTION + 1);
        }
        // An aborted batch is emptied but kept (its producer's last); its
        // marker stays with it.
        let expected: &[u64] = if abort { &[1] } else { &[0, 1] };
        assert_eq!(offsets_in_log(&log), expected, "abort: {abort}");
        assert_eq!(last_offsets_per_batch(&log), [0, 1], "abort: {abort}");
        assert_eq!(log.aborted_transactions(0, 10).unwrap().len(), usize::from(abort));
    }
}

#[test]
fn an_abort_marker_stays_indexed_while_its_emptied_batch_holds_the_sequence() {
    // Kafka's testAbortMarkerRetentionWithEmptyBatch.
    let (_dir, clock, log) = setup();
    let mut p = Producer::new(1);
    p.txn(&log, &[2, 3]); // 0, 1
    p.abort(&log); // 2
    log.roll().unwrap();
    let indexed = |log: &Log| {
        let found = log.aborted_transactions(0, 100).unwrap();
        found
            .iter()
            .map(|t| (t.producer_id, t.first_offset, t.last_offset))
            .collect::<Vec<_>>()
    };
    assert_eq!(indexed(&log), [(1, 0, 2)]);
    let mut passes = Passes::new(1 << 20);
    passes.force(&log, clock.now_ms());
    assert_eq!(indexed(&log), [(1, 0, 2)]);
    assert_eq!(keys_in_log(&log), Vec::<u32>::new());
    assert_eq!(offsets_in_log(&log), [2]);
    assert_eq!(last_offsets_per_batch(&log), [1, 2]);
    passes.force(&log, clock.now_ms());
    clock.advance(RETENTION + 1);
    passes.force(&log, clock.now_ms());
    assert_eq!(indexed(&log), [(1, 0, 2)]);
    assert_eq!(offsets_in_log(&log), [2]);
    assert_eq!(last_offsets_per_batch(&log), [1, 2]);

    // A new batch of the producer (its transaction still open) frees the
    // empty one. The marker stays: it is still the producer's last, and
    // holds its coordinator epoch (Kafka would drop it now).
    p.txn(&log, &[1]); // 3
    log.roll().unwrap();
    passes.force(&log, clock.now_ms());
    assert_eq!(indexed(&log), [(1, 0, 2)]);
    assert_eq!(keys_in_log(&log), [1]);
    assert_eq!(offsets_in_log(&log), [2, 3]);
    assert_eq!(last_offsets_per_batch(&log), [2, 3]);
    passes.force(&log, clock.now_ms());
    clock.advance(RETENTION + 1);
    passes.force(&log, clock.now_ms());
    assert_eq!(offsets_in_log(&log), [2, 3]);
    assert!(indexed(&log).is_empty(), "no record of it is left");
    // Once the producer has a later marker, it goes.
    p.commit(&log); // 4
    log.roll().unwrap();
    passes.force(&log, clock.now_ms());
    clock.advance(RETENTION + 1);
    let stats = passes.force(&log, clock.now_ms());
    assert_eq!(stats.markers_removed, 1);
    assert_eq!(keys_in_log(&log), [1]);
    assert_eq!(offsets_in_log(&log), [3, 4]);
    assert_eq!(marker_offsets(&log), [4]);
    assert!(indexed(&log).is_empty());
}

#[test]
fn each_producers_last_batch_is_kept_and_answers_its_retry_after_a_crash() {
    // Kafka's testLogCleanerRetainsProducerLastSequence and
    // testDuplicateCheckAfterCleaning.
    let (dir, clock, log) = setup();
    let (mut p1, mut p2, mut p3) = (Producer::new(1), Producer::new(2), Producer::new(3));
    let (r1, r2, r3) = (p1.clone(), p2.clone(), p3.clone());
    p1.idempotent(&log, &[1, 2, 3]); // 0..=2
    p2.idempotent(&log, &[3, 1, 4]); // 3..=5
    p3.idempotent(&log, &[1, 4]); // 6, 7
    log.roll().unwrap();
    let mut passes = Passes::new(1 << 20);
    passes.force(&log, clock.now_ms());
    assert_eq!(last_offsets_per_batch(&log), [2, 5, 7]);
    assert_eq!(keys_in_log(&log), [2, 3, 1, 4]);
    assert_eq!(offsets_in_log(&log), [1, 3, 6, 7]);
    let before = producer_view(&log);

    let log = reopen(log, dir.path(), compacted(1024), &clock, true);
    assert_eq!(producer_view(&log), before);
    let again = |info: AppendInfo| (info.duplicate, info.first_offset, info.last_offset);
    assert_eq!(again(r1.clone().idempotent(&log, &[1, 2, 3])), (true, 0, 2));
    assert_eq!(again(r3.clone().idempotent(&log, &[1, 4])), (true, 6, 7));
    assert_eq!(again(r2.clone().idempotent(&log, &[3, 1, 4])), (true, 3, 5));

    // Producer 1's batch, now only kept for its sequence, stays empty.
    let mut p4 = Producer::new(4);
    p4.idempotent(&log, &[2]); // 8
    log.roll().unwrap();
    passes.force(&log, clock.now_ms());
    assert_eq!(last_offsets_per_batch(&log), [2, 5, 7, 8]);
    assert_eq!(keys_in_log(&log), [3, 1, 4, 2]);
    assert_eq!(offsets_in_log(&log), [3, 6, 7, 8]);
    let log = reopen(log, dir.path(), compacted(1024), &clock, true);
    assert_eq!(again(r1.clone().idempotent(&log, &[1, 2, 3])), (true, 0, 2));
}

#[test]
fn an_aborted_batch_keeps_its_producers_sequence_until_the_producer_moves_on() {
    // Kafka's testLogCleanerRetainsLastSequenceEvenIfTransactionAborted.
    let (_dir, clock, log) = setup();
    let mut p = Producer::new(1);
    p.txn(&log, &[1]); // 0
    p.txn(&log, &[2, 3]); // 1, 2
    p.abort(&log); // 3
    log.roll().unwrap();
    let mut passes = Passes::new(1 << 20);
    passes.force(&log, clock.now_ms());
    assert_eq!(last_offsets_per_batch(&log), [2, 3]);
    assert_eq!(keys_in_log(&log), Vec::<u32>::new());
    assert_eq!(offsets_in_log(&log), [3]);
    assert_eq!(log.producer_states().get(1).unwrap().last_sequence(), 2);

    p.txn(&log, &[1, 5]); // 4, 5 (left open: nothing from 4 on is cleaned)
    log.roll().unwrap();
    passes.force(&log, clock.now_ms());
    assert_eq!(last_offsets_per_batch(&log), [3, 5]);
    assert_eq!(keys_in_log(&log), [1, 5]);
    assert_eq!(offsets_in_log(&log), [3, 4, 5]);
}

#[test]
fn a_record_keyed_like_a_marker_does_not_supersede_it() {
    // Kafka's testCleaningWithKeysConflictingWithTxnMarkerKeys.
    let (_dir, clock, log) = setup();
    let (mut p1, p2) = (Producer::new(1), Producer::new(2));
    p1.txn(&log, &[1]); // 0
    p1.commit(&log); // 1
    let commit_key = [0u8, 0, 0, 1];
    let mut b = gregor_log::batch::RecordBatchBuilder::new(1_000)
        .producer(p2.id, p2.epoch, 0)
        .transactional();
    b.append(Some(&commit_key), Some(b"foo"), &[], 1_000);
    log.append(&mut b.build(), 0).unwrap(); // 2
    p2.commit(&log); // 3
    log.roll().unwrap();
    let mut passes = Passes::new(1 << 20);
    passes.force(&log, clock.now_ms());
    clock.advance(RETENTION + 1);
    passes.force(&log, clock.now_ms());
    assert_eq!(last_offsets_per_batch(&log), [0, 1, 2, 3]);
    assert_eq!(offsets_in_log(&log), [0, 1, 2, 3]);
}

#[test]
fn a_producers_last_marker_stays_whole_for_its_epochs() {
    // Kafka keeps a producer's last marker only when the producer has no
    // data batch (testCleanEmptyControlBatch), and then emptied; gregor
    // keeps the markers after its last data batch whole, so that the
    // coordinator epoch survives a rebuild of producer state.
    let (dir, clock, log) = setup();
    let mut p = Producer::new(1);
    p.coordinator_epoch = 7;
    p.idempotent(&log, &[2]); // 0
    p.commit(&log); // 1: ends no transaction
    plain(&log, &[2]); // 2
    plain(&log, &[3]); // 3
    log.roll().unwrap();
    let mut passes = Passes::new(1 << 20);
    for _ in 0..3 {
        passes.force(&log, clock.now_ms());
        clock.advance(RETENTION + 1);
    }
    assert_eq!(offsets_in_log(&log), [1, 2, 3]);
    assert_eq!(last_offsets_per_batch(&log), [0, 1, 2, 3]);
    let before = producer_view(&log);
    assert_eq!(before[&1].2, 7);
    let log = reopen(log, dir.path(), compacted(1024), &clock, true);
    assert_eq!(producer_view(&log), before);
}

#[test]
fn tombstones_and_markers_share_one_horizon() {
    let (_dir, clock, log) = setup();
    let t0 = clock.now_ms();
    let mut p = Producer::new(1);
    p.txn(&log, &[1]); // 0
    p.commit(&log); // 1
    plain(&log, &[1]); // 2: the transaction's record is superseded
    common::write(&log, &[(5, None)], 1, t0); // 3: a tombstone
    p.txn(&log, &[9]); // 4: the producer moves on
    p.commit(&log); // 5
    log.roll().unwrap();
    let tombstones = |log: &Log| common::scan(log).iter().filter(|(_, _, v)| v.is_none()).count();
    let mut passes = Passes::new(1 << 20);
    passes.force(&log, t0);
    passes.force(&log, t0);
    assert_eq!((marker_offsets(&log), tombstones(&log)), (vec![1, 5], 1));
    // Until delete.retention.ms after the pass that first kept them (the
    // delete horizon, t0 + RETENTION), however often they are rewritten:
    // both stay.
    clock.set(t0 + RETENTION - 1);
    passes.force(&log, clock.now_ms());
    assert_eq!((marker_offsets(&log), tombstones(&log)), (vec![1, 5], 1));
    // At it: both go in the same pass.
    clock.set(t0 + RETENTION);
    let stats = passes.force(&log, clock.now_ms());
    assert_eq!((marker_offsets(&log), tombstones(&log)), (vec![5], 0));
    assert_eq!(stats.markers_removed, 1);
}

#[test]
fn an_abort_marker_goes_an_hour_after_it_became_removable_however_often_the_log_is_cleaned() {
    const HOUR: i64 = 3_600_000;
    const PASS_EVERY: i64 = 5 * 60_000;
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(1_000_000));
    let config = LogConfig {
        delete_retention_ms: HOUR,
        ..compacted(1024)
    };
    let log = open(dir.path(), config, &clock);
    let start = clock.now_ms();
    let mut p = Producer::new(1);
    p.txn(&log, &[1]); // 0
    p.abort(&log); // 1
    p.txn(&log, &[2]); // 2
    p.commit(&log); // 3: the producer's last marker, kept for its state
    log.roll().unwrap();
    let mut passes = Passes::new(1 << 20);
    // The first pass drops the aborted record; the second finds nothing of
    // the transaction left and stamps the marker's horizon.
    let horizon = start + PASS_EVERY + HOUR;
    for i in 0..100 {
        let now = clock.now_ms();
        plain(&log, &[100 + i]);
        log.roll().unwrap();
        passes.clean(&log, now).expect("something is dirty");
        let marker = batches(&log).into_iter().find(|(h, _)| h.base_offset == 1);
        if now >= horizon {
            assert!(marker.is_none(), "pass {i} at +{} ms", now - start);
            break;
        }
        let (header, _) = marker.expect("the abort marker stays until its horizon");
        if now > start {
            assert_eq!(header.delete_horizon_ms(), Some(horizon));
        }
        clock.advance(PASS_EVERY);
    }
    assert_eq!(clock.now_ms(), horizon);
    assert_eq!(marker_offsets(&log), [3]);
    assert!(log.aborted_transactions(0, log.end_offset()).unwrap().is_empty());
    assert!(!keys_in_log(&log).contains(&1));
}

#[test]
fn a_cleaned_log_reopens_with_its_producers_last_stable_offset_and_committed_view() {
    let (dir, clock, log) = setup();
    let (mut p1, mut p2, mut p3, mut p4) = (Producer::new(1), Producer::new(2), Producer::new(3), Producer::new(4));
    p3.coordinator_epoch = 3;
    for round in 0..6u32 {
        p1.txn(&log, &[round % 3, 10 + round]);
        p2.txn(&log, &[round % 3]);
        if round % 2 == 0 {
            p2.abort(&log);
        } else {
            p2.commit(&log);
        }
        p1.commit(&log);
        p4.idempotent(&log, &[20 + round % 2]);
        plain(&log, &[round % 3]);
        p3.txn(&log, &[round]);
        p3.abort(&log);
        log.roll().unwrap();
    }
    p1.txn(&log, &[0]); // left open
    log.roll().unwrap();
    let view = committed_view(&log);
    let lso = log.last_stable_offset();
    let mut passes = Passes::new(1 << 20);
    for _ in 0..3 {
        passes.force(&log, clock.now_ms());
        assert_eq!(committed_view(&log), view);
        clock.advance(RETENTION + 1);
    }
    let before = producer_view(&log);
    assert!(marker_offsets(&log).len() < 18, "markers were removed");
    let mut log = log;
    for crash in [false, true] {
        log = reopen(log, dir.path(), compacted(1024), &clock, crash);
        assert_eq!(producer_view(&log), before, "crash: {crash}");
        assert_eq!(log.last_stable_offset(), lso, "crash: {crash}");
        assert_eq!(committed_view(&log), view, "crash: {crash}");
    }
}
