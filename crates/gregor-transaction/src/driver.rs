//! The driver: [`TransactionCoordinator`] runs the
//! [`TransactionStateMachine`] for a broker. It keeps the machine behind a
//! lock with the senders of requests still waiting; it appends the
//! writes the machine asks for through a [`TransactionLog`] outside the
//! lock, feeding each outcome back, and hands marker requests to a
//! [`MarkerSender`], which reports back with
//! [`TransactionCoordinator::markers_written`]. Answers arrive on one-shot
//! channels: async handlers await them, blocking ones `blocking_recv`.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use gregor_log::{Clock, Ticker, TopicPartition};
use parking_lot::Mutex;
use tokio::sync::{oneshot, Notify};
use tracing::warn;

use crate::machine::TransactionStateMachine;
use crate::outputs::{MarkerId, MarkerRequest, Output, ProducerIdGenerator, RequestId, Response, StoredRecord, Write};
use crate::protocol::{
    ProducerIdAndEpoch, TransactionDescription, TransactionError, TransactionListing, TransactionResult,
    TransactionSettings, TransactionVersion,
};

/// `__transaction_state` as the coordinator uses it.
pub trait TransactionLog: Send + Sync {
    /// Appends `records` to partition `partition` as its leader at
    /// `coordinator_epoch` (refused if the leader epoch moved on),
    /// returning once the in-sync replicas have them (acks = all).
    fn append(&self, partition: i32, coordinator_epoch: i32, records: &[StoredRecord]) -> Result<(), String>;
    /// Every record of `partition`, oldest first (to rebuild its state).
    fn load_partition(&self, partition: i32) -> Result<Vec<StoredRecord>, String>;
}

/// Delivers transaction markers (WriteTxnMarkers to partition leaders).
pub trait MarkerSender: Send + Sync {
    /// Takes `request` to deliver, without blocking; once every partition
    /// has its marker (a partition that no longer exists counts as done)
    /// the sender calls [`TransactionCoordinator::markers_written`]. It
    /// retries failed deliveries while
    /// [`TransactionCoordinator::marker_pending`] says the request is
    /// still wanted.
    fn send(&self, request: MarkerRequest);
}

/// A request waiting for its answer.
enum Waiter {
    Init(oneshot::Sender<Result<ProducerIdAndEpoch, TransactionError>>),
    Add(oneshot::Sender<Vec<(TopicPartition, Result<(), TransactionError>)>>),
    Done(oneshot::Sender<Result<(), TransactionError>>),
    End(oneshot::Sender<Result<ProducerIdAndEpoch, TransactionError>>),
}

/// What the lock guards.
struct Inner {
    machine: TransactionStateMachine,
    ids: Box<dyn ProducerIdGenerator + Send>,
    waiters: HashMap<RequestId, Waiter>,
}

impl Inner {
    /// Hands answers to their waiters; returns the writes and marker
    /// requests to perform.
    fn dispatch(&mut self, outputs: Vec<Output>) -> (Vec<Write>, Vec<MarkerRequest>) {
        let (mut writes, mut markers) = (Vec::new(), Vec::new());
        for output in outputs {
            match output {
                Output::Write(w) => writes.push(w),
                Output::SendMarkers(m) => markers.push(m),
                Output::Respond { request, response } => match (self.waiters.remove(&request), response) {
                    (Some(Waiter::Init(tx)), Response::InitProducerId(r)) => drop(tx.send(r)),
                    (Some(Waiter::Add(tx)), Response::AddPartitions(r)) => drop(tx.send(r)),
                    (Some(Waiter::Done(tx)), Response::AddOffsets(r)) => drop(tx.send(r)),
                    (Some(Waiter::End(tx)), Response::EndTxn(r)) => drop(tx.send(r)),
                    (_, response) => warn!(?request, ?response, "an answer nobody waits for"),
                },
            }
        }
        (writes, markers)
    }
}

/// The transaction coordinator of a broker.
pub struct TransactionCoordinator {
    inner: Mutex<Inner>,
    log: Arc<dyn TransactionLog>,
    marker_sender: Arc<dyn MarkerSender>,
    clock: Arc<dyn Clock>,
    next_request: AtomicU64,
    stored: Notify,
}

