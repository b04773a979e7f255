//! Unit tests of the producer state.

use super::*;
use crate::batch::{BatchHeader, ControlRecordType, EndTransactionMarker};
use proptest::prelude::*;

fn header(producer_id: i64, epoch: i16, first_seq: i32, records: u32, base_offset: u64) -> BatchHeader {
    BatchHeader {
        base_offset,
        batch_length: 0,
        partition_leader_epoch: 0,
        crc: 0,
        attributes: 0,
        last_offset_delta: records - 1,
        base_timestamp: 0,
        max_timestamp: 0,
        producer_id,
        producer_epoch: epoch,
        base_sequence: first_seq,
        record_count: records,
    }
}

#[test]
fn in_sequence_batches_append_and_retries_are_duplicates() {
    let mut s = ProducerStates::new();
    assert_eq!(s.check(&header(7, 0, 0, 3, 0)), Ok(SequenceCheck::Append));
    s.record(&header(7, 0, 0, 3, 0), None, 0);
    assert_eq!(s.check(&header(7, 0, 3, 2, 99)), Ok(SequenceCheck::Append));
    s.record(&header(7, 0, 3, 2, 10), None, 0);
    match s.check(&header(7, 0, 0, 3, 99)) {
        Ok(SequenceCheck::Duplicate(b)) => assert_eq!((b.first_offset, b.last_offset), (0, 2)),
        other => panic!("{other:?}"),
    }
    match s.check(&header(7, 0, 3, 2, 99)) {
        Ok(SequenceCheck::Duplicate(b)) => assert_eq!((b.first_offset, b.last_offset), (10, 11)),
        other => panic!("{other:?}"),
    }
}

#[test]
fn gaps_and_old_epochs_are_refused_unknown_producers_start_anywhere() {
    let mut s = ProducerStates::new();
    s.record(&header(7, 2, 0, 3, 0), None, 0);
    assert_eq!(
        s.check(&header(7, 2, 5, 1, 9)),
        Err(ProducerError::OutOfOrderSequence {
            producer_id: 7,
            expected: 3,
            got: 5
        })
    );
    assert!(matches!(
        s.check(&header(7, 1, 3, 1, 9)),
        Err(ProducerError::InvalidEpoch { current: 2, .. })
    ));
    assert!(matches!(
        s.check(&header(7, 3, 3, 1, 9)),
        Err(ProducerError::OutOfOrderSequence { expected: 0, .. })
    ));
    assert_eq!(s.check(&header(7, 3, 0, 1, 9)), Ok(SequenceCheck::Append));
    // An unknown producer may start anywhere (Kafka since KIP-360).
    assert_eq!(s.check(&header(8, 0, 4, 1, 9)), Ok(SequenceCheck::Append));
}

#[test]
fn only_the_last_five_batches_are_remembered() {
    let mut s = ProducerStates::new();
    for i in 0..6 {
        s.record(&header(1, 0, i, 1, i as u64), None, 0);
    }
    assert_eq!(s.get(1).unwrap().batches.len(), MAX_CACHED_BATCHES);
    // The oldest one (sequence 0) is no longer recognised.
    assert!(matches!(
        s.check(&header(1, 0, 0, 1, 9)),
        Err(ProducerError::OutOfOrderSequence { .. })
    ));
    assert!(matches!(
        s.check(&header(1, 0, 1, 1, 9)),
        Ok(SequenceCheck::Duplicate(_))
    ));
}

#[test]
fn sequences_wrap_at_i32_max() {
    let mut s = ProducerStates::new();
    s.record(&header(1, 0, 0, 1, 0), None, 0);
    let mut entry = s.producers[&1].clone();
    entry.batches.back_mut().unwrap().last_seq = i32::MAX;
    s.producers.insert(1, entry);
    assert_eq!(s.check(&header(1, 0, 0, 1, 5)), Ok(SequenceCheck::Append));
    assert_eq!(last_seq(i32::MAX - 1, 3), 1);
}

