//! Appending batches: validation, offset assignment, roll, durability.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::append_checks::{check_producer, check_verified, markers_of, validate_all, AppendOrigin, Origin};
use super::record_rules::RecordRules;
use super::{AppendState, Log};
use crate::batch::{
    set_base_offset, set_log_append_time, set_partition_leader_epoch, BatchHeader, EndTransactionMarker,
    STAMPED_PREFIX_LEN,
};
use crate::config::{FlushPolicy, LogConfig, MessageTimestampType};
use crate::error::{IoContext, LogError, Result};
use crate::producer_state::{TxnEvent, TxnVerification, Validation};
use crate::segment::Segment;
use crate::txn_index::AbortedTxn;

/// What an append wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendInfo {
    /// Offset of the first record.
    pub first_offset: u64,
    /// Offset of the last record.
    pub last_offset: u64,
    /// Largest timestamp among the batches.
    pub max_timestamp: i64,
    /// The broker time stamped on the batches, for `LogAppendTime` logs.
    pub log_append_time: Option<i64>,
    /// Number of batches.
    pub batch_count: usize,
    /// Number of records (as the headers count them).
    pub record_count: u64,
    /// Bytes appended.
    pub bytes: usize,
    /// Log start offset after the append.
    pub log_start_offset: u64,
    /// The batch was an idempotent producer's retry of one already in the
    /// log: nothing was written, and the offsets are the original ones.
    pub duplicate: bool,
}

impl Log {
    /// Appends a producer's batch: validates it (CRC, every record of an
    /// uncompressed batch, and the records as `RecordRules` asks: keys,
    /// timestamps), assigns offsets from the log end and stamps
    /// `leader_epoch` (−1 when unreplicated), rewriting those fields in
    /// `batches` in place. With [`FlushPolicy::GroupCommit`] it returns once
    /// the bytes are on disk.
    pub fn append(&self, batches: &mut [u8], leader_epoch: i32) -> Result<AppendInfo> {
        self.append_with_origin(batches, leader_epoch, AppendOrigin::Client)
    }

    /// [`Log::append`] for a producer ([`AppendOrigin::Client`]) or a
    /// coordinator ([`AppendOrigin::Coordinator`]). Every batch with a
    /// producer id updates that producer's state: a transactional batch
    /// opens its transaction, a marker ends it (an ABORT is entered in the
    /// transaction index). A fenced producer epoch, a marker of an older
    /// coordinator epoch, or a non-transactional batch inside an open
    /// transaction refuses the whole append.
    pub fn append_with_origin(
        &self,
        batches: &mut [u8],
        leader_epoch: i32,
        origin: AppendOrigin,
    ) -> Result<AppendInfo> {
        self.append_verified(batches, leader_epoch, origin, TxnVerification::Skip)
    }

    /// [`Log::append_with_origin`], checking as `verification` says that a
    /// transactional batch opening its producer's transaction was verified
    /// with the transaction coordinator (KIP-890): with
    /// [`TxnVerification::Guard`], such a batch is refused
    /// ([`ProducerError::TransactionNotVerified`], nothing written) unless
    /// the guard is the producer's current one. Refused for want of a
    /// guard ([`VerificationGuard::NONE`]), the error carries the guard to
    /// verify and retry with. A producer's duplicate is answered before
    /// this check, as Kafka does.
    pub fn append_verified(
        &self,
        batches: &mut [u8],
        leader_epoch: i32,
        origin: AppendOrigin,
        verification: TxnVerification,
    ) -> Result<AppendInfo> {
        self.append_as_leader(LeaderBatches::InPlace(batches), leader_epoch, origin, verification)
    }

    /// [`Log::append_verified`] for batches the caller keeps as they are
    /// (a request's shared buffer): nothing is stamped into `batches`;
    /// each batch's first [`STAMPED_PREFIX_LEN`] bytes are stamped in a
    /// copy written ahead of the rest of the batch (one `pwritev`), so the
    /// records are never copied. A `LogAppendTime` log, which rewrites
    /// timestamps and CRC, copies the batches first.
    pub fn append_shared(
        &self,
        batches: &[u8],
        leader_epoch: i32,
        origin: AppendOrigin,
        verification: TxnVerification,
    ) -> Result<AppendInfo> {
        self.append_as_leader(LeaderBatches::Shared(batches), leader_epoch, origin, verification)
    }

