//! One transactional id's state and its transitions, as Kafka's
//! `TransactionMetadata`: a change is first *prepared* — checked, and the
//! target [`Snapshot`] computed, with the id marked as having a pending
//! transition so nothing else changes it meanwhile — then written to
//! `__transaction_state`, and only once the write is acknowledged
//! *completed* (the snapshot becomes the state). A refused write just
//! clears the pending mark.

use std::collections::BTreeSet;

use gregor_log::TopicPartition;

use crate::protocol::{
    ProducerIdAndEpoch, TransactionError, TransactionState, TransactionVersion, NO_PRODUCER_EPOCH, NO_PRODUCER_ID,
};
use crate::records::{group_partitions, TransactionLogValue};

/// Epochs at or above this are exhausted: `Short.MaxValue - 1`, so that
/// the coordinator can always bump once more to fence a producer.
pub(crate) const EXHAUSTED_EPOCH: i16 = i16::MAX - 1;

/// Whether `epoch` leaves no room for another producer session.
pub(crate) fn epoch_exhausted(epoch: i16) -> bool {
    epoch >= EXHAUSTED_EPOCH
}

/// The fields of a transactional id's state (what a transition writes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Snapshot {
    pub(crate) producer_id: i64,
    /// The producer id before the last transition (KIP-360: a retried
    /// InitProducerId after a rotation is recognised by it).
    pub(crate) last_producer_id: i64,
    pub(crate) producer_epoch: i16,
    /// The epoch before the last bump requested with the producer's own
    /// epoch (KIP-360), or −1.
    pub(crate) last_producer_epoch: i16,
    pub(crate) timeout_ms: i32,
    pub(crate) state: TransactionState,
    pub(crate) partitions: BTreeSet<TopicPartition>,
    pub(crate) start_ms: i64,
    pub(crate) update_ms: i64,
    /// The producer id a transaction ending at an exhausted epoch under
    /// transaction version 2 moves to once it completes, or −1.
    pub(crate) next_producer_id: i64,
    /// The transaction version the transaction was last added to or ended
    /// under (a new id starts at 0; InitProducerId keeps it).
    pub(crate) client_transaction_version: TransactionVersion,
}

impl Snapshot {
    /// The producer id and epoch.
    pub(crate) fn producer(&self) -> ProducerIdAndEpoch {
        ProducerIdAndEpoch {
            producer_id: self.producer_id,
            producer_epoch: self.producer_epoch,
        }
    }

    /// EndTxn's answer once this completion is prepared: under
    /// transaction version 2 the producer id and epoch the producer
    /// continues with, otherwise none.
    pub(crate) fn end_txn_answer(&self) -> ProducerIdAndEpoch {
        if self.client_transaction_version.bumps_epoch() {
            self.producer()
        } else {
            ProducerIdAndEpoch::NONE
        }
    }

    /// The stored value (the last producer epoch is never stored; the
    /// producer id before a rotation, the next one and the client
    /// transaction version only in v1, for client versions above 0).
    pub(crate) fn to_value(&self) -> TransactionLogValue {
        TransactionLogValue {
            producer_id: self.producer_id,
            producer_epoch: self.producer_epoch,
            timeout_ms: self.timeout_ms,
            status: self.state.id(),
            partitions: (self.state != TransactionState::Empty).then(|| {
                group_partitions(
                    self.partitions
                        .iter()
                        .map(|tp| (tp.topic.as_str(), i32::try_from(tp.partition).unwrap_or(i32::MAX))),
                )
            }),
            last_update_ms: self.update_ms,
            start_ms: self.start_ms,
            // Only a rotation leaves a previous id worth keeping.
            previous_producer_id: if self.last_producer_id == self.producer_id {
                NO_PRODUCER_ID
            } else {
                self.last_producer_id
            },
            next_producer_id: self.next_producer_id,
            client_transaction_version: self.client_transaction_version.level(),
        }
    }
}

/// A transactional id's state in the coordinator's memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TxnMetadata {
    pub(crate) fields: Snapshot,
    /// The state a transition being written goes to.
    pub(crate) pending: Option<TransactionState>,
    /// A fence (epoch bump before aborting) was tried and its write
    /// failed: the bumped epoch is kept, not bumped again.
    pub(crate) failed_epoch_fence: bool,
}

impl TxnMetadata {
    /// A new id: Empty, with no epoch yet.
    pub(crate) fn new(producer_id: i64, timeout_ms: i32, now_ms: i64) -> Self {
        Self {
            fields: Snapshot {
                producer_id,
                last_producer_id: NO_PRODUCER_ID,
                producer_epoch: NO_PRODUCER_EPOCH,
                last_producer_epoch: NO_PRODUCER_EPOCH,
                timeout_ms,
                state: TransactionState::Empty,
                partitions: BTreeSet::new(),
                start_ms: -1,
                update_ms: now_ms,
                next_producer_id: NO_PRODUCER_ID,
                client_transaction_version: TransactionVersion::V0,
            },
            pending: None,
            failed_epoch_fence: false,
        }
    }

