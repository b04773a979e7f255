use super::*;
use TransactionState::*;
use TransactionVersion::{V0, V2};

fn txn(epoch: i16, last_epoch: i16, state: TransactionState) -> TxnMetadata {
    let mut t = TxnMetadata::new(7, 1000, 0);
    t.fields.producer_epoch = epoch;
    t.fields.last_producer_epoch = last_epoch;
    t.fields.state = state;
    t
}

fn tp(p: u32) -> TopicPartition {
    TopicPartition::new("t", p)
}

#[test]
fn new_producer_starts_at_epoch_zero() {
    let mut t = TxnMetadata::new(7, 1000, 0);
    let target = t.prepare_increment_epoch(1000, None, 5).unwrap();
    assert_eq!((target.producer_epoch, target.last_producer_epoch), (0, -1));
    assert_eq!(t.pending, Some(Empty));
    t.complete(target);
    assert_eq!((t.fields.producer_epoch, t.state(), t.pending), (0, Empty, None));
}

#[test]
fn bump_with_expected_epoch_remembers_the_last() {
    let mut t = txn(4, -1, CompleteCommit);
    let target = t.prepare_increment_epoch(1000, Some(4), 5).unwrap();
    assert_eq!((target.producer_epoch, target.last_producer_epoch), (5, 4));
    t.complete(target);
    // A retry with the old epoch gets the same epoch, not another bump.
    let retry = t.prepare_increment_epoch(1000, Some(4), 6).unwrap();
    assert_eq!((retry.producer_epoch, retry.last_producer_epoch), (5, 4));
    t.pending = None;
    // Another epoch is fenced.
    assert_eq!(
        t.prepare_increment_epoch(1000, Some(3), 6),
        Err(TransactionError::ProducerFenced)
    );
}

#[test]
fn fence_bumps_once_even_after_a_failed_write() {
    let mut t = txn(4, -1, Ongoing);
    assert_eq!(t.prepare_fence().unwrap().producer_epoch, 5);
    t.pending = None;
    t.failed_epoch_fence = true;
    t.fields.producer_epoch = 5;
    assert_eq!(t.prepare_fence().unwrap().producer_epoch, 5);
    let mut max = txn(i16::MAX, -1, Ongoing);
    assert_eq!(max.prepare_fence(), Err(TransactionError::UnknownServerError));
}

#[test]
fn rotation_starts_a_new_producer_id_at_zero() {
    let mut t = txn(EXHAUSTED_EPOCH, -1, Empty);
    assert!(t.epoch_exhausted());
    let target = t.prepare_rotation(8, 1000, 5, true).unwrap();
    assert_eq!(
        (
            target.producer_id,
            target.last_producer_id,
            target.producer_epoch,
            target.last_producer_epoch
        ),
        (8, 7, 0, EXHAUSTED_EPOCH)
    );
}

#[test]
fn add_partitions_starts_a_transaction_once() {
    let mut t = txn(0, -1, Empty);
    let target = t.prepare_add_partitions([tp(0)], V0, 10).unwrap();
    assert_eq!((target.state, target.start_ms), (Ongoing, 10));
    t.complete(target);
    let target = t.prepare_add_partitions([tp(1)], V2, 20).unwrap();
    assert_eq!(target.client_transaction_version, V2, "the add records its version");
    assert_eq!(target.start_ms, 10);
    assert_eq!(target.partitions, [tp(0), tp(1)].into());
}

#[test]
fn illegal_transitions_are_errors() {
    // Only Ongoing may prepare a commit.
    assert_eq!(
        txn(0, -1, Empty).prepare_end(PrepareCommit, V0, -1, 1),
        Err(TransactionError::UnknownServerError)
    );
    assert_eq!(
        txn(0, -1, Ongoing).prepare_complete(1),
        Err(TransactionError::UnknownServerError)
    );
    assert_eq!(
        txn(0, -1, Ongoing).prepare_dead(),
        Err(TransactionError::UnknownServerError)
    );
    // One pending transition at a time.
    let mut t = txn(0, -1, Ongoing);
    t.prepare_end(PrepareAbort, V0, -1, 1).unwrap();
    assert_eq!(
        t.prepare_end(PrepareAbort, V0, -1, 1),
        Err(TransactionError::ConcurrentTransactions)
    );
}

