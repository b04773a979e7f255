//! The state machine's rules, one test per rule, mirroring the important
//! cases of Kafka's TransactionCoordinatorTest and TransactionMetadataTest.

use gregor_log::TopicPartition;
use gregor_transaction::records::{key_bytes, parse_key, parse_value, value_bytes, TransactionLogValue};
use gregor_transaction::{
    Output, ProducerIdAndEpoch, RequestId, Response, TransactionError, TransactionResult, TransactionSettings,
    TransactionState, TransactionStateMachine, TransactionVersion,
};

mod harness;

use harness::{loaded_at, pe, Harness, TIMEOUT, TX};

#[test]
fn a_new_transactional_id_gets_a_producer_id_at_epoch_zero_once_stored() {
    let mut h = Harness::new();
    let r = h.request();
    let out = h.m.init_producer_id(r, Some(TX), TIMEOUT, None, h.now, &mut || Ok(7));
    h.take(out);
    assert!(h.answers.is_empty(), "answered before the write");
    let w = &h.writes[0];
    assert_eq!(parse_key(&w.records[0].0), Ok(Some(TX.to_string())));
    let v = parse_value(w.records[0].1.as_deref().unwrap()).unwrap();
    assert_eq!(
        (v.producer_id, v.producer_epoch, v.status, v.partitions),
        (7, 0, 0, None)
    );
    assert_eq!(w.coordinator_epoch, 1);
    h.settle(true);
    assert_eq!(h.answer(r), Some(Response::InitProducerId(Ok(pe(7, 0)))));
}

#[test]
fn idempotent_producers_get_an_id_without_a_write() {
    let mut h = Harness::new();
    let out = h.m.init_producer_id(RequestId(1), None, 0, None, h.now, &mut || Ok(9));
    assert_eq!(
        out,
        vec![Output::Respond {
            request: RequestId(1),
            response: Response::InitProducerId(Ok(pe(9, 0)))
        }]
    );
    let out = h.m.init_producer_id(RequestId(2), None, 0, None, h.now, &mut || {
        Err(TransactionError::CoordinatorLoadInProgress)
    });
    assert!(matches!(
        &out[0],
        Output::Respond {
            response: Response::InitProducerId(Err(TransactionError::CoordinatorLoadInProgress)),
            ..
        }
    ));
}

#[test]
fn bad_init_requests_are_refused() {
    let mut h = Harness::new();
    let mut ids = || Ok(1);
    let answer = |out: Vec<Output>| match &out[..] {
        [Output::Respond {
            response: Response::InitProducerId(r),
            ..
        }] => *r,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        answer(h.m.init_producer_id(RequestId(1), Some(""), TIMEOUT, None, 0, &mut ids)),
        Err(TransactionError::InvalidRequest)
    );
    assert_eq!(
        answer(h.m.init_producer_id(RequestId(1), Some(TX), 900_001, None, 0, &mut ids)),
        Err(TransactionError::InvalidTransactionTimeout)
    );
    assert_eq!(
        answer(h.m.init_producer_id(RequestId(1), Some(TX), 0, None, 0, &mut ids)),
        Err(TransactionError::InvalidTransactionTimeout)
    );
    h.fail_ids = true;
    assert_eq!(h.init(), Err(TransactionError::CoordinatorLoadInProgress));
}

#[test]
fn not_coordinator_and_loading() {
    let mut h = Harness::new();
    h.m.unload(0);
    assert_eq!(h.init(), Err(TransactionError::NotCoordinator));
    h.m.begin_load(0, 2);
    assert_eq!(h.init(), Err(TransactionError::CoordinatorLoadInProgress));
    assert_eq!(
        h.m.describe(&[TX.into()])[0].1,
        Err(TransactionError::CoordinatorLoadInProgress)
    );
    assert_eq!(
        h.m.list(&[], &[], -1, 0).error,
        Some(TransactionError::CoordinatorLoadInProgress)
    );
    // A load for another epoch is ignored; the right one completes.
    h.m.load(0, 1, &[], h.now);
    assert_eq!(h.init(), Err(TransactionError::CoordinatorLoadInProgress));
    h.m.load(0, 2, &[], h.now);
    assert!(h.init().is_ok());
    assert!(h.m.coordinating(TX));
}

