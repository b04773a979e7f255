//! The coordinator as a sans-IO state machine: [`TransactionStateMachine`]
//! takes requests and events (each with the time, `now_ms`) and returns
//! [`Output`]s: answers addressed to the [`RequestId`] the caller gave,
//! writes to `__transaction_state` whose outcome comes back through
//! [`TransactionStateMachine::persisted`], and marker requests whose
//! delivery comes back through [`TransactionStateMachine::markers_written`].
//!
//! As Kafka's coordinator, a state change is written first and takes
//! effect (and is answered) only once acknowledged; while it is written
//! the id has a pending transition and other changes wait
//! (CONCURRENT_TRANSACTIONS).
//!
//! ```text
//!            AddPartitions           EndTxn             markers written
//! Empty ─────────────────▶ Ongoing ─────────▶ Prepare* ───────────────▶ Complete*
//!   ▲  InitProducerId        │ InitProducerId / timeout:                    │
//!   └────────────────────────┼─ epoch bump (PrepareEpochFence), PrepareAbort│
//!   └──────────────────────────────── InitProducerId ◀──────────────────────┘
//! ```
//!
//! Modules: `requests` (InitProducerId, AddPartitionsToTxn,
//! AddOffsetsToTxn, EndTxn), `queries` (Describe/ListTransactions), this
//! one (loading, writes' and markers' outcomes, timeouts, expiry).

use std::collections::BTreeMap;

use gregor_log::TopicPartition;
use tracing::{info, warn};

use crate::loading::last_states;
use crate::metadata::{Snapshot, TxnMetadata};
use crate::outputs::{respond, MarkerId, MarkerRequest, Output, RequestId, Response, StoredRecord, Write, WriteId};
use crate::protocol::{TransactionError, TransactionResult, TransactionSettings, TransactionState};
use crate::records::{key_bytes, partition_for, value_bytes};

/// One loaded `__transaction_state` partition.
#[derive(Debug, Default)]
pub(crate) struct Loaded {
    /// The partition's leader epoch when it was loaded.
    pub(crate) coordinator_epoch: i32,
    pub(crate) txns: BTreeMap<String, TxnMetadata>,
}

/// Who waits for a Prepare* write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Asker {
    /// EndTxn: answered OK once the prepare is stored.
    EndTxn(RequestId),
    /// InitProducerId fencing an open transaction: answered
    /// CONCURRENT_TRANSACTIONS once the abort is stored (the producer
    /// retries and gets the next epoch once it completes).
    InitProducerId(RequestId),
    /// The transaction timed out.
    Timeout,
}

/// What to do once a state change is acknowledged (or refused).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Then {
    InitProducerId(RequestId),
    AddPartitions(RequestId, Vec<TopicPartition>),
    AddOffsets(RequestId),
    /// PrepareCommit/PrepareAbort stored: send the markers.
    Prepare {
        result: TransactionResult,
        asker: Asker,
        /// The write also carries an epoch bump fencing the producer.
        fence: bool,
    },
    /// CompleteCommit/CompleteAbort stored.
    Complete,
}

impl Then {
    /// The request waiting and its answer, should the write end with
    /// `error`.
    pub(crate) fn failed(&self, error: TransactionError) -> Option<(RequestId, Response)> {
        match self {
            Self::InitProducerId(r)
            | Self::Prepare {
                asker: Asker::InitProducerId(r),
                ..
            } => Some((*r, Response::InitProducerId(Err(error)))),
            Self::AddPartitions(r, parts) => Some((
                *r,
                Response::AddPartitions(parts.iter().map(|p| (p.clone(), Err(error))).collect()),
            )),
            Self::AddOffsets(r) => Some((*r, Response::AddOffsets(Err(error)))),
            Self::Prepare {
                asker: Asker::EndTxn(r),
                ..
            } => Some((*r, Response::EndTxn(Err(error)))),
            Self::Prepare {
                asker: Asker::Timeout, ..
            }
            | Self::Complete => None,
        }
    }
}

/// A write out for IO.
#[derive(Debug)]
pub(crate) struct PendingWrite {
    partition: i32,
    coordinator_epoch: i32,
    kind: WriteKind,
}

