//! Durability of the embedded store: a bincode snapshot plus an
//! append-only change log whose entries carry a CRC-32 each.
//!
//! ```text
//! snapshot.bin   crc32 u32 LE | bincode(Snapshot)
//! changes.log    (len u32 LE | crc32 u32 LE | bincode(Record))*
//! ```
//! Recovery loads the snapshot, replays the log, and cuts the log at the
//! first entry that is torn or fails its CRC (a crash mid-append).

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Read;

use gregor_log::disk_io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tracing::warn;

use super::tree::{Change, StoredNode};
use crate::error::{CoordError, Result};

const SNAPSHOT: &str = "snapshot.bin";
const CHANGES: &str = "changes.log";
/// Entries after which the log is folded into a new snapshot.
const SNAPSHOT_EVERY: usize = 10_000;

#[derive(Serialize, Deserialize)]
struct Snapshot {
    zxid: i64,
    nodes: BTreeMap<String, StoredNode>,
}

#[derive(Serialize, Deserialize)]
struct Record {
    zxid: i64,
    changes: Vec<Change>,
}

fn storage(what: &str, e: impl std::fmt::Display) -> CoordError {
    CoordError::Storage(format!("{what}: {e}"))
}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>> {
    bincode::serde::encode_to_vec(value, bincode::config::standard()).map_err(|e| storage("encoding", e))
}

fn decode<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Option<T> {
    bincode::serde::decode_from_slice(bytes, bincode::config::standard())
        .ok()
        .map(|(v, _)| v)
}

/// The files of a durable store.
pub(crate) struct Durable {
    dir: PathBuf,
    log: File,
    entries: usize,
    sync: bool,
}

/// What was recovered.
pub(crate) struct Recovered {
    pub nodes: BTreeMap<String, StoredNode>,
    pub zxid: i64,
}

impl Durable {
    /// Opens the store in `dir`, returning the recovered state.
    pub(crate) fn open(dir: &Path, sync: bool) -> Result<(Self, Recovered)> {
        disk_io::create_dir_durably(dir).map_err(|e| storage("creating the store directory", e))?;
        // A snapshot write a crash interrupted leaves its temporary file.
        for entry in fs::read_dir(dir)
            .map_err(|e| storage("listing the store directory", e))?
            .flatten()
        {
            if entry.file_name().to_string_lossy().ends_with(disk_io::TEMPORARY_SUFFIX) {
                disk_io::remove_file(&entry.path()).map_err(|e| storage("removing a leftover snapshot", e))?;
            }
        }
        let mut recovered = Recovered {
            nodes: BTreeMap::new(),
            zxid: 0,
        };
        match fs::read(dir.join(SNAPSHOT)) {
            Ok(bytes) => {
                let snapshot = (bytes.len() >= 4)
                    .then(|| {
                        let crc = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
                        (crc32fast::hash(&bytes[4..]) == crc)
                            .then(|| decode::<Snapshot>(&bytes[4..]))
                            .flatten()
                    })
                    .flatten()
                    .ok_or_else(|| CoordError::Storage(format!("{} is corrupt", dir.join(SNAPSHOT).display())))?;
                recovered.nodes = snapshot.nodes;
                recovered.zxid = snapshot.zxid;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(storage("reading the snapshot", e)),
        }
        let log_path = dir.join(CHANGES);
        let created = !log_path.exists();
        let log = disk_io::open_append(&log_path).map_err(|e| storage("opening the change log", e))?;
        if created {
            // Synced appends to a file whose name is not durable are lost with it.
            disk_io::sync_dir(dir).map_err(|e| storage("syncing the store directory", e))?;
        }
        let mut bytes = Vec::new();
        (&log)
            .read_to_end(&mut bytes)
            .map_err(|e| storage("reading the change log", e))?;
        let (valid, entries) = replay(&bytes, &mut recovered);
        if valid < bytes.len() {
            warn!(dir = %dir.display(), bytes = bytes.len() - valid, "truncating a torn change log tail");
            disk_io::set_len(&log, valid as u64).map_err(|e| storage("truncating the change log", e))?;
            disk_io::sync_all(&log).map_err(|e| storage("syncing the change log", e))?;
        }
        let durable = Self {
            dir: dir.to_path_buf(),
            log,
            entries,
            sync,
        };
        Ok((durable, recovered))
    }

    /// Appends one committed transaction's changes.
    pub(crate) fn append(&mut self, zxid: i64, changes: Vec<Change>) -> Result<()> {
        let payload = encode(&Record { zxid, changes })?;
        let mut frame = Vec::with_capacity(payload.len() + 8);
        frame.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        frame.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
        frame.extend_from_slice(&payload);
        disk_io::append(&self.log, &frame).map_err(|e| storage("appending to the change log", e))?;
        if self.sync {
            disk_io::sync_data(&self.log).map_err(|e| storage("syncing the change log", e))?;
        }
        self.entries += 1;
        Ok(())
    }

    /// True when the log is long enough to fold into a snapshot.
    pub(crate) fn wants_snapshot(&self) -> bool {
        self.entries >= SNAPSHOT_EVERY
    }

    /// Writes a snapshot of `nodes` at `zxid` and empties the change log.
    pub(crate) fn snapshot(&mut self, zxid: i64, nodes: BTreeMap<String, StoredNode>) -> Result<()> {
        let payload = encode(&Snapshot { zxid, nodes })?;
        let mut bytes = crc32fast::hash(&payload).to_le_bytes().to_vec();
        bytes.extend_from_slice(&payload);
        // The snapshot is durable before the log it replaces is emptied; a
        // crash in between replays entries the snapshot holds, which skips them.
        disk_io::write_atomically(&self.dir.join(SNAPSHOT), &bytes).map_err(|e| storage("writing a snapshot", e))?;
        disk_io::set_len(&self.log, 0)
            .and_then(|()| disk_io::sync_all(&self.log))
            .map_err(|e| storage("emptying the change log", e))?;
        self.entries = 0;
        Ok(())
    }
}

/// Applies the valid records of `bytes`; returns the valid length and count.
fn replay(bytes: &[u8], into: &mut Recovered) -> (usize, usize) {
    let (mut pos, mut count) = (0usize, 0usize);
    while bytes.len() - pos >= 8 {
        let len = u32::from_le_bytes([bytes[pos], bytes[pos + 1], bytes[pos + 2], bytes[pos + 3]]) as usize;
        let crc = u32::from_le_bytes([bytes[pos + 4], bytes[pos + 5], bytes[pos + 6], bytes[pos + 7]]);
        let Some(payload) = bytes.get(pos + 8..pos + 8 + len) else {
            break;
        };
        if crc32fast::hash(payload) != crc {
            break;
        }
        let Some(record) = decode::<Record>(payload) else { break };
        if record.zxid > into.zxid {
            for change in record.changes {
                match change {
                    Change::Put(path, node) => {
                        into.nodes.insert(path, node);
                    }
                    Change::Remove(path) => {
                        into.nodes.remove(&path);
                    }
                }
            }
            into.zxid = record.zxid;
        }
        pos += 8 + len;
        count += 1;
    }
    (pos, count)
}

#[cfg(test)]
#[path = "persist_crash_tests.rs"]
mod crash_tests;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Stat;
    use std::fs::OpenOptions;

