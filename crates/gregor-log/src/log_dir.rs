//! One log directory's lot: its health (online, or offline after an I/O
//! error, shared by the logs in it), its lock, and its volume's space.

use std::fs::{File, OpenOptions};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use crossbeam_channel::Sender;
use parking_lot::Mutex;
use tracing::error;

use crate::error::{IoContext, LogError, Result};

/// The lock file Kafka keeps in every log directory.
const LOCK_FILE: &str = ".lock";

/// Whether a log directory is online, shared by the logs in it: the first
/// I/O error of any of them takes the whole directory offline, as Kafka's
/// `LogDirFailureChannel` does, and the log manager announces it once.
pub(crate) struct DirHealth {
    path: PathBuf,
    offline: AtomicBool,
    reason: Mutex<Option<String>>,
    announce: Sender<PathBuf>,
}

impl DirHealth {
    pub(crate) fn new(path: PathBuf, announce: Sender<PathBuf>) -> Self {
        Self {
            path,
            offline: AtomicBool::new(false),
            reason: Mutex::new(None),
            announce,
        }
    }

    /// Why the directory is offline, if it is (one atomic load when online).
    pub(crate) fn failure(&self) -> Option<String> {
        if !self.offline.load(Ordering::Acquire) {
            return None;
        }
        self.reason.lock().clone()
    }

    /// Takes the directory offline (the first call announces it).
    pub(crate) fn fail(&self, reason: &str) {
        let mut slot = self.reason.lock();
        if slot.is_some() {
            return;
        }
        error!(dir = %self.path.display(), "log directory offline: {reason}");
        *slot = Some(reason.to_string());
        self.offline.store(true, Ordering::Release);
        drop(slot);
        let _ = self.announce.send(self.path.clone());
    }
}

/// Takes an exclusive `flock` on the directory's `.lock` file.
pub(crate) fn lock_dir(path: &Path) -> Result<File> {
    let lock_path = path.join(LOCK_FILE);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .context(|| format!("opening {}", lock_path.display()))?;
    // SAFETY: flock on a descriptor we own.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc != 0 {
        return Err(LogError::Unrecoverable {
            dir: path.to_path_buf(),
            reason: "the log directory is in use by another process".into(),
        });
    }
    Ok(file)
}

/// The size of the filesystem holding `path` and the bytes an unprivileged
/// writer may still use there (`statvfs(3)`: Java's `FileStore`
/// `getTotalSpace` / `getUsableSpace`, which Kafka reports).
pub fn volume_space(path: &Path) -> std::io::Result<(u64, u64)> {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    // SAFETY: a NUL-terminated path, and a zeroed struct that statvfs fills.
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::statvfs(c_path.as_ptr(), &mut stat) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    #[allow(clippy::unnecessary_cast, clippy::useless_conversion)]
    let (fragment, blocks, available) = (stat.f_frsize as u64, stat.f_blocks as u64, stat.f_bavail as u64);
    Ok((blocks.saturating_mul(fragment), available.saturating_mul(fragment)))
}
