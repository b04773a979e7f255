//! A partition log: an ordered set of segments, the last one active.
//!
//! Locking: `append_lock` serialises everything that changes the log's shape
//! (appends, rolls, retention, truncation); readers take the `segments` read
//! lock only long enough to clone a segment handle, then read the file
//! without any lock, bounded by what the writer has published
//! (`end_offset`, each segment's `size`). So a reader never waits for an
//! append's I/O, and an append waits for a reader only for a map lookup.

mod append;
mod append_checks;
mod flush;
mod maintenance;
mod open;
mod producers;
mod record_rules;
mod rewrite;
mod transactions;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::{Condvar, Mutex, RwLock};

use crate::clock::{Clock, SystemClock};
use crate::config::LogConfig;
use crate::epoch_cache::LeaderEpochCache;
use crate::error::{IoContext, LogError, Result};
use crate::producer_state::{ProducerStates, Transactions, Verifications};
use crate::region::FileRegion;
use crate::segment::Segment;

pub use append::AppendInfo;
pub use append_checks::AppendOrigin;
pub use maintenance::RetentionOutcome;
pub use rewrite::SegmentRewrite;

/// How to open a log: what the caller knows from its checkpoints.
#[derive(Debug, Clone)]
pub struct LogOpenOptions {
    /// Clock for roll, retention and LogAppendTime.
    pub clock: Arc<dyn Clock>,
    /// The log was closed cleanly: skip the recovery scan.
    pub clean_shutdown: bool,
    /// Offset below which everything is known to be on disk; recovery
    /// starts at the segment holding it. `None`: recover every segment.
    pub recovery_point: Option<u64>,
    /// Checkpointed log start offset.
    pub log_start_offset: Option<u64>,
    /// Checkpointed high watermark.
    pub high_watermark: Option<u64>,
    /// The high watermark follows the log end offset on every append (a log
    /// that is its own source of truth, not replicated). Replicated logs set
    /// this to false and move it with [`Log::set_high_watermark`].
    pub high_watermark_follows_end: bool,
}

impl Default for LogOpenOptions {
    fn default() -> Self {
        Self {
            clock: Arc::new(SystemClock),
            clean_shutdown: false,
            recovery_point: None,
            log_start_offset: None,
            high_watermark: None,
            high_watermark_follows_end: true,
        }
    }
}

/// What [`Log::read`] returns: whole batches as a file region, plus the
/// log's offsets at the time of the read.
#[derive(Debug, Clone)]
pub struct LogRead {
    /// The batches; `None` when there is nothing to read at that offset.
    pub region: Option<FileRegion>,
    /// Base offset of the first batch returned.
    pub first_batch_offset: Option<u64>,
    /// First offset still in the log.
    pub log_start_offset: u64,
    /// Next offset to be written.
    pub log_end_offset: u64,
    /// The high watermark.
    pub high_watermark: u64,
    /// The last stable offset: read_committed consumers read up to it.
    pub last_stable_offset: u64,
}

/// Summary of one segment, for tools and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentInfo {
    /// First offset the segment may hold.
    pub base_offset: u64,
    /// Bytes in its log file.
    pub size: u64,
    /// Entries in its offset index.
    pub index_entries: usize,
    /// The offset after it (the next segment's base, or the log end).
    pub end_offset: u64,
    /// Its largest record timestamp (file time when it has none).
    pub largest_timestamp: i64,
    /// When its file was last written, in ms (for a cleaned segment: when
    /// it was cleaned).
    pub last_modified_ms: i64,
}

