//! Making appended bytes durable: explicit flushes and group commit.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::Log;
use crate::config::FlushPolicy;
use crate::error::{LogError, Result};
use crate::segment::Segment;

impl Log {
    /// Forces everything appended so far to disk.
    pub fn flush(&self) -> Result<()> {
        self.flush_to(self.end_offset())
    }

    /// Flushes when the `flush.ms` interval has passed (called by a
    /// background flusher for idle logs). Returns whether it flushed.
    pub fn flush_if_due(&self) -> Result<bool> {
        let FlushPolicy::Interval(every) = self.config().flush_policy() else {
            return Ok(false);
        };
        let now = self.clock.now_ms();
        let due = now - self.last_flush_ms.load(Ordering::Acquire) >= every.as_millis() as i64;
        if due && self.recovery_point() < self.end_offset() {
            self.flush()?;
            return Ok(true);
        }
        Ok(false)
    }

    /// Waits until every offset below `offset` is on disk. Concurrent
    /// callers share the work: one of them syncs everything appended so far
    /// while the others wait, then each finds its offset covered — one
    /// `fdatasync` for a whole group of appends.
    pub fn sync_to(&self, offset: u64) -> Result<()> {
        let mut flushing = self.flushing.lock();
        loop {
            if self.recovery_point() >= offset {
                return Ok(());
            }
            if let Some(reason) = &*self.failure.lock() {
                return Err(LogError::Offline(reason.clone()));
            }
            if *flushing {
                self.flush_done.wait(&mut flushing);
                continue;
            }
            *flushing = true;
            drop(flushing);
            let result = self.flush_to(self.end_offset());
            flushing = self.flushing.lock();
            *flushing = false;
            self.flush_done.notify_all();
            result?;
        }
    }

    /// Syncs every segment holding offsets in `[recovery point, offset)` and
    /// advances the recovery point. A failed sync takes the log offline: the
    /// kernel may have dropped the dirty pages, so acknowledging later
    /// writes would be a lie.
    pub(crate) fn flush_to(&self, offset: u64) -> Result<()> {
        let from = self.recovery_point();
        if offset <= from {
            return Ok(());
        }
        let segments: Vec<Arc<Segment>> = {
            let map = self.segments.read();
            let first = map.range(..=from).next_back().map_or(0, |(b, _)| *b);
            map.range(first..offset).map(|(_, s)| s.clone()).collect()
        };
        for segment in segments {
            if let Err(e) = segment.flush() {
                let reason = format!(
                    "fsync of {} segment {} failed: {e}",
                    self.dir.display(),
                    segment.base_offset()
                );
                tracing::error!("{reason}");
                *self.failure.lock() = Some(reason.clone());
                return Err(LogError::Offline(reason));
            }
        }
        self.recovery_point.fetch_max(offset, Ordering::AcqRel);
        self.last_flush_ms.store(self.clock.now_ms(), Ordering::Release);
        Ok(())
    }
}
