//! Making appended bytes durable: explicit flushes and group commit.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::Log;
use crate::config::FlushPolicy;
use crate::error::{IoContext, LogError, Result};
use crate::segment::Segment;

impl Log {
    /// Forces everything appended so far to disk.
    pub fn flush(&self) -> Result<()> {
        self.flush_to(self.end_offset())
    }

    /// Flushes when the `flush.ms` interval has passed (called by a
    /// background flusher for idle logs). Returns whether it flushed.
    pub fn flush_if_due(&self) -> Result<bool> {
        if !self.flush_is_due() {
            return Ok(false);
        }
        self.flush()?;
        Ok(true)
    }

    /// Whether the `flush.ms` interval has passed with unflushed appends —
    /// a check without I/O or allocation, so the background flusher can
    /// pass over thousands of logs that have nothing due.
    pub fn flush_is_due(&self) -> bool {
        let FlushPolicy::Interval(every) = self.config().flush_policy() else {
            return false;
        };
        let now = self.clock.now_ms();
        now - self.last_flush_ms.load(Ordering::Acquire) >= every.as_millis() as i64
            && self.recovery_point() < self.end_offset()
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
        if let Some(reason) = self.failure_reason() {
            return Err(LogError::Offline(reason));
        }
        let from = self.recovery_point();
        if offset <= from {
            return self.offline_on_io(self.sync_new_files());
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
                self.fail(reason.clone());
                return Err(LogError::Offline(reason));
            }
        }
        self.offline_on_io(self.sync_new_files())?;
        self.recovery_point.fetch_max(offset, Ordering::AcqRel);
        self.last_flush_ms.store(self.clock.now_ms(), Ordering::Release);
        Ok(())
    }

    /// Syncs the files created since the last flush and the directory
    /// holding their entries (kept for the next flush if that fails).
    pub(crate) fn sync_new_files(&self) -> Result<()> {
        let files = std::mem::take(&mut *self.unsynced_files.lock());
        if files.is_empty() {
            return Ok(());
        }
        let sync = crate::disk_io::sync_path;
        let outcome = files
            .iter()
            .filter(|p| **p != self.dir)
            .try_for_each(|path| match sync(path) {
                // Pruned meanwhile (an old snapshot): nothing to keep.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                other => other.context(|| format!("syncing {}", path.display())),
            })
            .and_then(|()| sync(&self.dir).context(|| format!("syncing directory {}", self.dir.display())));
        if outcome.is_err() {
            self.unsynced_files.lock().extend(files);
        }
        outcome
    }
}

#[cfg(test)]
mod tests {
    use crate::batch::RecordBatchBuilder;
    use crate::{Log, LogConfig};

    #[test]
    fn a_roll_leaves_its_syncs_to_the_next_flush() {
        let dir = tempfile::tempdir().unwrap();
        let log = Log::open(dir.path(), LogConfig::default()).unwrap();
        let mut batch = RecordBatchBuilder::new(0);
        batch.append(None, Some(b"v"), &[], 0);
        log.append(&mut batch.build(), 0).unwrap();
        log.roll().unwrap();
        let pending = log.unsynced_files.lock().clone();
        assert!(
            pending.contains(&dir.path().to_path_buf()),
            "the directory entry of the new segment"
        );
        assert!(pending.iter().any(|p| p.extension().is_some_and(|e| e == "snapshot")));
        log.flush().unwrap();
        assert!(log.unsynced_files.lock().is_empty());
    }
}
