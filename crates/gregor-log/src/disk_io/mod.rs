//! The file operations of gregor's storage, in one place.
//!
//! Everything gregor-log (and the coordination store above it) does that a
//! power cut could undo goes through these few functions: opening (and so
//! creating or truncating) a file, positional and appending writes, length
//! changes, `fsync`/`fdatasync` of a file, renames, removals and `fsync` of
//! a directory. Small metadata and checkpoint files are written with
//! [`write_atomically`]: a temporary file, fsynced, renamed over the old one,
//! then the directory fsynced — a crash leaves the old file or the new one,
//! never a torn or empty one.
//!
//! In production these are the plain system calls, inlined: no indirection
//! on the append path. Test builds (and the `fault-injection` feature, for
//! crates above) also report each call to [`power_loss`], which keeps what a
//! power cut would leave on disk and can build the directory a crash just
//! before any of these calls would leave behind.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

#[cfg(any(test, feature = "fault-injection"))]
pub mod power_loss;

#[cfg(any(test, feature = "fault-injection"))]
use power_loss as hook;

#[cfg(any(test, feature = "fault-injection"))]
pub mod full_disk;

/// Without fault injection no disk is ever full by decree.
#[cfg(not(any(test, feature = "fault-injection")))]
mod full_disk {
    use std::fs::File;
    use std::io;

    #[inline(always)]
    pub(super) fn check_file(_: &File) -> io::Result<()> {
        Ok(())
    }
    #[inline(always)]
    pub(super) fn admit(_: &File, len: usize) -> io::Result<usize> {
        Ok(len)
    }
    pub(super) fn no_space() -> io::Error {
        io::Error::from_raw_os_error(libc::ENOSPC)
    }
}

#[cfg(test)]
mod crash_tests;

/// Without fault injection every hook is empty and inlined away.
#[cfg(not(any(test, feature = "fault-injection")))]
mod hook {
    use std::fs::File;
    use std::path::Path;

    #[inline(always)]
    pub(super) fn crash_point_at(_: &Path) {}
    #[inline(always)]
    pub(super) fn crash_point_on(_: &File) {}
    #[inline(always)]
    pub(super) fn opened(_: &Path, _: &File, _: bool) {}
    #[inline(always)]
    pub(super) fn wrote(_: &File, _: u64, _: &[u8]) {}
    #[inline(always)]
    pub(super) fn set_len(_: &File, _: u64) {}
    #[inline(always)]
    pub(super) fn synced(_: &File) {}
    #[inline(always)]
    pub(super) fn mapped(_: &File) {}
    #[inline(always)]
    pub(super) fn synced_dir(_: &Path) {}
}

fn named(path: &Path, what: &str, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{what} {}: {e}", path.display()))
}

/// Creates `path` (truncating a file of that name) for reading and writing.
#[inline]
pub fn create(path: &Path) -> io::Result<File> {
    hook::crash_point_at(path);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)?;
    hook::opened(path, &file, true);
    Ok(file)
}

/// Opens `path` for reading and writing, creating it (empty) if `create`
/// and it does not exist; an existing file is kept as it is.
#[inline]
pub fn open_rw(path: &Path, create: bool) -> io::Result<File> {
    hook::crash_point_at(path);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(create)
        .truncate(false)
        .open(path)?;
    hook::opened(path, &file, false);
    Ok(file)
}

/// Opens `path` for reading and appending, creating it if it does not exist.
#[inline]
pub fn open_append(path: &Path) -> io::Result<File> {
    hook::crash_point_at(path);
    let file = OpenOptions::new().read(true).append(true).create(true).open(path)?;
    hook::opened(path, &file, false);
    Ok(file)
}

/// Writes all of `bytes` at `position` (`pwrite`).
#[inline]
pub fn write_at(file: &File, bytes: &[u8], position: u64) -> io::Result<()> {
    hook::crash_point_on(file);
    let admitted = full_disk::admit(file, bytes.len())?;
    file.write_all_at(&bytes[..admitted], position)?;
    hook::wrote(file, position, &bytes[..admitted]);
    if admitted < bytes.len() {
        return Err(full_disk::no_space());
    }
    Ok(())
}

