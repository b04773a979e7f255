//! The aborted transaction index: a `<base>.txnindex` file per segment in
//! Kafka's format, one 34-byte entry per transaction an ABORT marker in
//! that segment ended — `version i16 (0)`, `producerId i64`, `firstOffset
//! i64`, `lastOffset i64` (the marker), `lastStableOffset i64` (as of the
//! marker) — in marker order. A read_committed fetch returns the entries
//! overlapping what it read, so the consumer can drop those records.
//!
//! The file exists only once a segment has an entry, and is not kept open
//! (a segment holds one file descriptor): each append opens it, writes and
//! closes it; aborts are rare next to records.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::RwLock;

use crate::disk_io;

/// Bytes of one entry.
pub const ENTRY_SIZE: usize = 34;
/// The entry version this code writes and reads.
pub const VERSION: i16 = 0;

/// A transaction ended by an ABORT marker (Kafka's `AbortedTxn`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AbortedTxn {
    /// The producer.
    pub producer_id: i64,
    /// Offset of the transaction's first batch.
    pub first_offset: u64,
    /// Offset of its ABORT marker.
    pub last_offset: u64,
    /// The partition's last stable offset once the transaction ended.
    pub last_stable_offset: u64,
}

/// Why a transaction index cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TxnIndexError {
    /// An entry of a version this code does not read.
    #[error("transaction index entry {entry} has version {version}")]
    Version {
        /// The entry's position in the file.
        entry: usize,
        /// Its version.
        version: i16,
    },
    /// An entry with a negative offset.
    #[error("transaction index entry {entry} has a negative offset")]
    NegativeOffset {
        /// The entry's position in the file.
        entry: usize,
    },
}

impl AbortedTxn {
    /// The entry's bytes.
    pub fn encode(&self) -> [u8; ENTRY_SIZE] {
        let mut out = [0u8; ENTRY_SIZE];
        out[0..2].copy_from_slice(&VERSION.to_be_bytes());
        out[2..10].copy_from_slice(&self.producer_id.to_be_bytes());
        out[10..18].copy_from_slice(&(self.first_offset as i64).to_be_bytes());
        out[18..26].copy_from_slice(&(self.last_offset as i64).to_be_bytes());
        out[26..34].copy_from_slice(&(self.last_stable_offset as i64).to_be_bytes());
        out
    }

    /// Decodes a whole index file. A partial entry at the end (a write a
    /// crash cut short) is ignored, as Kafka does; an unknown version or a
    /// negative offset is an error.
    pub fn decode_all(bytes: &[u8]) -> Result<Vec<Self>, TxnIndexError> {
        bytes
            .chunks_exact(ENTRY_SIZE)
            .enumerate()
            .map(|(entry, chunk)| {
                let i64_at = |at: usize| {
                    let mut b = [0u8; 8];
                    b.copy_from_slice(&chunk[at..at + 8]);
                    i64::from_be_bytes(b)
                };
                let version = i16::from_be_bytes([chunk[0], chunk[1]]);
                if version != VERSION {
                    return Err(TxnIndexError::Version { entry, version });
                }
                let offset = |at| u64::try_from(i64_at(at)).map_err(|_| TxnIndexError::NegativeOffset { entry });
                Ok(Self {
                    producer_id: i64_at(2),
                    first_offset: offset(10)?,
                    last_offset: offset(18)?,
                    last_stable_offset: offset(26)?,
                })
            })
            .collect()
    }
}

/// A segment's `.txnindex` file, by path only. Whether it exists is kept
/// in memory, so that the many segments without one cost a read_committed
/// fetch no system call.
#[derive(Debug)]
pub(crate) struct TxnIndex {
    path: RwLock<PathBuf>,
    exists: AtomicBool,
    unsynced: AtomicBool,
    /// Created since the last sync: its directory entry is not durable yet.
    created: AtomicBool,
}

