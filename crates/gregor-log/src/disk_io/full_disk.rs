//! A full disk, simulated (test builds and the `fault-injection` feature).
//!
//! [`FullDisk::fill`] makes every write, append and block allocation of
//! [`crate::disk_io`] under a directory fail with `ENOSPC` until the guard
//! is dropped — what a log directory on a full filesystem meets;
//! [`FullDisk::with_room`] first lets a number of bytes through, the write
//! that crosses it torn (its prefix written, then `ENOSPC`), as a real
//! filesystem fills. Other
//! operations (opening, renaming, syncing, shrinking a file) keep working,
//! as they mostly do on a real full filesystem. Files are matched by the
//! path their descriptor names (`/proc/self/fd`).

use std::fs::File;
use std::io;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// Full directories and the bytes each may still take.
static FULL: Mutex<Vec<(PathBuf, u64)>> = Mutex::new(Vec::new());
/// How many directories are full (0: the common case, checked without a lock).
static COUNT: AtomicUsize = AtomicUsize::new(0);

/// A directory whose filesystem is full while this guard lives.
#[derive(Debug)]
pub struct FullDisk {
    dir: PathBuf,
}

impl FullDisk {
    /// Fills the filesystem under `dir` (which must exist).
    pub fn fill(dir: &Path) -> io::Result<Self> {
        Self::with_room(dir, 0)
    }

    /// Lets `room` more bytes be written under `dir`, then fills it.
    pub fn with_room(dir: &Path, room: u64) -> io::Result<Self> {
        let dir = dir.canonicalize()?;
        FULL.lock().unwrap_or_else(|e| e.into_inner()).push((dir.clone(), room));
        COUNT.fetch_add(1, Ordering::AcqRel);
        Ok(Self { dir })
    }
}

impl Drop for FullDisk {
    fn drop(&mut self) {
        let mut full = FULL.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(i) = full.iter().position(|(d, _)| *d == self.dir) {
            full.remove(i);
            COUNT.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// The error a full filesystem answers.
pub(super) fn no_space() -> io::Error {
    io::Error::from_raw_os_error(libc::ENOSPC)
}

/// How many of `len` bytes may be written to `path`: all of them unless it
/// lies under a full directory; an error when not one may.
fn admit_path(path: &Path, len: usize) -> io::Result<usize> {
    let absolute = path
        .parent()
        .and_then(|p| p.canonicalize().ok())
        .and_then(|p| path.file_name().map(|n| p.join(n)))
        .unwrap_or_else(|| path.to_path_buf());
    let mut full = FULL.lock().unwrap_or_else(|e| e.into_inner());
    let Some((_, room)) = full.iter_mut().find(|(d, _)| absolute.starts_with(d)) else {
        return Ok(len);
    };
    let admitted = (*room).min(len as u64);
    *room -= admitted;
    match admitted {
        0 if len > 0 => Err(no_space()),
        n => Ok(n as usize),
    }
}

/// How many of `len` bytes may be written to `file` (see [`FullDisk`]).
pub(super) fn admit(file: &File, len: usize) -> io::Result<usize> {
    if COUNT.load(Ordering::Acquire) == 0 {
        return Ok(len);
    }
    match std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd())) {
        Ok(path) => admit_path(&path, len),
        Err(_) => Ok(len),
    }
}

/// Refuses a block allocation in `file` under a full directory.
pub(super) fn check_file(file: &File) -> io::Result<()> {
    admit(file, 1).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_under_a_full_directory_fail_until_it_is_emptied() {
        let dir = tempfile::tempdir().unwrap();
        let other = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let file = crate::disk_io::create(&path).unwrap();
        let full = FullDisk::fill(dir.path()).unwrap();
        let err = crate::disk_io::write_at(&file, b"x", 0).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENOSPC));
        let elsewhere = crate::disk_io::create(&other.path().join("g")).unwrap();
        crate::disk_io::write_at(&elsewhere, b"x", 0).unwrap();
        drop(full);
        crate::disk_io::write_at(&file, b"x", 0).unwrap();
    }

    #[test]
    fn the_write_that_crosses_the_room_left_is_torn() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let file = crate::disk_io::create(&path).unwrap();
        let _full = FullDisk::with_room(dir.path(), 5).unwrap();
        crate::disk_io::write_at(&file, b"abc", 0).unwrap();
        assert!(crate::disk_io::write_at(&file, b"defg", 3).is_err());
        assert_eq!(std::fs::read(&path).unwrap(), b"abcde");
    }

    #[test]
    fn a_vectored_write_is_torn_where_the_room_ends_too() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let file = crate::disk_io::create(&path).unwrap();
        let _full = FullDisk::with_room(dir.path(), 7).unwrap();
        crate::disk_io::write_vectored_at(&file, &[b"ab", b"", b"c"], 0).unwrap();
        assert!(crate::disk_io::write_vectored_at(&file, &[b"de", b"fgh", b"i"], 3).is_err());
        assert_eq!(std::fs::read(&path).unwrap(), b"abcdefg");
    }
}
