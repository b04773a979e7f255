//! One segment: a `.log` file of record batches and its two indexes.
//!
//! Appends come from one writer at a time (the log's append lock); readers
//! run concurrently and see only bytes up to `size`, which the writer
//! publishes after the bytes and the index entries for them are in place.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

use crate::batch::{
    validate_batch_integrity, BatchHeader, Compression, EndTransactionMarker, Records, BATCH_HEADER_SIZE,
};
use crate::config::LogConfig;
use crate::disk_io;
use crate::file_names::file_name;
use crate::index::{OffsetIndex, TimeIndex};
use crate::region::{FileRegion, FileWindow};
use crate::txn_index::TxnIndex;

/// State only the writer touches.
#[derive(Debug, Default)]
struct WriteState {
    next_offset: u64,
    bytes_since_index: u64,
    max_ts_so_far: i64,
    offset_of_max_ts: u64,
    /// Max timestamp of the first batch: what `segment.ms` is measured from.
    rolling_ts: Option<i64>,
}

/// What a recovery scan found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RecoveryOutcome {
    /// Bytes cut from the end of the file.
    pub truncated_bytes: u64,
    /// The offset after the last valid batch.
    pub next_offset: u64,
}

/// Where a read starts and how long it is, within one segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SegmentSlice {
    pub position: u64,
    pub len: u64,
    pub first_batch_offset: u64,
}

pub(crate) struct Segment {
    base_offset: u64,
    log_path: RwLock<PathBuf>,
    file: Arc<File>,
    offset_index: RwLock<OffsetIndex>,
    time_index: RwLock<TimeIndex>,
    txn_index: TxnIndex,
    size: AtomicU64,
    max_timestamp: AtomicI64,
    created_ms: i64,
    write: Mutex<WriteState>,
}

impl Segment {
    /// Creates a new empty segment (replacing leftover files of that name).
    pub(crate) fn create(dir: &Path, base_offset: u64, config: &LogConfig, now_ms: i64) -> io::Result<Self> {
        Self::create_with_suffix(dir, base_offset, config, now_ms, "")
    }

