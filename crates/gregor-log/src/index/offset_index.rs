//! The sparse offset index: relative offset → file position.

use std::io;
use std::path::Path;

use std::ops::{Deref, DerefMut};

use super::{IndexEntry, IndexFile, Sealed};

/// An absolute offset and the file position of the batch it indexes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OffsetPosition {
    /// Absolute offset (the last offset of the indexed batch, as Kafka writes it).
    pub offset: u64,
    /// Byte position of that batch in the segment's log file.
    pub position: u32,
}

/// One entry as stored in the file.
#[derive(Clone, Copy)]
pub struct OffsetEntry {
    relative_offset: u32,
    position: u32,
}

impl Sealed for OffsetEntry {}

impl IndexEntry for OffsetEntry {
    const SIZE: usize = 8;

    fn decode(b: &[u8]) -> Self {
        Self {
            relative_offset: u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
            position: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
        }
    }

    fn encode(&self, out: &mut [u8]) {
        out[..4].copy_from_slice(&self.relative_offset.to_be_bytes());
        out[4..8].copy_from_slice(&self.position.to_be_bytes());
    }
}

/// `<base offset>.index`: 8-byte entries (relative offset u32, position u32).
pub struct OffsetIndex {
    base_offset: u64,
    inner: IndexFile<OffsetEntry>,
}

impl OffsetIndex {
    /// Opens the index of the segment starting at `base_offset`; `max_bytes`
    /// preallocates it (active segment), `None` maps it as it is.
    pub fn open(path: &Path, base_offset: u64, max_bytes: Option<usize>) -> io::Result<Self> {
        Ok(Self {
            base_offset,
            inner: IndexFile::open(path, max_bytes)?,
        })
    }

    /// The largest entry with offset ≤ `target`, or the segment start.
    pub fn lookup(&self, target: u64) -> OffsetPosition {
        let Some(relative) = target.checked_sub(self.base_offset) else {
            return self.start();
        };
        let relative = u32::try_from(relative).unwrap_or(u32::MAX);
        match self.inner.floor(relative, |e| e.relative_offset) {
            Some(n) => self.absolute(self.inner.entry(n)),
            None => self.start(),
        }
    }

    /// The last entry whose position is ≤ `position`, or the segment start.
    pub fn lookup_position(&self, position: u32) -> OffsetPosition {
        match self.inner.floor(position, |e| e.position) {
            Some(n) => self.absolute(self.inner.entry(n)),
            None => self.start(),
        }
    }

    /// Adds an entry; ignored unless it is beyond the last one.
    pub fn append(&mut self, offset: u64, position: u32) {
        let Some(relative) = offset.checked_sub(self.base_offset).and_then(|r| u32::try_from(r).ok()) else {
            return;
        };
        if self.is_full() {
            return;
        }
        if let Some(last) = self.inner.last() {
            if relative <= last.relative_offset || position <= last.position {
                return;
            }
        }
        self.inner.push(OffsetEntry {
            relative_offset: relative,
            position,
        });
    }

    /// Drops entries for offsets ≥ `offset`.
    pub fn truncate_to(&mut self, offset: u64) {
        let keep = match offset.checked_sub(self.base_offset) {
            None => 0,
            Some(rel) => {
                let rel = u32::try_from(rel).unwrap_or(u32::MAX);
                // Entries strictly below `rel` survive.
                match rel.checked_sub(1) {
                    None => 0,
                    Some(below) => self.inner.floor(below, |e| e.relative_offset).map_or(0, |n| n + 1),
                }
            }
        };
        self.inner.truncate_entries(keep);
    }

    /// Checks that entries increase and stay within `log_size`; false means
    /// the index must be rebuilt.
    pub fn is_sane(&self, log_size: u64) -> bool {
        let mut previous: Option<OffsetEntry> = None;
        for n in 0..self.inner.len() {
            let e = self.inner.entry(n);
            if u64::from(e.position) >= log_size.max(1) {
                return false;
            }
            if let Some(p) = previous {
                if e.relative_offset <= p.relative_offset || e.position <= p.position {
                    return false;
                }
            }
            previous = Some(e);
        }
        true
    }

