//! Helpers for logs with transactions: producers with sequences and
//! markers, cleaning passes that keep their checkpoint, the log's batches
//! (emptied ones too), what a read_committed consumer sees, and the
//! producer state a rebuild from the log must give back.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use gregor_compactor::{clean_log, cleanable, CleanStats, Cleanable, OffsetMap, Throttler};
use gregor_log::batch::{
    record_section, BatchHeader, BatchIter, ControlRecordType, EndTransactionMarker, RecordBatchBuilder, Records,
};
use gregor_log::producer_state::BatchSequence;
use gregor_log::{AppendInfo, Log, LogConfig, LogOpenOptions, ManualClock};

/// The record key of `key`.
pub fn key_bytes(key: u32) -> Vec<u8> {
    format!("key-{key}").into_bytes()
}

/// A producer with an id, an epoch and its next sequence.
#[derive(Debug, Clone)]
pub struct Producer {
    /// Producer id.
    pub id: i64,
    /// Producer epoch.
    pub epoch: i16,
    /// Coordinator epoch of its markers.
    pub coordinator_epoch: i32,
    next_seq: i32,
}

impl Producer {
    /// Producer `id` at epoch 0, sequence 0.
    pub fn new(id: i64) -> Self {
        Self {
            id,
            epoch: 0,
            coordinator_epoch: 0,
            next_seq: 0,
        }
    }

    /// Appends one batch of `records` (key, value or tombstone) with the
    /// next sequences, in its transaction when `transactional`.
    pub fn send(&mut self, log: &Log, transactional: bool, records: &[(u32, Option<String>)], ts: i64) -> AppendInfo {
        let mut b = RecordBatchBuilder::new(ts).producer(self.id, self.epoch, self.next_seq);
        if transactional {
            b = b.transactional();
        }
        for (k, v) in records {
            b.append(Some(&key_bytes(*k)), v.as_deref().map(str::as_bytes), &[], ts);
        }
        self.next_seq += records.len() as i32;
        log.append(&mut b.build(), 0).unwrap()
    }

    /// A transactional batch of `keys`, each with value `v{key}`.
    pub fn txn(&mut self, log: &Log, keys: &[u32]) -> AppendInfo {
        let records: Vec<_> = keys.iter().map(|k| (*k, Some(format!("v{k}")))).collect();
        self.send(log, true, &records, 1_000)
    }

    /// An idempotent (non-transactional) batch of `keys`.
    pub fn idempotent(&mut self, log: &Log, keys: &[u32]) -> AppendInfo {
        let records: Vec<_> = keys.iter().map(|k| (*k, Some(format!("v{k}")))).collect();
        self.send(log, false, &records, 1_000)
    }

    /// Its transaction marker, as the coordinator writes it.
    pub fn end(&self, log: &Log, kind: ControlRecordType) -> AppendInfo {
        let marker = EndTransactionMarker {
            kind,
            coordinator_epoch: self.coordinator_epoch,
        };
        log.append_marker(self.id, self.epoch, marker, 0).unwrap()
    }

    /// A COMMIT marker.
    pub fn commit(&self, log: &Log) -> AppendInfo {
        self.end(log, ControlRecordType::Commit)
    }

    /// An ABORT marker.
    pub fn abort(&self, log: &Log) -> AppendInfo {
        self.end(log, ControlRecordType::Abort)
    }
}

/// A plain (no producer) batch of `keys`.
pub fn plain(log: &Log, keys: &[u32]) -> AppendInfo {
    let mut b = RecordBatchBuilder::new(1_000);
    for k in keys {
        b.append(Some(&key_bytes(*k)), Some(format!("v{k}").as_bytes()), &[], 1_000);
    }
    log.append(&mut b.build(), 0).unwrap()
}

/// Cleaning passes over one log, keeping the cleaner checkpoint.
#[derive(Debug)]
pub struct Passes {
    /// Everything below is clean.
    pub checkpoint: u64,
    /// Bytes of the offset map of the next pass.
    pub memory: usize,
}

impl Passes {
    /// Passes with an offset map of `memory` bytes.
    pub fn new(memory: usize) -> Self {
        Self { checkpoint: 0, memory }
    }

    /// One pass as the cleaner threads run it: only if something is dirty.
    pub fn clean(&mut self, log: &Log, now: i64) -> Option<CleanStats> {
        let target = cleanable(log, self.checkpoint, now).unwrap()?;
        Some(self.run(log, target, now))
    }

    /// One pass even when nothing is dirty (as Kafka's tests call
    /// `doClean`): the clean segments are rewritten again.
    pub fn force(&mut self, log: &Log, now: i64) -> CleanStats {
        let target = cleanable(log, self.checkpoint, now).unwrap().unwrap_or(Cleanable {
            first_dirty: self.checkpoint,
            first_uncleanable: self.checkpoint,
            clean_bytes: 0,
            dirty_bytes: 0,
            overdue: false,
        });
        self.run(log, target, now)
    }

    fn run(&mut self, log: &Log, target: Cleanable, now: i64) -> CleanStats {
        let mut map = OffsetMap::with_memory(self.memory);
        let stats = clean_log(log, target, &mut map, &Throttler::new(f64::INFINITY), now).unwrap();
        self.checkpoint = stats.cleaned_up_to;
        stats
    }
}

