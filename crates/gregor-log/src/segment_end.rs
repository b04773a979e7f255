//! Where a rolled segment ended: `<base>.end`, one small file per rolled
//! segment, holding the offset after its last record at the roll.
//!
//! Without group commit a rolled segment's tail may still be unsynced when
//! the next segment takes appends, and a power cut can keep the later
//! segment's bytes and lose the earlier one's: a hole. The roll therefore
//! makes the old segment's end durable ([`record`], a
//! [`disk_io::write_atomically`]: temporary file, fsync, rename, directory
//! fsync) before the new segment exists, so whenever the new segment holds
//! bytes on disk, the old one's end is known. Recovery compares it with
//! where the old segment's valid batches end and, when records are missing,
//! cuts the log there (a valid prefix). The marker records the old
//! segment's own end, not the next segment's base: a follower of a
//! compacted leader rolls at a batch's base offset, past a legitimate gap.
//!
//! A marker lives and dies with its segment's live files: deleting a
//! segment (retention, truncation, recovery) removes it, a cleaner swap
//! removes the replaced segments' markers (a cleaned segment is fsynced
//! before it is swapped in, so it needs none), and truncating into a
//! segment makes it active again without one. Logs written before markers
//! existed have none and recover as before.

use std::io;
use std::path::{Path, PathBuf};

use crate::disk_io;
use crate::file_names::file_name;

/// Extension of a segment's end marker.
pub(crate) const EXTENSION: &str = ".end";

fn path(dir: &Path, base: u64) -> PathBuf {
    dir.join(file_name(base, EXTENSION))
}

/// Durably records that the segment at `base` ends at `end` (its last
/// offset + 1); returns once the marker and its name are on disk.
pub(crate) fn record(dir: &Path, base: u64, end: u64) -> io::Result<()> {
    disk_io::write_atomically(&path(dir, base), format!("{end}\n").as_bytes())
}

/// The recorded end of the segment at `base`, if it has a readable marker
/// (a missing or unreadable one is no marker: recovery as without them).
pub(crate) fn recorded(dir: &Path, base: u64) -> Option<u64> {
    let text = std::fs::read_to_string(path(dir, base)).ok()?;
    let end = text.trim().parse().ok();
    if end.is_none() {
        tracing::warn!(dir = %dir.display(), base, "ignoring an unreadable segment end marker");
    }
    end
}

/// Removes the marker of the segment at `base`, if any (durable with the
/// directory's next sync).
pub(crate) fn remove(dir: &Path, base: u64) -> io::Result<()> {
    match disk_io::remove_file(&path(dir, base)) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests;