    fn start(&self) -> OffsetPosition {
        OffsetPosition {
            offset: self.base_offset,
            position: 0,
        }
    }

    fn absolute(&self, e: OffsetEntry) -> OffsetPosition {
        OffsetPosition {
            offset: self.base_offset + u64::from(e.relative_offset),
            position: e.position,
        }
    }
}

impl Deref for OffsetIndex {
    type Target = IndexFile<OffsetEntry>;

    fn deref(&self) -> &Self::Target {
        &self.inner
    }
}

impl DerefMut for OffsetIndex {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.inner
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn lookup_finds_the_floor_entry() {
        let dir = tempfile::tempdir().unwrap();
        let mut idx = OffsetIndex::open(&dir.path().join("0.index"), 100, Some(80)).unwrap();
        idx.append(110, 1000);
        idx.append(120, 2000);
        assert_eq!(
            idx.lookup(50),
            OffsetPosition {
                offset: 100,
                position: 0
            }
        );
        assert_eq!(
            idx.lookup(109),
            OffsetPosition {
                offset: 100,
                position: 0
            }
        );
        assert_eq!(idx.lookup(115).position, 1000);
        assert_eq!(idx.lookup(999).position, 2000);
        assert_eq!(idx.lookup_position(1999).position, 1000);
        idx.truncate_to(120);
        assert_eq!(idx.len(), 1);
        idx.trim().unwrap();
        assert_eq!(std::fs::metadata(idx.path()).unwrap().len(), 8);
    }

    #[test]
    fn on_a_full_disk_an_entry_whose_page_cannot_be_allocated_is_left_out() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.index");
        let mut idx = OffsetIndex::open(&path, 0, Some(3 * 4096)).unwrap();
        // The preallocated file is sparse; each page is allocated before
        // its first entry is written through the mapping (on a full tmpfs
        // writing to an unallocated page would be a SIGBUS).
        for i in 1..=512u64 {
            idx.append(i, i as u32 * 10);
        }
        assert_eq!(idx.len(), 512);
        assert!(std::fs::metadata(&path).unwrap().blocks() * 512 >= 4096);
        let full = crate::disk_io::full_disk::FullDisk::fill(dir.path()).unwrap();
        idx.append(513, 5130);
        assert_eq!(idx.len(), 512, "the second page could not be allocated");
        drop(full);
        idx.append(514, 5140);
        assert_eq!(idx.len(), 513);
        assert_eq!(idx.lookup(600).offset, 514);
    }

    #[test]
    fn full_index_refuses_more_entries() {
        let dir = tempfile::tempdir().unwrap();
        let mut idx = OffsetIndex::open(&dir.path().join("0.index"), 0, Some(16)).unwrap();
        idx.append(1, 10);
        idx.append(2, 20);
        assert!(idx.is_full());
        idx.append(3, 30);
        assert_eq!(idx.len(), 2);
    }

    #[test]
    fn an_untrimmed_index_after_a_crash_is_not_sane() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.index");
        {
            let mut idx = OffsetIndex::open(&path, 0, Some(64)).unwrap();
            idx.append(5, 100);
        }
        let idx = OffsetIndex::open(&path, 0, None).unwrap();
        assert_eq!(idx.len(), 8);
        assert!(!idx.is_sane(1000));
    }

    proptest! {
        #[test]
        fn lookup_agrees_with_a_linear_scan(
            gaps in proptest::collection::vec((1u64..50, 1u32..5000), 1..200),
            targets in proptest::collection::vec(0u64..20_000, 1..50),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let mut idx = OffsetIndex::open(&dir.path().join("0.index"), 7, Some(8 * 256)).unwrap();
            let (mut offset, mut position) = (7u64, 0u32);
            let mut entries = Vec::new();
            for (dg, dp) in gaps {
                offset += dg;
                position += dp;
                idx.append(offset, position);
                entries.push((offset, position));
            }
            for t in targets {
                let expected = entries.iter().rev().find(|(o, _)| *o <= t)
                    .map(|&(o, p)| OffsetPosition { offset: o, position: p })
                    .unwrap_or(OffsetPosition { offset: 7, position: 0 });
                prop_assert_eq!(idx.lookup(t), expected);
            }
        }
    }
}