/// A partition's commit log on disk.
///
/// ```
/// use gregor_log::{Log, LogConfig, batch::RecordBatchBuilder};
/// let dir = tempfile::tempdir().unwrap();
/// let log = Log::open(dir.path(), LogConfig::default()).unwrap();
/// let mut batch = RecordBatchBuilder::new(0);
/// batch.append(Some(b"k"), Some(b"v"), &[], 0);
/// let info = log.append(&mut batch.build(), 0).unwrap();
/// assert_eq!((info.first_offset, log.end_offset()), (0, 1));
/// let bytes = log.read_bytes(0, 1 << 20).unwrap();
/// assert_eq!(gregor_log::batch::validate_batch(&bytes).unwrap().record_count, 1);
/// log.close().unwrap();
/// ```
pub struct Log {
    dir: PathBuf,
    config: RwLock<Arc<LogConfig>>,
    clock: Arc<dyn Clock>,
    segments: RwLock<BTreeMap<u64, Arc<Segment>>>,
    append_lock: Mutex<AppendState>,
    end_offset: AtomicU64,
    log_start_offset: AtomicU64,
    high_watermark: AtomicU64,
    high_watermark_follows_end: bool,
    /// Ongoing and not yet replicated transactions (lock after
    /// `append_lock` when both are held).
    txns: Mutex<Transactions>,
    /// Their first offset (`u64::MAX`: none), for a lock-free last stable offset.
    first_unstable: AtomicU64,
    recovery_point: AtomicU64,
    last_flush_ms: AtomicI64,
    epoch_cache: Mutex<LeaderEpochCache>,
    flushing: Mutex<bool>,
    flush_done: Condvar,
    failure: Mutex<Option<String>>,
    /// The log directory's health, shared with its other logs when a
    /// [`crate::LogManager`] opened this one: one log's I/O error takes the
    /// whole directory offline.
    dir_health: std::sync::OnceLock<Arc<crate::log_dir::DirHealth>>,
    closed: AtomicBool,
    /// Files created since the last flush (a rolled segment's directory
    /// entry, producer snapshots): synced, with the directory, by the next
    /// flush rather than on the append path.
    unsynced_files: Mutex<Vec<PathBuf>>,
}

#[derive(Debug, Default)]
struct AppendState {
    unflushed_records: u64,
    producers: ProducerStates,
    /// Transactions being verified (KIP-890), by producer.
    verifications: Verifications,
}

impl Log {
    /// Opens (or creates) the log in `dir`, recovering every segment.
    pub fn open(dir: impl AsRef<Path>, config: LogConfig) -> Result<Self> {
        Self::open_with(dir, config, LogOpenOptions::default())
    }

    /// The partition directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The current configuration.
    pub fn config(&self) -> Arc<LogConfig> {
        self.config.read().clone()
    }

    /// Replaces the configuration (applies to the next append, roll, retention).
    pub fn set_config(&self, config: LogConfig) -> Result<()> {
        config.validate()?;
        *self.config.write() = Arc::new(config);
        Ok(())
    }

    /// The next offset to be assigned (log end offset).
    pub fn end_offset(&self) -> u64 {
        self.end_offset.load(Ordering::Acquire)
    }

    /// The first offset still readable.
    pub fn log_start_offset(&self) -> u64 {
        self.log_start_offset.load(Ordering::Acquire)
    }

    /// Offset up to which consumers may read.
    pub fn high_watermark(&self) -> u64 {
        self.high_watermark.load(Ordering::Acquire)
    }

    /// Moves the high watermark (clamped to `[log start, log end]`);
    /// transactions whose marker it passes become stable.
    pub fn set_high_watermark(&self, offset: u64) {
        let hw = offset.clamp(self.log_start_offset(), self.end_offset());
        let mut txns = self.txns.lock();
        self.high_watermark.store(hw, Ordering::Release);
        txns.on_high_watermark(hw);
        self.publish_first_unstable(&txns);
    }

    /// Everything below this offset is known to be on disk.
    pub fn recovery_point(&self) -> u64 {
        self.recovery_point.load(Ordering::Acquire)
    }

    /// The newest leader epoch in the epoch cache.
    pub fn latest_epoch(&self) -> Option<i32> {
        self.epoch_cache.lock().latest_epoch()
    }

    /// OffsetsForLeaderEpoch: the largest epoch ≤ `epoch` and its end offset.
    pub fn end_offset_for_epoch(&self, epoch: i32) -> Option<(i32, u64)> {
        self.epoch_cache.lock().end_offset_for(epoch, self.end_offset())
    }

    /// The leader epoch `offset` was written in, from the epoch cache.
    pub fn epoch_for_offset(&self, offset: u64) -> Option<i32> {
        self.epoch_cache.lock().epoch_for_offset(offset)
    }