#[test]
fn a_failed_write_answers_its_error_and_changes_nothing() {
    let mut h = Harness::new();
    let p = h.init().unwrap();
    assert_eq!(h.init_with(None, false), Err(TransactionError::CoordinatorNotAvailable));
    assert_eq!(h.state(), (TransactionState::Empty, p.producer_id, 0));
    let r = h.request();
    let out = h.m.add_partitions(
        r,
        TX,
        p.producer_id,
        0,
        vec![TopicPartition::new("t", 0)],
        TransactionVersion::V0,
        h.now,
    );
    h.take(out);
    h.settle(false);
    assert_eq!(
        h.answer(r),
        Some(Response::AddPartitions(vec![(
            TopicPartition::new("t", 0),
            Err(TransactionError::CoordinatorNotAvailable)
        )]))
    );
    assert_eq!(h.state().0, TransactionState::Empty);
    // Nothing is left pending: the next request goes through.
    assert_eq!(h.init(), Ok(pe(p.producer_id, 1)));
}

#[test]
fn add_partitions_checks_the_producer() {
    let mut h = Harness::new();
    assert_eq!(h.add(pe(1, 0), &[0]), Err(TransactionError::InvalidProducerIdMapping));
    let p = h.init().unwrap();
    assert_eq!(
        h.add(pe(p.producer_id + 1, 0), &[0]),
        Err(TransactionError::InvalidProducerIdMapping)
    );
    assert_eq!(h.add(pe(p.producer_id, 1), &[0]), Err(TransactionError::ProducerFenced));
    assert_eq!(h.add(p, &[0, 1]), Ok(()));
    assert_eq!(h.state().0, TransactionState::Ongoing);
    // Partitions already in: answered at once, no write.
    let out = h.m.add_partitions(
        RequestId(99),
        TX,
        p.producer_id,
        0,
        vec![TopicPartition::new("t", 1)],
        TransactionVersion::V0,
        h.now,
    );
    assert!(matches!(&out[..], [Output::Respond { response: Response::AddPartitions(r), .. }] if r[0].1.is_ok()));
    // While the transaction completes: CONCURRENT_TRANSACTIONS.
    assert_eq!(h.end(p, TransactionResult::Commit), Ok(()));
    assert_eq!(h.add(p, &[2]), Err(TransactionError::ConcurrentTransactions));
    // An empty id.
    let out = h.m.add_partitions(
        RequestId(98),
        "",
        0,
        0,
        vec![TopicPartition::new("t", 1)],
        TransactionVersion::V0,
        h.now,
    );
    assert!(
        matches!(&out[..], [Output::Respond { response: Response::AddPartitions(r), .. }] if r[0].1 == Err(TransactionError::InvalidRequest))
    );
}

#[test]
fn add_offsets_adds_the_groups_offsets_partition() {
    let mut h = Harness::new();
    let p = h.init().unwrap();
    let out =
        h.m.add_offsets(RequestId(50), TX, p.producer_id, p.producer_epoch, "my-group", h.now);
    h.take(out);
    h.settle(true);
    assert_eq!(h.answer(RequestId(50)), Some(Response::AddOffsets(Ok(()))));
    let d = h.m.describe(&[TX.into()]).remove(0).1.unwrap();
    assert_eq!(d.partitions, vec![TopicPartition::new("__consumer_offsets", 12)]);
}

#[test]
fn commit_is_two_phase() {
    let mut h = Harness::new();
    let p = h.init().unwrap();
    h.add(p, &[0, 1]).unwrap();
    let r = h.request();
    let out = h.m.end_txn(
        r,
        TX,
        p.producer_id,
        0,
        TransactionResult::Commit,
        TransactionVersion::V0,
        h.now,
        &mut || Ok(0),
    );
    h.take(out);
    assert!(
        h.answers.is_empty() && h.markers.is_empty(),
        "EndTxn answered or markers sent before PrepareCommit was stored"
    );
    let prepare = parse_value(h.writes[0].records[0].1.as_deref().unwrap()).unwrap();
    assert_eq!(prepare.status, TransactionState::PrepareCommit.id());
    h.settle(true);
    assert_eq!(h.answer(r), Some(Response::EndTxn(Ok(ProducerIdAndEpoch::NONE))));
    let m = h.markers[0].clone();
    assert_eq!(
        (m.producer_id, m.producer_epoch, m.coordinator_epoch, m.result),
        (p.producer_id, 0, 1, TransactionResult::Commit)
    );
    assert_eq!(
        m.partitions,
        vec![TopicPartition::new("t", 0), TopicPartition::new("t", 1)]
    );
    assert_eq!(h.state().0, TransactionState::PrepareCommit);
    // Retries while it completes.
    assert_eq!(
        h.end(p, TransactionResult::Commit),
        Err(TransactionError::ConcurrentTransactions)
    );
    assert_eq!(
        h.end(p, TransactionResult::Abort),
        Err(TransactionError::ConcurrentTransactions)
    );
    assert_eq!(h.init(), Err(TransactionError::ConcurrentTransactions));
    h.deliver_markers();
    assert_eq!(h.state().0, TransactionState::CompleteCommit);
    // A retry after completion: OK for the same result, not the other.
    assert_eq!(h.end(p, TransactionResult::Commit), Ok(()));
    assert_eq!(
        h.end(p, TransactionResult::Abort),
        Err(TransactionError::InvalidTxnState)
    );
    assert!(h.writes.is_empty());
}