    fn append_as_leader(
        &self,
        batches: LeaderBatches<'_>,
        leader_epoch: i32,
        origin: AppendOrigin,
        verification: TxnVerification,
    ) -> Result<AppendInfo> {
        self.check_writable()?;
        let config = self.config();
        let now = self.clock.now_ms();
        let rules = RecordRules::new(&config, now, &self.dir);
        let mut headers = validate_all(batches.bytes(), &config, Origin::Leader(origin, &rules))?;
        let markers = markers_of(batches.bytes(), &headers, true)?;
        let log_append_time = (config.message_timestamp_type == MessageTimestampType::LogAppendTime).then_some(now);
        let mut copied = Vec::new();
        let mut batches = match (log_append_time, batches) {
            (Some(_), LeaderBatches::Shared(shared)) => {
                copied.extend_from_slice(shared);
                LeaderBatches::InPlace(&mut copied)
            }
            (_, batches) => batches,
        };
        let mut state = self.append_lock.lock();
        self.check_writable()?;
        if origin == AppendOrigin::Client {
            if let Some(done) = check_producer(&state, &headers)? {
                return Ok(AppendInfo {
                    first_offset: done.first_offset,
                    last_offset: done.last_offset,
                    max_timestamp: done.timestamp,
                    log_append_time: None,
                    batch_count: 1,
                    record_count: done.last_offset - done.first_offset + 1,
                    bytes: 0,
                    log_start_offset: self.log_start_offset(),
                    duplicate: true,
                });
            }
        }
        if let TxnVerification::Guard(guard) = verification {
            check_verified(&mut state, &headers, guard, now)?;
        }
        let mut next = self.end_offset();
        let mut prefixes = Vec::new();
        for (at, header) in headers.iter_mut() {
            let (at, size) = (*at, header.total_size());
            let stamped = match &mut batches {
                LeaderBatches::InPlace(bytes) => &mut bytes[at..at + size],
                LeaderBatches::Shared(bytes) => {
                    prefixes.push([0; STAMPED_PREFIX_LEN]);
                    let prefix = prefixes.last_mut().expect("just pushed");
                    prefix.copy_from_slice(&bytes[at..at + STAMPED_PREFIX_LEN]);
                    &mut prefix[..]
                }
            };
            set_base_offset(stamped, next);
            set_partition_leader_epoch(stamped, leader_epoch);
            if let Some(ts) = log_append_time {
                set_log_append_time(stamped, ts);
                header.max_timestamp = ts;
            }
            header.base_offset = next;
            header.partition_leader_epoch = leader_epoch;
            next = header.next_offset();
        }
        let parts: Vec<&[u8]> = match &batches {
            LeaderBatches::InPlace(bytes) => vec![&bytes[..]],
            LeaderBatches::Shared(bytes) => headers
                .iter()
                .zip(&prefixes)
                .flat_map(|((at, header), prefix)| {
                    [&prefix[..], &bytes[at + STAMPED_PREFIX_LEN..at + header.total_size()]]
                })
                .collect(),
        };
        let written = Written {
            parts: &parts,
            headers: &headers,
            markers: &markers,
            validation: Validation::Checked,
        };
        let mut info = self.offline_on_io(self.write_locked(&mut state, &config, written, now))?;
        info.log_append_time = log_append_time;
        drop(state);
        self.offline_on_io(self.after_append(&config, &info, now))?;
        Ok(info)
    }

    /// A transaction marker for `producer_id` at `producer_epoch`, written
    /// as the transaction coordinator does ([`AppendOrigin::Coordinator`]),
    /// stamped with the broker's clock.
    pub fn append_marker(
        &self,
        producer_id: i64,
        producer_epoch: i16,
        marker: EndTransactionMarker,
        leader_epoch: i32,
    ) -> Result<AppendInfo> {
        let mut batch = marker.batch(producer_id, producer_epoch, self.clock.now_ms());
        self.append_with_origin(&mut batch, leader_epoch, AppendOrigin::Coordinator)
    }

