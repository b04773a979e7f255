//! Memory-mapped sparse indexes of a segment.
//!
//! Both indexes share one shape ([`IndexFile`]): a file of fixed-size,
//! big-endian entries sorted by their key, preallocated to its maximum size
//! while the segment is active (so appends never remap) and trimmed to the
//! entries in use when the segment rolls or the log closes. A lookup is a
//! binary search over the mapped entries.

mod offset_index;
mod time_index;

pub use offset_index::{OffsetEntry, OffsetIndex, OffsetPosition};
pub use time_index::{TimeEntry, TimeIndex, TimestampOffset};

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use memmap2::MmapMut;

mod sealed {
    pub trait Sealed {}
}

/// A fixed-size index entry stored big-endian (implemented by the two
/// entry types of this module only).
pub trait IndexEntry: Copy + sealed::Sealed {
    /// Bytes one entry occupies on disk.
    const SIZE: usize;
    /// Decodes an entry from exactly `SIZE` bytes.
    fn decode(bytes: &[u8]) -> Self;
    /// Encodes the entry into exactly `SIZE` bytes.
    fn encode(&self, out: &mut [u8]);
}

pub(crate) use sealed::Sealed;

/// A preallocated, memory-mapped file of sorted index entries; what both
/// indexes have in common (they dereference to it). Only the mapping is
/// kept: the file is opened again to be resized (roll, trim), so an index
/// holds no file descriptor — a broker with 10,000 partitions needs one
/// descriptor per segment, as Kafka does, not three.
pub struct IndexFile<E: IndexEntry> {
    path: PathBuf,
    mmap: Option<MmapMut>,
    entries: usize,
    max_entries: usize,
    /// Bytes from the start known to have their blocks allocated: the
    /// preallocated tail is sparse, and a write through the mapping to an
    /// unallocated page of a full filesystem is a `SIGBUS`, so each page
    /// is allocated (`fallocate`) before its first entry.
    allocated: usize,
    _entry: std::marker::PhantomData<E>,
}

impl<E: IndexEntry> IndexFile<E> {
    /// Opens (or creates) the index at `path`. Entries are what the file holds
    /// rounded down to whole entries; a preallocated, untrimmed file (after a
    /// crash) shows zeroed entries that `sanity_check` in the typed wrapper
    /// rejects. When `max_bytes` is given the file is extended to it.
    pub(crate) fn open(path: &Path, max_bytes: Option<usize>) -> io::Result<Self> {
        let len = Self::open_file(path)?.metadata()?.len() as usize;
        let entries = len / E::SIZE;
        let mut index = Self {
            path: path.to_path_buf(),
            mmap: None,
            entries,
            max_entries: entries,
            allocated: 0,
            _entry: std::marker::PhantomData,
        };
        match max_bytes {
            Some(max) => index.preallocate(max.max(len))?,
            None => index.preallocate(entries * E::SIZE)?,
        }
        Ok(index)
    }

    /// Sets the file length to `bytes` rounded down to whole entries and
    /// remaps it (preallocation for an active segment). Entries beyond the
    /// new size are dropped.
    pub fn preallocate(&mut self, bytes: usize) -> io::Result<()> {
        let bytes = bytes / E::SIZE * E::SIZE;
        self.mmap = None;
        let file = Self::open_file(&self.path)?;
        crate::disk_io::set_len(&file, bytes as u64)?;
        crate::disk_io::mapped(&file);
        self.max_entries = bytes / E::SIZE;
        self.entries = self.entries.min(self.max_entries);
        self.allocated = self.entries * E::SIZE;
        if bytes > 0 {
            // SAFETY: the file is owned by this index and only changed
            // through it; its length was just set to `bytes`. The mapping
            // outlives the descriptor, which closes here.
            let mmap = unsafe { MmapMut::map_mut(&file)? };
            // No readahead on a fault: appends touch one new page at a
            // time and lookups binary-search. With readahead each first
            // touch of a preallocated (sparse) index zero-filled a whole
            // window of pages — with 1,000 partitions, most of a
            // produce's kernel time. Advice only: an error changes nothing.
            let _ = mmap.advise(memmap2::Advice::Random);
            self.mmap = Some(mmap);
        }
        Ok(())
    }

