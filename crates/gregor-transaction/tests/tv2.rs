//! Transactions version 2 (KIP-890 part 2) at the coordinator: every
//! ended transaction bumps the producer's epoch, EndTxn answers the
//! producer id and epoch to continue with, retries are recognised by
//! their epoch, and the coordinator's own aborts at level 2 bump twice.

mod harness;

use gregor_transaction::records::parse_value;
use gregor_transaction::{
    ProducerIdAndEpoch, TransactionError, TransactionResult, TransactionState, TransactionVersion,
};
use harness::{loaded_at, pe, Harness, TIMEOUT};

use TransactionError::{ConcurrentTransactions, InvalidProducerIdMapping, InvalidTxnState, ProducerFenced};
use TransactionResult::{Abort, Commit};
use TransactionVersion::V2;

/// A producer at epoch 1 (two InitProducerIds), so that a retry's epoch
/// (one below) is a valid epoch too.
fn producer(h: &mut Harness) -> ProducerIdAndEpoch {
    h.init().unwrap();
    h.init().unwrap()
}

/// `p` ended a transaction (added under version 2) with `result`; the
/// markers are written. Returns the producer to continue with.
fn ended(h: &mut Harness, p: ProducerIdAndEpoch, result: TransactionResult) -> ProducerIdAndEpoch {
    h.add_as(p, &[0], V2).unwrap();
    let next = h.end_as(p, result, V2).unwrap();
    h.deliver_markers();
    next
}

/// The client transaction version of the id's latest stored value.
fn stored_client_version(h: &Harness) -> i16 {
    let value = h.log.last().and_then(|(_, v)| v.as_deref()).expect("a stored value");
    parse_value(value).unwrap().client_transaction_version
}

#[test]
fn ongoing_ends_bump_the_epoch_and_refuse_an_older_one() {
    for result in [Commit, Abort] {
        let mut h = Harness::new();
        let p = producer(&mut h);
        h.add_as(p, &[0, 1], V2).unwrap();
        assert_eq!(stored_client_version(&h), 2, "the add records version 2");
        let older = pe(p.producer_id, p.producer_epoch - 1);
        assert_eq!(h.end_as(older, result, V2), Err(ProducerFenced));
        assert_eq!(h.end_as(p, result, V2), Ok(pe(p.producer_id, 2)));
        // The markers carry the bumped epoch.
        let m = h.markers[0].clone();
        assert_eq!(
            (m.producer_id, m.producer_epoch, m.partitions.len()),
            (p.producer_id, 2, 2)
        );
        let prepared = if result == Commit {
            TransactionState::PrepareCommit
        } else {
            TransactionState::PrepareAbort
        };
        assert_eq!(h.state(), (prepared, p.producer_id, 2));
    }
}

#[test]
fn prepared_transactions_answer_retries_and_the_new_epoch_concurrent() {
    let mut h = Harness::new();
    let p = producer(&mut h);
    h.add_as(p, &[0], V2).unwrap();
    assert_eq!(h.end_as(p, Commit, V2), Ok(pe(p.producer_id, 2)));
    assert_eq!(h.end_as(p, Commit, V2), Err(ConcurrentTransactions), "a retry");
    // Its completion is pending (as in Kafka): the other result waits too.
    assert_eq!(
        h.end_as(p, Abort, V2),
        Err(ConcurrentTransactions),
        "a retry, the other result"
    );
    // The producer already ends its next transaction with the answered
    // epoch: it waits for the completion, it is not fenced (KAFKA-18464).
    let bumped = pe(p.producer_id, 2);
    assert_eq!(
        h.end_as(bumped, Abort, V2),
        Err(ConcurrentTransactions),
        "the new epoch"
    );
    assert_eq!(
        h.end_as(bumped, Commit, V2),
        Err(ConcurrentTransactions),
        "the new epoch"
    );
    // The next transaction's implicit add waits for the completion.
    assert_eq!(h.add_as(bumped, &[0], V2), Err(ConcurrentTransactions));
    h.deliver_markers();
    assert_eq!(h.end_as(bumped, Abort, V2), Ok(pe(p.producer_id, 3)));
}

#[test]
fn a_pending_transition_is_checked_before_the_producer() {
    let mut h = Harness::new();
    let p = producer(&mut h);
    h.add_as(p, &[0], V2).unwrap();
    h.end_as(p, Commit, V2).unwrap();
    // As Kafka: whatever the producer, the completion is waited for.
    let other = pe(p.producer_id + 1, 2);
    assert_eq!(h.end_as(other, Abort, V2), Err(ConcurrentTransactions));
    h.deliver_markers();
    assert_eq!(h.end_as(other, Abort, V2), Err(InvalidProducerIdMapping));
}