    fn node(data: &[u8]) -> StoredNode {
        StoredNode {
            data: data.to_vec(),
            stat: Stat::default(),
        }
    }

    #[test]
    fn a_torn_tail_is_cut_and_the_rest_replayed() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (mut d, _) = Durable::open(dir.path(), false).unwrap();
            d.append(1, vec![Change::Put("/a".into(), node(b"1"))]).unwrap();
            d.append(2, vec![Change::Put("/b".into(), node(b"2"))]).unwrap();
        }
        let path = dir.path().join(CHANGES);
        let len = fs::metadata(&path).unwrap().len();
        OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(len - 2)
            .unwrap();
        let (_, recovered) = Durable::open(dir.path(), false).unwrap();
        assert_eq!(recovered.zxid, 1);
        assert_eq!(recovered.nodes.keys().collect::<Vec<_>>(), vec!["/a"]);
        assert!(fs::metadata(&path).unwrap().len() < len - 2);
    }

    #[test]
    fn a_corrupt_snapshot_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (mut d, _) = Durable::open(dir.path(), true).unwrap();
            d.snapshot(1, BTreeMap::from([("/a".to_string(), node(b"1"))])).unwrap();
        }
        let path = dir.path().join(SNAPSHOT);
        let mut bytes = fs::read(&path).unwrap();
        *bytes.last_mut().unwrap() ^= 1;
        fs::write(&path, bytes).unwrap();
        let err = Durable::open(dir.path(), true).err().expect("an error");
        assert!(err.to_string().contains("snapshot.bin"), "{err}");
    }

    #[test]
    fn snapshot_then_log_replays_in_order() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (mut d, _) = Durable::open(dir.path(), true).unwrap();
            let mut nodes = BTreeMap::new();
            nodes.insert("/a".to_string(), node(b"1"));
            d.snapshot(5, nodes).unwrap();
            d.append(
                6,
                vec![Change::Remove("/a".into()), Change::Put("/c".into(), node(b"3"))],
            )
            .unwrap();
        }
        let (_, recovered) = Durable::open(dir.path(), true).unwrap();
        assert_eq!(recovered.zxid, 6);
        assert_eq!(recovered.nodes.keys().collect::<Vec<_>>(), vec!["/c"]);
    }
}
