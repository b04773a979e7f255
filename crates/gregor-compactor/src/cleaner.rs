//! One cleaning pass over one log: what is cleanable, the offset map over
//! the dirty section, and the rewrite of every cleanable segment.

use std::os::unix::fs::FileExt;

use gregor_log::batch::{
    rebuild_with_delete_horizon, rebuild_with_records, record_section, BatchError, BatchHeader, EndTransactionMarker,
    Records, BATCH_HEADER_SIZE,
};
use gregor_log::{AbortedTxn, FileRegion, Log, SegmentInfo};
use tracing::{info, warn};

use crate::error::{CompactorError, Result};
use crate::offset_map::OffsetMap;
use crate::throttle::Throttler;
use crate::transactions::{ProducerTails, TransactionWalk};

/// The part of a log a pass may clean, and how dirty it is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cleanable {
    /// First offset not yet cleaned.
    pub first_dirty: u64,
    /// First offset that may not be cleaned yet (active segment, high
    /// watermark, first unstable offset, `min.compaction.lag.ms`).
    pub first_uncleanable: u64,
    /// Bytes of the segments already cleaned.
    pub clean_bytes: u64,
    /// Bytes of the segments to clean.
    pub dirty_bytes: u64,
    /// A dirty record is older than `max.compaction.lag.ms`.
    pub overdue: bool,
}

impl Cleanable {
    /// `dirty / (clean + dirty)`.
    pub fn dirty_ratio(&self) -> f64 {
        let total = self.clean_bytes + self.dirty_bytes;
        if total == 0 {
            0.0
        } else {
            self.dirty_bytes as f64 / total as f64
        }
    }
}

/// What a pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CleanStats {
    /// Where the dirty section started.
    pub first_dirty: u64,
    /// Everything below this is clean now (the new checkpoint).
    pub cleaned_up_to: u64,
    /// Bytes read from the old segments.
    pub bytes_read: u64,
    /// Bytes written to the new ones.
    pub bytes_written: u64,
    /// Records read.
    pub records_read: u64,
    /// Records removed (superseded values, expired tombstones, records of
    /// aborted transactions).
    pub records_removed: u64,
    /// Transaction markers (control batches) removed.
    pub markers_removed: u64,
    /// Segments replaced.
    pub segments_replaced: usize,
}

/// Finds what of `log` is cleanable, given its cleaner checkpoint.
pub fn cleanable(log: &Log, checkpoint: u64, now_ms: i64) -> Result<Option<Cleanable>> {
    let config = log.config();
    let segments = log.segments();
    let Some(active) = segments.last() else { return Ok(None) };
    let first_dirty = checkpoint.max(log.log_start_offset());
    let high_watermark = log.high_watermark();
    // Records of a transaction not yet decided (or not yet replicated) may
    // still be aborted: nothing from it on is cleaned.
    let first_unstable = log.first_unstable_offset().unwrap_or(u64::MAX);
    let lag = config.min_compaction_lag_ms;
    let first_uncleanable = segments[..segments.len() - 1]
        .iter()
        .find(|s| {
            s.end_offset > high_watermark
                || s.end_offset > first_unstable
                || (lag > 0 && s.largest_timestamp > now_ms - lag)
        })
        .map_or(active.base_offset, |s| s.base_offset);
    if first_dirty >= first_uncleanable {
        return Ok(None);
    }
    let (mut clean_bytes, mut dirty_bytes) = (0, 0);
    for s in &segments {
        if s.end_offset <= first_dirty {
            clean_bytes += s.size;
        } else if s.base_offset < first_uncleanable {
            dirty_bytes += s.size;
        }
    }
    let overdue = config.max_compaction_lag_ms < i64::MAX
        && first_batch_timestamp(log, first_dirty)?.is_some_and(|ts| now_ms - ts > config.max_compaction_lag_ms);
    Ok(Some(Cleanable {
        first_dirty,
        first_uncleanable,
        clean_bytes,
        dirty_bytes,
        overdue,
    }))
}