/// Writes `parts` one after another at `position`, as [`write_at`] writes
/// one slice: bytes that are not contiguous in memory in one `pwritev`
/// (more only if the kernel writes short).
pub fn write_vectored_at(file: &File, parts: &[&[u8]], position: u64) -> io::Result<()> {
    use std::os::unix::io::AsRawFd;
    hook::crash_point_on(file);
    let total: usize = parts.iter().map(|p| p.len()).sum();
    let admitted = full_disk::admit(file, total)?;
    let mut done = 0;
    while done < admitted {
        let iovecs = remaining_iovecs(parts, done, admitted);
        let count = iovecs.len().min(libc::UIO_MAXIOV as usize) as libc::c_int;
        let at = libc::off_t::try_from(position + done as u64)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "write position past off_t"))?;
        // SAFETY: every iovec points into a live slice of `parts` with its
        // length; the file descriptor is open for the call.
        let n = unsafe { libc::pwritev(file.as_raw_fd(), iovecs.as_ptr(), count, at) };
        match n {
            n if n > 0 => done += n as usize,
            0 => return Err(io::ErrorKind::WriteZero.into()),
            _ => {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
        }
    }
    let mut at = position;
    let mut left = admitted;
    for part in parts {
        let written = &part[..part.len().min(left)];
        hook::wrote(file, at, written);
        at += written.len() as u64;
        left -= written.len();
    }
    if admitted < total {
        return Err(full_disk::no_space());
    }
    Ok(())
}

/// The iovecs of `parts` from byte `from` up to byte `to` of their
/// concatenation.
fn remaining_iovecs(parts: &[&[u8]], from: usize, to: usize) -> Vec<libc::iovec> {
    let mut iovecs = Vec::with_capacity(parts.len());
    let mut start = 0;
    for part in parts {
        let (lo, hi) = (from.max(start), to.min(start + part.len()));
        if lo < hi {
            let slice = &part[lo - start..hi - start];
            iovecs.push(libc::iovec {
                iov_base: slice.as_ptr() as *mut libc::c_void,
                iov_len: slice.len(),
            });
        }
        start += part.len();
    }
    iovecs
}

/// Appends all of `bytes` to a file opened with [`open_append`].
#[inline]
pub fn append(mut file: &File, bytes: &[u8]) -> io::Result<()> {
    hook::crash_point_on(file);
    let admitted = full_disk::admit(file, bytes.len())?;
    #[cfg(any(test, feature = "fault-injection"))]
    let position = file.metadata()?.len();
    file.write_all(&bytes[..admitted])?;
    #[cfg(any(test, feature = "fault-injection"))]
    hook::wrote(file, position, &bytes[..admitted]);
    if admitted < bytes.len() {
        return Err(full_disk::no_space());
    }
    Ok(())
}

/// Sets the file's length (`ftruncate`).
#[inline]
pub fn set_len(file: &File, len: u64) -> io::Result<()> {
    hook::crash_point_on(file);
    file.set_len(len)?;
    hook::set_len(file, len);
    Ok(())
}

/// Allocates the blocks of `[offset, offset + len)` of `file` without
/// changing its length (`fallocate`): a full filesystem answers `ENOSPC`
/// here rather than with `SIGBUS` at a later write through a memory
/// mapping of a sparse file (the preallocated indexes). A filesystem
/// without `fallocate` is left to allocate on write.
#[inline]
pub fn allocate(file: &File, offset: u64, len: u64) -> io::Result<()> {
    use std::os::unix::io::AsRawFd;
    full_disk::check_file(file)?;
    let (Ok(offset), Ok(len)) = (libc::off_t::try_from(offset), libc::off_t::try_from(len)) else {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "allocation beyond off_t"));
    };
    // SAFETY: fallocate on a descriptor we own; mode 0 keeps the length
    // (the range lies within the file).
    let rc = unsafe { libc::fallocate(file.as_raw_fd(), 0, offset, len) };
    if rc == 0 {
        return Ok(());
    }
    let e = io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::EOPNOTSUPP) => Ok(()),
        _ => Err(e),
    }
}

/// `fdatasync`: the file's bytes (and its length) are on disk.
#[inline]
pub fn sync_data(file: &File) -> io::Result<()> {
    hook::crash_point_on(file);
    file.sync_data()?;
    hook::synced(file);
    Ok(())
}

/// `fsync`: the file's bytes and metadata are on disk.
#[inline]
pub fn sync_all(file: &File) -> io::Result<()> {
    hook::crash_point_on(file);
    file.sync_all()?;
    hook::synced(file);
    Ok(())
}

/// Marks `file` as written through a memory mapping (its unsynced bytes
/// may or may not reach the disk in a crash).
#[inline]
pub fn mapped(file: &File) {
    hook::mapped(file);
}

