//! Kafka's producer snapshot file (`<offset>.snapshot`, version 1).

use std::collections::{BTreeMap, VecDeque};

use super::{BatchSequence, ProducerEntry, ProducerStates};
use crate::wire::{Reader, WireError};

/// Why a snapshot file cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    /// Too short, or entries that run past the end.
    #[error("producer snapshot truncated")]
    Truncated,
    /// A version this code does not read.
    #[error("producer snapshot version {0} is not supported")]
    Version(i16),
    /// The CRC does not match.
    #[error("producer snapshot CRC mismatch")]
    Crc,
    /// A field out of its range (a negative offset, a delta past the offset).
    #[error("producer snapshot entry invalid: {0}")]
    Invalid(&'static str),
}

impl ProducerStates {
    /// Kafka's producer snapshot (version 1): `version i16`, `crc u32`
    /// (CRC-32C of what follows), then an array of entries — producer id
    /// i64, epoch i16, last sequence i32, last offset i64, offset delta
    /// i32, timestamp i64, coordinator epoch i32, current transaction's
    /// first offset i64 (−1: none). Like Kafka, only each producer's last
    /// batch is saved; a producer without one has −1 as last sequence and
    /// last offset.
    pub fn encode_snapshot(&self) -> Vec<u8> {
        let mut body = Vec::with_capacity(4 + self.producers.len() * 46);
        body.extend_from_slice(&(self.producers.len() as i32).to_be_bytes());
        for (id, entry) in &self.producers {
            let (last_seq, last_offset, delta) = match entry.last() {
                Some(b) => (
                    b.last_seq,
                    b.last_offset as i64,
                    (b.last_offset - b.first_offset) as i32,
                ),
                None => (-1, -1, 0),
            };
            body.extend_from_slice(&id.to_be_bytes());
            body.extend_from_slice(&entry.epoch.to_be_bytes());
            body.extend_from_slice(&last_seq.to_be_bytes());
            body.extend_from_slice(&last_offset.to_be_bytes());
            body.extend_from_slice(&delta.to_be_bytes());
            body.extend_from_slice(&entry.last_timestamp.to_be_bytes());
            body.extend_from_slice(&entry.coordinator_epoch.to_be_bytes());
            let txn = entry.current_txn_first_offset.map_or(-1, |o| o as i64);
            body.extend_from_slice(&txn.to_be_bytes());
        }
        let mut out = Vec::with_capacity(6 + body.len());
        out.extend_from_slice(&1i16.to_be_bytes());
        out.extend_from_slice(&crc32c::crc32c(&body).to_be_bytes());
        out.extend_from_slice(&body);
        out
    }

    /// Reads a snapshot written by [`ProducerStates::encode_snapshot`] (or
    /// by Kafka); `now_ms` becomes each producer's last append time.
    pub fn decode_snapshot(bytes: &[u8], now_ms: i64) -> Result<Self, SnapshotError> {
        let mut r = Reader::new(bytes);
        let version = r.i16()?;
        if version != 1 {
            return Err(SnapshotError::Version(version));
        }
        let crc = r.i32()? as u32;
        if crc32c::crc32c(r.rest()) != crc {
            return Err(SnapshotError::Crc);
        }
        let count = r.i32()?;
        let mut producers = BTreeMap::new();
        for _ in 0..count.max(0) {
            let id = r.i64()?;
            let epoch = r.i16()?;
            let last_seq = r.i32()?;
            let last_offset = r.i64()?;
            let delta = r.i32()?;
            let timestamp = r.i64()?;
            let coordinator_epoch = r.i32()?;
            let txn_first_offset = r.i64()?;
            let batches = match last_offset {
                -1 => VecDeque::new(),
                o if o < -1 => return Err(SnapshotError::Invalid("negative last offset")),
                o => {
                    let last_offset = o as u64;
                    let delta = u32::try_from(delta).map_err(|_| SnapshotError::Invalid("negative offset delta"))?;
                    if u64::from(delta) > last_offset {
                        return Err(SnapshotError::Invalid("offset delta past the last offset"));
                    }
                    let span = i64::from(i32::MAX) + 1;
                    VecDeque::from([BatchSequence {
                        first_seq: ((i64::from(last_seq) - i64::from(delta)).rem_euclid(span)) as i32,
                        last_seq,
                        first_offset: last_offset - u64::from(delta),
                        last_offset,
                        timestamp,
                    }])
                }
            };
            let current_txn_first_offset = match txn_first_offset {
                -1 => None,
                o if o < -1 => return Err(SnapshotError::Invalid("negative transaction first offset")),
                o => Some(o as u64),
            };
            producers.insert(
                id,
                ProducerEntry {
                    epoch,
                    batches,
                    last_append_ms: now_ms,
                    last_timestamp: timestamp,
                    coordinator_epoch,
                    current_txn_first_offset,
                },
            );
        }
        if !r.rest().is_empty() {
            return Err(SnapshotError::Truncated);
        }
        Ok(Self { producers })
    }
}

impl From<WireError> for SnapshotError {
    fn from(_: WireError) -> Self {
        // The snapshot reads only fixed-size numbers: all it can meet is its end.
        SnapshotError::Truncated
    }
}