fn first_batch_timestamp(log: &Log, offset: u64) -> Result<Option<i64>> {
    let read = log.read(offset, BATCH_HEADER_SIZE as u64)?;
    let Some(region) = read.region else { return Ok(None) };
    let mut head = [0u8; BATCH_HEADER_SIZE];
    region
        .file()
        .read_exact_at(&mut head, region.position())
        .map_err(|source| CompactorError::Read {
            base_offset: offset,
            source,
        })?;
    Ok(BatchHeader::parse(&head).ok().map(|h| h.max_timestamp))
}

/// Cleans `log` once: builds the offset map over `[first_dirty,
/// first_uncleanable)` (stopping early if the map fills), then rewrites
/// every segment below the map's end keeping, per key, only the latest
/// record, and dropping tombstones once their delete horizon has passed.
/// Offsets are kept; the active segment is never touched. Compressed
/// batches are decompressed, filtered and compressed again with their
/// codec.
///
/// Transactions (KIP-98), as Kafka's cleaner: records of aborted
/// transactions never enter the map (they must not supersede a committed
/// value) and are dropped. A COMMIT or ABORT marker is removed once a pass
/// reads no batch of its transaction and its delete horizon has passed
/// (the same rule as tombstones); an ABORT marker's
/// `.txnindex` entry stays only while a batch of its transaction does.
/// Each producer's last batch with a sequence (emptied if need be) and its
/// last marker are kept, so that producer state rebuilt from the log is
/// what it was.
///
/// The delete horizon (Kafka's KIP-534): the first pass that keeps a batch
/// holding tombstones, or a marker with no batch of its transaction left
/// (and not its producer's last), stamps `now_ms + delete.retention.ms`
/// into it ([`BatchHeader::delete_horizon_ms`]); a pass at or after that
/// time removes them. It travels with the batch, so rewriting a segment does not
/// push it back. A batch without one (written before gregor stamped
/// horizons) uses the old rule for the pass that stamps it: it may go once
/// its segment has been clean, unmodified, for `delete.retention.ms`.
pub fn clean_log(
    log: &Log,
    target: Cleanable,
    map: &mut OffsetMap,
    throttler: &Throttler,
    now_ms: i64,
) -> Result<CleanStats> {
    let config = log.config();
    let segments = log.segments();
    let mut stats = CleanStats {
        first_dirty: target.first_dirty,
        ..Default::default()
    };

    // 1. The offset map over the dirty section.
    map.clear();
    let mut map_end = target.first_uncleanable;
    let dirty: Vec<&SegmentInfo> = segments
        .iter()
        .filter(|s| s.end_offset > target.first_dirty && s.base_offset < target.first_uncleanable)
        .collect();
    let mut txns = match dirty.first() {
        Some(first) => TransactionWalk::new(log.aborted_transactions(first.base_offset, target.first_uncleanable)?),
        None => TransactionWalk::default(),
    };
    'build: for s in dirty {
        let region = log.segment_region(s.base_offset).ok_or_else(|| gone(s))?;
        let mut full_at = None;
        for_each_batch(&region, s.base_offset, throttler, |batch, header| {
            if full_at.is_some() {
                return;
            }
            if header.is_control() {
                txns.on_control_batch(&header, EndTransactionMarker::of_batch(batch, &header).ok().flatten());
                return;
            }
            if txns.on_data_batch(&header) {
                return;
            }
            let Some(section) = readable_section(batch, &header) else {
                return;
            };
            for record in Records::from_section(&section, header.record_count).flatten() {
                let offset = header.base_offset + record.offset_delta as u64;
                if offset < target.first_dirty || offset >= target.first_uncleanable {
                    continue;
                }
                if let Some(key) = record.key {
                    if !map.put(key, offset) {
                        full_at = Some(offset);
                        return;
                    }
                }
            }
        })?;
        if let Some(offset) = full_at {
            map_end = offset;
            break 'build;
        }
    }
    stats.cleaned_up_to = map_end;

    // 2. Rewrite every segment below the map's end, in groups.
    let legacy_horizon = now_ms.saturating_sub(config.delete_retention_ms);
    let candidates: Vec<&SegmentInfo> = segments[..segments.len() - 1]
        .iter()
        .filter(|s| s.base_offset < map_end)
        .collect();
    let mut pass = match (candidates.first(), candidates.last()) {
        (Some(first), Some(last)) => BatchCleaner {
            map: &*map,
            txns: TransactionWalk::new(log.aborted_transactions(first.base_offset, last.end_offset)?),
            tails: ProducerTails::of(&log.producer_states(), markers_of(log, &candidates)?),
            now_ms,
            new_horizon: now_ms.saturating_add(config.delete_retention_ms),
        },
        _ => BatchCleaner {
            map: &*map,
            txns: TransactionWalk::default(),
            tails: ProducerTails::default(),
            now_ms,
            new_horizon: now_ms.saturating_add(config.delete_retention_ms),
        },
    };
    for group in group_segments(
        &candidates,
        u64::from(config.segment_bytes),
        config.segment_index_bytes as usize / 8,
    ) {
        let bases: Vec<u64> = group.iter().map(|s| s.base_offset).collect();
        let mut rewrite = log.begin_rewrite(&bases)?;
        let mut last_removed: Option<Vec<u8>> = None;
        for s in &group {
            // Batches without a delete horizon: tombstones and removable
            // markers go once their segment has been clean for
            // delete.retention.ms (a cleaned segment's time is when it was
            // written).
            let legacy_expired = s.end_offset <= target.first_dirty && s.last_modified_ms < legacy_horizon;
            let region = log.segment_region(s.base_offset).ok_or_else(|| gone(s))?;
            let mut failure = None;
            for_each_batch(&region, s.base_offset, throttler, |batch, header| {
                if failure.is_some() {
                    return;
                }
                stats.bytes_read += batch.len() as u64;
                let (bytes, index_entry) = match pass.clean(batch, &header, legacy_expired, &mut stats) {
                    Ok(Cleaned::Kept(bytes, index_entry)) => (bytes, index_entry),
                    Ok(Cleaned::Removed(empty)) => {
                        last_removed = Some(empty);
                        return;
                    }
                    Err(e) => {
                        // Compressing again failed: keep the batch as it was.
                        warn!(base_offset = header.base_offset, error = %e, "batch kept uncleaned");
                        (batch.to_vec(), None)
                    }
                };
                stats.bytes_written += bytes.len() as u64;
                throttler.account(bytes.len() as u64);
                let appended = rewrite
                    .append(&bytes)
                    .and_then(|()| index_entry.map_or(Ok(()), |txn| rewrite.append_aborted(txn)));
                if let Err(e) = appended {
                    failure = Some(e);
                }
            })?;
            if let Some(e) = failure {
                return Err(e.into());
            }
        }
        if rewrite.size() == 0 {
            // Keep the group's offset range spoken for: an empty batch with
            // the last batch's offsets (as Kafka keeps one).
            if let Some(empty) = last_removed {
                rewrite.append(&empty)?;
            }
        }
        log.commit_rewrite(rewrite)?;
        stats.segments_replaced += group.len();
    }
    info!(
        dir = %log.dir().display(),
        read = stats.bytes_read,
        written = stats.bytes_written,
        removed = stats.records_removed,
        markers_removed = stats.markers_removed,
        ratio = format!("{:.2}", stats.bytes_written as f64 / stats.bytes_read.max(1) as f64),
        "cleaned log"
    );
    Ok(stats)
}

