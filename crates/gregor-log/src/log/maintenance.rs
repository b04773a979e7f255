//! Shrinking the log: retention, DeleteRecords, truncation.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::{AppendState, Log};
use crate::error::{IoContext, LogError, Result};
use crate::producer_state::{ProducerStates, Transactions};
use crate::segment::Segment;

/// What a retention pass deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetentionOutcome {
    /// Segments deleted.
    pub deleted_segments: usize,
    /// Bytes freed.
    pub deleted_bytes: u64,
    /// Log start offset afterwards.
    pub log_start_offset: u64,
}

impl Log {
    /// Deletes the oldest non-active segments that `retention.ms`,
    /// `retention.bytes` (when `cleanup.policy` includes `delete`) or the
    /// log start offset put out of the log, never past the high watermark
    /// and never the active segment.
    pub fn apply_retention(&self) -> Result<RetentionOutcome> {
        self.check_writable()?;
        let config = self.config();
        let now = self.clock.now_ms();
        let mut shape = self.append_lock.lock();
        let segments: Vec<Arc<Segment>> = self.segments.read().values().cloned().collect();
        let total: u64 = segments.iter().map(|s| s.size()).sum();
        let deletes = config.cleanup_policy.deletes();
        let mut excess = if deletes && config.retention_bytes >= 0 {
            total.saturating_sub(config.retention_bytes as u64)
        } else {
            0
        };
        let high_watermark = self.high_watermark();
        let log_start = self.log_start_offset();
        let mut doomed = Vec::new();
        for pair in segments.windows(2) {
            let (segment, next) = (&pair[0], &pair[1]);
            if next.base_offset() > high_watermark {
                break;
            }
            let below_start = next.base_offset() <= log_start;
            let expired =
                deletes && config.retention_ms >= 0 && now - segment.largest_timestamp() > config.retention_ms;
            let oversized = deletes && config.retention_bytes >= 0 && excess >= segment.size();
            if !(below_start || expired || oversized) {
                break;
            }
            excess = excess.saturating_sub(segment.size());
            doomed.push(segment.clone());
        }
        let mut outcome = RetentionOutcome {
            log_start_offset: log_start,
            ..Default::default()
        };
        if doomed.is_empty() {
            return Ok(outcome);
        }
        {
            let mut map = self.segments.write();
            for segment in &doomed {
                map.remove(&segment.base_offset());
            }
            let first = *map.keys().next().expect("the active segment is never deleted");
            outcome.log_start_offset = log_start.max(first);
        }
        self.advance_log_start(&mut shape, outcome.log_start_offset)?;
        for segment in doomed {
            outcome.deleted_segments += 1;
            outcome.deleted_bytes += segment.size();
            segment
                .delete_files()
                .context(|| format!("deleting segment {} of {}", segment.base_offset(), self.dir.display()))?;
        }
        tracing::info!(dir = %self.dir.display(), segments = outcome.deleted_segments, bytes = outcome.deleted_bytes, "retention deleted segments");
        Ok(outcome)
    }

    /// DeleteRecords: makes `before` the log start offset (records below it
    /// become unreadable) and deletes the segments wholly below it. `before`
    /// may not pass the high watermark. Returns the new log start offset.
    pub fn delete_records(&self, before: u64) -> Result<u64> {
        self.check_writable()?;
        let high_watermark = self.high_watermark();
        if before > high_watermark {
            return Err(LogError::OffsetOutOfRange {
                offset: before,
                log_start: self.log_start_offset(),
                log_end: high_watermark,
            });
        }
        {
            let mut shape = self.append_lock.lock();
            if before > self.log_start_offset() {
                self.advance_log_start(&mut shape, before)?;
            }
        }
        self.apply_retention()?;
        Ok(self.log_start_offset())
    }

    /// Moves the log start offset up: producers whose batches are all gone
    /// are forgotten, as are ended transactions below it.
    fn advance_log_start(&self, shape: &mut AppendState, offset: u64) -> Result<()> {
        shape.producers.retain_from(offset);
        {
            let mut txns = self.txns.lock();
            txns.on_high_watermark(offset);
            self.publish_first_unstable(&txns);
        }
        self.log_start_offset.fetch_max(offset, Ordering::AcqRel);
        self.recovery_point
            .fetch_max(offset.min(self.end_offset()), Ordering::AcqRel);
        self.epoch_cache.lock().truncate_from_start(offset)
    }