#[test]
fn expiry_and_retention_forget_producers_but_not_open_transactions() {
    let mut s = ProducerStates::new();
    s.record(&header(1, 0, 0, 1, 0), None, 1_000);
    s.record(&header(2, 0, 0, 1, 5), None, 5_000);
    s.record(&header(3, 0, 0, 1, 6).transactional(), None, 1_000);
    assert_eq!(s.expire(10_000, 6_000), 1);
    assert!(s.get(1).is_none());
    assert!(s.get(3).is_some(), "a producer with an open transaction never expires");
    s.retain_from(7);
    assert_eq!(s.iter().map(|(id, _)| id).collect::<Vec<_>>(), vec![3]);
}

trait Transactional {
    fn transactional(self) -> Self;
    fn control(self) -> Self;
}

impl Transactional for BatchHeader {
    fn transactional(mut self) -> Self {
        self.attributes |= 0x10;
        self
    }
    fn control(mut self) -> Self {
        self.attributes |= 0x30;
        self.base_sequence = -1;
        self
    }
}

fn marker(kind: ControlRecordType, coordinator_epoch: i32) -> Option<EndTransactionMarker> {
    Some(EndTransactionMarker {
        kind,
        coordinator_epoch,
    })
}

#[test]
fn a_transactional_batch_opens_a_transaction_and_a_marker_ends_it() {
    let s = ProducerStates::new();
    let mut append = s.begin_append(Validation::Checked, 0);
    assert_eq!(
        append.batch(&header(4, 1, 0, 2, 10).transactional(), None),
        Ok(Some(TxnEvent::Started {
            producer_id: 4,
            first_offset: 10
        }))
    );
    // A second batch of the same transaction starts nothing.
    assert_eq!(append.batch(&header(4, 1, 2, 2, 12).transactional(), None), Ok(None));
    let end = append.batch(&header(4, 1, -1, 1, 20).control(), marker(ControlRecordType::Abort, 3));
    assert_eq!(
        end,
        Ok(Some(TxnEvent::Ended(CompletedTxn {
            producer_id: 4,
            first_offset: 10,
            last_offset: 20,
            aborted: true
        })))
    );
    // An empty transaction's marker ends nothing.
    assert_eq!(
        append.batch(&header(4, 1, -1, 1, 21).control(), marker(ControlRecordType::Commit, 3)),
        Ok(None)
    );
    let mut s = s.clone();
    s.commit(append.into_updates());
    let entry = s.get(4).unwrap();
    assert_eq!((entry.coordinator_epoch, entry.current_txn_first_offset), (3, None));
    assert_eq!(entry.last_sequence(), 3, "markers keep the epoch's batches");
}

#[test]
fn markers_are_fenced_by_producer_and_coordinator_epoch() {
    let mut s = ProducerStates::new();
    s.record(&header(4, 2, 0, 1, 0).transactional(), None, 0);
    s.record(
        &header(4, 2, -1, 1, 1).control(),
        marker(ControlRecordType::Commit, 5),
        0,
    );
    let mut append = s.begin_append(Validation::Checked, 0);
    assert!(matches!(
        append.batch(&header(4, 1, -1, 1, 2).control(), marker(ControlRecordType::Commit, 5)),
        Err(ProducerError::InvalidEpoch { current: 2, .. })
    ));
    assert_eq!(
        append.batch(&header(4, 2, -1, 1, 2).control(), marker(ControlRecordType::Abort, 4)),
        Err(ProducerError::CoordinatorFenced {
            producer_id: 4,
            coordinator_epoch: 4,
            current: 5
        })
    );
    // A marker of a newer producer epoch bumps it and forgets the batches.
    assert_eq!(
        append.batch(&header(4, 3, -1, 1, 2).control(), marker(ControlRecordType::Abort, 6)),
        Ok(None)
    );
    let updates = append.into_updates();
    assert_eq!((updates[&4].epoch, updates[&4].batches.len()), (3, 0));
    // A follower applies what its leader wrote, fenced or not.
    let mut trusted = s.begin_append(Validation::Trusted, 0);
    assert!(trusted
        .batch(&header(4, 1, -1, 1, 2).control(), marker(ControlRecordType::Commit, 0))
        .is_ok());
}

