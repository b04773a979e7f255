//! A partition's transactions: those still open (ongoing) and those ended
//! by a marker the high watermark has not passed yet (unreplicated). Both
//! hold back the last stable offset, as in Kafka's `ProducerStateManager`.

use std::collections::BTreeMap;

use super::{ProducerStates, TxnEvent};

/// A transaction a marker ended (Kafka's `CompletedTxn`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompletedTxn {
    /// The producer.
    pub producer_id: i64,
    /// Offset of its first batch.
    pub first_offset: u64,
    /// Offset of its marker.
    pub last_offset: u64,
    /// Ended by an ABORT marker.
    pub aborted: bool,
}

/// The ongoing and unreplicated transactions of a partition.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Transactions {
    /// First offset → producer.
    ongoing: BTreeMap<u64, i64>,
    /// First offset → (producer, marker offset).
    unreplicated: BTreeMap<u64, (i64, u64)>,
}

impl Transactions {
    /// The open transactions of `producers` (as a snapshot restores them).
    pub fn of_producers(producers: &ProducerStates) -> Self {
        let ongoing = producers
            .iter()
            .filter_map(|(id, e)| Some((e.current_txn_first_offset?, id)))
            .collect();
        Self {
            ongoing,
            unreplicated: BTreeMap::new(),
        }
    }

    /// Applies a batch's event. For an ended transaction, returns the last
    /// stable offset as of its marker, for the transaction index: the
    /// first offset of the earliest other open transaction, or the offset
    /// after the marker (Kafka's `lastStableOffset(CompletedTxn)`).
    pub fn apply(&mut self, event: TxnEvent) -> Option<u64> {
        match event {
            TxnEvent::Started {
                producer_id,
                first_offset,
            } => {
                self.ongoing.insert(first_offset, producer_id);
                None
            }
            TxnEvent::Ended(txn) => {
                let lso = self
                    .ongoing
                    .iter()
                    .find(|(_, pid)| **pid != txn.producer_id)
                    .map_or(txn.last_offset + 1, |(first, _)| *first);
                self.ongoing.remove(&txn.first_offset);
                self.unreplicated
                    .insert(txn.first_offset, (txn.producer_id, txn.last_offset));
                Some(lso)
            }
        }
    }

    /// The high watermark (or the log start) reached `offset`: transactions
    /// whose marker lies below it are stable.
    pub fn on_high_watermark(&mut self, offset: u64) {
        self.unreplicated.retain(|_, (_, marker)| *marker >= offset);
    }

    /// The first offset of the earliest transaction that is open or whose
    /// marker the high watermark has not passed.
    pub fn first_unstable_offset(&self) -> Option<u64> {
        let ongoing = self.ongoing.keys().next().copied();
        let unreplicated = self.unreplicated.keys().next().copied();
        match (ongoing, unreplicated) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Open transactions: first offset and producer, by first offset.
    pub fn ongoing(&self) -> impl Iterator<Item = (u64, i64)> + '_ {
        self.ongoing.iter().map(|(o, p)| (*o, *p))
    }
}