#[derive(Debug)]
enum WriteKind {
    /// One id's state change.
    Transition {
        transactional_id: String,
        target: Snapshot,
        then: Then,
    },
    /// Expired ids, with the epoch each had.
    Tombstones { expired: Vec<(String, i16)> },
}

/// A completion waiting for its markers, or for its write to be retried.
#[derive(Debug, Clone)]
pub(crate) struct Completion {
    partition: i32,
    coordinator_epoch: i32,
    transactional_id: String,
    target: Snapshot,
}

/// Every transactional id of the `__transaction_state` partitions this
/// coordinator leads, as a state machine.
pub struct TransactionStateMachine {
    pub(crate) settings: TransactionSettings,
    pub(crate) partitions: BTreeMap<i32, Loaded>,
    /// Partitions being loaded, with the epoch they load at.
    pub(crate) loading: BTreeMap<i32, i32>,
    writes: BTreeMap<WriteId, PendingWrite>,
    markers: BTreeMap<MarkerId, Completion>,
    /// Completions whose write failed, written again at the next tick.
    retries: Vec<Completion>,
    next_id: u64,
    next_abort_ms: i64,
    next_expire_ms: i64,
}

impl TransactionStateMachine {
    /// A state machine leading no partition.
    pub fn new(settings: TransactionSettings) -> Self {
        Self {
            settings,
            partitions: BTreeMap::new(),
            loading: BTreeMap::new(),
            writes: BTreeMap::new(),
            markers: BTreeMap::new(),
            retries: Vec::new(),
            next_id: 0,
            next_abort_ms: i64::MIN,
            next_expire_ms: i64::MIN,
        }
    }

    /// The settings.
    pub fn settings(&self) -> &TransactionSettings {
        &self.settings
    }

    fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// The `__transaction_state` partition of `transactional_id`.
    pub fn partition_for(&self, transactional_id: &str) -> i32 {
        partition_for(transactional_id, self.settings.state_log_partitions)
    }

    /// Whether this coordinator has `transactional_id`'s partition loaded.
    pub fn coordinating(&self, transactional_id: &str) -> bool {
        self.partitions.contains_key(&self.partition_for(transactional_id))
    }

    /// The coordinator epoch `partition` is loaded at, if it is.
    pub fn coordinator_epoch(&self, partition: i32) -> Option<i32> {
        self.partitions.get(&partition).map(|l| l.coordinator_epoch)
    }

    /// Whether the marker request `id` is still wanted (the sender stops
    /// retrying one that is not: its partition was unloaded).
    pub fn marker_pending(&self, id: MarkerId) -> bool {
        self.markers.contains_key(&id)
    }

    /// The loaded partition of `transactional_id`, or the error Kafka
    /// answers: loading, or not coordinator.
    pub(crate) fn loaded(&mut self, transactional_id: &str) -> Result<(i32, &mut Loaded), TransactionError> {
        let partition = self.partition_for(transactional_id);
        if self.loading.contains_key(&partition) {
            return Err(TransactionError::CoordinatorLoadInProgress);
        }
        match self.partitions.get_mut(&partition) {
            Some(loaded) => Ok((partition, loaded)),
            None => Err(TransactionError::NotCoordinator),
        }
    }

    /// [`Self::loaded`] without changing anything.
    pub(crate) fn loaded_ref(&self, transactional_id: &str) -> Result<&Loaded, TransactionError> {
        let partition = self.partition_for(transactional_id);
        if self.loading.contains_key(&partition) {
            return Err(TransactionError::CoordinatorLoadInProgress);
        }
        self.partitions.get(&partition).ok_or(TransactionError::NotCoordinator)
    }

    /// Hands out the write of `target` for `transactional_id`.
    pub(crate) fn write_transition(
        &mut self,
        partition: i32,
        coordinator_epoch: i32,
        transactional_id: &str,
        target: Snapshot,
        then: Then,
        out: &mut Vec<Output>,
    ) {
        let id = WriteId(self.next_id());
        out.push(Output::Write(Write {
            id,
            partition,
            coordinator_epoch,
            records: vec![(key_bytes(transactional_id), Some(value_bytes(&target.to_value())))],
        }));
        let kind = WriteKind::Transition {
            transactional_id: transactional_id.to_string(),
            target,
            then,
        };
        self.writes.insert(
            id,
            PendingWrite {
                partition,
                coordinator_epoch,
                kind,
            },
        );
    }