#[test]
fn a_plain_batch_inside_an_open_transaction_is_refused() {
    let mut s = ProducerStates::new();
    s.record(&header(4, 0, 0, 1, 0).transactional(), None, 0);
    let mut append = s.begin_append(Validation::Checked, 0);
    assert_eq!(
        append.batch(&header(4, 0, 1, 1, 1), None),
        Err(ProducerError::InvalidTxnState { producer_id: 4 })
    );
}

#[test]
fn the_last_stable_offset_of_an_abort_is_the_next_other_open_transaction() {
    let mut t = Transactions::default();
    let start = |producer_id, first_offset| TxnEvent::Started {
        producer_id,
        first_offset,
    };
    let end = |producer_id, first_offset, last_offset| {
        TxnEvent::Ended(CompletedTxn {
            producer_id,
            first_offset,
            last_offset,
            aborted: true,
        })
    };
    t.apply(start(1, 5));
    t.apply(start(2, 8));
    assert_eq!(t.first_unstable_offset(), Some(5));
    assert_eq!(t.apply(end(2, 8, 12)), Some(5));
    assert_eq!(t.apply(end(1, 5, 13)), Some(14));
    // Ended but not replicated: still unstable until the HW passes the marker.
    assert_eq!(t.first_unstable_offset(), Some(5));
    t.on_high_watermark(13);
    assert_eq!(t.first_unstable_offset(), Some(5));
    t.on_high_watermark(14);
    assert_eq!(t.first_unstable_offset(), None);
}

#[test]
fn snapshots_keep_coordinator_epochs_open_transactions_and_batchless_producers() {
    let mut s = ProducerStates::new();
    s.record(&header(1, 0, 0, 2, 10).transactional(), None, 0);
    s.record(&header(2, 0, -1, 1, 12).transactional(), None, 0);
    s.record(
        &header(3, 4, -1, 1, 13).control(),
        marker(ControlRecordType::Abort, 9),
        0,
    );
    let back = ProducerStates::decode_snapshot(&s.encode_snapshot(), 0).unwrap();
    assert_eq!(back, s);
    assert_eq!(back.get(1).unwrap().current_txn_first_offset, Some(10));
    assert_eq!(back.get(2).unwrap().last_sequence(), -1);
    assert_eq!(back.get(3).unwrap().coordinator_epoch, 9);
    assert_eq!(
        Transactions::of_producers(&back).ongoing().collect::<Vec<_>>(),
        vec![(10, 1), (12, 2)]
    );
}

#[test]
fn a_damaged_snapshot_is_an_error() {
    let mut s = ProducerStates::new();
    s.record(&header(1, 0, 0, 4, 10), None, 0);
    let mut bytes = s.encode_snapshot();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    assert_eq!(ProducerStates::decode_snapshot(&bytes, 0), Err(SnapshotError::Crc));
    assert_eq!(
        ProducerStates::decode_snapshot(&bytes[..3], 0),
        Err(SnapshotError::Truncated)
    );
    assert_eq!(
        ProducerStates::decode_snapshot(&[0, 2, 0, 0, 0, 0], 0),
        Err(SnapshotError::Version(2))
    );
}

proptest! {
    /// A snapshot keeps, per producer, the epoch and the last batch.
    #[test]
    fn snapshots_round_trip_the_last_batch(
        batches in proptest::collection::vec((0i64..5, 0i16..3, 1u32..10), 1..40),
    ) {
        let mut s = ProducerStates::new();
        let mut next_offset = 0u64;
        let mut seqs = BTreeMap::new();
        for (id, epoch, records) in batches {
            let seq: &mut (i16, i32) = seqs.entry(id).or_insert((epoch, 0));
            if epoch > seq.0 { *seq = (epoch, 0); }
            let h = header(id, seq.0, seq.1, records, next_offset);
            s.record(&h, None, 7);
            seq.1 += records as i32;
            next_offset += u64::from(records);
        }
        let back = ProducerStates::decode_snapshot(&s.encode_snapshot(), 7).unwrap();
        prop_assert_eq!(back.len(), s.len());
        for (id, entry) in &s.producers {
            let got = back.get(*id).unwrap();
            prop_assert_eq!(got.epoch, entry.epoch);
            prop_assert_eq!(got.batches.back(), entry.batches.back());
        }
    }
}