#[test]
fn end_txn_rules() {
    let mut h = Harness::new();
    assert_eq!(
        h.end(pe(1, 0), TransactionResult::Commit),
        Err(TransactionError::InvalidProducerIdMapping)
    );
    let p = h.init().unwrap();
    assert_eq!(
        h.end(p, TransactionResult::Commit),
        Err(TransactionError::InvalidTxnState)
    );
    assert_eq!(
        h.end(pe(p.producer_id + 1, 0), TransactionResult::Commit),
        Err(TransactionError::InvalidProducerIdMapping)
    );
    h.add(p, &[0]).unwrap();
    assert_eq!(
        h.end(pe(p.producer_id, 1), TransactionResult::Commit),
        Err(TransactionError::ProducerFenced)
    );
    assert_eq!(h.end(p, TransactionResult::Abort), Ok(()));
    h.deliver_markers();
    assert_eq!(h.state().0, TransactionState::CompleteAbort);
    assert_eq!(h.end(p, TransactionResult::Abort), Ok(()));
    assert_eq!(
        h.end(p, TransactionResult::Commit),
        Err(TransactionError::InvalidTxnState)
    );
}

#[test]
fn a_new_producer_fences_the_old_and_aborts_its_transaction() {
    let mut h = Harness::new();
    let old = h.init().unwrap();
    h.add(old, &[0]).unwrap();
    assert_eq!(h.init(), Err(TransactionError::ConcurrentTransactions));
    // The abort carries the bumped epoch; the old producer is fenced.
    let m = h.markers[0].clone();
    assert_eq!((m.producer_epoch, m.result), (1, TransactionResult::Abort));
    assert_eq!(h.state(), (TransactionState::PrepareAbort, old.producer_id, 1));
    assert_eq!(
        h.end(old, TransactionResult::Commit),
        Err(TransactionError::ProducerFenced)
    );
    assert_eq!(h.init(), Err(TransactionError::ConcurrentTransactions));
    h.deliver_markers();
    assert_eq!(h.init(), Ok(pe(old.producer_id, 2)));
}

#[test]
fn a_failed_fence_is_not_bumped_again() {
    let mut h = Harness::new();
    let old = h.init().unwrap();
    h.add(old, &[0]).unwrap();
    assert_eq!(h.init_with(None, false), Err(TransactionError::CoordinatorNotAvailable));
    // The bumped epoch stays in memory (the old producer is fenced)...
    assert_eq!(h.state(), (TransactionState::Ongoing, old.producer_id, 1));
    assert_eq!(h.add(old, &[1]), Err(TransactionError::ProducerFenced));
    assert_eq!(h.init_with(None, false), Err(TransactionError::CoordinatorNotAvailable));
    assert_eq!(h.state().2, 1, "bumped twice");
    // ...and the fence that succeeds uses it.
    assert_eq!(h.init(), Err(TransactionError::ConcurrentTransactions));
    assert_eq!(h.markers[0].producer_epoch, 1);
    h.deliver_markers();
    assert_eq!(h.init(), Ok(pe(old.producer_id, 2)));
}

#[test]
fn exhausted_epochs_rotate_the_producer_id() {
    let mut h = loaded_at(i16::MAX - 1, TransactionState::CompleteCommit);
    let p = h.init().unwrap();
    assert_eq!(p.producer_epoch, 0);
    assert_ne!(p.producer_id, 50);
    // Fencing at the last epoch: the abort takes i16::MAX, then a new id.
    let mut h = loaded_at(i16::MAX - 1, TransactionState::Ongoing);
    assert_eq!(h.init(), Err(TransactionError::ConcurrentTransactions));
    assert_eq!(h.markers[0].producer_epoch, i16::MAX);
    h.deliver_markers();
    let p = h.init().unwrap();
    assert_eq!(p.producer_epoch, 0);
    assert_ne!(p.producer_id, 50);
}