#[test]
fn a_stale_producer_does_not_adopt_the_epoch_of_a_version_1_end() {
    // One transactional id, A (version 2) and B (version 1). A's last end
    // was answered (pid, X).
    let mut h = Harness::new();
    let p = producer(&mut h);
    let a = ended(&mut h, p, Commit);
    // B takes the id over (X + 1) and aborts without a bump.
    let b = h.init().unwrap();
    assert_eq!(b, pe(a.producer_id, a.producer_epoch + 1));
    h.add(b, &[0]).unwrap();
    h.end(b, Abort).unwrap();
    h.deliver_markers();
    assert_eq!(
        h.state(),
        (TransactionState::CompleteAbort, b.producer_id, b.producer_epoch)
    );
    // A's end at X is one below, but no version 2 end bumped to X + 1.
    assert_eq!(h.end_as(a, Abort, V2), Err(ProducerFenced));
    assert_eq!(h.end_as(a, Commit, V2), Err(ProducerFenced));
    h.failover();
    assert_eq!(h.end_as(a, Abort, V2), Err(ProducerFenced), "after a failover");
}

#[test]
fn empty_aborts_bump_and_commits_or_retries_are_refused() {
    let mut h = Harness::new();
    let p = producer(&mut h);
    let older = pe(p.producer_id, 0);
    assert_eq!(h.end_as(older, Abort, V2), Err(ProducerFenced));
    assert_eq!(h.end_as(older, Commit, V2), Err(ProducerFenced));
    assert_eq!(h.end_as(p, Commit, V2), Err(InvalidTxnState));
    // Abort of a transaction the coordinator never saw a partition of.
    assert_eq!(h.end_as(p, Abort, V2), Ok(pe(p.producer_id, 2)));
    assert_eq!(h.markers[0].partitions, vec![], "no partition to mark");
    h.deliver_markers();
    assert_eq!(h.state(), (TransactionState::CompleteAbort, p.producer_id, 2));
}

#[test]
fn complete_abort_answers_a_retry_and_aborts_again_at_the_current_epoch() {
    let mut h = Harness::new();
    let p = producer(&mut h);
    let next = ended(&mut h, p, Abort);
    assert_eq!(next, pe(p.producer_id, 2));
    let written = h.log.len();
    assert_eq!(h.end_as(p, Abort, V2), Ok(next), "a retry: the current producer");
    assert_eq!(h.end_as(p, Commit, V2), Err(InvalidTxnState));
    assert_eq!(h.end_as(next, Commit, V2), Err(InvalidTxnState));
    assert_eq!(h.log.len(), written, "nothing written");
    assert_eq!(h.end_as(next, Abort, V2), Ok(pe(p.producer_id, 3)));
}

#[test]
fn complete_commit_answers_a_retry_and_aborts_at_the_current_epoch() {
    let mut h = Harness::new();
    let p = producer(&mut h);
    let next = ended(&mut h, p, Commit);
    assert_eq!(h.end_as(p, Commit, V2), Ok(next), "a retry: the current producer");
    assert_eq!(h.end_as(p, Abort, V2), Err(InvalidTxnState));
    assert_eq!(h.end_as(next, Commit, V2), Err(InvalidTxnState));
    assert_eq!(h.end_as(next, Abort, V2), Ok(pe(p.producer_id, 3)));
    h.deliver_markers();
    assert_eq!(h.state(), (TransactionState::CompleteAbort, p.producer_id, 3));
}

#[test]
fn an_exhausted_epoch_moves_to_the_next_producer_id() {
    let mut h = loaded_at(i16::MAX - 1, TransactionState::Ongoing);
    let old = pe(50, i16::MAX - 1);
    let next = h.end_as(old, Commit, V2).unwrap();
    assert_eq!(next, pe(h.next_pid, 0), "the completion's producer");
    // Prepare keeps the old id, one epoch up; so do the markers.
    assert_eq!(h.state(), (TransactionState::PrepareCommit, 50, i16::MAX));
    assert_eq!((h.markers[0].producer_id, h.markers[0].producer_epoch), (50, i16::MAX));
    // The producer already adds with the next id: the completion is
    // pending, so CONCURRENT_TRANSACTIONS, not a wrong mapping.
    assert_eq!(h.add_as(next, &[0], V2), Err(ConcurrentTransactions));
    h.deliver_markers();
    assert_eq!(h.state(), (TransactionState::CompleteCommit, next.producer_id, 0));
    assert_eq!(h.end_as(old, Commit, V2), Ok(next), "a retry with the old id");
    // The old id is remembered across a failover too.
    h.failover();
    assert_eq!(h.end_as(old, Commit, V2), Ok(next), "a retry after a failover");
    assert_eq!(h.add_as(next, &[0], V2), Ok(()));
}

#[test]
fn a_failover_while_rotating_completes_on_the_next_producer_id() {
    let mut h = loaded_at(i16::MAX - 1, TransactionState::Ongoing);
    let old = pe(50, i16::MAX - 1);
    let next = h.end_as(old, Abort, V2).unwrap();
    h.failover();
    // The new coordinator sends the markers again and completes.
    assert_eq!((h.markers[0].producer_id, h.markers[0].producer_epoch), (50, i16::MAX));
    h.deliver_markers();
    assert_eq!(h.state(), (TransactionState::CompleteAbort, next.producer_id, 0));
    assert_eq!(h.end_as(old, Abort, V2), Ok(next));
}

