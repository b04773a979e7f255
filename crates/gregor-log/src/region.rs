//! Reading stored bytes: a file region for zero-copy sends, and a buffered
//! window for scanning a file batch by batch.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::os::unix::io::{AsRawFd, RawFd};
use std::sync::Arc;

/// A range of a segment file holding whole record batches. The file stays
/// readable even if the segment is deleted meanwhile (the handle keeps it).
#[derive(Debug, Clone)]
pub struct FileRegion {
    file: Arc<File>,
    position: u64,
    len: u64,
}

impl FileRegion {
    pub(crate) fn new(file: Arc<File>, position: u64, len: u64) -> Self {
        Self { file, position, len }
    }

    /// The segment file.
    pub fn file(&self) -> &File {
        &self.file
    }

    /// Start of the region in the file.
    pub fn position(&self) -> u64 {
        self.position
    }

    /// Length in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True for an empty region.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Copies the region into memory.
    pub fn read_to_vec(&self) -> io::Result<Vec<u8>> {
        let mut buf = vec![0u8; self.len as usize];
        self.file.read_exact_at(&mut buf, self.position)?;
        Ok(buf)
    }

    /// Sends the region to `out` (a socket or file) with `sendfile(2)`, the
    /// bytes never entering user space. Returns after everything was sent;
    /// a non-blocking `out` that would block returns `WouldBlock` with the
    /// count sent so far available through `sent`.
    pub fn send_to(&self, out: &impl AsRawFd, sent: &mut u64) -> io::Result<()> {
        send_file(self.file.as_raw_fd(), out.as_raw_fd(), self.position, self.len, sent)
    }
}

fn send_file(input: RawFd, output: RawFd, position: u64, len: u64, sent: &mut u64) -> io::Result<()> {
    while *sent < len {
        let mut offset = (position + *sent) as libc::off_t;
        let count = (len - *sent).min(1 << 30) as usize;
        // SAFETY: both descriptors are open for the duration of the call and
        // `offset` is a valid pointer to a local.
        let n = unsafe { libc::sendfile(output, input, &mut offset, count) };
        if n < 0 {
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(err);
        }
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "segment shorter than region",
            ));
        }
        *sent += n as u64;
    }
    Ok(())
}

/// A read-ahead window over a file, so that walking many small batches does
/// not cost a system call each.
pub(crate) struct FileWindow<'a> {
    file: &'a File,
    file_len: u64,
    buf: Vec<u8>,
    start: u64,
}

const WINDOW: usize = 1 << 20;

impl<'a> FileWindow<'a> {
    pub(crate) fn new(file: &'a File, file_len: u64) -> Self {
        Self {
            file,
            file_len,
            buf: Vec::new(),
            start: 0,
        }
    }

    /// The `len` bytes at `pos`, or `None` when the file ends first.
    pub(crate) fn get(&mut self, pos: u64, len: usize) -> io::Result<Option<&[u8]>> {
        if pos + len as u64 > self.file_len {
            return Ok(None);
        }
        let end = pos + len as u64;
        if pos < self.start || end > self.start + self.buf.len() as u64 {
            let want = len.max(WINDOW).min((self.file_len - pos) as usize);
            self.buf.resize(want, 0);
            self.file.read_exact_at(&mut self.buf, pos)?;
            self.start = pos;
        }
        let from = (pos - self.start) as usize;
        Ok(Some(&self.buf[from..from + len]))
    }
}
