//! The log's idempotent-producer state on disk: `<offset>.snapshot` files
//! (Kafka's format, written on roll and on close) and the rebuild on open
//! from the newest usable snapshot plus the batches after it.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tracing::{info, warn};

use super::{AppendState, Log};
use crate::error::{IoContext, Result};
use crate::file_names::file_name;
use crate::producer_state::{ProducerStates, Transactions, TxnEvent};
use crate::segment::Segment;
use crate::txn_index::AbortedTxn;

/// Snapshots kept besides the newest: older ones help rebuild after a
/// truncation below the newest.
const SNAPSHOTS_KEPT: usize = 3;

fn snapshot_path(dir: &Path, offset: u64) -> PathBuf {
    dir.join(file_name(offset, ".snapshot"))
}

/// Offsets of the snapshot files in `dir`, ascending.
fn snapshot_offsets(dir: &Path) -> Result<Vec<u64>> {
    let mut offsets = Vec::new();
    for entry in fs::read_dir(dir).context(|| format!("listing {}", dir.display()))? {
        let entry = entry.context(|| format!("listing {}", dir.display()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(offset) = name.strip_suffix(".snapshot").and_then(|s| s.parse().ok()) {
            offsets.push(offset);
        }
    }
    offsets.sort_unstable();
    Ok(offsets)
}

fn remove(path: &Path) -> Result<()> {
    match crate::disk_io::remove_file(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        other => other.context(|| format!("removing {}", path.display())),
    }
}

/// The producer state and transactions a log is opened (or truncated) with.
pub(super) struct LoadedState {
    pub(super) producers: ProducerStates,
    pub(super) txns: Transactions,
}

/// Rebuilds the producer state and the transactions of a log being opened
/// or truncated, as if its batches had been appended again: the newest
/// snapshot at or below `replay_from` that reads back (snapshots above
/// `end` are removed, unreadable ones too), then every batch from its
/// offset (or `log_start`) to `end`. The caller passes a `replay_from` no
/// higher than its high watermark, so every transaction whose marker the
/// high watermark has not passed is replayed (a snapshot keeps only open
/// ones). With `rebuild_txn_index_from`, the transaction indexes of the
/// segments from that base offset on are written again from the replay
/// (recovery: a crash can leave them short or long).
pub(super) fn load(
    dir: &Path,
    segments: &[Arc<Segment>],
    log_start: u64,
    end: u64,
    replay_from: u64,
    rebuild_txn_index_from: Option<u64>,
    now_ms: i64,
) -> Result<LoadedState> {
    let limit = rebuild_txn_index_from
        .map_or(replay_from, |b| b.min(replay_from))
        .min(end);
    let mut state = ProducerStates::new();
    let mut from = log_start;
    for offset in snapshot_offsets(dir)?.into_iter().rev() {
        let path = snapshot_path(dir, offset);
        if offset > end {
            remove(&path)?;
            continue;
        }
        if offset > limit {
            continue;
        }
        let bytes = fs::read(&path).context(|| format!("reading {}", path.display()))?;
        match ProducerStates::decode_snapshot(&bytes, now_ms) {
            Ok(loaded) => {
                state = loaded;
                from = offset.max(log_start);
                break;
            }
            Err(e) => {
                warn!(file = %path.display(), "ignoring a producer snapshot: {e}");
                remove(&path)?;
            }
        }
    }
    state.retain_from(log_start);
    let mut txns = Transactions::of_producers(&state);
    let mut scanned = 0usize;
    let nexts: Vec<u64> = segments
        .iter()
        .skip(1)
        .map(|s| s.base_offset())
        .chain(Some(end))
        .collect();
    for (segment, next_base) in segments.iter().zip(nexts) {
        let rebuild = rebuild_txn_index_from.is_some_and(|b| segment.base_offset() >= b);
        let index_context = || {
            format!(
                "rebuilding the transaction index of segment {} in {}",
                segment.base_offset(),
                dir.display()
            )
        };
        if rebuild {
            segment.txn_index().delete().context(index_context)?;
        }
        if next_base <= from {
            continue;
        }
        let batches = segment.batches_from(from).context(|| {
            format!(
                "reading batch headers of segment {} in {}",
                segment.base_offset(),
                dir.display()
            )
        })?;
        let mut aborted = Vec::new();
        for (header, marker) in batches
            .iter()
            .filter(|(h, _)| h.base_offset >= from && h.base_offset < end)
        {
            scanned += 1;
            let Some(event) = state.record(header, *marker, now_ms) else {
                continue;
            };
            let lso = txns.apply(event);
            if let (TxnEvent::Ended(txn), Some(last_stable_offset), true) = (event, lso, rebuild) {
                if txn.aborted {
                    aborted.push(AbortedTxn {
                        producer_id: txn.producer_id,
                        first_offset: txn.first_offset,
                        last_offset: txn.last_offset,
                        last_stable_offset,
                    });
                }
            }
        }
        segment.txn_index().append(&aborted).context(index_context)?;
    }
    txns.on_high_watermark(log_start);
    if scanned > 0 || !state.is_empty() {
        info!(dir = %dir.display(), producers = state.len(), batches_scanned = scanned, "loaded producer state");
    }
    Ok(LoadedState { producers: state, txns })
}

impl Log {
    /// Saves the producer state as `<offset>.snapshot` (written aside and
    /// renamed; synced by the next flush — a snapshot a crash left
    /// incomplete fails its CRC and the previous one is used) and prunes
    /// old snapshots. Holds the append lock.
    pub(super) fn write_producer_snapshot(&self, state: &AppendState, offset: u64) -> Result<()> {
        let path = snapshot_path(&self.dir, offset);
        let bytes = state.producers.encode_snapshot();
        crate::disk_io::write_aside(&path, &bytes).context(|| "writing a producer snapshot".to_string())?;
        self.unsynced_files.lock().push(path.clone());
        let offsets = snapshot_offsets(&self.dir)?;
        let log_start = self.log_start_offset();
        let newest = offsets.last().copied().unwrap_or(offset);
        for (i, &old) in offsets.iter().enumerate() {
            let surplus = i + SNAPSHOTS_KEPT < offsets.len();
            if old != newest && (surplus || old < log_start) {
                remove(&snapshot_path(&self.dir, old))?;
            }
        }
        Ok(())
    }

    /// Removes snapshots above `offset` (the log was truncated there).
    pub(super) fn remove_snapshots_after(&self, offset: u64) -> Result<()> {
        for old in snapshot_offsets(&self.dir)? {
            if old > offset {
                remove(&snapshot_path(&self.dir, old))?;
            }
        }
        Ok(())
    }

    /// Removes every snapshot (the log starts again empty).
    pub(super) fn remove_snapshots_from_start(&self) -> Result<()> {
        for old in snapshot_offsets(&self.dir)? {
            remove(&snapshot_path(&self.dir, old))?;
        }
        Ok(())
    }

    /// Forgets idempotent producers silent for `producer.id.expiration.ms`;
    /// returns how many went. A later batch of theirs is taken at any
    /// sequence, as Kafka does. Verifications started as long ago and
    /// never followed by an append are forgotten too.
    pub fn expire_producers(&self) -> usize {
        let expiration = self.config().producer_id_expiration_ms;
        let now = self.clock.now_ms();
        let mut state = self.append_lock.lock();
        state.verifications.expire(now, expiration);
        state.producers.expire(now, expiration)
    }

    /// Starts verifying the transaction `producer_id` (at `producer_epoch`,
    /// its batch at `sequence`, −1 for none) would open here (KIP-890):
    /// the guard to append with once the transaction coordinator confirms
    /// the partition is in the producer's ongoing transaction, or `None`
    /// when the producer's transaction of this epoch is open in this log
    /// already (no verification needed; an append then checks again, so a
    /// marker in between is caught).
    pub fn start_txn_verification(
        &self,
        producer_id: i64,
        producer_epoch: i16,
        sequence: i32,
    ) -> Option<crate::VerificationGuard> {
        let now = self.clock.now_ms();
        let mut state = self.append_lock.lock();
        let open = state.producers.has_ongoing_transaction(producer_id, producer_epoch);
        (!open).then(|| state.verifications.start(producer_id, producer_epoch, sequence, now))
    }

    /// A copy of every producer's state (epochs, sequences, coordinator
    /// epochs, open transactions): what DescribeProducers lists.
    pub fn producer_states(&self) -> ProducerStates {
        self.append_lock.lock().producers.clone()
    }
}