    /// Appends batches that already carry their offsets and leader epochs
    /// (a follower copying its leader, or the cleaner). Offsets must start
    /// at or after the log end and increase; gaps are allowed (compaction).
    /// Producer state (transactions and markers included) is updated
    /// without checks, as the leader's was.
    pub fn append_replicated(&self, batches: &[u8]) -> Result<AppendInfo> {
        self.check_writable()?;
        let config = self.config();
        let headers = validate_all(batches, &config, Origin::Replica)?;
        let markers = markers_of(batches, &headers, false)?;
        let now = self.clock.now_ms();
        let mut state = self.append_lock.lock();
        self.check_writable()?;
        let mut expected = self.end_offset();
        for (_, h) in &headers {
            if h.base_offset < expected {
                return Err(LogError::OffsetsOutOfOrder {
                    offset: h.base_offset,
                    log_end: expected,
                });
            }
            expected = h.next_offset();
        }
        let written = Written {
            parts: &[batches],
            headers: &headers,
            markers: &markers,
            validation: Validation::Trusted,
        };
        let info = self.offline_on_io(self.write_locked(&mut state, &config, written, now))?;
        drop(state);
        self.offline_on_io(self.after_append(&config, &info, now))?;
        Ok(info)
    }

    /// Writes validated batches with final offsets; holds the append lock.
    /// Their producer state is judged first (nothing is written if that
    /// refuses them), then the bytes, the transaction index, and the new
    /// state; the log end (and the high watermark when it follows the end)
    /// is published last, after the first unstable offset, so a reader
    /// never sees a last stable offset past an open transaction.
    fn write_locked(
        &self,
        state: &mut AppendState,
        config: &LogConfig,
        written: Written<'_>,
        now: i64,
    ) -> Result<AppendInfo> {
        let Written {
            parts,
            headers,
            markers,
            validation,
        } = written;
        let (first, last) = match (headers.first(), headers.last()) {
            (Some((_, f)), Some((_, l))) => (*f, *l),
            _ => return Err(LogError::InvalidAppend("no record batches")),
        };
        let mut staged = state.producers.begin_append(validation, now);
        let mut events = Vec::new();
        for ((_, header), marker) in headers.iter().zip(markers) {
            events.extend(staged.batch(header, *marker)?);
        }
        let updates = staged.into_updates();
        let max_timestamp = headers.iter().map(|(_, h)| h.max_timestamp).max().unwrap_or(-1);
        let mut active = self.active_segment();
        let offsets_overflow = last.last_offset() - active.base_offset() > u64::from(u32::MAX);
        let len: usize = parts.iter().map(|p| p.len()).sum();
        if offsets_overflow || active.should_roll(config, len as u64, max_timestamp, now) {
            active = self.roll_locked(state, config, first.base_offset, now)?;
        }
        {
            let mut cache = self.epoch_cache.lock();
            for (_, h) in headers {
                cache.assign(h.partition_leader_epoch, h.base_offset)?;
            }
        }
        if let Err(e) = active.append(parts, headers, config.index_interval_bytes) {
            self.fail(format!("append to {} failed: {e}", self.dir.display()));
            return Err(e).context(|| format!("appending to {}", self.dir.display()));
        }
        let mut txns = self.txns.lock();
        let mut aborted = Vec::new();
        for event in events {
            let lso = txns.apply(event);
            if let (TxnEvent::Ended(txn), Some(last_stable_offset)) = (event, lso) {
                if txn.aborted {
                    aborted.push(AbortedTxn {
                        producer_id: txn.producer_id,
                        first_offset: txn.first_offset,
                        last_offset: txn.last_offset,
                        last_stable_offset,
                    });
                }
            }
        }
        if let Err(e) = active.txn_index().append(&aborted) {
            self.fail(format!(
                "transaction index append of {} failed: {e}",
                self.dir.display()
            ));
            return Err(e).context(|| format!("appending to the transaction index of {}", self.dir.display()));
        }
        state.producers.commit(updates);
        if !state.verifications.is_empty() {
            // A transactional batch opened the transaction, or a marker
            // ended it: either way its verification is over (Kafka clears
            // it for every origin).
            for (_, h) in headers
                .iter()
                .filter(|(_, h)| h.producer_id >= 0 && h.is_transactional())
            {
                state.verifications.clear(h.producer_id);
            }
        }
        let end = last.next_offset();
        if self.high_watermark_follows_end {
            txns.on_high_watermark(end);
        }
        self.publish_first_unstable(&txns);
        self.end_offset.store(end, Ordering::Release);
        if self.high_watermark_follows_end {
            self.high_watermark.store(end, Ordering::Release);
        }
        drop(txns);
        let record_count: u64 = headers.iter().map(|(_, h)| u64::from(h.record_count)).sum();
        state.unflushed_records += record_count;
        Ok(AppendInfo {
            first_offset: first.base_offset,
            last_offset: last.last_offset(),
            max_timestamp,
            log_append_time: None,
            batch_count: headers.len(),
            record_count,
            bytes: len,
            log_start_offset: self.log_start_offset(),
            duplicate: false,
        })
    }