#[test]
fn kip_360_recovery_keeps_the_producer_id() {
    let mut h = Harness::new();
    let p = h.init().unwrap();
    let bumped = h.init_with(Some(p), true).unwrap();
    assert_eq!(bumped, pe(p.producer_id, 1));
    // A retry of that bump (its answer lost) gets the same epoch.
    assert_eq!(h.init_with(Some(p), true), Ok(bumped));
    // Another producer id, or an epoch neither current nor last: fenced.
    assert_eq!(
        h.init_with(Some(pe(p.producer_id + 7, 1)), true),
        Err(TransactionError::ProducerFenced)
    );
    let next = h.init().unwrap();
    assert_eq!(h.init_with(Some(bumped), true), Err(TransactionError::ProducerFenced));
    assert_eq!(next.producer_epoch, 2);
}

#[test]
fn kip_360_retry_after_rotation() {
    let mut h = loaded_at(i16::MAX - 1, TransactionState::CompleteCommit);
    let old = pe(50, i16::MAX - 1);
    let rotated = h.init_with(Some(old), true).unwrap();
    assert_eq!(rotated.producer_epoch, 0);
    // The same request again: the old id is the last one, its epoch
    // exhausted; the current epoch is bumped-retried as last epoch.
    assert_eq!(h.init_with(Some(old), true), Ok(rotated));
    // A wrong epoch with the old id is fenced.
    assert_eq!(
        h.init_with(Some(pe(50, 3)), true),
        Err(TransactionError::ProducerFenced)
    );
}

#[test]
fn timed_out_transactions_are_aborted_with_an_epoch_bump() {
    let mut h = Harness::new();
    let p = h.init().unwrap();
    h.add(p, &[0]).unwrap();
    h.now += i64::from(TIMEOUT);
    let out = h.m.tick(h.now);
    assert!(out.is_empty(), "aborted at the timeout, not past it");
    h.tick_after(10_001);
    h.settle(true);
    assert_eq!(
        (h.markers[0].producer_epoch, h.markers[0].result),
        (1, TransactionResult::Abort)
    );
    assert_eq!(
        h.end(p, TransactionResult::Commit),
        Err(TransactionError::ProducerFenced)
    );
    h.deliver_markers();
    assert_eq!(h.state(), (TransactionState::CompleteAbort, p.producer_id, 1));
}

#[test]
fn idle_transactional_ids_expire_with_a_tombstone() {
    let mut h = Harness::new();
    let p = h.init().unwrap();
    h.tick_after(604_800_000);
    assert_eq!(h.writes.len(), 1);
    assert_eq!(h.writes[0].records, vec![(key_bytes(TX), None)]);
    // While the tombstone is written, the id is busy and not described.
    assert_eq!(
        h.m.describe(&[TX.into()])[0].1,
        Err(TransactionError::TransactionalIdNotFound)
    );
    assert_eq!(h.add(p, &[0]), Err(TransactionError::ConcurrentTransactions));
    h.settle(true);
    assert_eq!(
        h.m.describe(&[TX.into()])[0].1,
        Err(TransactionError::TransactionalIdNotFound)
    );
    assert_eq!(h.add(p, &[0]), Err(TransactionError::InvalidProducerIdMapping));
}

#[test]
fn open_transactions_do_not_expire() {
    let mut h = Harness::new();
    let settings = TransactionSettings {
        state_log_partitions: 1,
        transactional_id_expiration_ms: 10,
        max_timeout_ms: i32::MAX,
        ..Default::default()
    };
    h.m = TransactionStateMachine::new(settings);
    h.m.begin_load(0, 1);
    h.m.load(0, 1, &[], h.now);
    let r = h.request();
    let out = h.m.init_producer_id(r, Some(TX), i32::MAX, None, h.now, &mut || Ok(5));
    h.take(out);
    h.settle(true);
    h.add(pe(5, 0), &[0]).unwrap();
    h.now += 1_000_000;
    let out = h.m.tick(h.now);
    assert!(out.is_empty(), "{out:?}");
}