/// What becomes of one batch.
enum Cleaned {
    /// Written as these bytes; for an ABORT marker kept with its
    /// transaction's batches, its transaction index entry.
    Kept(Vec<u8>, Option<AbortedTxn>),
    /// Removed; its empty form keeps a group's offsets if nothing else does.
    Removed(Vec<u8>),
}

/// The rules of one pass, applied batch by batch in log order.
struct BatchCleaner<'a> {
    map: &'a OffsetMap,
    txns: TransactionWalk,
    tails: ProducerTails,
    /// The pass's time.
    now_ms: i64,
    /// The delete horizon stamped into batches kept with tombstones or a
    /// removable marker for the first time.
    new_horizon: i64,
}

impl BatchCleaner<'_> {
    /// Cleans one batch of a segment whose tombstones and removable markers
    /// may go, if the batch has no delete horizon, when `legacy_expired`.
    fn clean(
        &mut self,
        batch: &[u8],
        header: &BatchHeader,
        legacy_expired: bool,
        stats: &mut CleanStats,
    ) -> std::result::Result<Cleaned, BatchError> {
        let deletes_expire = header
            .delete_horizon_ms()
            .map_or(legacy_expired, |horizon| self.now_ms >= horizon);
        if header.is_control() {
            // An unreadable control batch counts as one of unknown type: kept.
            let marker = EndTransactionMarker::of_batch(batch, header).unwrap_or(None);
            let fate = self.txns.on_control_batch(header, marker);
            // A producer's last marker stays for its state: its horizon
            // starts once it no longer holds it.
            let removable = !fate.has_data && !self.tails.holds(header);
            if removable && deletes_expire {
                stats.markers_removed += 1;
                return rebuild_with_records(batch, header, &[]).map(Cleaned::Removed);
            }
            if removable && header.delete_horizon_ms().is_none() {
                // Its removal starts counting now.
                if let Some(stamped) = self.stamp_marker(batch, header) {
                    return Ok(Cleaned::Kept(stamped, fate.index_entry));
                }
            }
            return Ok(Cleaned::Kept(batch.to_vec(), fate.index_entry));
        }
        let aborted = self.txns.on_data_batch(header);
        let Some(section) = readable_section(batch, header) else {
            return Ok(Cleaned::Kept(batch.to_vec(), None));
        };
        let records: Vec<_> = Records::from_section(&section, header.record_count).flatten().collect();
        stats.records_read += records.len() as u64;
        let retained: Vec<_> = records
            .iter()
            .filter(|r| {
                let offset = header.base_offset + r.offset_delta as u64;
                let superseded = r
                    .key
                    .and_then(|k| self.map.get(k))
                    .is_some_and(|latest| offset < latest);
                let expired_tombstone = r.value.is_none() && deletes_expire;
                !(aborted || superseded || expired_tombstone)
            })
            .cloned()
            .collect();
        stats.records_removed += (records.len() - retained.len()) as u64;
        if retained.is_empty() {
            let empty = if records.is_empty() {
                batch.to_vec()
            } else {
                rebuild_with_records(batch, header, &[])?
            };
            // A producer's last batch stays, empty, for its sequence.
            return Ok(if self.tails.holds(header) {
                Cleaned::Kept(empty, None)
            } else {
                Cleaned::Removed(empty)
            });
        }
        // Tombstones kept for the first time: their removal starts counting now.
        if header.delete_horizon_ms().is_none() && retained.iter().any(|r| r.value.is_none()) {
            match rebuild_with_delete_horizon(batch, header, &retained, self.new_horizon) {
                Ok(stamped) => return Ok(Cleaned::Kept(stamped, None)),
                Err(e) => {
                    warn!(base_offset = header.base_offset, error = %e, "tombstones kept without a delete horizon")
                }
            }
        }
        if retained.len() == records.len() {
            return Ok(Cleaned::Kept(batch.to_vec(), None));
        }
        rebuild_with_records(batch, header, &retained).map(|b| Cleaned::Kept(b, None))
    }

    /// A control batch with the pass's delete horizon stamped in, or `None`
    /// (it is then kept as it is) if its records cannot all be read.
    fn stamp_marker(&self, batch: &[u8], header: &BatchHeader) -> Option<Vec<u8>> {
        let section = readable_section(batch, header)?;
        let records: Vec<_> = Records::from_section(&section, header.record_count)
            .collect::<std::result::Result<_, _>>()
            .ok()?;
        if records.len() != header.record_count as usize {
            return None;
        }
        rebuild_with_delete_horizon(batch, header, &records, self.new_horizon)
            .inspect_err(
                |e| warn!(base_offset = header.base_offset, error = %e, "marker kept without a delete horizon"),
            )
            .ok()
    }
}