    /// The state a stored value describes; `None` for a state Kafka never
    /// stores (Dead, PrepareEpochFence) or does not know, or a negative
    /// partition.
    pub(crate) fn from_value(value: &TransactionLogValue) -> Option<Self> {
        let state = TransactionState::from_id(value.status)?;
        if matches!(state, TransactionState::Dead | TransactionState::PrepareEpochFence) {
            return None;
        }
        let mut partitions = BTreeSet::new();
        if state != TransactionState::Empty {
            for (topic, ids) in value.partitions.iter().flatten() {
                for id in ids {
                    partitions.insert(TopicPartition::new(topic.clone(), u32::try_from(*id).ok()?));
                }
            }
        }
        Some(Self {
            fields: Snapshot {
                producer_id: value.producer_id,
                last_producer_id: value.previous_producer_id,
                producer_epoch: value.producer_epoch,
                last_producer_epoch: NO_PRODUCER_EPOCH,
                timeout_ms: value.timeout_ms,
                state,
                partitions,
                start_ms: value.start_ms,
                update_ms: value.last_update_ms,
                next_producer_id: value.next_producer_id,
                client_transaction_version: TransactionVersion::from_level(value.client_transaction_version),
            },
            pending: None,
            failed_epoch_fence: false,
        })
    }

    pub(crate) fn state(&self) -> TransactionState {
        self.fields.state
    }

    /// Whether the epoch leaves no room for another producer session.
    pub(crate) fn epoch_exhausted(&self) -> bool {
        epoch_exhausted(self.fields.producer_epoch)
    }

    /// Marks a transition to `to` as pending and returns its target; the
    /// unchanged fields come from the current state. Refuses what Kafka
    /// treats as an illegal state (it throws): a pending transition, a
    /// start state `to` may not follow, a negative epoch.
    fn prepare(
        &mut self,
        to: TransactionState,
        change: impl FnOnce(&mut Snapshot),
    ) -> Result<Snapshot, TransactionError> {
        if self.pending.is_some() {
            return Err(TransactionError::ConcurrentTransactions);
        }
        if !to.valid_previous().contains(&self.fields.state) {
            return Err(TransactionError::UnknownServerError);
        }
        let mut target = self.fields.clone();
        target.last_producer_id = self.fields.producer_id;
        target.state = to;
        change(&mut target);
        if target.producer_id < 0 || (to != TransactionState::Dead && target.producer_epoch < 0) {
            return Err(TransactionError::UnknownServerError);
        }
        self.pending = Some(to);
        Ok(target)
    }

    /// Bumps the epoch to fence the current producer before its open
    /// transaction is aborted (not again after a failed fence write).
    pub(crate) fn prepare_fence(&mut self) -> Result<Snapshot, TransactionError> {
        if self.fields.producer_epoch == i16::MAX {
            return Err(TransactionError::UnknownServerError);
        }
        let bumped = if self.failed_epoch_fence {
            self.fields.producer_epoch
        } else {
            self.fields.producer_epoch + 1
        };
        self.prepare(TransactionState::PrepareEpochFence, |t| {
            t.producer_epoch = bumped;
            t.last_producer_epoch = NO_PRODUCER_EPOCH;
        })
    }

    /// InitProducerId on an id with no open transaction: the next epoch.
    /// With the producer's own epoch (`expected`, KIP-360): the current
    /// one is bumped and remembered as the last, a retry of a bump that
    /// succeeded gets the same epoch again, anything else is fenced.
    pub(crate) fn prepare_increment_epoch(
        &mut self,
        timeout_ms: i32,
        expected: Option<i16>,
        now_ms: i64,
    ) -> Result<Snapshot, TransactionError> {
        let current = self.fields.producer_epoch;
        if epoch_exhausted(current) {
            // Kafka throws here; only a stale producer gets this far.
            return Err(TransactionError::ProducerFenced);
        }
        let (epoch, last) = match expected {
            None => (current + 1, NO_PRODUCER_EPOCH),
            Some(e) if current == NO_PRODUCER_EPOCH || e == current => (current + 1, current),
            Some(e) if e == self.fields.last_producer_epoch => (current, self.fields.last_producer_epoch),
            Some(_) => return Err(TransactionError::ProducerFenced),
        };
        self.prepare_init(self.fields.producer_id, epoch, last, timeout_ms, now_ms)
    }