impl TransactionCoordinator {
    /// A coordinator leading no partition yet (see
    /// [`Self::partition_changed`]), storing to `log`, delivering markers
    /// with `marker_sender`, taking producer ids from `ids` and the time
    /// from `clock`.
    pub fn new(
        settings: TransactionSettings,
        log: Arc<dyn TransactionLog>,
        marker_sender: Arc<dyn MarkerSender>,
        ids: Box<dyn ProducerIdGenerator + Send>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            inner: Mutex::new(Inner {
                machine: TransactionStateMachine::new(settings),
                ids,
                waiters: HashMap::new(),
            }),
            log,
            marker_sender,
            clock,
            next_request: AtomicU64::new(0),
            stored: Notify::new(),
        }
    }

    fn request_id(&self) -> RequestId {
        RequestId(self.next_request.fetch_add(1, Ordering::Relaxed))
    }

    /// A request whose answer comes on a one-shot channel: registers the
    /// waiter `waiter` makes of the sender, runs `input` with the request's
    /// id, and returns the receiver.
    fn ask<T>(
        &self,
        waiter: impl FnOnce(oneshot::Sender<T>) -> Waiter,
        input: impl FnOnce(&mut Inner, RequestId, i64) -> Vec<Output>,
    ) -> oneshot::Receiver<T> {
        let (tx, rx) = oneshot::channel();
        let id = self.request_id();
        self.drive(Some((id, waiter(tx))), |inner, now| input(inner, id, now));
        rx
    }

    /// Runs `input` on the machine under the lock (after registering
    /// `waiter`), then, outside it, hands out marker requests and performs
    /// the writes, feeding each outcome back, until none is left.
    fn drive(&self, waiter: Option<(RequestId, Waiter)>, input: impl FnOnce(&mut Inner, i64) -> Vec<Output>) {
        let (writes, markers) = {
            let mut inner = self.inner.lock();
            if let Some((request, waiter)) = waiter {
                inner.waiters.insert(request, waiter);
            }
            let outputs = input(&mut inner, self.clock.now_ms());
            inner.dispatch(outputs)
        };
        self.perform(writes, markers);
    }

    fn perform(&self, writes: Vec<Write>, markers: Vec<MarkerRequest>) {
        let mut writes: VecDeque<Write> = writes.into();
        for m in markers {
            self.marker_sender.send(m);
        }
        let mut panicked = None;
        while let Some(write) = writes.pop_front() {
            // A log that panics fails its write, so the id's pending state
            // is cleared; the panic carries on after.
            let append = || {
                self.log
                    .append(write.partition, write.coordinator_epoch, &write.records)
            };
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(append)).unwrap_or_else(|panic| {
                panicked = Some(panic);
                Err("the transaction log panicked".to_string())
            });
            let result = result.map_err(|e| {
                warn!(
                    partition = write.partition,
                    "could not append to __transaction_state: {e}"
                );
                // Kafka answers a failed coordinator append (not enough
                // replicas, timeout) COORDINATOR_NOT_AVAILABLE: retriable.
                TransactionError::CoordinatorNotAvailable
            });
            let (more, markers) = {
                let mut inner = self.inner.lock();
                let outputs = inner.machine.persisted(write.id, result, self.clock.now_ms());
                inner.dispatch(outputs)
            };
            self.stored.notify_waiters();
            for m in markers {
                self.marker_sender.send(m);
            }
            writes.extend(more);
        }
        if let Some(panic) = panicked {
            std::panic::resume_unwind(panic);
        }
    }

    /// This broker became the leader of `__transaction_state` partition
    /// `partition` at leader epoch `coordinator_epoch` (`leads`), and loads
    /// it (blocking: it reads the partition), or stopped leading it and
    /// forgets it. A failed read leaves the partition not loaded.
    pub fn partition_changed(&self, partition: i32, leads: bool, coordinator_epoch: i32) -> Result<(), String> {
        if !leads {
            self.drive(None, |inner, _| inner.machine.unload(partition));
            return Ok(());
        }
        self.drive(None, |inner, _| inner.machine.begin_load(partition, coordinator_epoch));
        match self.log.load_partition(partition) {
            Ok(records) => {
                self.drive(None, |inner, now| {
                    inner.machine.load(partition, coordinator_epoch, &records, now)
                });
                Ok(())
            }
            Err(e) => {
                warn!(partition, "could not load __transaction_state: {e}");
                self.drive(None, |inner, _| {
                    // Only if no newer load began meanwhile.
                    if inner.machine.loading.get(&partition) == Some(&coordinator_epoch) {
                        inner.machine.unload(partition)
                    } else {
                        Vec::new()
                    }
                });
                Err(e)
            }
        }
    }

    /// The coordinator epoch `__transaction_state` partition `partition`
    /// is loaded at, if it is loaded here.
    pub fn coordinator_epoch(&self, partition: i32) -> Option<i32> {
        self.inner.lock().machine.coordinator_epoch(partition)
    }

    /// InitProducerId (see [`TransactionStateMachine::init_producer_id`]).
    pub fn init_producer_id(
        &self,
        transactional_id: Option<&str>,
        timeout_ms: i32,
        expected: Option<ProducerIdAndEpoch>,
    ) -> oneshot::Receiver<Result<ProducerIdAndEpoch, TransactionError>> {
        self.ask(Waiter::Init, |inner, id, now| {
            let Inner { machine, ids, .. } = inner;
            machine.init_producer_id(id, transactional_id, timeout_ms, expected, now, ids.as_mut())
        })
    }

    /// AddPartitionsToTxn under the request's transaction `version`: one
    /// result per partition.
    pub fn add_partitions(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        partitions: Vec<TopicPartition>,
        version: TransactionVersion,
    ) -> oneshot::Receiver<Vec<(TopicPartition, Result<(), TransactionError>)>> {
        self.ask(Waiter::Add, |inner, id, now| {
            inner.machine.add_partitions(
                id,
                transactional_id,
                producer_id,
                producer_epoch,
                partitions,
                version,
                now,
            )
        })
    }

    /// AddOffsetsToTxn: the group's `__consumer_offsets` partition joins.
    pub fn add_offsets(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        group_id: &str,
    ) -> oneshot::Receiver<Result<(), TransactionError>> {
        self.ask(Waiter::Done, |inner, id, now| {
            inner
                .machine
                .add_offsets(id, transactional_id, producer_id, producer_epoch, group_id, now)
        })
    }

    /// EndTxn under the request's transaction `version`: answered once
    /// PrepareCommit/PrepareAbort is stored, under version 2 with the
    /// producer id and epoch to continue with ((−1, −1) otherwise).
    pub fn end_txn(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        result: TransactionResult,
        version: TransactionVersion,
    ) -> oneshot::Receiver<Result<ProducerIdAndEpoch, TransactionError>> {
        self.ask(Waiter::End, |inner, id, now| {
            let Inner { machine, ids, .. } = inner;
            machine.end_txn(
                id,
                transactional_id,
                producer_id,
                producer_epoch,
                result,
                version,
                now,
                ids.as_mut(),
            )
        })
    }

    /// Notified after each write to `__transaction_state` has been stored
    /// (or has failed), which is when an id's pending state clears — a
    /// transaction completing after its markers, among others. A request
    /// answered CONCURRENT_TRANSACTIONS (the implicit add of transactions
    /// v2) waits on it instead of polling: register with
    /// [`Notify::notified`] (and `enable`) before asking, so that no
    /// completion in between is missed.
    pub fn stored(&self) -> &Notify {
        &self.stored
    }

    /// Every partition of the marker request `id` has its marker (called
    /// by the [`MarkerSender`]; blocking: it appends the completion).
    pub fn markers_written(&self, id: MarkerId) {
        self.drive(None, |inner, _| inner.machine.markers_written(id));
    }

    /// Whether the marker request `id` is still wanted (its partition is
    /// still led here); the sender gives up on one that is not.
    pub fn marker_pending(&self, id: MarkerId) -> bool {
        self.inner.lock().machine.marker_pending(id)
    }

    /// Aborts timed-out transactions, expires idle ids, and retries
    /// failed completions, each on its own interval.
    pub fn tick(&self) {
        self.drive(None, |inner, now| inner.machine.tick(now));
    }

    /// AddPartitionsToTxn with `verify_only` (KIP-890): whether each of
    /// `partitions` is in the producer's ongoing transaction (see
    /// [`TransactionStateMachine::verify_partitions`]). Answers at once,
    /// changing nothing.
    pub fn verify_partitions(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        partitions: &[TopicPartition],
    ) -> Vec<(TopicPartition, Result<(), TransactionError>)> {
        self.inner
            .lock()
            .machine
            .verify_partitions(transactional_id, producer_id, producer_epoch, partitions)
    }

    /// Whether `transactional_id`'s partition is loaded here (FindCoordinator
    /// answers with this broker only then).
    pub fn coordinating(&self, transactional_id: &str) -> bool {
        self.inner.lock().machine.coordinating(transactional_id)
    }

    /// The `__transaction_state` partition of `transactional_id`.
    pub fn partition_for(&self, transactional_id: &str) -> i32 {
        self.inner.lock().machine.partition_for(transactional_id)
    }

    /// DescribeTransactions for each id.
    pub fn describe(
        &self,
        transactional_ids: &[String],
    ) -> Vec<(String, Result<TransactionDescription, TransactionError>)> {
        self.inner.lock().machine.describe(transactional_ids)
    }

    /// ListTransactions (see [`TransactionStateMachine::list`]).
    pub fn list(
        &self,
        state_filters: &[String],
        producer_id_filters: &[i64],
        min_duration_ms: i64,
    ) -> TransactionListing {
        let now = self.clock.now_ms();
        self.inner
            .lock()
            .machine
            .list(state_filters, producer_id_filters, min_duration_ms, now)
    }

    /// Ticks `coordinator` every `every` on a thread of its own (ticks may
    /// append to the log: blocking work).
    pub fn spawn_ticker(coordinator: Arc<Self>, every: std::time::Duration) -> std::io::Result<Ticker> {
        Ticker::spawn("gregor-txn-ticker", every, move || coordinator.tick())
    }
}