    /// This coordinator became leader of `partition` at
    /// `coordinator_epoch` and reads it now: requests for its ids are
    /// answered COORDINATOR_LOAD_IN_PROGRESS until [`Self::load`]. Whatever
    /// was loaded of it before is dropped (as by [`Self::unload`]).
    pub fn begin_load(&mut self, partition: i32, coordinator_epoch: i32) -> Vec<Output> {
        let out = self.unload(partition);
        self.loading.insert(partition, coordinator_epoch);
        out
    }

    /// `records` — partition `partition`'s records, oldest first — were
    /// read for the load begun at `coordinator_epoch` (ignored if another
    /// load or an unload came since). Transactions found in PrepareCommit
    /// or PrepareAbort get their markers sent again, and complete; open
    /// ones keep their start time, so their timeout still fires.
    pub fn load(
        &mut self,
        partition: i32,
        coordinator_epoch: i32,
        records: &[StoredRecord],
        now_ms: i64,
    ) -> Vec<Output> {
        let mut out = Vec::new();
        if self.loading.get(&partition) != Some(&coordinator_epoch) {
            return out;
        }
        self.loading.remove(&partition);
        let mut txns = last_states(partition, records);
        info!(
            partition,
            coordinator_epoch,
            transactional_ids = txns.len(),
            "loaded transaction state"
        );
        let mut completions = Vec::new();
        for (id, txn) in txns.iter_mut() {
            let result = match txn.state() {
                TransactionState::PrepareCommit => TransactionResult::Commit,
                TransactionState::PrepareAbort => TransactionResult::Abort,
                _ => continue,
            };
            if let Ok(target) = txn.prepare_complete(now_ms) {
                completions.push((id.clone(), result, txn.fields.clone(), target));
            }
        }
        self.partitions.insert(
            partition,
            Loaded {
                coordinator_epoch,
                txns,
            },
        );
        for (id, result, fields, target) in completions {
            self.send_markers(partition, coordinator_epoch, &id, result, &fields, target, &mut out);
        }
        out
    }

    /// Forgets `partition` (led elsewhere now): requests waiting on its
    /// writes are answered NOT_COORDINATOR, writes out complete without
    /// effect, its marker requests are no longer wanted.
    pub fn unload(&mut self, partition: i32) -> Vec<Output> {
        let mut out = Vec::new();
        self.loading.remove(&partition);
        if self.partitions.remove(&partition).is_some() {
            info!(partition, "unloaded transaction state");
        }
        let orphaned: Vec<WriteId> = self
            .writes
            .iter()
            .filter(|(_, w)| w.partition == partition)
            .map(|(id, _)| *id)
            .collect();
        for id in orphaned {
            if let Some(PendingWrite {
                kind: WriteKind::Transition { then, .. },
                ..
            }) = self.writes.remove(&id)
            {
                if let Some((request, response)) = then.failed(TransactionError::NotCoordinator) {
                    respond(&mut out, request, response);
                }
            }
        }
        self.markers.retain(|_, c| c.partition != partition);
        self.retries.retain(|c| c.partition != partition);
        out
    }

    /// Asks for the markers of a transaction whose Prepare* is stored,
    /// `target` being its completion (already pending).
    #[allow(clippy::too_many_arguments)]
    fn send_markers(
        &mut self,
        partition: i32,
        coordinator_epoch: i32,
        transactional_id: &str,
        result: TransactionResult,
        fields: &Snapshot,
        target: Snapshot,
        out: &mut Vec<Output>,
    ) {
        let id = MarkerId(self.next_id());
        out.push(Output::SendMarkers(MarkerRequest {
            id,
            transactional_id: transactional_id.to_string(),
            producer_id: fields.producer_id,
            producer_epoch: fields.producer_epoch,
            coordinator_epoch,
            result,
            partitions: fields.partitions.iter().cloned().collect(),
        }));
        self.markers.insert(
            id,
            Completion {
                partition,
                coordinator_epoch,
                transactional_id: transactional_id.to_string(),
                target,
            },
        );
    }

