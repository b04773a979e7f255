//! Producers' state in one partition: for each producer id, its epoch, the
//! sequence ranges of its last five batches (so that a retried batch is
//! recognised and answered with its original offsets instead of being
//! written twice, a gap in sequences is refused, and a fenced epoch is
//! refused), the epoch of the transaction coordinator that last wrote a
//! marker for it, and its open transaction (KIP-98).
//!
//! The state lives with the log: it is updated by every append (producer,
//! coordinator or replicated), saved as Kafka's `<offset>.snapshot` files
//! (on roll and on close) and rebuilt on open from the newest snapshot plus
//! the batches after it — so it survives restarts and a follower builds the
//! same state from what it copies.
//!
//! Files: this one (entries, the sequence check, what a batch does to its
//! producer), `snapshot` (the file format), `transactions` (the partition's
//! ongoing and not yet replicated transactions, the first unstable offset),
//! `verification` (KIP-890's guards for transactions not yet verified).

mod snapshot;
mod transactions;
mod verification;

use std::collections::{BTreeMap, VecDeque};

use crate::batch::{BatchHeader, ControlRecordType, EndTransactionMarker};

pub use snapshot::SnapshotError;
pub use transactions::{CompletedTxn, Transactions};
pub(crate) use verification::Verifications;
pub use verification::{TxnVerification, VerificationGuard};

/// Batches remembered per producer: a producer has at most five in flight.
pub const MAX_CACHED_BATCHES: usize = 5;

/// One batch of a producer: its sequence and offset ranges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchSequence {
    /// Sequence of its first record.
    pub first_seq: i32,
    /// Sequence of its last record.
    pub last_seq: i32,
    /// Offset of its first record.
    pub first_offset: u64,
    /// Offset of its last record.
    pub last_offset: u64,
    /// Its max timestamp.
    pub timestamp: i64,
}

/// What the log knows of one producer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerEntry {
    /// Current epoch; batches of older epochs are fenced.
    pub epoch: i16,
    /// Its last batches with a sequence, oldest first.
    pub batches: VecDeque<BatchSequence>,
    /// When it last appended (broker clock), for expiry.
    pub last_append_ms: i64,
    /// Timestamp of its last batch or marker (DescribeProducers' lastTimestamp).
    pub last_timestamp: i64,
    /// Epoch of the transaction coordinator that wrote its last marker, −1
    /// when none did; markers of older coordinators are fenced.
    pub coordinator_epoch: i32,
    /// First offset of its open transaction, if one is open.
    pub current_txn_first_offset: Option<u64>,
}

impl ProducerEntry {
    fn new(epoch: i16) -> Self {
        Self {
            epoch,
            batches: VecDeque::new(),
            last_append_ms: -1,
            last_timestamp: -1,
            coordinator_epoch: -1,
            current_txn_first_offset: None,
        }
    }

    fn last(&self) -> Option<&BatchSequence> {
        self.batches.back()
    }

    /// Sequence of its last record, −1 when no batch with a sequence is
    /// remembered (DescribeProducers' lastSequence).
    pub fn last_sequence(&self) -> i32 {
        self.last().map_or(-1, |b| b.last_seq)
    }

    /// Offset of its last data batch's last record, if one is remembered.
    pub fn last_data_offset(&self) -> Option<u64> {
        self.last().map(|b| b.last_offset)
    }

    /// A new epoch forgets the batches of the old one.
    fn set_epoch(&mut self, epoch: i16) {
        if epoch != self.epoch {
            self.epoch = epoch;
            self.batches.clear();
        }
    }
}

/// The verdict on an idempotent batch before it is appended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SequenceCheck {
    /// New and in sequence: append it.
    Append,
    /// Already in the log (a retry): answer with these offsets, write nothing.
    Duplicate(BatchSequence),
}