/// The transaction markers of `segments`, in log order.
fn markers_of(log: &Log, segments: &[&SegmentInfo]) -> Result<Vec<(BatchHeader, EndTransactionMarker)>> {
    let mut markers = Vec::new();
    for s in segments {
        markers.extend(log.segment_markers(s.base_offset)?);
    }
    Ok(markers)
}

/// The records of a batch, decompressed if need be; `None` (with a warning)
/// for a compressed batch that cannot be read, which is then kept as it is.
fn readable_section<'a>(batch: &'a [u8], header: &BatchHeader) -> Option<std::borrow::Cow<'a, [u8]>> {
    record_section(batch, header)
        .inspect_err(|e| warn!(base_offset = header.base_offset, error = %e, "batch kept uncleaned"))
        .ok()
}

fn gone(s: &SegmentInfo) -> CompactorError {
    CompactorError::Log(gregor_log::LogError::Partition(format!(
        "segment {} disappeared while being cleaned",
        s.base_offset
    )))
}

/// Groups consecutive segments so that each group fits one segment.
fn group_segments<'a>(
    segments: &[&'a SegmentInfo],
    max_bytes: u64,
    max_index_entries: usize,
) -> Vec<Vec<&'a SegmentInfo>> {
    let mut groups: Vec<Vec<&SegmentInfo>> = Vec::new();
    let (mut bytes, mut entries) = (0u64, 0usize);
    for s in segments {
        let fits = groups.last().is_some_and(|g| {
            let span = s.end_offset - g[0].base_offset;
            bytes + s.size <= max_bytes && entries + s.index_entries < max_index_entries && span <= u64::from(u32::MAX)
        });
        if fits {
            if let Some(g) = groups.last_mut() {
                g.push(s);
            }
            bytes += s.size;
            entries += s.index_entries;
        } else {
            groups.push(vec![s]);
            bytes = s.size;
            entries = s.index_entries;
        }
    }
    groups
}