#[test]
fn only_version_2_aborts_without_a_transaction() {
    for state in [Empty, CompleteCommit, CompleteAbort] {
        assert_eq!(
            txn(3, -1, state).prepare_end(PrepareAbort, V0, -1, 1),
            Err(TransactionError::UnknownServerError)
        );
        let target = txn(3, -1, state).prepare_end(PrepareAbort, V2, -1, 9).unwrap();
        assert_eq!((target.producer_epoch, target.start_ms), (4, 9), "bumped, starting now");
        assert_eq!(
            txn(3, -1, state).prepare_end(PrepareCommit, V2, -1, 1),
            Err(TransactionError::UnknownServerError)
        );
    }
}

#[test]
fn version_2_ends_bump_the_epoch_and_complete_on_the_next_producer_id() {
    let mut t = txn(3, -1, Ongoing);
    t.fields.partitions.insert(tp(0));
    let target = t.prepare_end(PrepareCommit, V0, -1, 1).unwrap();
    assert_eq!(
        (target.producer_epoch, target.last_producer_epoch),
        (3, -1),
        "version 0: no bump"
    );
    t.pending = None;
    let target = t.prepare_end(PrepareCommit, V2, -1, 1).unwrap();
    assert_eq!(
        (
            target.producer_epoch,
            target.last_producer_epoch,
            target.client_transaction_version
        ),
        (4, 3, V2)
    );
    t.complete(target);
    let complete = t.prepare_complete(2).unwrap();
    assert_eq!((complete.producer_id, complete.producer_epoch), (7, 4));
    // An exhausted epoch: Prepare* keeps the producer id at the last
    // epoch, its completion moves to the next id at epoch 0.
    let mut t = txn(EXHAUSTED_EPOCH, -1, Ongoing);
    let target = t.prepare_end(PrepareAbort, V2, 8, 1).unwrap();
    assert_eq!(
        (target.producer_id, target.producer_epoch, target.next_producer_id),
        (7, i16::MAX, 8)
    );
    t.complete(target);
    let complete = t.prepare_complete(2).unwrap();
    assert_eq!(
        (
            complete.producer_id,
            complete.producer_epoch,
            complete.last_producer_id,
            complete.next_producer_id
        ),
        (8, 0, 7, -1)
    );
    assert_eq!(
        complete.end_txn_answer(),
        ProducerIdAndEpoch {
            producer_id: 8,
            producer_epoch: 0
        }
    );
    // The largest epoch: an abort does not bump, a commit cannot.
    let target = txn(i16::MAX, -1, Ongoing).prepare_end(PrepareAbort, V2, -1, 1).unwrap();
    assert_eq!(target.producer_epoch, i16::MAX);
    assert!(txn(i16::MAX, -1, Ongoing)
        .prepare_end(PrepareCommit, V2, -1, 1)
        .is_err());
}

#[test]
fn version_2_values_keep_the_version_and_the_producer_ids() {
    let mut t = txn(0, 4, CompleteAbort);
    t.fields.producer_id = 8;
    t.fields.last_producer_id = 7;
    t.fields.client_transaction_version = V2;
    let back = TxnMetadata::from_value(&t.fields.to_value()).unwrap();
    assert_eq!(
        (
            back.fields.producer_id,
            back.fields.last_producer_id,
            back.fields.client_transaction_version
        ),
        (8, 7, V2)
    );
    // No rotation: no previous id stored.
    t.fields.last_producer_id = 8;
    assert_eq!(t.fields.to_value().previous_producer_id, -1);
}

#[test]
fn complete_clears_partitions() {
    let mut t = txn(0, -1, Ongoing);
    t.fields.partitions.insert(tp(0));
    t.fields.state = PrepareCommit;
    let target = t.prepare_complete(9).unwrap();
    assert_eq!((target.state, target.partitions.len()), (CompleteCommit, 0));
}

#[test]
fn values_round_trip_without_last_ids() {
    let mut t = txn(3, 2, Ongoing);
    t.fields.partitions = [tp(1), TopicPartition::new("a", 0)].into();
    t.fields.start_ms = 5;
    let back = TxnMetadata::from_value(&t.fields.to_value()).unwrap();
    assert_eq!(back.fields.partitions, t.fields.partitions);
    assert_eq!((back.fields.producer_epoch, back.fields.last_producer_epoch), (3, -1));
    let empty = txn(3, -1, Empty);
    assert_eq!(empty.fields.to_value().partitions, None);
    let mut dead = empty.fields.to_value();
    dead.status = Dead.id();
    assert!(TxnMetadata::from_value(&dead).is_none());
}