#[test]
fn a_failover_keeps_the_client_version_so_a_retry_is_answered() {
    let mut h = Harness::new();
    let p = producer(&mut h);
    h.add_as(p, &[0], V2).unwrap();
    let next = h.end_as(p, Commit, V2).unwrap();
    assert_eq!(stored_client_version(&h), 2);
    // The coordinator moves before the markers are written.
    h.failover();
    h.deliver_markers();
    assert_eq!(h.state(), (TransactionState::CompleteCommit, p.producer_id, 2));
    // A retry is recognised only after an end under version 2 (tag 2).
    assert_eq!(h.end_as(p, Commit, V2), Ok(next));
    assert_eq!(stored_client_version(&h), 2, "the completion keeps it");
    h.failover();
    assert_eq!(h.end_as(p, Commit, V2), Ok(next), "the completion's record keeps it");
}

#[test]
fn a_timed_out_transaction_at_level_2_fences_its_producer() {
    let mut h = Harness::at_level(2);
    let p = h.init().unwrap();
    h.add_as(p, &[0], V2).unwrap();
    h.tick_after(i64::from(TIMEOUT) + 1);
    h.settle(true);
    // Fence at e+1, the abort at e+2.
    assert_eq!(h.markers[0].producer_epoch, p.producer_epoch + 2);
    h.deliver_markers();
    assert_eq!(
        h.state(),
        (TransactionState::CompleteAbort, p.producer_id, p.producer_epoch + 2)
    );
    // The zombie's own end does not pass for a retry.
    assert_eq!(h.end_as(p, Abort, V2), Err(ProducerFenced));
    assert_eq!(h.end_as(p, Commit, V2), Err(ProducerFenced));
}

#[test]
fn at_level_0_a_timed_out_producer_is_fenced() {
    // The abort is a version 0 end at e + 1: not one a retry at e may be
    // taken for (it did not bump).
    let mut h = Harness::at_level(0);
    let p = h.init().unwrap();
    h.add_as(p, &[0], V2).unwrap();
    h.tick_after(i64::from(TIMEOUT) + 1);
    h.settle(true);
    h.deliver_markers();
    assert_eq!(h.state(), (TransactionState::CompleteAbort, p.producer_id, 1));
    assert_eq!(h.end_as(p, Abort, V2), Err(ProducerFenced));
    assert_eq!(h.end_as(p, Commit, V2), Err(ProducerFenced));
}

#[test]
fn a_new_producer_at_level_2_fences_with_a_double_bump() {
    let mut h = Harness::at_level(2);
    let old = h.init().unwrap();
    h.add_as(old, &[0], V2).unwrap();
    assert_eq!(h.init(), Err(ConcurrentTransactions));
    assert_eq!(h.markers[0].producer_epoch, 2);
    h.deliver_markers();
    assert_eq!(h.init(), Ok(pe(old.producer_id, 3)));
    assert_eq!(h.end_as(old, Abort, V2), Err(ProducerFenced));
}

#[test]
fn version_0_requests_are_unchanged() {
    let mut h = Harness::at_level(2);
    let p = h.init().unwrap();
    h.add(p, &[0]).unwrap();
    assert_eq!(stored_client_version(&h), 0);
    assert_eq!(h.end(p, Commit), Ok(()));
    assert_eq!(h.markers[0].producer_epoch, p.producer_epoch, "no bump");
    h.deliver_markers();
    assert_eq!(h.state(), (TransactionState::CompleteCommit, p.producer_id, 0));
    assert_eq!(h.end(p, Commit), Ok(()));
    assert_eq!(h.end(p, Abort), Err(InvalidTxnState));
}

#[test]
fn at_level_1_a_timed_out_producer_is_fenced_and_the_level_stored() {
    let mut h = Harness::at_level(1);
    let p = h.init().unwrap();
    h.add_as(p, &[0], V2).unwrap();
    h.tick_after(i64::from(TIMEOUT) + 1);
    h.settle(true);
    assert_eq!(stored_client_version(&h), 1, "the abort is a version 1 end");
    h.deliver_markers();
    assert_eq!(h.state(), (TransactionState::CompleteAbort, p.producer_id, 1));
    h.failover();
    assert_eq!(h.end_as(p, Abort, V2), Err(ProducerFenced));
}

#[test]
fn at_level_2_a_failed_fence_write_is_not_bumped_again() {
    let mut h = Harness::at_level(2);
    let p = h.init().unwrap();
    h.add_as(p, &[0], V2).unwrap();
    h.tick_after(i64::from(TIMEOUT) + 1);
    h.settle(false);
    assert!(h.markers.is_empty(), "nothing stored, no markers");
    // The next round of timeout checks.
    h.tick_after(i64::from(TIMEOUT));
    h.settle(true);
    // The kept fence epoch e+1, the abort at e+2 (not e+3).
    assert_eq!(h.markers[0].producer_epoch, p.producer_epoch + 2);
    h.deliver_markers();
    assert_eq!(h.end_as(p, Abort, V2), Err(ProducerFenced));
}
