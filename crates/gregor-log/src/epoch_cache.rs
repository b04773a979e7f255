//! The leader-epoch cache: which leader epoch began at which offset.
//!
//! Followers use it (through OffsetsForLeaderEpoch) to find where their log
//! diverged from a new leader's and truncate exactly there, instead of
//! trusting the high watermark. Persisted as `leader-epoch-checkpoint` in the
//! partition directory, in Kafka's format (`epoch start-offset` lines).

use std::path::{Path, PathBuf};

use crate::checkpoint::{read_lines, write_lines};
use crate::error::{LogError, Result};

/// File name inside the partition directory.
pub const LEADER_EPOCH_CHECKPOINT: &str = "leader-epoch-checkpoint";

/// One epoch and the first offset written in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpochEntry {
    /// The leader epoch.
    pub epoch: i32,
    /// The first offset appended under it.
    pub start_offset: u64,
}

/// Epoch → start offset, epochs and offsets strictly increasing.
#[derive(Debug)]
pub struct LeaderEpochCache {
    path: PathBuf,
    entries: Vec<EpochEntry>,
}

impl LeaderEpochCache {
    /// Loads the cache from `dir`, empty when there is no file.
    pub fn load(dir: &Path) -> Result<Self> {
        let path = dir.join(LEADER_EPOCH_CHECKPOINT);
        let mut entries = Vec::new();
        for line in read_lines(&path)?.unwrap_or_default() {
            let mut parts = line.split(' ');
            let entry = (|| {
                let epoch = parts.next()?.parse().ok()?;
                let start_offset = parts.next()?.parse().ok()?;
                Some(EpochEntry { epoch, start_offset })
            })()
            .ok_or_else(|| LogError::BadCheckpoint {
                path: path.clone(),
                reason: format!("bad entry {line:?}"),
            })?;
            entries.push(entry);
        }
        Ok(Self { path, entries })
    }

    /// The entries, oldest first.
    pub fn entries(&self) -> &[EpochEntry] {
        &self.entries
    }

    /// The newest epoch.
    pub fn latest_epoch(&self) -> Option<i32> {
        self.entries.last().map(|e| e.epoch)
    }

    /// Records that `epoch` starts at `start_offset`. Older epochs are never
    /// added after newer ones; entries the new one contradicts (same or
    /// later start offset) are dropped. Returns whether the cache changed.
    pub fn assign(&mut self, epoch: i32, start_offset: u64) -> Result<bool> {
        if epoch < 0 {
            return Ok(false);
        }
        if let Some(last) = self.entries.last() {
            if epoch <= last.epoch {
                return Ok(false);
            }
        }
        self.entries.retain(|e| e.start_offset < start_offset);
        self.entries.push(EpochEntry { epoch, start_offset });
        self.persist()?;
        Ok(true)
    }

    /// OffsetsForLeaderEpoch: the largest epoch ≤ `requested` and the offset
    /// where the next epoch starts (or `log_end` for the latest epoch).
    /// `None` when `requested` is older than every entry.
    pub fn end_offset_for(&self, requested: i32, log_end: u64) -> Option<(i32, u64)> {
        let i = self.entries.iter().rposition(|e| e.epoch <= requested)?;
        let end = self.entries.get(i + 1).map_or(log_end, |next| next.start_offset);
        Some((self.entries[i].epoch, end))
    }

    /// The epoch of the leader that wrote `offset`: the newest entry
    /// starting at or before it (`None` before every entry).
    pub fn epoch_for_offset(&self, offset: u64) -> Option<i32> {
        self.entries
            .iter()
            .rev()
            .find(|e| e.start_offset <= offset)
            .map(|e| e.epoch)
    }

    /// Drops entries that start at or after `end_offset` (log truncated).
    pub fn truncate_from_end(&mut self, end_offset: u64) -> Result<()> {
        let before = self.entries.len();
        self.entries.retain(|e| e.start_offset < end_offset);
        if self.entries.len() != before {
            self.persist()?;
        }
        Ok(())
    }

    /// Moves the oldest entries up to `start_offset` (log start advanced):
    /// the epoch covering it now starts there.
    pub fn truncate_from_start(&mut self, start_offset: u64) -> Result<()> {
        let covering = self.entries.iter().rposition(|e| e.start_offset <= start_offset);
        let Some(i) = covering else { return Ok(()) };
        if i == 0 && self.entries[0].start_offset == start_offset {
            return Ok(());
        }
        self.entries.drain(..i);
        self.entries[0].start_offset = start_offset;
        self.persist()
    }

    fn persist(&self) -> Result<()> {
        let lines: Vec<String> = self
            .entries
            .iter()
            .map(|e| format!("{} {}", e.epoch, e.start_offset))
            .collect();
        write_lines(&self.path, &lines)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assign_lookup_truncate_and_reload() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = LeaderEpochCache::load(dir.path()).unwrap();
        assert!(c.assign(1, 0).unwrap());
        assert!(!c.assign(1, 5).unwrap());
        assert!(c.assign(3, 10).unwrap());
        assert!(c.assign(4, 20).unwrap());
        assert_eq!(c.end_offset_for(2, 30), Some((1, 10)));
        assert_eq!(c.end_offset_for(3, 30), Some((3, 20)));
        assert_eq!(c.end_offset_for(9, 30), Some((4, 30)));
        assert_eq!(c.end_offset_for(0, 30), None);
        assert_eq!(c.epoch_for_offset(0), Some(1));
        assert_eq!(c.epoch_for_offset(19), Some(3));
        assert_eq!(c.epoch_for_offset(20), Some(4));
        c.truncate_from_end(15).unwrap();
        assert_eq!(c.latest_epoch(), Some(3));
        c.truncate_from_start(12).unwrap();
        assert_eq!(
            c.entries(),
            &[EpochEntry {
                epoch: 3,
                start_offset: 12
            }]
        );
        let again = LeaderEpochCache::load(dir.path()).unwrap();
        assert_eq!(again.entries(), c.entries());
        assert_eq!(
            std::fs::read_to_string(dir.path().join(LEADER_EPOCH_CHECKPOINT)).unwrap(),
            "0\n1\n3 12\n"
        );
    }
}