fn not_found_is_ok(result: io::Result<()>) -> io::Result<()> {
    match result {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

impl TxnIndex {
    /// The index at `path`, whether or not the file exists yet.
    pub(crate) fn new(path: PathBuf) -> Self {
        let exists = path.exists();
        Self {
            path: RwLock::new(path),
            exists: AtomicBool::new(exists),
            unsynced: AtomicBool::new(false),
            created: AtomicBool::new(false),
        }
    }

    pub(crate) fn path(&self) -> PathBuf {
        self.path.read().clone()
    }

    /// Appends entries, creating the file with the first one.
    pub(crate) fn append(&self, entries: &[AbortedTxn]) -> io::Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let bytes: Vec<u8> = entries.iter().flat_map(|e| e.encode()).collect();
        let path = self.path.read();
        let file = disk_io::open_append(&path)?;
        if !self.exists.swap(true, Ordering::AcqRel) {
            self.created.store(true, Ordering::Release);
        }
        self.unsynced.store(true, Ordering::Release);
        disk_io::append(&file, &bytes)
    }

    /// Every entry, oldest first (none when the file does not exist).
    pub(crate) fn read(&self) -> io::Result<Vec<AbortedTxn>> {
        if !self.exists.load(Ordering::Acquire) {
            return Ok(Vec::new());
        }
        let path = self.path.read();
        let bytes = match fs::read(&*path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            other => other?,
        };
        AbortedTxn::decode_all(&bytes)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("{}: {e}", path.display())))
    }

    /// Removes the entries whose marker is at or after `offset` (and a
    /// partial entry at the end); the file goes when none is left.
    pub(crate) fn truncate_to(&self, offset: u64) -> io::Result<()> {
        let path = self.path.read();
        let bytes = match fs::read(&*path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            other => other?,
        };
        let keep = match AbortedTxn::decode_all(&bytes) {
            Ok(entries) => entries.iter().take_while(|e| e.last_offset < offset).count() * ENTRY_SIZE,
            // Unreadable: the entries before the bad one stay.
            Err(TxnIndexError::Version { entry, .. } | TxnIndexError::NegativeOffset { entry }) => entry * ENTRY_SIZE,
        };
        if keep == 0 {
            self.exists.store(false, Ordering::Release);
            return not_found_is_ok(disk_io::remove_file(&path));
        }
        if keep != bytes.len() {
            disk_io::set_len(&disk_io::open_rw(&path, false)?, keep as u64)?;
            self.unsynced.store(true, Ordering::Release);
        }
        Ok(())
    }

    /// Forces the file to disk if it changed since the last sync.
    pub(crate) fn sync(&self) -> io::Result<()> {
        if !self.unsynced.swap(false, Ordering::AcqRel) {
            return Ok(());
        }
        let path = self.path.read();
        let mut result = not_found_is_ok(disk_io::sync_path(&path));
        if result.is_ok() && self.created.swap(false, Ordering::AcqRel) {
            // A new file's bytes are unreachable after a crash until its name is durable.
            if let Some(dir) = path.parent() {
                result = disk_io::sync_dir(dir);
                if result.is_err() {
                    self.created.store(true, Ordering::Release);
                }
            }
        }
        if result.is_err() {
            self.unsynced.store(true, Ordering::Release);
        }
        result
    }

    /// Renames the file (if it exists).
    pub(crate) fn rename(&self, to: &Path) -> io::Result<()> {
        let mut path = self.path.write();
        not_found_is_ok(disk_io::rename(&path, to))?;
        *path = to.to_path_buf();
        Ok(())
    }

    /// Removes the file (if it exists).
    pub(crate) fn delete(&self) -> io::Result<()> {
        self.exists.store(false, Ordering::Release);
        not_found_is_ok(disk_io::remove_file(&self.path.read()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn txn(first: u64, last: u64) -> AbortedTxn {
        AbortedTxn {
            producer_id: 7,
            first_offset: first,
            last_offset: last,
            last_stable_offset: last + 1,
        }
    }

    #[test]
    fn entries_have_kafkas_layout() {
        let bytes = txn(0x0102, 0x0304).encode();
        assert_eq!(&bytes[..2], &[0, 0]);
        assert_eq!(&bytes[2..10], &7i64.to_be_bytes());
        assert_eq!(&bytes[10..18], &0x0102i64.to_be_bytes());
        assert_eq!(&bytes[18..26], &0x0304i64.to_be_bytes());
        assert_eq!(&bytes[26..34], &0x0305i64.to_be_bytes());
    }

    #[test]
    fn damaged_files_are_errors_or_cut_short() {
        let mut bytes: Vec<u8> = [txn(1, 2), txn(3, 4)].iter().flat_map(|t| t.encode()).collect();
        assert_eq!(AbortedTxn::decode_all(&bytes[..50]).unwrap(), vec![txn(1, 2)]);
        bytes[ENTRY_SIZE + 1] = 1;
        assert_eq!(
            AbortedTxn::decode_all(&bytes),
            Err(TxnIndexError::Version { entry: 1, version: 1 })
        );
        bytes[ENTRY_SIZE + 1] = 0;
        bytes[10] = 0x80;
        assert_eq!(
            AbortedTxn::decode_all(&bytes),
            Err(TxnIndexError::NegativeOffset { entry: 0 })
        );
    }

    #[test]
    fn the_file_is_created_by_its_first_entry_and_truncated_by_marker_offset() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.txnindex");
        let index = TxnIndex::new(path.clone());
        assert!(index.read().unwrap().is_empty());
        assert!(!path.exists());
        index.append(&[txn(1, 2), txn(3, 5)]).unwrap();
        index.append(&[txn(6, 9)]).unwrap();
        assert_eq!(index.read().unwrap(), vec![txn(1, 2), txn(3, 5), txn(6, 9)]);
        index.truncate_to(5).unwrap();
        assert_eq!(index.read().unwrap(), vec![txn(1, 2)]);
        index.sync().unwrap();
        index.truncate_to(2).unwrap();
        assert!(!path.exists());
    }

    proptest! {
        #[test]
        fn entries_round_trip(entries in proptest::collection::vec((any::<i64>(), 0u64..i64::MAX as u64, 0u64..i64::MAX as u64, 0u64..i64::MAX as u64), 0..20)) {
            let entries: Vec<AbortedTxn> = entries.into_iter().map(|(p, f, l, s)| AbortedTxn { producer_id: p, first_offset: f, last_offset: l, last_stable_offset: s }).collect();
            let bytes: Vec<u8> = entries.iter().flat_map(|e| e.encode()).collect();
            prop_assert_eq!(AbortedTxn::decode_all(&bytes).unwrap(), entries);
        }

        /// Arbitrary bytes (the fuzz target's property): no panic, and what
        /// decodes encodes back to its whole entries.
        #[test]
        fn arbitrary_bytes_decode_or_fail_cleanly(bytes in proptest::collection::vec(prop_oneof![Just(0u8), any::<u8>()], 0..200)) {
            if let Ok(entries) = AbortedTxn::decode_all(&bytes) {
                let again: Vec<u8> = entries.iter().flat_map(|e| e.encode()).collect();
                prop_assert_eq!(&again[..], &bytes[..bytes.len() / ENTRY_SIZE * ENTRY_SIZE]);
            }
        }
    }
}