    /// Total bytes in all segments.
    pub fn size_bytes(&self) -> u64 {
        self.segments.read().values().map(|s| s.size()).sum()
    }

    /// Number of segments.
    pub fn segment_count(&self) -> usize {
        self.segments.read().len()
    }

    /// A summary of each segment, oldest first.
    pub fn segments(&self) -> Vec<SegmentInfo> {
        let segments: Vec<Arc<Segment>> = self.segments.read().values().cloned().collect();
        let end = self.end_offset();
        let nexts: Vec<u64> = segments
            .iter()
            .skip(1)
            .map(|s| s.base_offset())
            .chain(Some(end))
            .collect();
        segments
            .iter()
            .zip(nexts)
            .map(|(s, end_offset)| SegmentInfo {
                base_offset: s.base_offset(),
                size: s.size(),
                index_entries: s.offset_index_entries(),
                end_offset,
                largest_timestamp: s.largest_timestamp(),
                last_modified_ms: s.last_modified_ms(),
            })
            .collect()
    }

    /// Reads whole batches from the one containing `offset`, up to
    /// `max_bytes` (but at least one batch), up to the log end.
    pub fn read(&self, offset: u64, max_bytes: u64) -> Result<LogRead> {
        self.read_bounded(offset, max_bytes, self.end_offset(), true)
    }

    /// Like [`Log::read`], returning only batches whose offsets lie below
    /// `max_offset` (consumers read up to the high watermark).
    pub fn read_bounded(&self, offset: u64, max_bytes: u64, max_offset: u64, min_one_batch: bool) -> Result<LogRead> {
        let log_end_offset = self.end_offset();
        let log_start_offset = self.log_start_offset();
        let mut result = LogRead {
            region: None,
            first_batch_offset: None,
            log_start_offset,
            log_end_offset,
            high_watermark: self.high_watermark(),
            last_stable_offset: self.last_stable_offset(),
        };
        if let Some(reason) = self.dir_failure() {
            return Err(LogError::Offline(reason));
        }
        if offset < log_start_offset || offset > log_end_offset {
            return Err(LogError::OffsetOutOfRange {
                offset,
                log_start: log_start_offset,
                log_end: log_end_offset,
            });
        }
        let max_offset = max_offset.min(log_end_offset);
        if offset >= max_offset {
            // Nothing to read: a caught-up follower or consumer. Not a
            // scan of the last segment's tail (a fetch session asks this
            // of every partition it holds, each time).
            return Ok(result);
        }
        let mut next = self
            .segments
            .read()
            .range(..=offset)
            .next_back()
            .map(|(_, s)| s.clone());
        while let Some(segment) = next {
            if segment.base_offset() >= max_offset {
                break;
            }
            let slice = segment
                .read(offset, max_bytes, max_offset, min_one_batch)
                .context(|| format!("reading {} at offset {offset}", self.dir.display()))?;
            if let Some(slice) = slice {
                if slice.len > 0 {
                    result.first_batch_offset = Some(slice.first_batch_offset);
                    result.region = Some(segment.region(slice));
                }
                break;
            }
            let after = segment.base_offset() + 1;
            next = self.segments.read().range(after..).next().map(|(_, s)| s.clone());
        }
        Ok(result)
    }

    /// [`Log::read`] copied into memory.
    pub fn read_bytes(&self, offset: u64, max_bytes: u64) -> Result<Bytes> {
        match self.read(offset, max_bytes)?.region {
            Some(region) => region
                .read_to_vec()
                .map(Bytes::from)
                .context(|| format!("reading {}", self.dir.display())),
            None => Ok(Bytes::new()),
        }
    }

    /// The first offset whose record timestamp is ≥ `timestamp`, with that
    /// timestamp; `None` when every record is older. Compressed batches
    /// answer with their base offset.
    pub fn offset_for_timestamp(&self, timestamp: i64) -> Result<Option<(u64, i64)>> {
        let start = self.log_start_offset();
        let segments: Vec<Arc<Segment>> = self.segments.read().values().cloned().collect();
        for segment in segments {
            if segment.size() == 0 || segment.largest_timestamp() < timestamp {
                continue;
            }
            let found = segment
                .offset_for_timestamp(timestamp, start)
                .context(|| format!("searching {} by timestamp", self.dir.display()))?;
            if found.is_some() {
                return Ok(found);
            }
        }
        Ok(None)
    }