    /// Every partition of the marker request `id` has its marker: the
    /// transaction's completion is written.
    pub fn markers_written(&mut self, id: MarkerId) -> Vec<Output> {
        let mut out = Vec::new();
        if let Some(completion) = self.markers.remove(&id) {
            self.write_completion(completion, &mut out);
        }
        out
    }

    fn write_completion(&mut self, c: Completion, out: &mut Vec<Output>) {
        let current = self
            .partitions
            .get(&c.partition)
            .filter(|l| l.coordinator_epoch == c.coordinator_epoch);
        if current.is_some_and(|l| l.txns.contains_key(&c.transactional_id)) {
            self.write_transition(
                c.partition,
                c.coordinator_epoch,
                &c.transactional_id,
                c.target,
                Then::Complete,
                out,
            );
        }
    }

    /// The write `id` was acknowledged (`Ok`) or refused with the error
    /// to answer (the driver maps a failed append to
    /// COORDINATOR_NOT_AVAILABLE, as Kafka maps NOT_ENOUGH_REPLICAS and
    /// timeouts). A state change takes effect only if acknowledged; a
    /// refused one leaves the state as it was — except an epoch fence,
    /// whose bumped epoch stays (never answered to a client), as in Kafka.
    pub fn persisted(&mut self, id: WriteId, result: Result<(), TransactionError>, now_ms: i64) -> Vec<Output> {
        let mut out = Vec::new();
        let Some(write) = self.writes.remove(&id) else {
            return out;
        };
        let Some(loaded) = self
            .partitions
            .get_mut(&write.partition)
            .filter(|l| l.coordinator_epoch == write.coordinator_epoch)
        else {
            return out;
        };
        match write.kind {
            WriteKind::Tombstones { expired } => {
                for (tid, epoch) in expired {
                    let Some(txn) = loaded.txns.get_mut(&tid) else { continue };
                    if txn.pending != Some(TransactionState::Dead) {
                        continue;
                    }
                    if result.is_ok() && txn.fields.producer_epoch == epoch {
                        loaded.txns.remove(&tid);
                        info!(transactional_id = %tid, "expired transactional id");
                    } else {
                        txn.pending = None;
                    }
                }
            }
            WriteKind::Transition {
                transactional_id,
                target,
                then,
            } => {
                let coordinator_epoch = loaded.coordinator_epoch;
                let Some(txn) = loaded.txns.get_mut(&transactional_id) else {
                    if let Some((request, response)) = then.failed(TransactionError::NotCoordinator) {
                        respond(&mut out, request, response);
                    }
                    return out;
                };
                if let Err(error) = result {
                    warn!(transactional_id = %transactional_id, state = ?target.state, "could not store a transaction state change: {error}");
                    if then == Then::Complete {
                        // Kafka retries a completion until it is stored
                        // (or the partition moves); the pending state stays.
                        self.retries.push(Completion {
                            partition: write.partition,
                            coordinator_epoch,
                            transactional_id,
                            target,
                        });
                        return out;
                    }
                    txn.pending = None;
                    if matches!(then, Then::Prepare { fence: true, .. }) {
                        txn.failed_epoch_fence = true;
                    }
                    if let Some((request, response)) = then.failed(error) {
                        respond(&mut out, request, response);
                    }
                    return out;
                }
                let producer = crate::protocol::ProducerIdAndEpoch {
                    producer_id: target.producer_id,
                    producer_epoch: target.producer_epoch,
                };
                txn.complete(target);
                match then {
                    Then::InitProducerId(request) => respond(&mut out, request, Response::InitProducerId(Ok(producer))),
                    Then::AddPartitions(request, parts) => respond(
                        &mut out,
                        request,
                        Response::AddPartitions(parts.into_iter().map(|p| (p, Ok(()))).collect()),
                    ),
                    Then::AddOffsets(request) => respond(&mut out, request, Response::AddOffsets(Ok(()))),
                    Then::Complete => {}
                    Then::Prepare { result, asker, .. } => {
                        let fields = txn.fields.clone();
                        let answer = txn.prepare_complete(now_ms);
                        match (asker, &answer) {
                            (Asker::EndTxn(r), _) => respond(
                                &mut out,
                                r,
                                Response::EndTxn(answer.as_ref().map(Snapshot::end_txn_answer).map_err(|e| *e)),
                            ),
                            (Asker::InitProducerId(r), Ok(_)) => respond(
                                &mut out,
                                r,
                                Response::InitProducerId(Err(TransactionError::ConcurrentTransactions)),
                            ),
                            (Asker::InitProducerId(r), Err(e)) => {
                                respond(&mut out, r, Response::InitProducerId(Err(*e)))
                            }
                            (Asker::Timeout, _) => {}
                        }
                        if let Ok(target) = answer {
                            self.send_markers(
                                write.partition,
                                coordinator_epoch,
                                &transactional_id,
                                result,
                                &fields,
                                target,
                                &mut out,
                            );
                        }
                    }
                }
            }
        }
        out
    }

