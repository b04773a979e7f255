//! One cleaning pass over one log: what is cleanable, the offset map over
//! the dirty section, and the rewrite of every cleanable segment.

use std::collections::HashMap;
use std::os::unix::fs::FileExt;

use gregor_log::batch::{rebuild_with_records, record_section, BatchHeader, Records, BATCH_HEADER_SIZE};
use gregor_log::{FileRegion, Log, SegmentInfo};
use tracing::{info, warn};

use crate::error::{CompactorError, Result};
use crate::offset_map::OffsetMap;
use crate::throttle::Throttler;

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
    /// Records removed (superseded values and expired tombstones).
    pub records_removed: u64,
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
/// record, and dropping tombstones that have been clean for
/// `delete.retention.ms`. Offsets are kept; the active segment is never
/// touched. Compressed batches are decompressed, filtered and compressed
/// again with their codec.
///
/// Transactions (KIP-98): control batches (markers) are kept as they are
/// and never enter the map; records of aborted transactions never enter
/// the map either (they must not supersede a committed value) and are
/// dropped; the rewritten segments keep their transaction index entries.
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

    let aborted = AbortedRanges::of(log, target.first_uncleanable)?;

    // 1. The offset map over the dirty section.
    map.clear();
    let mut map_end = target.first_uncleanable;
    'build: for s in segments
        .iter()
        .filter(|s| s.end_offset > target.first_dirty && s.base_offset < target.first_uncleanable)
    {
        let region = log.segment_region(s.base_offset).ok_or_else(|| gone(s))?;
        let mut full_at = None;
        for_each_batch(&region, s.base_offset, throttler, |batch, header| {
            if full_at.is_some() || header.is_control() || aborted.contains(&header) {
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
    let delete_horizon = now_ms.saturating_sub(config.delete_retention_ms);
    let candidates: Vec<&SegmentInfo> = segments[..segments.len() - 1]
        .iter()
        .filter(|s| s.base_offset < map_end)
        .collect();
    for group in group_segments(
        &candidates,
        u64::from(config.segment_bytes),
        config.segment_index_bytes as usize / 8,
    ) {
        let bases: Vec<u64> = group.iter().map(|s| s.base_offset).collect();
        let mut rewrite = log.begin_rewrite(&bases)?;
        let mut last_dropped: Option<Vec<u8>> = None;
        for s in &group {
            let was_clean = s.end_offset <= target.first_dirty;
            let tombstones_expire = was_clean && s.last_modified_ms < delete_horizon;
            let region = log.segment_region(s.base_offset).ok_or_else(|| gone(s))?;
            let mut failure = None;
            for_each_batch(&region, s.base_offset, throttler, |batch, header| {
                if failure.is_some() {
                    return;
                }
                stats.bytes_read += batch.len() as u64;
                let discard = aborted.contains(&header);
                let kept = match readable_section(batch, &header) {
                    _ if header.is_control() => Ok(Some(batch.to_vec())),
                    None => Ok(Some(batch.to_vec())),
                    Some(section) => {
                        let records: Vec<_> = Records::from_section(&section, header.record_count).flatten().collect();
                        stats.records_read += records.len() as u64;
                        let retained: Vec<_> = records
                            .iter()
                            .filter(|r| {
                                let offset = header.base_offset + r.offset_delta as u64;
                                let superseded = r.key.and_then(|k| map.get(k)).is_some_and(|latest| offset < latest);
                                let expired_tombstone = r.value.is_none() && tombstones_expire;
                                !(discard || superseded || expired_tombstone)
                            })
                            .cloned()
                            .collect();
                        stats.records_removed += (records.len() - retained.len()) as u64;
                        if retained.len() == records.len() {
                            Ok(Some(batch.to_vec()))
                        } else if retained.is_empty() {
                            rebuild_with_records(batch, &header, &[]).map(|empty| {
                                last_dropped = Some(empty);
                                None
                            })
                        } else {
                            rebuild_with_records(batch, &header, &retained).map(Some)
                        }
                    }
                };
                let kept = match kept {
                    Ok(kept) => kept,
                    Err(e) => {
                        // Compressing again failed: keep the batch as it was.
                        warn!(base_offset = header.base_offset, error = %e, "batch kept uncleaned");
                        Some(batch.to_vec())
                    }
                };
                if let Some(bytes) = kept {
                    stats.bytes_written += bytes.len() as u64;
                    throttler.account(bytes.len() as u64);
                    if let Err(e) = rewrite.append(&bytes) {
                        failure = Some(e);
                    }
                }
            })?;
            if let Some(e) = failure {
                return Err(e.into());
            }
        }
        if rewrite.size() == 0 {
            // Keep the group's offset range spoken for: an empty batch with
            // the last batch's offsets (as Kafka keeps one).
            if let Some(empty) = last_dropped {
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
        ratio = format!("{:.2}", stats.bytes_written as f64 / stats.bytes_read.max(1) as f64),
        "cleaned log"
    );
    Ok(stats)
}

/// The offset ranges of the aborted transactions below `upper_bound`, by
/// producer: a transactional data batch starting inside one of its
/// producer's ranges belongs to an aborted transaction.
struct AbortedRanges(HashMap<i64, Vec<(u64, u64)>>);

impl AbortedRanges {
    fn of(log: &Log, upper_bound: u64) -> Result<Self> {
        let mut ranges: HashMap<i64, Vec<(u64, u64)>> = HashMap::new();
        for txn in log.aborted_transactions(log.log_start_offset(), upper_bound)? {
            ranges
                .entry(txn.producer_id)
                .or_default()
                .push((txn.first_offset, txn.last_offset));
        }
        Ok(Self(ranges))
    }

    fn contains(&self, header: &BatchHeader) -> bool {
        header.is_transactional()
            && !header.is_control()
            && self.0.get(&header.producer_id).is_some_and(|ranges| {
                ranges
                    .iter()
                    .any(|(first, marker)| (*first..*marker).contains(&header.base_offset))
            })
    }
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