/// Calls `f` with every whole batch of a segment file, reading it in
/// windows of at least 1 MiB.
fn for_each_batch(
    region: &FileRegion,
    base_offset: u64,
    throttler: &Throttler,
    mut f: impl FnMut(&[u8], BatchHeader),
) -> Result<()> {
    const WINDOW: usize = 1 << 20;
    let len = region.len();
    let mut buf = Vec::new();
    let mut position = 0u64;
    while position < len {
        let want = (len - position).min(WINDOW.max(buf.capacity()) as u64) as usize;
        buf.resize(want, 0);
        region
            .file()
            .read_exact_at(&mut buf, region.position() + position)
            .map_err(|source| CompactorError::Read { base_offset, source })?;
        throttler.account(want as u64);
        let mut used = 0;
        while let Ok(header) = BatchHeader::parse(&buf[used..]) {
            let size = header.total_size();
            if used + size > buf.len() {
                break;
            }
            f(&buf[used..used + size], header);
            used += size;
        }
        if used == 0 {
            // A batch larger than the window: read it whole next time.
            let Ok(header) = BatchHeader::parse(&buf) else { break };
            if header.total_size() as u64 > len - position {
                break;
            }
            buf.reserve(header.total_size());
            buf.resize(header.total_size(), 0);
            region
                .file()
                .read_exact_at(&mut buf, region.position() + position)
                .map_err(|source| CompactorError::Read { base_offset, source })?;
            f(&buf, header);
            used = header.total_size();
        }
        position += used as u64;
    }
    Ok(())
}