    /// Periodic work at `now_ms`: every
    /// `transaction.abort.timed.out.transaction.cleanup.interval.ms`,
    /// open transactions past their timeout are aborted (their producer's
    /// epoch bumped, fencing it); every
    /// `transaction.remove.expired.transaction.cleanup.interval.ms`, ids
    /// idle past `transactional.id.expiration.ms` are tombstoned; and
    /// completions whose write failed are written again.
    pub fn tick(&mut self, now_ms: i64) -> Vec<Output> {
        let mut out = Vec::new();
        if now_ms >= self.next_abort_ms {
            self.next_abort_ms = now_ms.saturating_add(self.settings.abort_timed_out_interval_ms);
            self.abort_timed_out(now_ms, &mut out);
        }
        if now_ms >= self.next_expire_ms {
            self.next_expire_ms = now_ms.saturating_add(self.settings.remove_expired_interval_ms);
            self.expire(now_ms, &mut out);
        }
        for completion in std::mem::take(&mut self.retries) {
            self.write_completion(completion, &mut out);
        }
        out
    }

    fn abort_timed_out(&mut self, now_ms: i64, out: &mut Vec<Output>) {
        let timed_out: Vec<(String, i64)> = self
            .partitions
            .values()
            .flat_map(|l| l.txns.iter())
            .filter(|(_, t)| {
                t.pending.is_none()
                    && t.state() == TransactionState::Ongoing
                    && t.fields.start_ms.saturating_add(i64::from(t.fields.timeout_ms)) < now_ms
            })
            .map(|(id, t)| (id.clone(), t.fields.producer_id))
            .collect();
        for (id, producer_id) in timed_out {
            info!(transactional_id = %id, producer_id, "aborting a transaction past its timeout");
            self.fence_and_abort(&id, Asker::Timeout, now_ms, out);
        }
    }

    fn expire(&mut self, now_ms: i64, out: &mut Vec<Output>) {
        let cutoff = now_ms.saturating_sub(self.settings.transactional_id_expiration_ms);
        let mut writes = Vec::new();
        for (partition, loaded) in self.partitions.iter_mut() {
            let mut expired = Vec::new();
            for (id, txn) in loaded.txns.iter_mut() {
                if txn.pending.is_none()
                    && txn.state().expiration_allowed()
                    && txn.fields.update_ms <= cutoff
                    && txn.prepare_dead().is_ok()
                {
                    expired.push((id.clone(), txn.fields.producer_epoch));
                }
            }
            if !expired.is_empty() {
                writes.push((*partition, loaded.coordinator_epoch, expired));
            }
        }
        for (partition, coordinator_epoch, expired) in writes {
            let id = WriteId(self.next_id());
            out.push(Output::Write(Write {
                id,
                partition,
                coordinator_epoch,
                records: expired.iter().map(|(tid, _)| (key_bytes(tid), None)).collect(),
            }));
            self.writes.insert(
                id,
                PendingWrite {
                    partition,
                    coordinator_epoch,
                    kind: WriteKind::Tombstones { expired },
                },
            );
        }
    }
}
