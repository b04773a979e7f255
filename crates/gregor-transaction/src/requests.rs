//! The producer's requests: InitProducerId, AddPartitionsToTxn,
//! AddOffsetsToTxn and EndTxn, checked and answered as Kafka's
//! `TransactionCoordinator` does — 3.9's under transaction versions 0 and
//! 1, 4.x's under version 2 (KIP-890 part 2; EndTxn's checks in
//! `ending`). Each either answers at once (an error, or nothing to
//! change) or prepares a state change and hands out its write; the answer
//! follows the write's outcome ([`TransactionStateMachine::persisted`]).

use std::collections::BTreeSet;

use gregor_log::TopicPartition;
use tracing::info;

use crate::ending::EndDecision;
use crate::machine::{Asker, Then, TransactionStateMachine};
use crate::metadata::{epoch_exhausted, TxnMetadata};
use crate::outputs::{respond, Output, ProducerIdGenerator, RequestId, Response};
use crate::protocol::{
    ProducerIdAndEpoch, TransactionError, TransactionResult, TransactionState, TransactionVersion, NO_PRODUCER_EPOCH,
    NO_PRODUCER_ID,
};
use crate::records::partition_for;

/// The `__consumer_offsets` topic, whose partition of a group joins a
/// transaction on AddOffsetsToTxn.
const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// An end of a transaction asked for: by whom, with which producer.
#[derive(Clone, Copy)]
struct EndRequest {
    producer_id: i64,
    producer_epoch: i16,
    result: TransactionResult,
    version: TransactionVersion,
    asker: Asker,
}

/// Which request adds partitions.
#[derive(Clone, Copy)]
enum Adding {
    /// AddPartitionsToTxn, of this transaction version.
    Partitions(TransactionVersion),
    /// AddOffsetsToTxn (always version 0).
    Offsets,
}

impl TransactionStateMachine {
    /// InitProducerId. Without a transactional id (an idempotent
    /// producer), a fresh producer id at epoch 0. With one: a new id gets
    /// a producer id; an id with no open transaction gets the next epoch
    /// (or, its epochs exhausted, a new producer id); an id whose
    /// transaction is open has it aborted first, its producer fenced by an
    /// epoch bump, and is answered CONCURRENT_TRANSACTIONS (so is one
    /// whose transaction is completing): the producer retries. `expected`
    /// is the producer's own id and epoch (v3+, KIP-360), for a producer
    /// recovering from an error to keep its id.
    pub fn init_producer_id(
        &mut self,
        request: RequestId,
        transactional_id: Option<&str>,
        timeout_ms: i32,
        expected: Option<ProducerIdAndEpoch>,
        now_ms: i64,
        ids: &mut dyn ProducerIdGenerator,
    ) -> Vec<Output> {
        let mut out = Vec::new();
        let answer = |out: &mut Vec<Output>, r| respond(out, request, Response::InitProducerId(r));
        let Some(tid) = transactional_id else {
            let r = ids.next_producer_id().map(|producer_id| ProducerIdAndEpoch {
                producer_id,
                producer_epoch: 0,
            });
            answer(&mut out, r);
            return out;
        };
        if tid.is_empty() {
            answer(&mut out, Err(TransactionError::InvalidRequest));
            return out;
        }
        if timeout_ms <= 0 || timeout_ms > self.settings.max_timeout_ms {
            answer(&mut out, Err(TransactionError::InvalidTransactionTimeout));
            return out;
        }
        match self.prepare_init(request, tid, timeout_ms, expected, now_ms, ids, &mut out) {
            Ok(()) => {}
            Err(e) => answer(&mut out, Err(e)),
        }
        out
    }

