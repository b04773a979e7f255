//! The sparse time index: timestamp → relative offset.

use std::io;
use std::path::Path;

use std::ops::{Deref, DerefMut};

use super::{IndexEntry, IndexFile, Sealed};

/// A timestamp and the offset from which records reach it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimestampOffset {
    /// Largest timestamp seen up to `offset`.
    pub timestamp: i64,
    /// Absolute offset of the batch holding that timestamp.
    pub offset: u64,
}

/// One entry as stored in the file.
#[derive(Clone, Copy)]
pub struct TimeEntry {
    timestamp: i64,
    relative_offset: u32,
}

impl Sealed for TimeEntry {}

impl IndexEntry for TimeEntry {
    const SIZE: usize = 12;

    fn decode(b: &[u8]) -> Self {
        let mut ts = [0u8; 8];
        ts.copy_from_slice(&b[..8]);
        Self {
            timestamp: i64::from_be_bytes(ts),
            relative_offset: u32::from_be_bytes([b[8], b[9], b[10], b[11]]),
        }
    }

    fn encode(&self, out: &mut [u8]) {
        out[..8].copy_from_slice(&self.timestamp.to_be_bytes());
        out[8..12].copy_from_slice(&self.relative_offset.to_be_bytes());
    }
}

/// `<base offset>.timeindex`: 12-byte entries (timestamp i64, relative offset u32),
/// both strictly increasing.
pub struct TimeIndex {
    base_offset: u64,
    inner: IndexFile<TimeEntry>,
}

impl TimeIndex {
    /// Opens the time index of the segment starting at `base_offset`.
    pub fn open(path: &Path, base_offset: u64, max_bytes: Option<usize>) -> io::Result<Self> {
        Ok(Self {
            base_offset,
            inner: IndexFile::open(path, max_bytes)?,
        })
    }

    /// The largest entry with timestamp ≤ `timestamp`, if any.
    pub fn lookup(&self, timestamp: i64) -> Option<TimestampOffset> {
        self.inner
            .floor(timestamp, |e| e.timestamp)
            .map(|n| self.absolute(self.inner.entry(n)))
    }

    /// The last entry: the largest timestamp indexed so far.
    pub fn last_entry(&self) -> Option<TimestampOffset> {
        self.inner.last().map(|e| self.absolute(e))
    }

    /// Adds an entry when `timestamp` is beyond the last one. The last slot
    /// is kept for the entry written when the segment becomes inactive, so
    /// only `force` may use it.
    pub fn maybe_append(&mut self, timestamp: i64, offset: u64, force: bool) {
        let Some(relative) = offset.checked_sub(self.base_offset).and_then(|r| u32::try_from(r).ok()) else {
            return;
        };
        let room = if force { 0 } else { 1 };
        if self.inner.len() + room >= self.inner.max_entries() {
            return;
        }
        if let Some(last) = self.inner.last() {
            if timestamp <= last.timestamp || relative < last.relative_offset {
                return;
            }
        }
        self.inner.push(TimeEntry {
            timestamp,
            relative_offset: relative,
        });
    }

    /// Drops entries pointing at offsets ≥ `offset`.
    pub fn truncate_to(&mut self, offset: u64) {
        let mut keep = self.inner.len();
        while keep > 0 {
            let e = self.inner.entry(keep - 1);
            if self.base_offset + u64::from(e.relative_offset) < offset {
                break;
            }
            keep -= 1;
        }
        self.inner.truncate_entries(keep);
    }

    /// Checks that timestamps and offsets never decrease; false means rebuild.
    pub fn is_sane(&self, next_offset: u64) -> bool {
        let mut previous: Option<TimeEntry> = None;
        for n in 0..self.inner.len() {
            let e = self.inner.entry(n);
            if self.base_offset + u64::from(e.relative_offset) >= next_offset {
                return false;
            }
            if let Some(p) = previous {
                if e.timestamp <= p.timestamp || e.relative_offset < p.relative_offset {
                    return false;
                }
            }
            previous = Some(e);
        }
        true
    }

    /// True when only the reserved last slot is left.
    pub fn is_full(&self) -> bool {
        self.inner.len() + 1 >= self.inner.max_entries()
    }

    fn absolute(&self, e: TimeEntry) -> TimestampOffset {
        TimestampOffset {
            timestamp: e.timestamp,
            offset: self.base_offset + u64::from(e.relative_offset),
        }
    }
}

impl Deref for TimeIndex {
    type Target = IndexFile<TimeEntry>;

    fn deref(&self) -> &Self::Target {
        &self.inner
    }
}

impl DerefMut for TimeIndex {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.inner
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_and_truncate() {
        let dir = tempfile::tempdir().unwrap();
        let mut idx = TimeIndex::open(&dir.path().join("0.timeindex"), 10, Some(120)).unwrap();
        idx.maybe_append(100, 10, false);
        idx.maybe_append(90, 12, false); // not increasing: ignored
        idx.maybe_append(200, 20, false);
        assert_eq!(idx.len(), 2);
        assert_eq!(idx.lookup(50), None);
        assert_eq!(
            idx.lookup(150),
            Some(TimestampOffset {
                timestamp: 100,
                offset: 10
            })
        );
        assert_eq!(idx.last_entry().unwrap().timestamp, 200);
        idx.truncate_to(20);
        assert_eq!(idx.len(), 1);
        assert!(idx.is_sane(11));
        assert!(!idx.is_sane(10));
    }

    #[test]
    fn last_slot_is_reserved_for_the_final_entry() {
        let dir = tempfile::tempdir().unwrap();
        let mut idx = TimeIndex::open(&dir.path().join("0.timeindex"), 0, Some(24)).unwrap();
        idx.maybe_append(1, 0, false);
        assert!(idx.is_full());
        idx.maybe_append(2, 1, false);
        assert_eq!(idx.len(), 1);
        idx.maybe_append(3, 2, true);
        assert_eq!(idx.len(), 2);
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn lookup_agrees_with_a_linear_scan(
            steps in proptest::collection::vec((1i64..100, 0u64..20), 1..150),
            targets in proptest::collection::vec(-50i64..20_000, 1..40),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let mut idx = TimeIndex::open(&dir.path().join("0.timeindex"), 3, Some(12 * 200)).unwrap();
            let (mut ts, mut offset) = (0i64, 3u64);
            let mut entries = Vec::new();
            for (dt, doff) in steps {
                ts += dt;
                offset += doff;
                idx.maybe_append(ts, offset, false);
                entries.push(TimestampOffset { timestamp: ts, offset });
            }
            for t in targets {
                let expected = entries.iter().rev().find(|e| e.timestamp <= t).copied();
                prop_assert_eq!(idx.lookup(t), expected);
            }
        }
    }
}
