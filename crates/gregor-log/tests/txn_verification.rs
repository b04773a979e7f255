//! Transaction verification's guard (KIP-890 part 1): a transactional
//! batch that would open its producer's transaction is refused without the
//! producer's current guard, a marker in between invalidates the guard,
//! and batches that open nothing are untouched.

mod common;

use gregor_log::batch::{ControlRecordType, EndTransactionMarker, RecordBatchBuilder};
use gregor_log::producer_state::ProducerError;
use gregor_log::*;

const UNVERIFIED: TxnVerification = TxnVerification::Guard(VerificationGuard::NONE);

fn txn_batch(producer_id: i64, epoch: i16, seq: i32) -> Vec<u8> {
    let mut b = RecordBatchBuilder::new(1_000)
        .producer(producer_id, epoch, seq)
        .transactional();
    b.append(Some(b"k"), Some(b"v"), &[], 1_000);
    b.build()
}

fn commit(log: &Log, producer_id: i64) {
    let marker = EndTransactionMarker {
        kind: ControlRecordType::Commit,
        coordinator_epoch: 0,
    };
    log.append_marker(producer_id, 0, marker, 0).unwrap();
}

/// Appends from a producer with `verification`: the refusal's guard, if
/// refused for want of verification (`Err(None)`: a stale guard).
fn produce(log: &Log, batch: Vec<u8>, verification: TxnVerification) -> Result<u64, Option<VerificationGuard>> {
    match log.append_verified(&mut batch.clone(), 0, AppendOrigin::Client, verification) {
        Ok(info) => Ok(info.first_offset),
        Err(LogError::Producer(ProducerError::TransactionNotVerified { guard, .. })) => Err(guard),
        Err(e) => panic!("unexpected refusal: {e}"),
    }
}

#[test]
fn the_first_batch_of_a_transaction_needs_the_guard_and_later_ones_do_not() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), LogConfig::default()).unwrap();
    let guard = produce(&log, txn_batch(7, 0, 0), UNVERIFIED).unwrap_err().unwrap();
    assert_eq!(log.end_offset(), 0, "nothing written");
    assert_eq!(
        produce(&log, txn_batch(7, 0, 0), UNVERIFIED),
        Err(Some(guard)),
        "a retry before verification ends gets the same guard"
    );
    assert_eq!(produce(&log, txn_batch(7, 0, 0), TxnVerification::Guard(guard)), Ok(0));
    assert_eq!(
        produce(&log, txn_batch(7, 0, 1), UNVERIFIED),
        Ok(1),
        "the transaction is open: no verification"
    );
    assert_eq!(log.start_txn_verification(7, 0, 2), None);
    commit(&log, 7);
    assert_eq!(
        produce(&log, txn_batch(7, 0, 0), UNVERIFIED),
        Ok(0),
        "a retry of a batch already written is answered as a duplicate first"
    );
    let next = produce(&log, txn_batch(7, 0, 2), UNVERIFIED).unwrap_err().unwrap();
    assert_ne!(next, guard, "the next transaction is verified again");
    assert_eq!(
        produce(&log, txn_batch(7, 0, 2), TxnVerification::Guard(guard)),
        Err(None),
        "the old transaction's guard"
    );
    assert_eq!(produce(&log, txn_batch(7, 0, 2), TxnVerification::Guard(next)), Ok(3));
}

#[test]
fn a_marker_between_verification_and_append_invalidates_the_guard() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), LogConfig::default()).unwrap();
    produce(&log, txn_batch(7, 0, 0), TxnVerification::Skip).unwrap();
    // Verification starts while the transaction is still open: none needed.
    assert_eq!(log.start_txn_verification(7, 0, 1), None);
    let guard = produce(&log, txn_batch(8, 0, 0), UNVERIFIED).unwrap_err().unwrap();
    commit(&log, 7);
    commit(&log, 8); // producer 8's transaction ended (aborted elsewhere) meanwhile
    let end = log.end_offset();
    assert_eq!(
        produce(&log, txn_batch(8, 0, 0), TxnVerification::Guard(guard)),
        Err(None)
    );
    assert_eq!(
        produce(&log, txn_batch(7, 0, 1), UNVERIFIED).map_err(|g| g.is_some()),
        Err(true),
        "producer 7 was told it needed none, but its transaction ended since"
    );
    assert_eq!(log.end_offset(), end, "neither was written");
    assert!(log.ongoing_transactions().is_empty());
}

