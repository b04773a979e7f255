//! The driver ([`TransactionCoordinator`]) as a broker uses it: the
//! verification rule (KIP-890 part 1, Kafka 3.9's
//! `handleVerifyPartitionsInTransaction`) — a partition verifies only while
//! it is in the producer's ongoing transaction at that producer id and
//! epoch, and asking changes nothing — and the notice given once a write
//! is stored, which an add answered CONCURRENT_TRANSACTIONS waits on.

use std::sync::Arc;

use gregor_log::{ManualClock, TopicPartition};
use gregor_transaction::*;
use parking_lot::Mutex;

#[derive(Default)]
struct MemoryLog(Mutex<Vec<StoredRecord>>);

impl TransactionLog for MemoryLog {
    fn append(&self, _: i32, _: i32, records: &[StoredRecord]) -> Result<(), String> {
        self.0.lock().extend_from_slice(records);
        Ok(())
    }
    fn load_partition(&self, _: i32) -> Result<Vec<StoredRecord>, String> {
        Ok(self.0.lock().clone())
    }
}

#[derive(Default)]
struct Markers(Mutex<Vec<MarkerRequest>>);

impl MarkerSender for Markers {
    fn send(&self, request: MarkerRequest) {
        self.0.lock().push(request)
    }
}

struct Setup {
    coordinator: TransactionCoordinator,
    markers: Arc<Markers>,
    log: Arc<MemoryLog>,
}

fn setup() -> Setup {
    let settings = TransactionSettings {
        state_log_partitions: 1,
        ..Default::default()
    };
    let (log, markers) = (Arc::new(MemoryLog::default()), Arc::new(Markers::default()));
    let mut next = 1000;
    let coordinator = TransactionCoordinator::new(
        settings,
        log.clone(),
        markers.clone(),
        Box::new(move || {
            next += 1;
            Ok(next)
        }),
        Arc::new(ManualClock::new(0)),
    );
    Setup {
        coordinator,
        markers,
        log,
    }
}

fn tp(p: u32) -> TopicPartition {
    TopicPartition::new("t", p)
}

/// InitProducerId for `tx`, answered.
fn init(c: &TransactionCoordinator) -> ProducerIdAndEpoch {
    c.init_producer_id(Some("tx"), 60_000, None)
        .blocking_recv()
        .unwrap()
        .unwrap()
}

/// AddPartitionsToTxn of partition `partition` for `tx`, answered.
fn add(
    c: &TransactionCoordinator,
    p: ProducerIdAndEpoch,
    partition: u32,
    version: TransactionVersion,
) -> Vec<(TopicPartition, Result<(), TransactionError>)> {
    c.add_partitions("tx", p.producer_id, p.producer_epoch, vec![tp(partition)], version)
        .blocking_recv()
        .unwrap()
}

/// Each partition's verdict as an error code (0: verified).
fn verify(c: &TransactionCoordinator, tid: &str, p: ProducerIdAndEpoch, partitions: &[u32]) -> Vec<i16> {
    let asked: Vec<TopicPartition> = partitions.iter().map(|i| tp(*i)).collect();
    let answer = c.verify_partitions(tid, p.producer_id, p.producer_epoch, &asked);
    assert_eq!(answer.iter().map(|(t, _)| t.clone()).collect::<Vec<_>>(), asked);
    answer
        .into_iter()
        .map(|(_, r)| r.err().map_or(0, |e| e.code()))
        .collect()
}

#[test]
fn only_partitions_of_the_ongoing_transaction_verify() {
    let Setup {
        coordinator: c,
        markers,
        log,
    } = setup();
    let p = ProducerIdAndEpoch {
        producer_id: 1,
        producer_epoch: 0,
    };
    assert_eq!(verify(&c, "tx", p, &[0]), vec![16], "NOT_COORDINATOR before the load");
    c.partition_changed(0, true, 1).unwrap();
    assert_eq!(verify(&c, "tx", p, &[0]), vec![49], "an unknown id");
    assert_eq!(verify(&c, "", p, &[0, 1]), vec![42, 42], "an empty id");
    let p = init(&c);
    assert_eq!(verify(&c, "tx", p, &[0]), vec![120], "no transaction open");
    assert_eq!(add(&c, p, 0, TransactionVersion::V0), vec![(tp(0), Ok(()))]);
    let written = log.0.lock().len();
    assert_eq!(verify(&c, "tx", p, &[0, 1]), vec![0, 120]);
    let other_id = ProducerIdAndEpoch {
        producer_id: p.producer_id + 1,
        ..p
    };
    assert_eq!(verify(&c, "tx", other_id, &[0]), vec![49]);
    let newer = ProducerIdAndEpoch {
        producer_epoch: p.producer_epoch + 1,
        ..p
    };
    assert_eq!(
        verify(&c, "tx", newer, &[0]),
        vec![90],
        "PRODUCER_FENCED for another epoch"
    );
    assert_eq!(log.0.lock().len(), written, "verification writes nothing");
    let state = c.describe(&["tx".into()]).remove(0).1.unwrap();
    assert_eq!(
        (state.state, state.partitions),
        (TransactionState::Ongoing, vec![tp(0)])
    );

    let ended = c.end_txn(
        "tx",
        p.producer_id,
        p.producer_epoch,
        TransactionResult::Commit,
        TransactionVersion::V0,
    );
    assert_eq!(ended.blocking_recv().unwrap(), Ok(ProducerIdAndEpoch::NONE));
    assert_eq!(
        verify(&c, "tx", p, &[0]),
        vec![51],
        "CONCURRENT_TRANSACTIONS while it ends"
    );
    let request = markers.0.lock().pop().unwrap();
    c.markers_written(request.id);
    assert_eq!(verify(&c, "tx", p, &[0]), vec![120], "completed: no partition is in it");
}

#[test]
fn a_stored_completion_wakes_who_waits_for_a_transaction_to_end() {
    let Setup {
        coordinator: c,
        markers,
        ..
    } = setup();
    c.partition_changed(0, true, 1).unwrap();
    let p = init(&c);
    assert_eq!(add(&c, p, 0, TransactionVersion::V2), vec![(tp(0), Ok(()))]);
    let ended = c.end_txn(
        "tx",
        p.producer_id,
        p.producer_epoch,
        TransactionResult::Commit,
        TransactionVersion::V2,
    );
    let next = ended.blocking_recv().unwrap().unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let stored = c.stored().notified();
    tokio::pin!(stored);
    stored.as_mut().enable();
    let add_next = || add(&c, next, 1, TransactionVersion::V2);
    assert_eq!(
        add_next(),
        vec![(tp(1), Err(TransactionError::ConcurrentTransactions))],
        "the markers are in flight"
    );
    assert!(!ready(&runtime, stored.as_mut()), "nothing stored since");
    let request = markers.0.lock().pop().unwrap();
    c.markers_written(request.id);
    assert!(ready(&runtime, stored.as_mut()), "the completion was stored");
    assert_eq!(add_next(), vec![(tp(1), Ok(()))]);
}

/// Whether `future` is ready now (polled once).
fn ready(runtime: &tokio::runtime::Runtime, future: impl std::future::Future) -> bool {
    runtime.block_on(async { tokio::time::timeout(std::time::Duration::ZERO, future).await.is_ok() })
}