    /// Removes every record at or after `offset` (a follower whose log
    /// diverged from its new leader's). The log end becomes `offset`, or the
    /// start of the batch holding it when a batch straddles it.
    pub fn truncate_to(&self, offset: u64) -> Result<()> {
        self.check_writable()?;
        let result = self.truncate_to_locked(offset);
        self.offline_on_io(result)
    }

    fn truncate_to_locked(&self, offset: u64) -> Result<()> {
        let mut shape = self.append_lock.lock();
        if offset >= self.end_offset() {
            return Ok(());
        }
        let first_base = *self.segments.read().keys().next().expect("a log has segments");
        if offset < first_base {
            return self.truncate_fully_locked(&mut shape, offset);
        }
        let config = self.config();
        let removed: Vec<Arc<Segment>> = {
            let mut map = self.segments.write();
            let later: Vec<u64> = map
                .range(offset..)
                .map(|(b, _)| *b)
                .filter(|&b| b > first_base)
                .collect();
            later.into_iter().filter_map(|b| map.remove(&b)).collect()
        };
        for segment in &removed {
            segment
                .delete_files()
                .context(|| format!("deleting segment {}", segment.base_offset()))?;
        }
        let active = self.active_segment();
        let io = || -> std::io::Result<()> {
            // Active again: its end is no longer the one its roll recorded.
            crate::segment_end::remove(&self.dir, active.base_offset())?;
            active.truncate_to(offset)?;
            active.load_tail()?;
            active.make_active(&config)?;
            active.txn_index().truncate_to(active.next_offset())
        };
        io().context(|| format!("truncating {} to {offset}", self.dir.display()))?;
        let end = active.next_offset();
        self.remove_snapshots_after(end)?;
        self.set_end_after_truncation(end)?;
        self.reload_producer_state(&mut shape)
    }

    /// Rebuilds the producer state and transactions from the snapshots
    /// and the log after a truncation (Kafka's `truncateAndReload`), as if
    /// only the remaining batches had been appended.
    fn reload_producer_state(&self, shape: &mut AppendState) -> Result<()> {
        let segments: Vec<Arc<Segment>> = self.segments.read().values().cloned().collect();
        let high_watermark = self.high_watermark();
        let loaded = super::producers::load(
            &self.dir,
            &segments,
            self.log_start_offset(),
            self.end_offset(),
            high_watermark,
            None,
            self.clock.now_ms(),
        )?;
        shape.producers = loaded.producers;
        let mut txns = self.txns.lock();
        *txns = loaded.txns;
        txns.on_high_watermark(high_watermark);
        self.publish_first_unstable(&txns);
        Ok(())
    }

    /// Deletes every segment and starts the log again, empty, at `offset`.
    pub fn truncate_fully_and_start_at(&self, offset: u64) -> Result<()> {
        self.check_writable()?;
        let mut shape = self.append_lock.lock();
        let result = self.truncate_fully_locked(&mut shape, offset);
        self.offline_on_io(result)
    }

    fn truncate_fully_locked(&self, shape: &mut AppendState, offset: u64) -> Result<()> {
        let config = self.config();
        shape.producers = ProducerStates::new();
        {
            let mut txns = self.txns.lock();
            *txns = Transactions::default();
            self.publish_first_unstable(&txns);
        }
        self.remove_snapshots_from_start()?;
        let old: Vec<Arc<Segment>> = std::mem::take(&mut *self.segments.write()).into_values().collect();
        for segment in &old {
            segment
                .delete_files()
                .context(|| format!("deleting segment {}", segment.base_offset()))?;
        }
        let segment = Segment::create(&self.dir, offset, &config, self.clock.now_ms())
            .context(|| format!("creating segment {offset} in {}", self.dir.display()))?;
        self.segments.write().insert(offset, Arc::new(segment));
        self.log_start_offset.store(offset, Ordering::Release);
        self.end_offset.store(offset, Ordering::Release);
        self.high_watermark.store(offset, Ordering::Release);
        self.recovery_point.store(offset, Ordering::Release);
        let mut cache = self.epoch_cache.lock();
        cache.truncate_from_end(0)?;
        Ok(())
    }

    fn set_end_after_truncation(&self, end: u64) -> Result<()> {
        self.end_offset.store(end, Ordering::Release);
        self.high_watermark.fetch_min(end, Ordering::AcqRel);
        self.recovery_point.fetch_min(end, Ordering::AcqRel);
        self.epoch_cache.lock().truncate_from_end(end)
    }
}