/// Every batch of every segment (emptied ones too, which reads skip), with
/// its bytes.
pub fn batches(log: &Log) -> Vec<(BatchHeader, Vec<u8>)> {
    let mut out = Vec::new();
    for s in log.segments() {
        let Some(region) = log.segment_region(s.base_offset) else {
            continue;
        };
        let bytes = region.read_to_vec().unwrap();
        for item in BatchIter::new(&bytes) {
            let (at, h) = item.unwrap();
            out.push((h, bytes[at..at + h.total_size()].to_vec()));
        }
    }
    out
}

/// Last offset of every batch (Kafka's `lastOffsetsPerBatchInLog`).
pub fn last_offsets_per_batch(log: &Log) -> Vec<u64> {
    batches(log).iter().map(|(h, _)| h.last_offset()).collect()
}

/// Offset of every record, markers included (Kafka's `offsetsInLog`).
pub fn offsets_in_log(log: &Log) -> Vec<u64> {
    let mut out = Vec::new();
    for (h, bytes) in batches(log) {
        let section = record_section(&bytes, &h).unwrap();
        for r in Records::from_section(&section, h.record_count) {
            out.push(h.base_offset + r.unwrap().offset_delta as u64);
        }
    }
    out
}

/// Keys of the data records, in log order (Kafka's `keysInLog`).
pub fn keys_in_log(log: &Log) -> Vec<u32> {
    let mut out = Vec::new();
    for (h, bytes) in batches(log).iter().filter(|(h, _)| !h.is_control()) {
        let section = record_section(bytes, h).unwrap();
        for r in Records::from_section(&section, h.record_count) {
            let key = String::from_utf8(r.unwrap().key.unwrap().to_vec()).unwrap();
            out.push(key.trim_start_matches("key-").parse().unwrap());
        }
    }
    out
}

/// Offsets of the markers in the log.
pub fn marker_offsets(log: &Log) -> Vec<u64> {
    batches(log)
        .iter()
        .filter(|(h, b)| h.is_control() && EndTransactionMarker::of_batch(b, h).unwrap().is_some())
        .map(|(h, _)| h.base_offset)
        .collect()
}

/// The key → value view of a read_committed consumer: records below the
/// last stable offset, those of the aborted transactions the log reports
/// left out as Kafka's fetcher does, tombstones deleting.
pub fn committed_view(log: &Log) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let lso = log.last_stable_offset();
    let mut aborted = log.aborted_transactions(log.log_start_offset(), lso).unwrap();
    aborted.sort_by_key(|a| a.first_offset);
    let mut aborted = aborted.into_iter().peekable();
    let mut aborted_producers = BTreeSet::new();
    let mut view = BTreeMap::new();
    let mut offset = log.log_start_offset();
    while offset < lso {
        let read = log.read_bounded(offset, 1 << 20, lso, true).unwrap();
        let Some(region) = read.region else { break };
        let bytes = region.read_to_vec().unwrap();
        for item in BatchIter::new(&bytes) {
            let (at, h) = item.unwrap();
            let batch = &bytes[at..at + h.total_size()];
            offset = h.next_offset();
            while let Some(a) = aborted.next_if(|a| a.first_offset <= h.last_offset()) {
                aborted_producers.insert(a.producer_id);
            }
            if h.is_control() {
                let marker = EndTransactionMarker::of_batch(batch, &h).unwrap();
                if marker.is_some_and(|m| m.kind == ControlRecordType::Abort) {
                    aborted_producers.remove(&h.producer_id);
                }
                continue;
            }
            if h.is_transactional() && aborted_producers.contains(&h.producer_id) {
                continue;
            }
            let section = record_section(batch, &h).unwrap();
            for r in Records::from_section(&section, h.record_count) {
                let r = r.unwrap();
                let key = r.key.unwrap().to_vec();
                match r.value {
                    Some(v) => view.insert(key, v.to_vec()),
                    None => view.remove(&key),
                };
            }
        }
    }
    view
}

/// A producer's last batch with a sequence: first and last sequence, first
/// and last offset.
pub type LastBatch = (i32, i32, u64, u64);

/// What of a producer's state a rebuild from the log must give back: its
/// epoch, last batch with a sequence, coordinator epoch, open transaction
/// and last timestamp (not the older batches the cleaner may drop, the
/// broker time of its last append, nor the batch's own timestamp, which a
/// snapshot does not keep).
pub type ProducerView = BTreeMap<i64, (i16, Option<LastBatch>, i32, Option<u64>, i64)>;

/// The log's producers, as [`ProducerView`].
pub fn producer_view(log: &Log) -> ProducerView {
    log.producer_states()
        .iter()
        .map(|(id, e)| {
            let last = e
                .batches
                .back()
                .map(|b: &BatchSequence| (b.first_seq, b.last_seq, b.first_offset, b.last_offset));
            (
                id,
                (
                    e.epoch,
                    last,
                    e.coordinator_epoch,
                    e.current_txn_first_offset,
                    e.last_timestamp,
                ),
            )
        })
        .collect()
}

/// Reopens the log in `dir`: after a clean close, or as after a crash
/// with nothing known to be on disk (every segment recovered, producer
/// state and transaction indexes rebuilt from the batches).
pub fn reopen(log: Log, dir: &Path, config: LogConfig, clock: &Arc<ManualClock>, crash: bool) -> Log {
    if !crash {
        log.close().unwrap();
    }
    drop(log);
    let options = LogOpenOptions {
        clock: clock.clone(),
        clean_shutdown: !crash,
        recovery_point: Some(if crash { 0 } else { u64::MAX }),
        ..LogOpenOptions::default()
    };
    Log::open_with(dir, config, options).unwrap()
}