#[test]
fn loading_completes_prepared_transactions() {
    let mut h = loaded_at(3, TransactionState::PrepareCommit);
    assert_eq!(h.markers.len(), 1);
    let m = h.markers[0].clone();
    assert_eq!(
        (m.producer_id, m.producer_epoch, m.coordinator_epoch, m.result),
        (50, 3, 2, TransactionResult::Commit)
    );
    assert_eq!(
        h.end(pe(50, 3), TransactionResult::Commit),
        Err(TransactionError::ConcurrentTransactions)
    );
    h.deliver_markers();
    assert_eq!(h.state(), (TransactionState::CompleteCommit, 50, 3));
    assert_eq!(h.end(pe(50, 3), TransactionResult::Commit), Ok(()));
    // Open transactions keep their start: their timeout still fires.
    let mut h = loaded_at(3, TransactionState::Ongoing);
    assert!(h.markers.is_empty());
    h.tick_after(i64::from(TIMEOUT) + 1);
    h.settle(true);
    assert_eq!(h.markers[0].producer_epoch, 4);
}

#[test]
fn a_tombstone_forgets_and_garbage_is_skipped() {
    let mut h = Harness::new();
    let value = TransactionLogValue {
        producer_id: 50,
        producer_epoch: 1,
        timeout_ms: TIMEOUT,
        status: 0,
        partitions: None,
        last_update_ms: 0,
        start_ms: -1,
        previous_producer_id: -1,
        next_producer_id: -1,
        client_transaction_version: 0,
    };
    h.m.begin_load(0, 2);
    let records = vec![
        (key_bytes(TX), Some(value_bytes(&value))),
        (vec![0xff], Some(vec![1, 2, 3])),
        (key_bytes("other"), Some(vec![0, 0, 1])),
        (key_bytes(TX), None),
    ];
    h.m.load(0, 2, &records, h.now);
    assert_eq!(
        h.m.describe(&[TX.into(), "other".into()])
            .into_iter()
            .map(|(_, r)| r.err())
            .collect::<Vec<_>>(),
        vec![
            Some(TransactionError::TransactionalIdNotFound),
            Some(TransactionError::TransactionalIdNotFound)
        ]
    );
}

#[test]
fn unloading_answers_not_coordinator_and_drops_markers() {
    let mut h = Harness::new();
    let p = h.init().unwrap();
    h.add(p, &[0]).unwrap();
    let r = h.request();
    let out = h.m.end_txn(
        r,
        TX,
        p.producer_id,
        0,
        TransactionResult::Commit,
        TransactionVersion::V0,
        h.now,
        &mut || Ok(0),
    );
    h.take(out);
    let out = h.m.unload(0);
    h.take(out);
    assert_eq!(
        h.answer(r),
        Some(Response::EndTxn(Err(TransactionError::NotCoordinator)))
    );
    h.settle(true);
    assert!(h.answers.is_empty() && h.markers.is_empty());
    assert!(!h.m.coordinating(TX));

    // Markers out when the partition moves are no longer wanted.
    let mut h = loaded_at(3, TransactionState::PrepareAbort);
    let id = h.markers[0].id;
    assert!(h.m.marker_pending(id));
    h.m.unload(0);
    assert!(!h.m.marker_pending(id));
    assert!(h.m.markers_written(id).is_empty());
}

#[test]
fn a_failed_completion_is_retried_at_the_next_tick() {
    let mut h = loaded_at(3, TransactionState::PrepareCommit);
    let m = h.markers.pop().unwrap();
    let out = h.m.markers_written(m.id);
    h.take(out);
    h.settle(false);
    assert_eq!(h.state().0, TransactionState::PrepareCommit);
    let out = h.m.tick(h.now);
    h.take(out);
    assert_eq!(h.writes.len(), 1);
    h.settle(true);
    assert_eq!(h.state().0, TransactionState::CompleteCommit);
}

#[test]
fn list_filters_by_state_and_producer() {
    let mut h = Harness::new();
    let p = h.init().unwrap();
    h.add(p, &[0]).unwrap();
    let all = h.m.list(&[], &[], -1, h.now);
    assert_eq!(all.transactions.len(), 1);
    assert_eq!(all.transactions[0].state, TransactionState::Ongoing);
    let listing = h.m.list(&["Empty".into(), "Bogus".into()], &[], -1, h.now);
    assert!(listing.transactions.is_empty());
    assert_eq!(listing.unknown_state_filters, vec!["Bogus".to_string()]);
    assert!(h.m.list(&[], &[p.producer_id + 1], -1, h.now).transactions.is_empty());
    assert_eq!(
        h.m.list(&["Ongoing".into()], &[p.producer_id], -1, h.now)
            .transactions
            .len(),
        1
    );
    // Open for longer than the duration filter only.
    assert!(h.m.list(&[], &[], 5, h.now + 5).transactions.is_empty());
    assert_eq!(h.m.list(&[], &[], 5, h.now + 6).transactions.len(), 1);
}