    /// Creates a segment whose file names carry `suffix` (`.cleaned` for a
    /// cleaner's output, renamed into place by [`Segment::rename_suffix`]).
    pub(crate) fn create_with_suffix(
        dir: &Path,
        base_offset: u64,
        config: &LogConfig,
        now_ms: i64,
        suffix: &str,
    ) -> io::Result<Self> {
        let log_path = dir.join(file_name(base_offset, ".log") + suffix);
        let file = disk_io::create(&log_path)?;
        for ext in [".index", ".timeindex", ".txnindex"] {
            match disk_io::remove_file(&dir.join(file_name(base_offset, ext) + suffix)) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        let index_bytes = Some(config.segment_index_bytes as usize);
        let segment = Self::assemble(dir, base_offset, log_path, file, index_bytes, now_ms, suffix)?;
        Ok(segment.with_next_offset(base_offset))
    }

    /// Opens an existing segment; indexes are mapped as found (use
    /// [`Segment::indexes_are_sane`] / [`Segment::recover`] to trust them).
    pub(crate) fn open(dir: &Path, base_offset: u64, now_ms: i64) -> io::Result<Self> {
        let log_path = dir.join(file_name(base_offset, ".log"));
        let file = disk_io::open_rw(&log_path, false)?;
        let created_ms = file
            .metadata()?
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(now_ms, |d| d.as_millis() as i64);
        let segment = Self::assemble(dir, base_offset, log_path, file, None, created_ms, "")?;
        let size = segment.file.metadata()?.len();
        segment.size.store(size, Ordering::Release);
        let last_ts = segment.time_index.read().last_entry().map(|e| e.timestamp);
        segment.max_timestamp.store(last_ts.unwrap_or(-1), Ordering::Release);
        Ok(segment)
    }

    fn assemble(
        dir: &Path,
        base_offset: u64,
        log_path: PathBuf,
        file: File,
        index_bytes: Option<usize>,
        created_ms: i64,
        suffix: &str,
    ) -> io::Result<Self> {
        let index_path = dir.join(file_name(base_offset, ".index") + suffix);
        let offset_index = OffsetIndex::open(&index_path, base_offset, index_bytes)?;
        let time_path = dir.join(file_name(base_offset, ".timeindex") + suffix);
        let time_index = TimeIndex::open(&time_path, base_offset, index_bytes)?;
        let txn_index = TxnIndex::new(dir.join(file_name(base_offset, ".txnindex") + suffix));
        Ok(Self {
            base_offset,
            log_path: RwLock::new(log_path),
            file: Arc::new(file),
            offset_index: RwLock::new(offset_index),
            time_index: RwLock::new(time_index),
            txn_index,
            size: AtomicU64::new(0),
            max_timestamp: AtomicI64::new(-1),
            created_ms,
            write: Mutex::new(WriteState::default()),
        })
    }

    fn with_next_offset(self, next: u64) -> Self {
        {
            let mut w = self.write.lock();
            w.next_offset = next;
            w.offset_of_max_ts = next;
            w.max_ts_so_far = -1;
        }
        self
    }

    pub(crate) fn base_offset(&self) -> u64 {
        self.base_offset
    }

    /// Committed size in bytes.
    pub(crate) fn size(&self) -> u64 {
        self.size.load(Ordering::Acquire)
    }

    /// The offset after the last batch (maintained for the active segment
    /// and after recovery or a tail scan).
    pub(crate) fn next_offset(&self) -> u64 {
        self.write.lock().next_offset
    }

    /// Largest record timestamp, or the file's modification time when the
    /// segment has no timestamps (as Kafka does for retention).
    pub(crate) fn largest_timestamp(&self) -> i64 {
        match self.max_timestamp.load(Ordering::Acquire) {
            ts if ts >= 0 => ts,
            _ => self.created_ms,
        }
    }

    pub(crate) fn offset_index_entries(&self) -> usize {
        self.offset_index.read().len()
    }

    /// True when an append of `bytes` with `max_timestamp` must go to a new
    /// segment instead (size, age, or a full index).
    pub(crate) fn should_roll(&self, config: &LogConfig, bytes: u64, max_timestamp: i64, now_ms: i64) -> bool {
        let size = self.size();
        if size == 0 {
            return false;
        }
        let w = self.write.lock();
        let waited = match w.rolling_ts {
            Some(first) => max_timestamp - first,
            None => now_ms - self.created_ms,
        };
        size + bytes > u64::from(config.segment_bytes)
            || waited > config.segment_ms
            || self.offset_index.read().is_full()
            || self.time_index.read().is_full()
    }

    /// Writes `parts` one after another (together whole batches described
    /// by `batches`: position in the concatenation and header) at the end
    /// of the file and indexes them.
    pub(crate) fn append(
        &self,
        parts: &[&[u8]],
        batches: &[(usize, BatchHeader)],
        index_interval: u32,
    ) -> io::Result<()> {
        let mut w = self.write.lock();
        let start = self.size.load(Ordering::Relaxed);
        let len: usize = parts.iter().map(|p| p.len()).sum();
        if let Err(e) = disk_io::write_vectored_at(&self.file, parts, start) {
            // Keep what was written before: cut the partial write off again.
            let _ = disk_io::set_len(&self.file, start);
            return Err(e);
        }
        self.index_batches(&mut w, start, batches.iter().copied(), index_interval);
        self.size.store(start + len as u64, Ordering::Release);
        Ok(())
    }

    fn index_batches(
        &self,
        w: &mut WriteState,
        start: u64,
        batches: impl Iterator<Item = (usize, BatchHeader)>,
        interval: u32,
    ) {
        let mut offset_index = None;
        for (at, h) in batches {
            let position = start + at as u64;
            if w.rolling_ts.is_none() {
                w.rolling_ts = Some(h.max_timestamp);
            }
            if h.max_timestamp > w.max_ts_so_far {
                w.max_ts_so_far = h.max_timestamp;
                w.offset_of_max_ts = h.base_offset;
            }
            if w.bytes_since_index > u64::from(interval) {
                offset_index
                    .get_or_insert_with(|| self.offset_index.write())
                    .append(h.last_offset(), position as u32);
                self.time_index
                    .write()
                    .maybe_append(w.max_ts_so_far, w.offset_of_max_ts, false);
                w.bytes_since_index = 0;
            }
            w.bytes_since_index += h.total_size() as u64;
            w.next_offset = h.next_offset();
        }
        self.max_timestamp.fetch_max(w.max_ts_so_far, Ordering::AcqRel);
    }

    /// Reads the header of the batch at `position` if it lies whole below `limit`.
    fn header_at(&self, position: u64, limit: u64) -> io::Result<Option<BatchHeader>> {
        if position + BATCH_HEADER_SIZE as u64 > limit {
            return Ok(None);
        }
        let mut buf = [0u8; BATCH_HEADER_SIZE];
        self.file.read_exact_at(&mut buf, position)?;
        let header = BatchHeader::parse(&buf).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        Ok((position + header.total_size() as u64 <= limit).then_some(header))
    }

    /// Position and header of the first batch whose last offset is ≥ `offset`.
    fn find_batch(&self, offset: u64, limit: u64) -> io::Result<Option<(u64, BatchHeader)>> {
        let mut position = u64::from(self.offset_index.read().lookup(offset).position);
        while let Some(h) = self.header_at(position, limit)? {
            if h.last_offset() >= offset {
                return Ok(Some((position, h)));
            }
            position += h.total_size() as u64;
        }
        Ok(None)
    }

    /// Headers of every batch from the one containing `offset` to the end,
    /// each control batch with its transaction marker (read from the file;
    /// one that holds no readable marker has none).
    pub(crate) fn batches_from(&self, offset: u64) -> io::Result<Vec<(BatchHeader, Option<EndTransactionMarker>)>> {
        let limit = self.size();
        let mut batches = Vec::new();
        let Some((mut position, mut header)) = self.find_batch(offset, limit)? else {
            return Ok(batches);
        };
        loop {
            let marker = if header.is_control() {
                let mut batch = vec![0u8; header.total_size()];
                self.file.read_exact_at(&mut batch, position)?;
                EndTransactionMarker::of_batch(&batch, &header).ok().flatten()
            } else {
                None
            };
            batches.push((header, marker));
            position += header.total_size() as u64;
            match self.header_at(position, limit)? {
                Some(h) => header = h,
                None => return Ok(batches),
            }
        }
    }

    /// The whole batches from the one containing `offset`, at most
    /// `max_bytes` long but always the first batch when `min_one_batch`,
    /// and only batches whose offsets all lie below `max_offset`.
    pub(crate) fn read(
        &self,
        offset: u64,
        max_bytes: u64,
        max_offset: u64,
        min_one_batch: bool,
    ) -> io::Result<Option<SegmentSlice>> {
        let limit = self.size();
        let Some((mut start, mut first)) = self.find_batch(offset, limit)? else {
            return Ok(None);
        };
        // Batches the cleaner emptied only hold their offsets; a reader
        // skips them (clients see the gap), so a segment of nothing else
        // reads as no data and the log moves on to the next one.
        while first.record_count == 0 {
            let next = start + first.total_size() as u64;
            match self.header_at(next, limit)? {
                Some(h) => (start, first) = (next, h),
                None => return Ok(None),
            }
        }
        let first_len = first.total_size() as u64;
        let slice = |len| SegmentSlice {
            position: start,
            len,
            first_batch_offset: first.base_offset,
        };
        if first.last_offset() >= max_offset {
            return Ok(Some(slice(0)));
        }
        if first_len > max_bytes {
            return Ok(Some(slice(if min_one_batch { first_len } else { 0 })));
        }
        let bound = limit.min(start + max_bytes);
        // Jump over the batches the index proves lie within both bounds
        // (an entry is a batch's last offset and start position), then walk.
        let jump = {
            let index = self.offset_index.read();
            let by_position = index.lookup_position(bound.min(u64::from(u32::MAX)) as u32);
            let by_offset = index.lookup(max_offset.saturating_sub(1));
            u64::from(by_position.position.min(by_offset.position))
        };
        let mut end = if jump > start { jump } else { start + first_len };
        while let Some(h) = self.header_at(end, bound)? {
            if h.last_offset() >= max_offset {
                break;
            }
            end += h.total_size() as u64;
        }
        Ok(Some(slice(end - start)))
    }

    /// A region of this segment's file.
    pub(crate) fn region(&self, slice: SegmentSlice) -> FileRegion {
        FileRegion::new(self.file.clone(), slice.position, slice.len)
    }

    /// The first offset at or after `from_offset` whose record timestamp is
    /// ≥ `timestamp`. Compressed batches answer with their base offset (the
    /// records are not decompressed here).
    pub(crate) fn offset_for_timestamp(&self, timestamp: i64, from_offset: u64) -> io::Result<Option<(u64, i64)>> {
        if self.largest_timestamp() < timestamp && self.max_timestamp.load(Ordering::Acquire) >= 0 {
            return Ok(None);
        }
        let start_offset = self
            .time_index
            .read()
            .lookup(timestamp)
            .map_or(self.base_offset, |e| e.offset)
            .max(from_offset);
        let limit = self.size();
        let mut position = u64::from(self.offset_index.read().lookup(start_offset).position);
        while let Some(h) = self.header_at(position, limit)? {
            if h.max_timestamp >= timestamp && h.last_offset() >= from_offset {
                if h.compression().ok() != Some(Compression::None) {
                    return Ok(Some((h.base_offset.max(from_offset), h.max_timestamp)));
                }
                let mut batch = vec![0u8; h.total_size()];
                self.file.read_exact_at(&mut batch, position)?;
                for record in Records::new(&batch, &h) {
                    let record = record.map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
                    let ts = h.base_timestamp + record.timestamp_delta;
                    let offset = h.base_offset + record.offset_delta as u64;
                    if ts >= timestamp && offset >= from_offset {
                        return Ok(Some((offset, ts)));
                    }
                }
            }
            position += h.total_size() as u64;
        }
        Ok(None)
    }

    /// True when both indexes are consistent with the log file.
    pub(crate) fn indexes_are_sane(&self) -> bool {
        let size = self.size();
        self.offset_index.read().is_sane(size) && self.time_index.read().is_sane(u64::MAX)
    }

    /// Validates every batch from the start, rebuilds both indexes, and cuts
    /// the file at the first invalid byte (a torn or corrupt tail).
    pub(crate) fn recover(&self, config: &LogConfig) -> io::Result<RecoveryOutcome> {
        let mut oi = self.offset_index.write();
        let mut ti = self.time_index.write();
        oi.preallocate(config.segment_index_bytes as usize)?;
        ti.preallocate(config.segment_index_bytes as usize)?;
        oi.reset();
        ti.reset();
        drop((oi, ti));
        let file_len = self.file.metadata()?.len();
        let mut w = self.write.lock();
        *w = WriteState {
            next_offset: self.base_offset,
            offset_of_max_ts: self.base_offset,
            max_ts_so_far: -1,
            ..WriteState::default()
        };
        self.max_timestamp.store(-1, Ordering::Release);
        let mut window = FileWindow::new(&self.file, file_len);
        let mut valid = 0u64;
        while let Some(head) = window.get(valid, BATCH_HEADER_SIZE)? {
            let Ok(header) = BatchHeader::parse(head) else { break };
            let Some(batch) = window.get(valid, header.total_size())? else {
                break;
            };
            let in_order =
                header.base_offset >= w.next_offset && header.last_offset() - self.base_offset <= u64::from(u32::MAX);
            if !in_order || validate_batch_integrity(batch).is_err() {
                break;
            }
            self.index_batches(&mut w, valid, std::iter::once((0, header)), config.index_interval_bytes);
            valid += header.total_size() as u64;
        }
        if valid < file_len {
            disk_io::set_len(&self.file, valid)?;
        }
        self.size.store(valid, Ordering::Release);
        Ok(RecoveryOutcome {
            truncated_bytes: file_len - valid,
            next_offset: w.next_offset,
        })
    }

    /// Restores the writer's state from the indexes and the batches after
    /// the last index entry (a cleanly closed segment becoming active).
    pub(crate) fn load_tail(&self) -> io::Result<()> {
        let size = self.size();
        let last = self.offset_index.read().lookup(u64::MAX);
        let time_last = self.time_index.read().last_entry();
        let mut w = self.write.lock();
        w.next_offset = self.base_offset;
        w.bytes_since_index = 0;
        w.max_ts_so_far = time_last.map_or(-1, |e| e.timestamp);
        w.offset_of_max_ts = time_last.map_or(self.base_offset, |e| e.offset);
        let mut position = u64::from(last.position);
        let mut window = FileWindow::new(&self.file, size);
        let mut first = position == 0;
        while let Some(head) = window.get(position, BATCH_HEADER_SIZE)? {
            let h = BatchHeader::parse(head).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            if first {
                w.rolling_ts = Some(h.max_timestamp);
                first = false;
            }
            if h.max_timestamp > w.max_ts_so_far {
                w.max_ts_so_far = h.max_timestamp;
                w.offset_of_max_ts = h.base_offset;
            }
            w.bytes_since_index += h.total_size() as u64;
            w.next_offset = h.next_offset();
            position += h.total_size() as u64;
        }
        if w.rolling_ts.is_none() && size > 0 {
            // The first batch lies before the last index entry.
            if let Some(head) = window.get(0, BATCH_HEADER_SIZE)? {
                w.rolling_ts = BatchHeader::parse(head).ok().map(|h| h.max_timestamp);
            }
        }
        self.max_timestamp.fetch_max(w.max_ts_so_far, Ordering::AcqRel);
        Ok(())
    }

    /// Cuts the segment before the first batch holding an offset ≥ `offset`.
    /// Returns whether anything was removed; call [`Segment::load_tail`] after.
    pub(crate) fn truncate_to(&self, offset: u64) -> io::Result<bool> {
        let Some((position, header)) = self.find_batch(offset, self.size())? else {
            return Ok(false);
        };
        disk_io::set_len(&self.file, position)?;
        self.size.store(position, Ordering::Release);
        self.offset_index.write().truncate_to(header.base_offset);
        self.time_index.write().truncate_to(header.base_offset);
        self.max_timestamp.store(-1, Ordering::Release);
        Ok(true)
    }

    /// Makes this segment ready to take appends: indexes preallocated.
    pub(crate) fn make_active(&self, config: &LogConfig) -> io::Result<()> {
        self.offset_index
            .write()
            .preallocate(config.segment_index_bytes as usize)?;
        self.time_index.write().preallocate(config.segment_index_bytes as usize)
    }

    /// The segment stops being active: the time index gets its final entry
    /// and both indexes are trimmed to their entries.
    pub(crate) fn make_inactive(&self) -> io::Result<()> {
        let w = self.write.lock();
        let mut ti = self.time_index.write();
        if w.max_ts_so_far >= 0 {
            ti.maybe_append(w.max_ts_so_far, w.offset_of_max_ts, true);
        }
        ti.trim()?;
        self.offset_index.write().trim()
    }

    /// Forces the log file and the indexes to disk.
    pub(crate) fn flush(&self) -> io::Result<()> {
        disk_io::sync_data(&self.file)?;
        self.offset_index.read().flush()?;
        self.time_index.read().flush()?;
        self.txn_index.sync()
    }

    /// The segment's aborted transaction index.
    pub(crate) fn txn_index(&self) -> &TxnIndex {
        &self.txn_index
    }

    /// Renames the three files to their live names plus `suffix`; the open
    /// handles stay valid.
    pub(crate) fn rename_suffix(&self, suffix: &str) -> io::Result<()> {
        let dir = self.dir();
        let base = self.base_offset;
        self.offset_index
            .write()
            .rename(&dir.join(file_name(base, ".index") + suffix))?;
        self.time_index
            .write()
            .rename(&dir.join(file_name(base, ".timeindex") + suffix))?;
        self.txn_index
            .rename(&dir.join(file_name(base, ".txnindex") + suffix))?;
        let to = dir.join(file_name(base, ".log") + suffix);
        disk_io::rename(&self.log_path.read(), &to)?;
        *self.log_path.write() = to;
        Ok(())
    }

    fn dir(&self) -> PathBuf {
        self.log_path.read().parent().map(Path::to_path_buf).unwrap_or_default()
    }

    /// Modification time of the log file, in ms (when a cleaned segment was
    /// written, for the tombstone horizon).
    pub(crate) fn last_modified_ms(&self) -> i64 {
        self.file
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_millis() as i64)
    }

    /// Sets the log file's modification time.
    pub(crate) fn set_last_modified_ms(&self, ms: i64) -> io::Result<()> {
        let time = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64);
        self.file.set_modified(time)
    }

    /// Removes the segment's files (and, under its live names, its end
    /// marker: see [`crate::segment_end`]).
    pub(crate) fn delete_files(&self) -> io::Result<()> {
        let live = *self.log_path.read() == self.dir().join(file_name(self.base_offset, ".log"));
        if live {
            crate::segment_end::remove(&self.dir(), self.base_offset)?;
        }
        let paths = [
            self.log_path.read().clone(),
            self.offset_index.read().path().to_path_buf(),
            self.time_index.read().path().to_path_buf(),
            self.txn_index.path(),
        ];
        for path in paths {
            match disk_io::remove_file(&path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        Ok(())
    }
}