    /// A new producer id (epochs exhausted), at epoch 0; the old epoch is
    /// remembered when the producer named it.
    pub(crate) fn prepare_rotation(
        &mut self,
        producer_id: i64,
        timeout_ms: i32,
        now_ms: i64,
        record_last_epoch: bool,
    ) -> Result<Snapshot, TransactionError> {
        let last = if record_last_epoch {
            self.fields.producer_epoch
        } else {
            NO_PRODUCER_EPOCH
        };
        self.prepare_init(producer_id, 0, last, timeout_ms, now_ms)
    }

    /// What InitProducerId leaves: Empty at `producer_id` and `epoch`
    /// (remembering `last_epoch`), with the producer's timeout and no
    /// transaction.
    fn prepare_init(
        &mut self,
        producer_id: i64,
        epoch: i16,
        last_epoch: i16,
        timeout_ms: i32,
        now_ms: i64,
    ) -> Result<Snapshot, TransactionError> {
        self.prepare(TransactionState::Empty, |t| {
            t.producer_id = producer_id;
            t.producer_epoch = epoch;
            t.last_producer_epoch = last_epoch;
            t.timeout_ms = timeout_ms;
            t.partitions.clear();
            t.start_ms = -1;
            t.update_ms = now_ms;
        })
    }

    /// AddPartitionsToTxn: Ongoing with `added` too; a new transaction
    /// starts now. The transaction is recorded as of `version`.
    pub(crate) fn prepare_add_partitions(
        &mut self,
        added: impl IntoIterator<Item = TopicPartition>,
        version: TransactionVersion,
        now_ms: i64,
    ) -> Result<Snapshot, TransactionError> {
        let starts = matches!(
            self.fields.state,
            TransactionState::Empty | TransactionState::CompleteCommit | TransactionState::CompleteAbort
        );
        self.prepare(TransactionState::Ongoing, |t| {
            t.partitions.extend(added);
            if starts {
                t.start_ms = now_ms;
            }
            t.update_ms = now_ms;
            t.client_transaction_version = version;
        })
    }

    /// EndTxn: PrepareCommit or PrepareAbort, recorded as of `version`.
    /// Under version 2 the epoch is bumped (the current one kept as the
    /// last), except an abort at the largest epoch; `next_producer_id`
    /// (exhausted epoch) is where the transaction's completion moves the
    /// producer. Only version 2 aborts from Empty or Complete* (a
    /// transaction the coordinator never saw a partition of), starting it
    /// now.
    pub(crate) fn prepare_end(
        &mut self,
        to: TransactionState,
        version: TransactionVersion,
        next_producer_id: i64,
        now_ms: i64,
    ) -> Result<Snapshot, TransactionError> {
        use TransactionState::*;
        let no_transaction = matches!(self.state(), Empty | CompleteCommit | CompleteAbort);
        if no_transaction && !(version.bumps_epoch() && to == PrepareAbort) {
            return Err(TransactionError::UnknownServerError);
        }
        let current = self.fields.producer_epoch;
        let bump = version.bumps_epoch() && !(to == PrepareAbort && current == i16::MAX);
        if bump && current == i16::MAX {
            return Err(TransactionError::UnknownServerError);
        }
        self.prepare(to, |t| {
            if bump {
                t.producer_epoch = current + 1;
                t.last_producer_epoch = current;
            }
            t.next_producer_id = next_producer_id;
            if no_transaction {
                t.start_ms = now_ms;
            }
            t.update_ms = now_ms;
            t.client_transaction_version = version;
        })
    }

    /// Every marker written: CompleteCommit or CompleteAbort, no
    /// partitions.
    pub(crate) fn prepare_complete(&mut self, now_ms: i64) -> Result<Snapshot, TransactionError> {
        let to = match self.fields.state {
            TransactionState::PrepareCommit => TransactionState::CompleteCommit,
            TransactionState::PrepareAbort => TransactionState::CompleteAbort,
            _ => return Err(TransactionError::UnknownServerError),
        };
        self.failed_epoch_fence = false;
        self.prepare(to, |t| {
            if t.client_transaction_version.bumps_epoch() && t.next_producer_id != NO_PRODUCER_ID {
                t.producer_id = t.next_producer_id;
                t.producer_epoch = 0;
            }
            t.next_producer_id = NO_PRODUCER_ID;
            t.partitions.clear();
            t.update_ms = now_ms;
        })
    }

    /// Expiry: the id is being tombstoned.
    pub(crate) fn prepare_dead(&mut self) -> Result<Snapshot, TransactionError> {
        self.prepare(TransactionState::Dead, |t| t.partitions.clear())
    }

    /// The write of `target` was acknowledged: it becomes the state.
    pub(crate) fn complete(&mut self, target: Snapshot) {
        self.fields = target;
        self.pending = None;
    }
}

#[cfg(test)]
mod tests;