/// Why a producer's batch or marker is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProducerError {
    /// The batch's epoch is older than the producer's current one.
    #[error("producer {producer_id} epoch {epoch} is older than its current epoch {current}")]
    InvalidEpoch {
        /// The producer.
        producer_id: i64,
        /// The batch's epoch.
        epoch: i16,
        /// The epoch the log knows.
        current: i16,
    },
    /// The batch's first sequence does not follow the last one appended.
    #[error("producer {producer_id}: sequence {got} where {expected} was expected")]
    OutOfOrderSequence {
        /// The producer.
        producer_id: i64,
        /// The sequence that would follow the last batch.
        expected: i32,
        /// The batch's first sequence.
        got: i32,
    },
    /// A transaction marker from a coordinator older than the one that
    /// wrote the producer's last marker (Kafka's TRANSACTION_COORDINATOR_FENCED).
    #[error("producer {producer_id}: marker of coordinator epoch {coordinator_epoch} is older than {current}")]
    CoordinatorFenced {
        /// The producer.
        producer_id: i64,
        /// The marker's coordinator epoch.
        coordinator_epoch: i32,
        /// The coordinator epoch the log knows.
        current: i32,
    },
    /// A non-transactional batch from a producer whose transaction is open
    /// (Kafka's INVALID_TXN_STATE).
    #[error("producer {producer_id} sent a non-transactional batch while its transaction is open")]
    InvalidTxnState {
        /// The producer.
        producer_id: i64,
    },
    /// A transactional batch would open its producer's transaction without
    /// proof that the transaction coordinator added the partition to it
    /// (KIP-890; Kafka's INVALID_TXN_STATE): the append carried no guard,
    /// or one a marker has since invalidated.
    #[error("producer {producer_id} epoch {producer_epoch}: the transaction this batch would open is not verified")]
    TransactionNotVerified {
        /// The producer.
        producer_id: i64,
        /// The batch's epoch.
        producer_epoch: i16,
        /// The guard to verify the transaction with, when the append
        /// carried none ([`VerificationGuard::NONE`]); `None` when it
        /// carried one that no longer holds.
        guard: Option<VerificationGuard>,
    },
}

/// The sequence after `seq` (sequences wrap from `i32::MAX` to 0).
fn next_seq(seq: i32) -> i32 {
    if seq == i32::MAX {
        0
    } else {
        seq + 1
    }
}

/// The last sequence of a batch starting at `first` with `count` records.
fn last_seq(first: i32, last_offset_delta: u32) -> i32 {
    ((i64::from(first) + i64::from(last_offset_delta)) % (i64::from(i32::MAX) + 1)) as i32
}

/// True for a batch from an idempotent producer.
pub fn is_idempotent(header: &BatchHeader) -> bool {
    header.producer_id >= 0 && header.base_sequence >= 0
}

/// How much a batch's producer state is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Validation {
    /// A producer's or a coordinator's append: fenced epochs, fenced
    /// coordinators and a non-transactional batch in an open transaction
    /// are refused.
    Checked,
    /// What a leader already accepted (replication, rebuilding the state
    /// from the log): applied as written.
    Trusted,
}

/// What one batch did to its producer's transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxnEvent {
    /// A transactional batch opened a transaction at this offset.
    Started {
        /// The producer.
        producer_id: i64,
        /// The batch's base offset.
        first_offset: u64,
    },
    /// A marker ended an open transaction.
    Ended(CompletedTxn),
}