#[test]
fn batches_that_open_no_transaction_are_not_checked() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), LogConfig::default()).unwrap();
    let mut plain = common::batch("plain", 2, 1_000);
    let idempotent = {
        let mut b = RecordBatchBuilder::new(1_000).producer(9, 0, 0);
        b.append(Some(b"k"), Some(b"v"), &[], 1_000);
        b.build()
    };
    log.append_verified(&mut plain, 0, AppendOrigin::Client, UNVERIFIED)
        .unwrap();
    assert_eq!(produce(&log, idempotent, UNVERIFIED), Ok(2));
    assert_eq!(
        produce(&log, txn_batch(7, 0, 0), TxnVerification::Skip),
        Ok(3),
        "verification off"
    );
}

#[test]
fn a_coordinators_batch_is_verified_with_a_guard_started_ahead() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), LogConfig::default()).unwrap();
    let offsets = || {
        let mut b = RecordBatchBuilder::new(1_000).producer(7, 0, -1).transactional();
        b.append(Some(b"group"), Some(b"offset"), &[], 1_000);
        b.build()
    };
    let guard = log.start_txn_verification(7, 0, -1).unwrap();
    let append = |verification| log.append_verified(&mut offsets(), 0, AppendOrigin::Coordinator, verification);
    assert!(matches!(
        append(TxnVerification::Guard(VerificationGuard::NONE)),
        Err(LogError::Producer(ProducerError::TransactionNotVerified { guard: Some(g), .. })) if g == guard
    ));
    assert_eq!(append(TxnVerification::Guard(guard)).unwrap().first_offset, 0);
    assert_eq!(log.start_txn_verification(7, 0, -1), None, "open now");
    assert_eq!(
        append(TxnVerification::Guard(VerificationGuard::NONE))
            .unwrap()
            .first_offset,
        1
    );
}

#[test]
fn unused_verifications_expire_with_idle_producers() {
    let dir = tempfile::tempdir().unwrap();
    let clock = std::sync::Arc::new(ManualClock::new(0));
    let options = LogOpenOptions {
        clock: clock.clone(),
        ..LogOpenOptions::default()
    };
    let config = LogConfig {
        producer_id_expiration_ms: 100,
        ..LogConfig::default()
    };
    let log = Log::open_with(dir.path(), config, options).unwrap();
    let guard = log.start_txn_verification(7, 0, 0).unwrap();
    clock.set(100);
    log.expire_producers();
    assert_eq!(
        produce(&log, txn_batch(7, 0, 0), TxnVerification::Guard(guard)),
        Err(None)
    );
}

#[test]
fn a_newer_epochs_batch_is_verified_while_the_older_transaction_is_open() {
    // Transactions v2: every transaction has its own epoch, and the next
    // one's first batch may arrive before the previous one's marker.
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), LogConfig::default()).unwrap();
    produce(&log, txn_batch(7, 0, 0), TxnVerification::Skip).unwrap();
    assert_eq!(
        produce(&log, txn_batch(7, 0, 1), UNVERIFIED),
        Ok(1),
        "the open transaction's epoch: no verification"
    );
    assert_eq!(log.start_txn_verification(7, 0, 2), None);
    assert!(log.start_txn_verification(7, 1, 0).is_some(), "the next epoch's");
    assert!(
        matches!(produce(&log, txn_batch(7, 1, 0), UNVERIFIED), Err(Some(_))),
        "the next epoch's batch would join the open transaction"
    );
    assert_eq!(log.end_offset(), 2, "not written");
}