    /// Applies the flush policy once the append lock is released.
    fn after_append(&self, config: &LogConfig, info: &AppendInfo, now: i64) -> Result<()> {
        match config.flush_policy() {
            FlushPolicy::None => Ok(()),
            FlushPolicy::GroupCommit => self.sync_to(info.last_offset + 1),
            FlushPolicy::EveryMessages(n) => {
                let due = {
                    let mut state = self.append_lock.lock();
                    let due = state.unflushed_records >= n;
                    if due {
                        state.unflushed_records = 0;
                    }
                    due
                };
                if due {
                    self.flush()?;
                }
                Ok(())
            }
            FlushPolicy::Interval(every) => {
                if now - self.last_flush_ms.load(Ordering::Acquire) >= every.as_millis() as i64 {
                    self.flush()?;
                }
                Ok(())
            }
        }
    }

    /// Starts a new segment at `base_offset`; holds the append lock.
    fn roll_locked(&self, state: &AppendState, config: &LogConfig, base_offset: u64, now: i64) -> Result<Arc<Segment>> {
        let old = self.active_segment();
        old.make_inactive()
            .context(|| format!("rolling {}", self.dir.display()))?;
        // Where the old segment ends, durable before the new one can take a
        // byte: recovery cuts at a hole a power cut leaves (segment_end).
        crate::segment_end::record(&self.dir, old.base_offset(), old.next_offset()).context(|| {
            format!(
                "recording the end of segment {} in {}",
                old.base_offset(),
                self.dir.display()
            )
        })?;
        let segment = Segment::create(&self.dir, base_offset, config, now)
            .context(|| format!("creating segment {base_offset} in {}", self.dir.display()))?;
        let segment = Arc::new(segment);
        self.segments.write().insert(base_offset, segment.clone());
        // The new files' directory entries must survive a crash too: the
        // next flush syncs the directory (an fsync here stalls every
        // producer of the partition behind the disk's writeback).
        self.unsynced_files.lock().push(self.dir.clone());
        // As Kafka does: the producer state as of the new segment's start.
        self.write_producer_snapshot(state, base_offset)?;
        tracing::debug!(dir = %self.dir.display(), base_offset, "rolled a new segment");
        Ok(segment)
    }

    /// Rolls the active segment now if it holds anything.
    pub fn roll(&self) -> Result<()> {
        self.check_writable()?;
        let state = self.append_lock.lock();
        if self.active_segment().size() > 0 {
            let config = self.config();
            self.offline_on_io(self.roll_locked(&state, &config, self.end_offset(), self.clock.now_ms()))?;
        }
        Ok(())
    }
}

/// A leader's batches: stamped where they lie, or left as they are (see
/// [`Log::append_shared`]).
enum LeaderBatches<'a> {
    InPlace(&'a mut [u8]),
    Shared(&'a [u8]),
}

impl LeaderBatches<'_> {
    fn bytes(&self) -> &[u8] {
        match self {
            LeaderBatches::InPlace(bytes) => bytes,
            LeaderBatches::Shared(bytes) => bytes,
        }
    }
}

/// What [`Log::write_locked`] writes: validated batches with their final
/// offsets and markers, and how their producer state is checked.
struct Written<'a> {
    /// The batches' bytes, in order (see [`Segment::append`]).
    parts: &'a [&'a [u8]],
    headers: &'a [(usize, BatchHeader)],
    markers: &'a [Option<EndTransactionMarker>],
    validation: Validation,
}