/// The producer entry after `header` (with its final offsets; `marker` is
/// the marker of a control batch), computed from `current` as Kafka's
/// `ProducerAppendInfo` does, and the transaction event it causes. `None`
/// for a batch that does not touch the producer (a control batch that
/// holds no marker, e.g. one the cleaner emptied).
fn next_entry(
    current: Option<&ProducerEntry>,
    header: &BatchHeader,
    marker: Option<EndTransactionMarker>,
    validation: Validation,
    now_ms: i64,
) -> Result<Option<(ProducerEntry, Option<TxnEvent>)>, ProducerError> {
    let producer_id = header.producer_id;
    let checked = validation == Validation::Checked;
    if header.is_control() && marker.is_none() {
        return Ok(None);
    }
    if let Some(current) = current.filter(|c| checked && header.producer_epoch < c.epoch) {
        return Err(ProducerError::InvalidEpoch {
            producer_id,
            epoch: header.producer_epoch,
            current: current.epoch,
        });
    }
    let mut entry = current
        .cloned()
        .unwrap_or_else(|| ProducerEntry::new(header.producer_epoch));
    entry.last_append_ms = now_ms;
    entry.last_timestamp = header.max_timestamp;
    if let Some(marker) = marker {
        if checked && entry.coordinator_epoch > marker.coordinator_epoch {
            return Err(ProducerError::CoordinatorFenced {
                producer_id,
                coordinator_epoch: marker.coordinator_epoch,
                current: entry.coordinator_epoch,
            });
        }
        // A marker without an open transaction (an empty one) changes
        // neither the last stable offset nor the transaction index.
        let ended = entry.current_txn_first_offset.take().map(|first_offset| {
            TxnEvent::Ended(CompletedTxn {
                producer_id,
                first_offset,
                last_offset: header.base_offset,
                aborted: marker.kind == ControlRecordType::Abort,
            })
        });
        entry.set_epoch(header.producer_epoch);
        entry.coordinator_epoch = marker.coordinator_epoch;
        return Ok(Some((entry, ended)));
    }
    match (entry.current_txn_first_offset, header.is_transactional()) {
        (Some(_), false) if checked => return Err(ProducerError::InvalidTxnState { producer_id }),
        _ => {}
    }
    entry.set_epoch(header.producer_epoch);
    if header.base_sequence >= 0 {
        if entry.batches.len() == MAX_CACHED_BATCHES {
            entry.batches.pop_front();
        }
        entry.batches.push_back(BatchSequence {
            first_seq: header.base_sequence,
            last_seq: last_seq(header.base_sequence, header.last_offset_delta),
            first_offset: header.base_offset,
            last_offset: header.last_offset(),
            timestamp: header.max_timestamp,
        });
    }
    let started = (header.is_transactional() && entry.current_txn_first_offset.is_none()).then(|| {
        entry.current_txn_first_offset = Some(header.base_offset);
        TxnEvent::Started {
            producer_id,
            first_offset: header.base_offset,
        }
    });
    Ok(Some((entry, started)))
}

/// Every producer's state in one partition.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProducerStates {
    producers: BTreeMap<i64, ProducerEntry>,
}

impl ProducerStates {
    /// No producers.
    pub fn new() -> Self {
        Self::default()
    }

    /// The state of `producer_id`, if known.
    pub fn get(&self, producer_id: i64) -> Option<&ProducerEntry> {
        self.producers.get(&producer_id)
    }

    /// Whether `producer_id` has a transaction open in this log at
    /// `epoch` (Kafka 4.x's `hasOngoingTransaction(pid, epoch)`): a batch
    /// of a newer epoch belongs to the producer's next transaction (under
    /// transactions v2 every transaction has its own epoch), which must
    /// be verified even while the marker of the previous one is due.
    pub fn has_ongoing_transaction(&self, producer_id: i64, epoch: i16) -> bool {
        self.get(producer_id)
            .is_some_and(|e| e.current_txn_first_offset.is_some() && e.epoch == epoch)
    }

    /// Every known producer, by id (what DescribeProducers lists).
    pub fn iter(&self) -> impl Iterator<Item = (i64, &ProducerEntry)> {
        self.producers.iter().map(|(id, e)| (*id, e))
    }

    /// Number of producers known.
    pub fn len(&self) -> usize {
        self.producers.len()
    }

    /// True when no producer is known.
    pub fn is_empty(&self) -> bool {
        self.producers.is_empty()
    }

    /// Judges an idempotent producer's batch (not yet appended) as Kafka
    /// does: older epoch → fenced; a new epoch must start at sequence 0;
    /// within an epoch, one of the remembered batches again → duplicate,
    /// anything but the next sequence → out of order. A producer the log
    /// does not know (expired, or its batches deleted) may start at any
    /// sequence, as in Kafka since KIP-360 (2.5): answering
    /// UNKNOWN_PRODUCER_ID there made librdkafka bump its epoch for every
    /// partition, re-sending unanswered batches as new.
    pub fn check(&self, header: &BatchHeader) -> Result<SequenceCheck, ProducerError> {
        let producer_id = header.producer_id;
        let first = header.base_sequence;
        let Some(entry) = self.producers.get(&producer_id) else {
            return Ok(SequenceCheck::Append);
        };
        if header.producer_epoch < entry.epoch {
            return Err(ProducerError::InvalidEpoch {
                producer_id,
                epoch: header.producer_epoch,
                current: entry.epoch,
            });
        }
        if header.producer_epoch > entry.epoch || entry.batches.is_empty() {
            return if first == 0 {
                Ok(SequenceCheck::Append)
            } else {
                Err(ProducerError::OutOfOrderSequence {
                    producer_id,
                    expected: 0,
                    got: first,
                })
            };
        }
        let last = last_seq(first, header.last_offset_delta);
        if let Some(done) = entry
            .batches
            .iter()
            .find(|b| b.first_seq == first && b.last_seq == last)
        {
            return Ok(SequenceCheck::Duplicate(*done));
        }
        let expected = entry.last().map_or(0, |b| next_seq(b.last_seq));
        if first == expected {
            Ok(SequenceCheck::Append)
        } else {
            Err(ProducerError::OutOfOrderSequence {
                producer_id,
                expected,
                got: first,
            })
        }
    }

