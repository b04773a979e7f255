//! The log's view of transactions: the last stable offset and the aborted
//! transactions a read_committed fetch needs.

use std::sync::atomic::Ordering;

use super::Log;
use crate::error::{IoContext, Result};
use crate::producer_state::Transactions;
use crate::txn_index::AbortedTxn;

impl Log {
    /// The last stable offset: the high watermark, or the first offset of
    /// the earliest transaction still open or whose marker the high
    /// watermark has not passed, whichever is lower. read_committed
    /// consumers read below it. Lock-free.
    pub fn last_stable_offset(&self) -> u64 {
        // The first unstable offset is published before the high watermark
        // moves past an open transaction, so this is never too high.
        let first_unstable = self.first_unstable.load(Ordering::Acquire);
        self.high_watermark().min(first_unstable)
    }

    /// The first offset of the earliest transaction that is open or whose
    /// marker the high watermark has not passed, if any.
    pub fn first_unstable_offset(&self) -> Option<u64> {
        Some(self.first_unstable.load(Ordering::Acquire)).filter(|&o| o != u64::MAX)
    }

    /// The open transactions: first offset and producer id, by first offset.
    pub fn ongoing_transactions(&self) -> Vec<(u64, i64)> {
        self.txns.lock().ongoing().collect()
    }

    /// The aborted transactions a read of `[start_offset, upper_bound_offset)`
    /// overlaps (Kafka's `collectAbortedTransactions`): from the transaction
    /// index of the segment holding `start_offset` onward, those whose
    /// marker is at or after `start_offset` and whose first offset is below
    /// `upper_bound_offset`, stopping once an entry's last stable offset
    /// reaches the bound (no later entry can start below it).
    pub fn aborted_transactions(&self, start_offset: u64, upper_bound_offset: u64) -> Result<Vec<AbortedTxn>> {
        let segments: Vec<_> = {
            let map = self.segments.read();
            let from = map.range(..=start_offset).next_back().map_or(0, |(b, _)| *b);
            map.range(from..).map(|(_, s)| s.clone()).collect()
        };
        let mut found = Vec::new();
        for segment in segments {
            let entries = segment.txn_index().read().context(|| {
                format!(
                    "reading the transaction index of segment {} in {}",
                    segment.base_offset(),
                    self.dir.display()
                )
            })?;
            for entry in entries {
                if entry.last_offset >= start_offset && entry.first_offset < upper_bound_offset {
                    found.push(entry);
                }
                if entry.last_stable_offset >= upper_bound_offset {
                    return Ok(found);
                }
            }
        }
        Ok(found)
    }

    /// Publishes the first unstable offset of `txns` (held locked).
    pub(super) fn publish_first_unstable(&self, txns: &Transactions) {
        let first = txns.first_unstable_offset().unwrap_or(u64::MAX);
        self.first_unstable.store(first, Ordering::Release);
    }
}
