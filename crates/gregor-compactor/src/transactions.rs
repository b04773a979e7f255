//! What one cleaning pass knows of transactions (KIP-98) as it walks a
//! log's batches in order, as Kafka's `CleanedTransactionMetadata` and
//! `isBatchLastRecordOfProducer` do:
//!
//! - [`TransactionWalk`]: which data batches belong to an aborted
//!   transaction (their records are dropped and never enter the offset
//!   map), and whether a marker's transaction still had a batch in this
//!   pass (a marker is removable only once none is left; an ABORT marker
//!   keeps its `.txnindex` entry only while one is).
//! - [`ProducerTails`]: the batches that hold each live producer's state
//!   (last sequence, epoch, coordinator epoch), kept — emptied if need be —
//!   so that producer state rebuilt from the log after a crash is the
//!   state the log had.

use std::collections::{HashMap, HashSet, VecDeque};

use gregor_log::batch::{BatchHeader, ControlRecordType, EndTransactionMarker};
use gregor_log::producer_state::ProducerStates;
use gregor_log::AbortedTxn;

/// The transaction state of a walk over consecutive batches.
#[derive(Debug, Default)]
pub(crate) struct TransactionWalk {
    /// Aborted transactions not reached yet, by first offset.
    aborted: VecDeque<AbortedTxn>,
    /// Producers with a transactional batch since their last marker, in a
    /// transaction that was not aborted.
    ongoing_committed: HashSet<i64>,
    /// Producers inside an aborted transaction: the transaction, and
    /// whether a batch of it was read.
    ongoing_aborted: HashMap<i64, (AbortedTxn, bool)>,
}

/// What a control batch's transaction left in the batches walked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MarkerFate {
    /// A batch of its transaction was read in this walk (or the control
    /// record is of a type this code does not know): it must stay.
    pub(crate) has_data: bool,
    /// For an ABORT marker whose transaction had batches: its index entry,
    /// which stays with it.
    pub(crate) index_entry: Option<AbortedTxn>,
}

impl TransactionWalk {
    /// A walk knowing the aborted transactions that overlap the batches it
    /// will be shown (from the log's transaction index).
    pub(crate) fn new(mut aborted: Vec<AbortedTxn>) -> Self {
        aborted.sort_by_key(|t| t.first_offset);
        Self {
            aborted: aborted.into(),
            ..Self::default()
        }
    }

    fn reach(&mut self, offset: u64) {
        while self.aborted.front().is_some_and(|t| t.first_offset <= offset) {
            if let Some(txn) = self.aborted.pop_front() {
                self.ongoing_aborted.entry(txn.producer_id).or_insert((txn, false));
            }
        }
    }

    /// A data batch, read in log order: true when it belongs to an aborted
    /// transaction (its records are to be dropped).
    pub(crate) fn on_data_batch(&mut self, header: &BatchHeader) -> bool {
        self.reach(header.last_offset());
        if !header.is_transactional() {
            return false;
        }
        let producer_id = header.producer_id;
        // A batch after the marker cannot be part of that transaction (its
        // marker was missed: an unreadable control batch).
        if self
            .ongoing_aborted
            .get(&producer_id)
            .is_some_and(|(txn, _)| header.base_offset >= txn.last_offset)
        {
            self.ongoing_aborted.remove(&producer_id);
        }
        match self.ongoing_aborted.get_mut(&producer_id) {
            Some((_, seen)) => {
                *seen = true;
                true
            }
            None => {
                self.ongoing_committed.insert(producer_id);
                false
            }
        }
    }

    /// A control batch, read in log order, with the marker it holds.
    pub(crate) fn on_control_batch(
        &mut self,
        header: &BatchHeader,
        marker: Option<EndTransactionMarker>,
    ) -> MarkerFate {
        self.reach(header.last_offset());
        let producer_id = header.producer_id;
        let (has_data, index_entry) = match marker.map(|m| m.kind) {
            Some(ControlRecordType::Abort) => {
                // Batches taken for committed ones (the index did not know
                // the transaction) are still there: the marker stays too.
                let unrecognised = self.ongoing_committed.remove(&producer_id);
                match self.ongoing_aborted.remove(&producer_id) {
                    Some((txn, true)) => (true, Some(txn)),
                    _ => (unrecognised, None),
                }
            }
            Some(ControlRecordType::Commit) => (self.ongoing_committed.remove(&producer_id), None),
            // A control batch the cleaner emptied (or an unreadable one,
            // which is then kept as it is anyway) ends nothing; a control
            // record of an unknown type is never removed.
            None => (header.record_count > 0, None),
        };
        MarkerFate { has_data, index_entry }
    }
}

/// What holds a live producer's state in the log.
#[derive(Debug, Clone, Copy)]
struct Tail {
    /// Last offset of its last batch with a sequence.
    last_data_offset: Option<u64>,
    /// Offset of its last marker in the cleaned segments, if written with
    /// its current epoch and coordinator epoch.
    last_marker: Option<u64>,
}

/// The batches the cleaner keeps for the producers the log knows, so that
/// replaying the cleaned log rebuilds their state:
///
/// - the data batch holding a producer's last sequence (kept, empty if all
///   its records are cleaned — Kafka's rule);
/// - its last marker among the cleaned segments when that marker carries
///   its current epoch and coordinator epoch. Kafka keeps a marker only for
///   a producer without a data batch, and empties it; gregor keeps it
///   whole, so that the coordinator epoch that fences stale markers
///   survives a rebuild too.
#[derive(Debug, Default)]
pub(crate) struct ProducerTails(HashMap<i64, Tail>);

impl ProducerTails {
    /// The tails of `states` (the log's producer state when the pass
    /// starts: a producer appending meanwhile only moves its tail into the
    /// uncleaned part of the log), given the markers of the segments to be
    /// cleaned, in log order.
    pub(crate) fn of(
        states: &ProducerStates,
        markers: impl IntoIterator<Item = (BatchHeader, EndTransactionMarker)>,
    ) -> Self {
        let mut tails: HashMap<i64, Tail> = states
            .iter()
            .map(|(id, e)| {
                let tail = Tail {
                    last_data_offset: e.last_data_offset(),
                    last_marker: None,
                };
                (id, tail)
            })
            .collect();
        for (header, marker) in markers {
            let Some(entry) = states.get(header.producer_id) else {
                continue;
            };
            if header.producer_epoch == entry.epoch && marker.coordinator_epoch == entry.coordinator_epoch {
                if let Some(tail) = tails.get_mut(&header.producer_id) {
                    tail.last_marker = Some(header.base_offset);
                }
            }
        }
        Self(tails)
    }

    /// True when the batch holds part of its producer's current state.
    pub(crate) fn holds(&self, header: &BatchHeader) -> bool {
        let Some(tail) = self.0.get(&header.producer_id).filter(|_| header.producer_id >= 0) else {
            return false;
        };
        if header.is_control() {
            tail.last_marker == Some(header.base_offset)
        } else {
            tail.last_data_offset == Some(header.last_offset())
        }
    }
}
