//! Replacing a run of old segments with rewritten ones (the log cleaner's
//! output), so that a crash at any point leaves a consistent log.
//!
//! The new segment is written as `<base>.{log,index,timeindex,txnindex}.cleaned`
//! (the transaction index holds the entries the cleaner hands over with
//! [`SegmentRewrite::append_aborted`]: those of the ABORT markers it kept
//! whose transaction still had records), flushed, renamed to `.swap`; then, under the append lock, the old
//! segments are renamed to `.deleted` and the swap files to their live
//! names, and the `.deleted` files removed. On open, `.cleaned` files are
//! dropped (the swap never started) and `.swap` files complete the swap
//! (they replace whatever live segments their offsets cover).

use std::sync::Arc;

use super::Log;
use crate::batch::{validate_batch_integrity, BatchHeader, EndTransactionMarker};
use crate::error::{IoContext, LogError, Result};
use crate::region::FileRegion;
use crate::segment::Segment;
use crate::txn_index::AbortedTxn;

/// A segment being written to replace `replaced` (see [`Log::begin_rewrite`]).
pub struct SegmentRewrite {
    segment: Segment,
    replaced: Vec<u64>,
    next_offset: u64,
    index_interval: u32,
    aborted: Vec<AbortedTxn>,
}

impl SegmentRewrite {
    /// Appends one batch, which keeps its offsets: they must increase and
    /// stay within the replaced segments.
    pub fn append(&mut self, batch: &[u8]) -> Result<()> {
        let header =
            validate_batch_integrity(batch).map_err(|source| LogError::CorruptBatch { position: 0, source })?;
        if header.base_offset < self.next_offset
            || header.last_offset() - self.segment.base_offset() > u64::from(u32::MAX)
        {
            return Err(LogError::OffsetsOutOfOrder {
                offset: header.base_offset,
                log_end: self.next_offset,
            });
        }
        let batch = &batch[..header.total_size()];
        self.segment
            .append(&[batch], &[(0, header)], self.index_interval)
            .context(|| "writing a rewritten segment".to_string())?;
        self.next_offset = header.next_offset();
        Ok(())
    }

    /// Adds an entry to the new segment's transaction index: the aborted
    /// transaction whose ABORT marker (at `txn.last_offset`) was the last
    /// batch appended. Entries come in marker order, as in the index.
    pub fn append_aborted(&mut self, txn: AbortedTxn) -> Result<()> {
        let after_previous = self.aborted.last().is_none_or(|p| txn.last_offset > p.last_offset);
        if !after_previous || txn.last_offset < self.segment.base_offset() || txn.last_offset >= self.next_offset {
            return Err(LogError::Partition(format!(
                "aborted transaction {txn:?} does not end at a marker of the rewrite of segment {} (next offset {})",
                self.segment.base_offset(),
                self.next_offset
            )));
        }
        self.aborted.push(txn);
        Ok(())
    }

    /// Bytes written so far.
    pub fn size(&self) -> u64 {
        self.segment.size()
    }

    /// Base offsets of the segments this one replaces.
    pub fn replaced(&self) -> &[u64] {
        &self.replaced
    }
}

impl Log {
    /// The whole file of the segment starting at `base_offset`, for a
    /// cleaner to read.
    pub fn segment_region(&self, base_offset: u64) -> Option<FileRegion> {
        let segment = self.segments.read().get(&base_offset).cloned()?;
        let size = segment.size();
        Some(segment.region(crate::segment::SegmentSlice {
            position: 0,
            len: size,
            first_batch_offset: base_offset,
        }))
    }

    /// The transaction markers of the segment starting at `base_offset`,
    /// with their batch headers, in order (a header walk: only control
    /// batches are read whole). The cleaner uses them to keep each
    /// producer's last marker.
    pub fn segment_markers(&self, base_offset: u64) -> Result<Vec<(BatchHeader, EndTransactionMarker)>> {
        let Some(segment) = self.segments.read().get(&base_offset).cloned() else {
            return Ok(Vec::new());
        };
        let batches = segment
            .batches_from(base_offset)
            .context(|| format!("reading the markers of segment {base_offset} in {}", self.dir.display()))?;
        Ok(batches.into_iter().filter_map(|(h, m)| Some((h, m?))).collect())
    }

    /// Starts the replacement of the consecutive, non-active segments
    /// `replaced` (base offsets, oldest first) by one new segment.
    pub fn begin_rewrite(&self, replaced: &[u64]) -> Result<SegmentRewrite> {
        self.check_writable()?;
        let Some(&base) = replaced.first() else {
            return Err(LogError::Partition("nothing to rewrite".into()));
        };
        let config = self.config();
        let segment = Segment::create_with_suffix(&self.dir, base, &config, self.clock.now_ms(), ".cleaned")
            .context(|| format!("creating a cleaned segment {base} in {}", self.dir.display()))?;
        Ok(SegmentRewrite {
            segment,
            replaced: replaced.to_vec(),
            next_offset: base,
            index_interval: config.index_interval_bytes,
            aborted: Vec::new(),
        })
    }

    /// Swaps the rewritten segment in for the ones it replaces. Fails,
    /// leaving the log as it was, if those segments changed meanwhile
    /// (retention, truncation, or one became active).
    pub fn commit_rewrite(&self, rewrite: SegmentRewrite) -> Result<()> {
        self.check_writable()?;
        let SegmentRewrite {
            segment,
            replaced,
            aborted,
            ..
        } = rewrite;
        let dir = &self.dir;
        let io = |what: &'static str| {
            move |e: std::io::Error| LogError::Io {
                context: format!("{what} in {}", dir.display()),
                source: e,
            }
        };
        segment
            .txn_index()
            .append(&aborted)
            .map_err(io("writing a cleaned segment's transaction index"))?;
        segment.make_inactive().map_err(io("trimming a cleaned segment"))?;
        segment
            .set_last_modified_ms(self.clock.now_ms())
            .map_err(io("stamping a cleaned segment"))?;
        segment.flush().map_err(io("flushing a cleaned segment"))?;
        segment
            .rename_suffix(".swap")
            .map_err(io("renaming a cleaned segment"))?;
        self.sync_dir()?;

        let old: Vec<Arc<Segment>> = {
            let _shape = self.append_lock.lock();
            let mut map = self.segments.write();
            let active = map.keys().next_back().copied();
            let intact = replaced.iter().all(|b| map.contains_key(b) && Some(*b) != active);
            if !intact {
                drop(map);
                let _ = segment.delete_files();
                return Err(LogError::Partition(format!(
                    "segments {replaced:?} of {} changed while being cleaned",
                    self.dir.display()
                )));
            }
            let mut old = Vec::new();
            for b in &replaced {
                // A cleaned segment is durable before it is swapped in: the
                // replaced segments' end markers go with them.
                crate::segment_end::remove(&self.dir, *b).map_err(io("removing a cleaned-up segment's end marker"))?;
                if let Some(s) = map.remove(b) {
                    s.rename_suffix(".deleted")
                        .map_err(io("retiring a cleaned-up segment"))?;
                    old.push(s);
                }
            }
            segment.rename_suffix("").map_err(io("installing a cleaned segment"))?;
            map.insert(segment.base_offset(), Arc::new(segment));
            old
        };
        self.sync_dir()?;
        for s in old {
            s.delete_files()
                .context(|| format!("deleting a replaced segment of {}", self.dir.display()))?;
        }
        Ok(())
    }

    pub(crate) fn sync_dir(&self) -> Result<()> {
        crate::disk_io::sync_dir(&self.dir).context(|| format!("syncing directory {}", self.dir.display()))
    }
}