    /// Records a written batch (with its final offsets; `marker` for a
    /// control batch) without checks, as a follower or a rebuild does.
    /// Batches without a producer id are ignored. Returns the transaction
    /// event it caused.
    pub fn record(
        &mut self,
        header: &BatchHeader,
        marker: Option<EndTransactionMarker>,
        now_ms: i64,
    ) -> Option<TxnEvent> {
        if header.producer_id < 0 {
            return None;
        }
        let current = self.producers.get(&header.producer_id);
        let (entry, event) = next_entry(current, header, marker, Validation::Trusted, now_ms).ok()??;
        self.producers.insert(header.producer_id, entry);
        event
    }

    /// Starts checking an append of several batches: each one is judged
    /// against the state the batches before it left, and nothing changes
    /// until [`ProducerStates::commit`].
    pub(crate) fn begin_append(&self, validation: Validation, now_ms: i64) -> ProducerAppend<'_> {
        ProducerAppend {
            states: self,
            updated: BTreeMap::new(),
            validation,
            now_ms,
        }
    }

    /// Applies what a [`ProducerAppend`] computed (once the batches are written).
    pub(crate) fn commit(&mut self, updated: BTreeMap<i64, ProducerEntry>) {
        self.producers.extend(updated);
    }

    /// Forgets producers silent for longer than `expiration_ms`
    /// (`producer.id.expiration.ms`), except those with an open
    /// transaction; returns how many went.
    pub fn expire(&mut self, now_ms: i64, expiration_ms: i64) -> usize {
        let before = self.producers.len();
        self.producers.retain(|_, e| {
            e.current_txn_first_offset.is_some() || now_ms.saturating_sub(e.last_append_ms) <= expiration_ms
        });
        before - self.producers.len()
    }

    /// Forgets producers whose batches all lie below `log_start`
    /// (retention or DeleteRecords removed them), except those with an
    /// open transaction.
    pub fn retain_from(&mut self, log_start: u64) {
        self.producers.retain(|_, e| {
            e.current_txn_first_offset.is_some() || e.last().is_some_and(|b| b.last_offset >= log_start)
        });
    }
}

/// The producer state changes of one append, computed batch by batch
/// before anything is written (Kafka's `ProducerAppendInfo`, for every
/// producer of the append at once).
pub(crate) struct ProducerAppend<'a> {
    states: &'a ProducerStates,
    updated: BTreeMap<i64, ProducerEntry>,
    validation: Validation,
    now_ms: i64,
}

impl ProducerAppend<'_> {
    /// Judges and applies (to this append's view) one batch with its final
    /// offsets; `marker` is the marker of a control batch.
    pub(crate) fn batch(
        &mut self,
        header: &BatchHeader,
        marker: Option<EndTransactionMarker>,
    ) -> Result<Option<TxnEvent>, ProducerError> {
        if header.producer_id < 0 {
            return Ok(None);
        }
        let id = header.producer_id;
        let current = self.updated.get(&id).or_else(|| self.states.producers.get(&id));
        match next_entry(current, header, marker, self.validation, self.now_ms)? {
            Some((entry, event)) => {
                self.updated.insert(id, entry);
                Ok(event)
            }
            None => Ok(None),
        }
    }

    /// The entries this append changes, for [`ProducerStates::commit`].
    pub(crate) fn into_updates(self) -> BTreeMap<i64, ProducerEntry> {
        self.updated
    }
}

#[cfg(test)]
mod tests;