    #[allow(clippy::too_many_arguments)]
    fn prepare_init(
        &mut self,
        request: RequestId,
        tid: &str,
        timeout_ms: i32,
        expected: Option<ProducerIdAndEpoch>,
        now_ms: i64,
        ids: &mut dyn ProducerIdGenerator,
        out: &mut Vec<Output>,
    ) -> Result<(), TransactionError> {
        let (partition, loaded) = self.loaded(tid)?;
        let coordinator_epoch = loaded.coordinator_epoch;
        if !loaded.txns.contains_key(tid) {
            let producer_id = ids.next_producer_id()?;
            loaded
                .txns
                .insert(tid.to_string(), TxnMetadata::new(producer_id, timeout_ms, now_ms));
        }
        let txn = loaded.txns.get_mut(tid).ok_or(TransactionError::UnknownServerError)?;
        if txn.pending.is_some() {
            return Err(TransactionError::ConcurrentTransactions);
        }
        if let Some(e) = expected {
            // Kafka's isValidProducerId: a just-created id, the current
            // producer id, or a retry after a rotation from an exhausted
            // epoch.
            let valid = txn.fields.producer_epoch == NO_PRODUCER_EPOCH
                || e.producer_id == txn.fields.producer_id
                || (e.producer_id == txn.fields.last_producer_id && epoch_exhausted(e.producer_epoch));
            if !valid {
                return Err(TransactionError::ProducerFenced);
            }
        }
        let target = match txn.state() {
            TransactionState::PrepareCommit | TransactionState::PrepareAbort => {
                return Err(TransactionError::ConcurrentTransactions)
            }
            TransactionState::Ongoing => {
                self.fence_and_abort(tid, Asker::InitProducerId(request), now_ms, out);
                return Ok(());
            }
            TransactionState::Dead | TransactionState::PrepareEpochFence => {
                return Err(TransactionError::UnknownServerError)
            }
            TransactionState::Empty | TransactionState::CompleteCommit | TransactionState::CompleteAbort => {
                if txn.epoch_exhausted() && expected.is_none_or(|e| e.producer_epoch == txn.fields.producer_epoch) {
                    let producer_id = ids.next_producer_id()?;
                    txn.prepare_rotation(producer_id, timeout_ms, now_ms, expected.is_some())?
                } else {
                    txn.prepare_increment_epoch(timeout_ms, expected.map(|e| e.producer_epoch), now_ms)?
                }
            }
        };
        self.write_transition(
            partition,
            coordinator_epoch,
            tid,
            target,
            Then::InitProducerId(request),
            out,
        );
        Ok(())
    }

    /// AddPartitionsToTxn: `partitions` join the producer's transaction
    /// (starting one if none is open); one result per partition.
    /// `version` is the request's transaction version: 2 for a partition
    /// leader adding a partition implicitly (AddPartitionsToTxn v4+ not
    /// verify-only), 0 for a client's (v0–v3).
    #[allow(clippy::too_many_arguments)]
    pub fn add_partitions(
        &mut self,
        request: RequestId,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        partitions: Vec<TopicPartition>,
        version: TransactionVersion,
        now_ms: i64,
    ) -> Vec<Output> {
        self.add(
            request,
            transactional_id,
            producer_id,
            producer_epoch,
            partitions,
            Adding::Partitions(version),
            now_ms,
        )
    }