    /// The first record carrying the log's largest timestamp, with that
    /// timestamp (ListOffsets MAX_TIMESTAMP, KIP-734): found in the earliest
    /// segment holding it, as Kafka does; `None` for an empty log.
    /// Compressed batches answer with their base offset.
    pub fn max_timestamp_offset(&self) -> Result<Option<(u64, i64)>> {
        let start = self.log_start_offset();
        let segments: Vec<Arc<Segment>> = self.segments.read().values().cloned().collect();
        let mut latest: Option<&Arc<Segment>> = None;
        for segment in segments.iter().filter(|s| s.size() > 0) {
            if latest.is_none_or(|l| segment.largest_timestamp() > l.largest_timestamp()) {
                latest = Some(segment);
            }
        }
        let Some(segment) = latest else { return Ok(None) };
        segment
            .offset_for_timestamp(segment.largest_timestamp(), start)
            .context(|| format!("searching {} for its largest timestamp", self.dir.display()))
    }

    fn active_segment(&self) -> Arc<Segment> {
        self.segments
            .read()
            .values()
            .next_back()
            .cloned()
            .expect("a log always has an active segment")
    }

    fn check_writable(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            return Err(LogError::Offline(format!("{} is closed", self.dir.display())));
        }
        if let Some(reason) = &*self.failure.lock() {
            return Err(LogError::Offline(reason.clone()));
        }
        match self.dir_failure() {
            Some(reason) => Err(LogError::Offline(reason)),
            None => Ok(()),
        }
    }

    /// Why the log (or its directory) is offline, if it is.
    fn failure_reason(&self) -> Option<String> {
        let own = self.failure.lock().clone();
        own.or_else(|| self.dir_failure())
    }

    /// Why the log's directory is offline, if it is.
    fn dir_failure(&self) -> Option<String> {
        self.dir_health.get().and_then(|h| h.failure())
    }

    /// Whether the log refuses writes (and its directory, reads) after an
    /// I/O error: its own, or another log's in the same directory.
    pub fn is_offline(&self) -> bool {
        self.failure_reason().is_some()
    }

    /// Joins the log to its directory's health (by the log manager).
    pub(crate) fn attach_dir(&self, health: Arc<crate::log_dir::DirHealth>) {
        let _ = self.dir_health.set(health);
    }

    /// Takes the log offline after an I/O error, and with it its
    /// directory: the kernel may have dropped what it could not write, so
    /// nothing written later may be acknowledged (Kafka's
    /// `LogDirFailureChannel`).
    pub(crate) fn fail(&self, reason: String) {
        let mut failure = self.failure.lock();
        if failure.is_none() {
            tracing::error!(dir = %self.dir.display(), "log offline: {reason}");
            *failure = Some(reason.clone());
        }
        drop(failure);
        if let Some(health) = self.dir_health.get() {
            health.fail(&reason);
        }
    }

    /// Passes `result` on; an I/O error in it takes the log offline.
    pub(crate) fn offline_on_io<T>(&self, result: Result<T>) -> Result<T> {
        if let Err(e @ LogError::Io { .. }) = &result {
            self.fail(e.to_string());
        }
        result
    }

    /// Flushes and closes the log: indexes trimmed, nothing left to recover.
    /// Later appends fail.
    pub fn close(&self) -> Result<()> {
        let state = self.append_lock.lock();
        if self.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        let closed = self
            .flush_to(self.end_offset())
            .and_then(|()| self.write_producer_snapshot(&state, self.end_offset()))
            .and_then(|()| self.sync_new_files())
            .and_then(|()| {
                self.active_segment()
                    .make_inactive()
                    .context(|| format!("closing {}", self.dir.display()))
            });
        self.offline_on_io(closed)
    }
}