    fn open_file(path: &Path) -> io::Result<File> {
        crate::disk_io::open_rw(path, true)
    }

    /// Trims the file to the entries in use (on roll and clean close).
    pub fn trim(&mut self) -> io::Result<()> {
        self.preallocate(self.entries * E::SIZE)
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries
    }

    /// True when there is no entry.
    pub fn is_empty(&self) -> bool {
        self.entries == 0
    }

    /// True when no further entry fits.
    pub fn is_full(&self) -> bool {
        self.entries >= self.max_entries
    }

    /// How many entries fit.
    pub fn max_entries(&self) -> usize {
        self.max_entries
    }

    /// Removes every entry.
    pub fn reset(&mut self) {
        self.entries = 0;
    }

    pub(crate) fn entry(&self, n: usize) -> E {
        let map = self.mmap.as_ref().expect("index entry within the mapped entries");
        E::decode(&map[n * E::SIZE..(n + 1) * E::SIZE])
    }

    pub(crate) fn last(&self) -> Option<E> {
        self.entries.checked_sub(1).map(|n| self.entry(n))
    }

    /// Appends an entry; the caller keeps keys increasing and checks
    /// `is_full`. When the page it lands on cannot be allocated (a full
    /// filesystem) the entry is left out: the index is sparse, lookups
    /// scan a little further.
    pub(crate) fn push(&mut self, entry: E) {
        debug_assert!(!self.is_full());
        let n = self.entries;
        if (n + 1) * E::SIZE > self.allocated && !self.allocate_through((n + 1) * E::SIZE) {
            return;
        }
        if let Some(map) = self.mmap.as_mut() {
            entry.encode(&mut map[n * E::SIZE..(n + 1) * E::SIZE]);
            self.entries += 1;
        }
    }

    /// Allocates the pages holding bytes up to `end`; false (logged) when
    /// the filesystem refuses.
    fn allocate_through(&mut self, end: usize) -> bool {
        const PAGE: usize = 4096;
        let from = self.allocated / PAGE * PAGE;
        let to = end.div_ceil(PAGE).saturating_mul(PAGE).min(self.max_entries * E::SIZE);
        let allocated = crate::disk_io::open_rw(&self.path, false)
            .and_then(|file| crate::disk_io::allocate(&file, from as u64, to.saturating_sub(from) as u64));
        match allocated {
            Ok(()) => {
                self.allocated = to;
                true
            }
            Err(e) => {
                tracing::warn!(index = %self.path.display(), "index entry left out: {e}");
                false
            }
        }
    }

    /// Index of the last entry whose key is ≤ `target`, by binary search.
    pub(crate) fn floor<K: Ord>(&self, target: K, key: impl Fn(&E) -> K) -> Option<usize> {
        let (mut lo, mut hi) = (0usize, self.entries);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if key(&self.entry(mid)) <= target {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo.checked_sub(1)
    }

    /// Keeps only the first `entries` entries.
    pub(crate) fn truncate_entries(&mut self, entries: usize) {
        self.entries = self.entries.min(entries);
    }

    /// Flushes the mapped entries to disk.
    pub fn flush(&self) -> io::Result<()> {
        match &self.mmap {
            Some(map) => crate::disk_io::sync_mapping(map, &self.path),
            None => Ok(()),
        }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Renames the file (the mapping stays valid).
    pub fn rename(&mut self, to: &Path) -> io::Result<()> {
        crate::disk_io::rename(&self.path, to)?;
        self.path = to.to_path_buf();
        Ok(())
    }
}