    /// AddOffsetsToTxn: the group's `__consumer_offsets` partition
    /// (`offsets.topic.num.partitions`) joins the producer's transaction,
    /// so that its TxnOffsetCommits commit or abort with it.
    pub fn add_offsets(
        &mut self,
        request: RequestId,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        group_id: &str,
        now_ms: i64,
    ) -> Vec<Output> {
        let partition = partition_for(group_id, self.settings.offsets_topic_partitions).unsigned_abs();
        let partitions = vec![TopicPartition::new(OFFSETS_TOPIC, partition)];
        self.add(
            request,
            transactional_id,
            producer_id,
            producer_epoch,
            partitions,
            Adding::Offsets,
            now_ms,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn add(
        &mut self,
        request: RequestId,
        tid: &str,
        producer_id: i64,
        producer_epoch: i16,
        partitions: Vec<TopicPartition>,
        adding: Adding,
        now_ms: i64,
    ) -> Vec<Output> {
        let mut out = Vec::new();
        let version = match adding {
            Adding::Partitions(version) => version,
            Adding::Offsets => TransactionVersion::V0,
        };
        let result = self.prepare_add(tid, producer_id, producer_epoch, &partitions, version, now_ms);
        let then = match adding {
            Adding::Partitions(_) => Then::AddPartitions(request, partitions),
            Adding::Offsets => Then::AddOffsets(request),
        };
        match result {
            Ok(Some((partition, coordinator_epoch, target))) => {
                self.write_transition(partition, coordinator_epoch, tid, target, then, &mut out);
            }
            Ok(None) => {
                let response = match then {
                    Then::AddPartitions(_, parts) => {
                        Response::AddPartitions(parts.into_iter().map(|p| (p, Ok(()))).collect())
                    }
                    _ => Response::AddOffsets(Ok(())),
                };
                respond(&mut out, request, response);
            }
            Err(e) => {
                if let Some((request, response)) = then.failed(e) {
                    respond(&mut out, request, response);
                }
            }
        }
        out
    }

    /// The transaction of `tid`, with its `__transaction_state` partition
    /// and coordinator epoch: INVALID_REQUEST for an empty id,
    /// NOT_COORDINATOR / COORDINATOR_LOAD_IN_PROGRESS,
    /// INVALID_PRODUCER_ID_MAPPING for an unknown id.
    fn transaction_of(&mut self, tid: &str) -> Result<(i32, i32, &mut TxnMetadata), TransactionError> {
        if tid.is_empty() {
            return Err(TransactionError::InvalidRequest);
        }
        let (partition, loaded) = self.loaded(tid)?;
        let coordinator_epoch = loaded.coordinator_epoch;
        let txn = loaded
            .txns
            .get_mut(tid)
            .ok_or(TransactionError::InvalidProducerIdMapping)?;
        Ok((partition, coordinator_epoch, txn))
    }

    /// The write adding `partitions`, or `None` when they are all in the
    /// open transaction already. A pending transition is checked first,
    /// as Kafka 4.x does: while an end at an exhausted epoch completes,
    /// the producer already adds with the next producer id, which is
    /// only pending (CONCURRENT_TRANSACTIONS, not a wrong mapping).
    fn prepare_add(
        &mut self,
        tid: &str,
        producer_id: i64,
        producer_epoch: i16,
        partitions: &[TopicPartition],
        version: TransactionVersion,
        now_ms: i64,
    ) -> Result<Option<(i32, i32, crate::metadata::Snapshot)>, TransactionError> {
        let (partition, coordinator_epoch, txn) = self.transaction_of(tid)?;
        if txn.pending.is_some() {
            return Err(TransactionError::ConcurrentTransactions);
        }
        if txn.fields.producer_id != producer_id {
            return Err(TransactionError::InvalidProducerIdMapping);
        }
        if txn.fields.producer_epoch != producer_epoch {
            return Err(TransactionError::ProducerFenced);
        }
        if matches!(
            txn.state(),
            TransactionState::PrepareCommit | TransactionState::PrepareAbort
        ) {
            return Err(TransactionError::ConcurrentTransactions);
        }
        if txn.state() == TransactionState::Ongoing && partitions.iter().all(|p| txn.fields.partitions.contains(p)) {
            return Ok(None);
        }
        let added: BTreeSet<TopicPartition> = partitions.iter().cloned().collect();
        let target = txn.prepare_add_partitions(added, version, now_ms)?;
        Ok(Some((partition, coordinator_epoch, target)))
    }

    /// EndTxn: commit or abort the producer's open transaction, under the
    /// request's transaction version (EndTxn v5+: 2). Answered once
    /// PrepareCommit/PrepareAbort is stored (the markers follow): under
    /// version 2 with the producer id and epoch the producer continues
    /// with, otherwise (−1, −1). A retry after the transaction completed
    /// so is answered at once (version 2: with the current id and epoch);
    /// see the `ending` module for the rest.
    #[allow(clippy::too_many_arguments)]
    pub fn end_txn(
        &mut self,
        request: RequestId,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        result: TransactionResult,
        version: TransactionVersion,
        now_ms: i64,
        ids: &mut dyn ProducerIdGenerator,
    ) -> Vec<Output> {
        let mut out = Vec::new();
        let end = EndRequest {
            producer_id,
            producer_epoch,
            result,
            version,
            asker: Asker::EndTxn(request),
        };
        match self.end_transaction(transactional_id, end, now_ms, Some(ids), &mut out) {
            Ok(None) => {}
            Ok(Some(answer)) => respond(&mut out, request, Response::EndTxn(Ok(answer))),
            Err(e) => respond(&mut out, request, Response::EndTxn(Err(e))),
        }
        out
    }

    /// Kafka's `endTransaction`: checks the producer and state, and
    /// prepares and hands out the Prepare* write (`Ok(None)`); the answer
    /// at once when the transaction already ended so. A call from the
    /// coordinator itself (`asker` not EndTxn) carries the fencing epoch,
    /// one above the producer's, and turns the pending epoch fence into
    /// the abort. `ids` gives the next producer id of a version 2 end at
    /// an exhausted epoch (never needed by a fence).
    fn end_transaction(
        &mut self,
        tid: &str,
        end: EndRequest,
        now_ms: i64,
        ids: Option<&mut dyn ProducerIdGenerator>,
        out: &mut Vec<Output>,
    ) -> Result<Option<ProducerIdAndEpoch>, TransactionError> {
        let EndRequest {
            producer_id,
            producer_epoch,
            result,
            version,
            asker,
        } = end;
        let from_client = matches!(asker, Asker::EndTxn(_));
        let (partition, coordinator_epoch, txn) = self.transaction_of(tid)?;
        let prepare = match txn.ending(producer_id, producer_epoch, result, version, from_client)? {
            EndDecision::Prepare(prepare) => prepare,
            EndDecision::AlreadyEnded if version.bumps_epoch() => return Ok(Some(txn.fields.producer())),
            EndDecision::AlreadyEnded => return Ok(Some(ProducerIdAndEpoch::NONE)),
        };
        let rotates = version.bumps_epoch() && txn.ending_rotates();
        let fence = txn.fencing() && prepare == TransactionState::PrepareAbort;
        if fence {
            // The bumped epoch goes into the abort's record, and into
            // memory now: the fenced producer is refused from here on,
            // even should the write fail (Kafka keeps it too, and does not
            // bump again on the next try).
            txn.pending = None;
            txn.fields.producer_epoch = producer_epoch;
            txn.fields.last_producer_epoch = NO_PRODUCER_EPOCH;
        }
        let mut target = txn.prepare_end(prepare, version, NO_PRODUCER_ID, now_ms)?;
        if rotates {
            // Only once the end is allowed, so that a refused one uses up
            // no producer id.
            let next = ids
                .ok_or(TransactionError::UnknownServerError)
                .and_then(|ids| ids.next_producer_id());
            match next {
                Ok(next) => target.next_producer_id = next,
                Err(e) => {
                    txn.pending = None;
                    return Err(e);
                }
            }
        }
        let then = Then::Prepare { result, asker, fence };
        self.write_transition(partition, coordinator_epoch, tid, target, then, out);
        Ok(None)
    }

    /// Fences the producer of `tid`'s open transaction (epoch bump) and
    /// aborts the transaction under the coordinator's transaction version
    /// (at 2 the abort bumps once more, so the fenced producer's own
    /// EndTxn does not pass for a retry: deliberately stricter than Kafka
    /// 4.4, whose abort bumps once, KAFKA-19367); `asker` is answered once
    /// that is stored.
    pub(crate) fn fence_and_abort(&mut self, tid: &str, asker: Asker, now_ms: i64, out: &mut Vec<Output>) {
        let fenced = self.loaded(tid).and_then(|(_, loaded)| {
            let txn = loaded.txns.get_mut(tid).ok_or(TransactionError::UnknownServerError)?;
            let target = txn.prepare_fence()?;
            Ok((target.producer_id, target.producer_epoch))
        });
        let result = fenced.and_then(|(producer_id, epoch)| {
            info!(transactional_id = %tid, producer_id, epoch, "fencing the producer and aborting its transaction");
            let end = EndRequest {
                producer_id,
                producer_epoch: epoch,
                result: TransactionResult::Abort,
                version: TransactionVersion::from_level(i16::from(self.settings.transaction_version)),
                asker,
            };
            self.end_transaction(tid, end, now_ms, None, out).map(|_| ())
        });
        if let Err(e) = result {
            // Never leave the fence pending: nothing would clear it.
            if let Ok((_, loaded)) = self.loaded(tid) {
                if let Some(txn) = loaded.txns.get_mut(tid) {
                    if txn.pending == Some(TransactionState::PrepareEpochFence) {
                        txn.pending = None;
                    }
                }
            }
            if let Asker::InitProducerId(request) = asker {
                respond(out, request, Response::InitProducerId(Err(e)));
            }
        }
    }
}