/// Flushes a memory mapping of `file` (`msync`): its bytes are on disk.
#[inline]
pub fn sync_mapping(map: &memmap2::MmapMut, file_path: &Path) -> io::Result<()> {
    hook::crash_point_at(file_path);
    map.flush()?;
    #[cfg(any(test, feature = "fault-injection"))]
    if let Ok(file) = File::open(file_path) {
        hook::synced(&file);
    }
    #[cfg(not(any(test, feature = "fault-injection")))]
    let _ = file_path;
    Ok(())
}

/// Opens the file or directory at `path` and fsyncs it.
#[inline]
pub fn sync_path(path: &Path) -> io::Result<()> {
    if path.is_dir() {
        return sync_dir(path);
    }
    sync_all(&File::open(path)?)
}

/// Fsyncs a directory: the names created, renamed or removed in it are on
/// disk (a new file's data is not reachable after a crash until its
/// directory entry is).
#[inline]
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    hook::crash_point_at(dir);
    File::open(dir)?.sync_all()?;
    hook::synced_dir(dir);
    Ok(())
}

/// Renames `from` to `to` (replacing `to`); durable once the directory is
/// synced.
#[inline]
pub fn rename(from: &Path, to: &Path) -> io::Result<()> {
    hook::crash_point_at(from);
    std::fs::rename(from, to)
}

/// Removes the file at `path`; durable once the directory is synced.
#[inline]
pub fn remove_file(path: &Path) -> io::Result<()> {
    hook::crash_point_at(path);
    std::fs::remove_file(path)
}

/// Creates the directory `dir` (and missing parents) and makes its entry
/// durable: the parent directory is fsynced when `dir` was created.
pub fn create_dir_durably(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::create_dir_all(dir).map_err(|e| named(dir, "creating directory", e))?;
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        sync_dir(parent).map_err(|e| named(parent, "syncing directory", e))?;
    }
    Ok(())
}

/// Suffix of the temporary files [`write_atomically`] leaves behind when a
/// crash interrupts it; gregor-log removes them when it opens a log or a
/// log directory.
pub const TEMPORARY_SUFFIX: &str = ".tmp";

/// A temporary file beside `path` that no other writer uses
/// (`<name>.<pid>-<n>.tmp`): two threads replacing the same file at once
/// must not rename each other's half-written file.
fn temporary_path(path: &Path) -> PathBuf {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(format!(".{}-{n}{TEMPORARY_SUFFIX}", std::process::id()));
    path.with_file_name(name)
}

/// Replaces the file at `path` with `bytes` so that a crash at any moment
/// leaves either the old content or the new one: written to a temporary
/// file beside it (see [`TEMPORARY_SUFFIX`]), fsynced, renamed over `path`, the directory fsynced.
/// Errors name the file.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    replace(path, bytes, true)
}

/// [`write_atomically`] without the two fsyncs: the new file replaces the
/// old one by a rename, but neither its bytes nor the rename are durable
/// until the caller syncs the file and the directory (producer snapshots,
/// synced by the log's next flush so that no fsync runs under the append
/// lock; a crash before that leaves the old file, or a new one that is
/// empty or torn, which the reader must detect, as the snapshot's CRC does).
pub(crate) fn write_aside(path: &Path, bytes: &[u8]) -> io::Result<()> {
    replace(path, bytes, false)
}

fn replace(path: &Path, bytes: &[u8], durable: bool) -> io::Result<()> {
    let tmp = temporary_path(path);
    let write = || -> io::Result<()> {
        let file = create(&tmp)?;
        write_at(&file, bytes, 0)?;
        if durable {
            sync_all(&file)?;
        }
        rename(&tmp, path)?;
        if let Some(dir) = path.parent().filter(|p| durable && !p.as_os_str().is_empty()) {
            sync_dir(dir)?;
        }
        Ok(())
    };
    write().map_err(|e| named(path, "writing", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_atomically_replaces_the_file_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("topic.config");
        write_atomically(&path, b"a=1\n").unwrap();
        write_atomically(&path, b"b=2\n").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"b=2\n");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("topic.config")]);
    }

    #[test]
    fn concurrent_replacements_of_one_file_do_not_collide() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("topic.config");
        std::thread::scope(|s| {
            for t in 0..4 {
                let path = &path;
                s.spawn(move || {
                    for i in 0..50 {
                        write_atomically(path, format!("t{t}={i}\n").as_bytes()).unwrap();
                    }
                });
            }
        });
        assert!(std::fs::read_to_string(&path).unwrap().ends_with("=49\n"));
    }

    #[test]
    fn a_failed_write_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing-dir").join("topic.config");
        let err = write_atomically(&path, b"x").unwrap_err();
        assert!(err.to_string().contains("topic.config"), "{err}");
    }
}
