//! Transactions version 2 at the end of a producer id's epochs: a fence
//! at the exhausted epoch, and an end that moves to the next producer id.
//! No answer ever hands out the largest epoch (`i16::MAX`), which is kept
//! for the coordinator's fence.

mod harness;

use gregor_transaction::{TransactionError, TransactionResult, TransactionState, TransactionVersion};
use harness::{loaded_at, loaded_into, pe, Harness, TIMEOUT};

use TransactionError::{ConcurrentTransactions, ProducerFenced};
use TransactionResult::{Abort, Commit};
use TransactionVersion::V2;

/// A level 2 coordinator with a version 2 producer (50) Ongoing at the
/// exhausted epoch.
fn exhausted_at_level_2() -> Harness {
    loaded_into(Harness::at_level(2), i16::MAX - 1, TransactionState::Ongoing, 2)
}

/// The zombie at the exhausted epoch is fenced whatever it ends, and the
/// id moves on to a new producer id at epoch 0.
fn assert_fenced_after_the_largest_epoch(h: &mut Harness) {
    assert_eq!(h.state(), (TransactionState::CompleteAbort, 50, i16::MAX));
    let zombie = pe(50, i16::MAX - 1);
    assert_eq!(h.end_as(zombie, Abort, V2), Err(ProducerFenced));
    assert_eq!(h.end_as(zombie, Commit, V2), Err(ProducerFenced));
    h.failover();
    assert_eq!(h.end_as(zombie, Abort, V2), Err(ProducerFenced), "after a failover");
    let next = h.init().unwrap();
    assert_eq!(next, pe(h.next_pid, 0));
}

#[test]
fn a_timed_out_transaction_at_the_exhausted_epoch_fences_for_good() {
    let mut h = exhausted_at_level_2();
    h.tick_after(i64::from(TIMEOUT) + 1);
    h.settle(true);
    assert_eq!(h.next_pid, 100, "a fence allocates no producer id");
    assert_eq!(h.markers[0].producer_epoch, i16::MAX);
    h.deliver_markers();
    assert_fenced_after_the_largest_epoch(&mut h);
}

#[test]
fn a_new_producer_fences_at_the_exhausted_epoch_for_good() {
    let mut h = exhausted_at_level_2();
    assert_eq!(h.init(), Err(ConcurrentTransactions));
    assert_eq!(h.markers[0].producer_epoch, i16::MAX);
    h.deliver_markers();
    assert_fenced_after_the_largest_epoch(&mut h);
}

#[test]
fn a_refused_end_allocates_no_producer_id() {
    // Only a stored record can hold an open transaction at the largest
    // epoch; a commit cannot bump it.
    let mut h = loaded_at(i16::MAX, TransactionState::Ongoing);
    let p = pe(50, i16::MAX);
    assert_eq!(h.end_as(p, Commit, V2), Err(TransactionError::UnknownServerError));
    assert_eq!(h.next_pid, 100, "no producer id used up");
}

#[test]
fn a_failed_producer_id_allocation_leaves_nothing_pending() {
    let mut h = loaded_at(i16::MAX - 1, TransactionState::Ongoing);
    let p = pe(50, i16::MAX - 1);
    h.fail_ids = true;
    assert!(h.end_as(p, Commit, V2).is_err());
    assert!(h.writes.is_empty() && h.log.is_empty(), "nothing written");
    h.fail_ids = false;
    assert_eq!(h.end_as(p, Commit, V2), Ok(pe(101, 0)));
}
