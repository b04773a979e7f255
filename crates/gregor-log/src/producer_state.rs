//! Idempotent producers: for each producer id, its epoch and the sequence
//! ranges of its last five batches, so that a retried batch is recognised
//! and answered with its original offsets instead of being written twice,
//! a gap in sequences is refused, and a fenced (older) epoch is refused.
//!
//! The state lives with the log: it is updated by every append (producer
//! or replicated), saved as Kafka's `<offset>.snapshot` files (on roll and
//! on close) and rebuilt on open from the newest snapshot plus the batches
//! after it — so it survives restarts and a follower builds the same state
//! from what it copies.

use std::collections::{BTreeMap, VecDeque};

use crate::batch::BatchHeader;

/// Batches remembered per producer: a producer has at most five in flight.
pub const MAX_CACHED_BATCHES: usize = 5;

/// One batch of a producer: its sequence and offset ranges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchSequence {
    /// Sequence of its first record.
    pub first_seq: i32,
    /// Sequence of its last record.
    pub last_seq: i32,
    /// Offset of its first record.
    pub first_offset: u64,
    /// Offset of its last record.
    pub last_offset: u64,
    /// Its max timestamp.
    pub timestamp: i64,
}

/// What the log knows of one producer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerEntry {
    /// Current epoch; batches of older epochs are fenced.
    pub epoch: i16,
    /// Its last batches, oldest first.
    pub batches: VecDeque<BatchSequence>,
    /// When it last appended (broker clock), for expiry.
    pub last_append_ms: i64,
}

impl ProducerEntry {
    fn last(&self) -> Option<&BatchSequence> {
        self.batches.back()
    }
}

/// The verdict on an idempotent batch before it is appended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SequenceCheck {
    /// New and in sequence: append it.
    Append,
    /// Already in the log (a retry): answer with these offsets, write nothing.
    Duplicate(BatchSequence),
}

/// Why an idempotent batch is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProducerError {
    /// The batch's epoch is older than the producer's current one.
    #[error("producer {producer_id} epoch {epoch} is older than its current epoch {current}")]
    InvalidEpoch {
        /// The producer.
        producer_id: i64,
        /// The batch's epoch.
        epoch: i16,
        /// The epoch the log knows.
        current: i16,
    },
    /// The batch's first sequence does not follow the last one appended.
    #[error("producer {producer_id}: sequence {got} where {expected} was expected")]
    OutOfOrderSequence {
        /// The producer.
        producer_id: i64,
        /// The sequence that would follow the last batch.
        expected: i32,
        /// The batch's first sequence.
        got: i32,
    },
    /// The log has no state for this producer (expired, or its batches
    /// are gone) and the batch does not start a sequence.
    #[error("producer {producer_id} is unknown to this partition and sent sequence {sequence}")]
    UnknownProducer {
        /// The producer.
        producer_id: i64,
        /// The batch's first sequence.
        sequence: i32,
    },
}

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
}

/// The sequence after `seq` (sequences wrap from `i32::MAX` to 0).
fn next_seq(seq: i32) -> i32 {
    if seq == i32::MAX {
        0
    } else {
        seq + 1
    }
}

/// The last sequence of a batch starting at `first` with `count` records.
fn last_seq(first: i32, last_offset_delta: u32) -> i32 {
    ((i64::from(first) + i64::from(last_offset_delta)) % (i64::from(i32::MAX) + 1)) as i32
}

/// True for a batch from an idempotent producer.
pub fn is_idempotent(header: &BatchHeader) -> bool {
    header.producer_id >= 0 && header.base_sequence >= 0
}

/// Every producer's state in one partition.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProducerStates {
    producers: BTreeMap<i64, ProducerEntry>,
}

impl ProducerStates {
    /// No producers.
    pub fn new() -> Self {
        Self::default()
    }

    /// The state of `producer_id`, if known.
    pub fn get(&self, producer_id: i64) -> Option<&ProducerEntry> {
        self.producers.get(&producer_id)
    }

    /// Every known producer, by id.
    pub fn iter(&self) -> impl Iterator<Item = (i64, &ProducerEntry)> {
        self.producers.iter().map(|(id, e)| (*id, e))
    }

    /// Number of producers known.
    pub fn len(&self) -> usize {
        self.producers.len()
    }

    /// True when no producer is known.
    pub fn is_empty(&self) -> bool {
        self.producers.is_empty()
    }

    /// Judges an idempotent producer's batch (not yet appended) as Kafka
    /// does: older epoch → fenced; a new epoch must start at sequence 0;
    /// within an epoch, one of the remembered batches again → duplicate,
    /// anything but the next sequence → out of order; an unknown producer
    /// must start at 0.
    pub fn check(&self, header: &BatchHeader) -> Result<SequenceCheck, ProducerError> {
        let producer_id = header.producer_id;
        let first = header.base_sequence;
        let Some(entry) = self.producers.get(&producer_id) else {
            return if first == 0 {
                Ok(SequenceCheck::Append)
            } else {
                Err(ProducerError::UnknownProducer {
                    producer_id,
                    sequence: first,
                })
            };
        };
        if header.producer_epoch < entry.epoch {
            return Err(ProducerError::InvalidEpoch {
                producer_id,
                epoch: header.producer_epoch,
                current: entry.epoch,
            });
        }
        if header.producer_epoch > entry.epoch || entry.batches.is_empty() {
            return if first == 0 {
                Ok(SequenceCheck::Append)
            } else {
                Err(ProducerError::OutOfOrderSequence {
                    producer_id,
                    expected: 0,
                    got: first,
                })
            };
        }
        let last = last_seq(first, header.last_offset_delta);
        if let Some(done) = entry
            .batches
            .iter()
            .find(|b| b.first_seq == first && b.last_seq == last)
        {
            return Ok(SequenceCheck::Duplicate(*done));
        }
        let expected = entry.last().map_or(0, |b| next_seq(b.last_seq));
        if first == expected {
            Ok(SequenceCheck::Append)
        } else {
            Err(ProducerError::OutOfOrderSequence {
                producer_id,
                expected,
                got: first,
            })
        }
    }

    /// Records an appended batch (with its final offsets). Batches without
    /// a producer id are ignored; a batch of a newer epoch resets the
    /// producer's remembered batches.
    pub fn record(&mut self, header: &BatchHeader, now_ms: i64) {
        if !is_idempotent(header) {
            return;
        }
        let batch = BatchSequence {
            first_seq: header.base_sequence,
            last_seq: last_seq(header.base_sequence, header.last_offset_delta),
            first_offset: header.base_offset,
            last_offset: header.last_offset(),
            timestamp: header.max_timestamp,
        };
        let entry = self
            .producers
            .entry(header.producer_id)
            .or_insert_with(|| ProducerEntry {
                epoch: header.producer_epoch,
                batches: VecDeque::new(),
                last_append_ms: now_ms,
            });
        if header.producer_epoch != entry.epoch {
            entry.epoch = header.producer_epoch;
            entry.batches.clear();
        }
        if entry.batches.len() == MAX_CACHED_BATCHES {
            entry.batches.pop_front();
        }
        entry.batches.push_back(batch);
        entry.last_append_ms = now_ms;
    }

    /// Forgets producers silent for longer than `expiration_ms`
    /// (`producer.id.expiration.ms`); returns how many went.
    pub fn expire(&mut self, now_ms: i64, expiration_ms: i64) -> usize {
        let before = self.producers.len();
        self.producers
            .retain(|_, e| now_ms.saturating_sub(e.last_append_ms) <= expiration_ms);
        before - self.producers.len()
    }

    /// Forgets producers whose batches all lie below `log_start`
    /// (retention or DeleteRecords removed them).
    pub fn retain_from(&mut self, log_start: u64) {
        self.producers
            .retain(|_, e| e.last().is_some_and(|b| b.last_offset >= log_start));
    }

    /// Forgets batches at or after `offset` (the log was truncated there);
    /// a producer left without batches is forgotten.
    pub fn truncate_from(&mut self, offset: u64) {
        for entry in self.producers.values_mut() {
            entry.batches.retain(|b| b.last_offset < offset);
        }
        self.producers.retain(|_, e| !e.batches.is_empty());
    }

    /// Kafka's producer snapshot (version 1): `version i16`, `crc u32`
    /// (CRC-32C of what follows), then an array of entries — producer id
    /// i64, epoch i16, last sequence i32, last offset i64, offset delta
    /// i32, timestamp i64, coordinator epoch i32, current transaction's
    /// first offset i64. Like Kafka, only each producer's last batch is
    /// saved.
    pub fn encode_snapshot(&self) -> Vec<u8> {
        let mut body = Vec::with_capacity(4 + self.producers.len() * 46);
        body.extend_from_slice(&(self.producers.len() as i32).to_be_bytes());
        for (id, entry) in &self.producers {
            let Some(last) = entry.last() else { continue };
            body.extend_from_slice(&id.to_be_bytes());
            body.extend_from_slice(&entry.epoch.to_be_bytes());
            body.extend_from_slice(&last.last_seq.to_be_bytes());
            body.extend_from_slice(&(last.last_offset as i64).to_be_bytes());
            body.extend_from_slice(&((last.last_offset - last.first_offset) as i32).to_be_bytes());
            body.extend_from_slice(&last.timestamp.to_be_bytes());
            body.extend_from_slice(&(-1i32).to_be_bytes()); // coordinator epoch
            body.extend_from_slice(&(-1i64).to_be_bytes()); // no open transaction
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
        let mut r = Reader(bytes);
        let version = r.i16()?;
        if version != 1 {
            return Err(SnapshotError::Version(version));
        }
        let crc = r.i32()? as u32;
        if crc32c::crc32c(r.0) != crc {
            return Err(SnapshotError::Crc);
        }
        let count = r.i32()?;
        let mut producers = BTreeMap::new();
        for _ in 0..count.max(0) {
            let id = r.i64()?;
            let epoch = r.i16()?;
            let last_seq = r.i32()?;
            let last_offset = u64::try_from(r.i64()?).map_err(|_| SnapshotError::Truncated)?;
            let delta = u32::try_from(r.i32()?).map_err(|_| SnapshotError::Truncated)?;
            let timestamp = r.i64()?;
            let _coordinator_epoch = r.i32()?;
            let _txn_first_offset = r.i64()?;
            let first_seq = ((i64::from(last_seq) - i64::from(delta)).rem_euclid(i64::from(i32::MAX) + 1)) as i32;
            let batch = BatchSequence {
                first_seq,
                last_seq,
                first_offset: last_offset.saturating_sub(u64::from(delta)),
                last_offset,
                timestamp,
            };
            producers.insert(
                id,
                ProducerEntry {
                    epoch,
                    batches: VecDeque::from([batch]),
                    last_append_ms: now_ms,
                },
            );
        }
        if !r.0.is_empty() {
            return Err(SnapshotError::Truncated);
        }
        Ok(Self { producers })
    }
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], SnapshotError> {
        let (head, rest) = self.0.split_first_chunk::<N>().ok_or(SnapshotError::Truncated)?;
        self.0 = rest;
        Ok(*head)
    }
    fn i16(&mut self) -> Result<i16, SnapshotError> {
        self.take().map(i16::from_be_bytes)
    }
    fn i32(&mut self) -> Result<i32, SnapshotError> {
        self.take().map(i32::from_be_bytes)
    }
    fn i64(&mut self) -> Result<i64, SnapshotError> {
        self.take().map(i64::from_be_bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn header(producer_id: i64, epoch: i16, first_seq: i32, records: u32, base_offset: u64) -> BatchHeader {
        BatchHeader {
            base_offset,
            batch_length: 0,
            partition_leader_epoch: 0,
            crc: 0,
            attributes: 0,
            last_offset_delta: records - 1,
            base_timestamp: 0,
            max_timestamp: 0,
            producer_id,
            producer_epoch: epoch,
            base_sequence: first_seq,
            record_count: records,
        }
    }

    #[test]
    fn in_sequence_batches_append_and_retries_are_duplicates() {
        let mut s = ProducerStates::new();
        assert_eq!(s.check(&header(7, 0, 0, 3, 0)), Ok(SequenceCheck::Append));
        s.record(&header(7, 0, 0, 3, 0), 0);
        assert_eq!(s.check(&header(7, 0, 3, 2, 99)), Ok(SequenceCheck::Append));
        s.record(&header(7, 0, 3, 2, 10), 0);
        match s.check(&header(7, 0, 0, 3, 99)) {
            Ok(SequenceCheck::Duplicate(b)) => assert_eq!((b.first_offset, b.last_offset), (0, 2)),
            other => panic!("{other:?}"),
        }
        match s.check(&header(7, 0, 3, 2, 99)) {
            Ok(SequenceCheck::Duplicate(b)) => assert_eq!((b.first_offset, b.last_offset), (10, 11)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn gaps_old_epochs_and_unknown_producers_are_refused() {
        let mut s = ProducerStates::new();
        s.record(&header(7, 2, 0, 3, 0), 0);
        assert_eq!(
            s.check(&header(7, 2, 5, 1, 9)),
            Err(ProducerError::OutOfOrderSequence {
                producer_id: 7,
                expected: 3,
                got: 5
            })
        );
        assert!(matches!(
            s.check(&header(7, 1, 3, 1, 9)),
            Err(ProducerError::InvalidEpoch { current: 2, .. })
        ));
        assert!(matches!(
            s.check(&header(7, 3, 3, 1, 9)),
            Err(ProducerError::OutOfOrderSequence { expected: 0, .. })
        ));
        assert_eq!(s.check(&header(7, 3, 0, 1, 9)), Ok(SequenceCheck::Append));
        assert!(matches!(
            s.check(&header(8, 0, 4, 1, 9)),
            Err(ProducerError::UnknownProducer { .. })
        ));
    }

    #[test]
    fn only_the_last_five_batches_are_remembered() {
        let mut s = ProducerStates::new();
        for i in 0..6 {
            s.record(&header(1, 0, i, 1, i as u64), 0);
        }
        assert_eq!(s.get(1).unwrap().batches.len(), MAX_CACHED_BATCHES);
        // The oldest one (sequence 0) is no longer recognised.
        assert!(matches!(
            s.check(&header(1, 0, 0, 1, 9)),
            Err(ProducerError::OutOfOrderSequence { .. })
        ));
        assert!(matches!(
            s.check(&header(1, 0, 1, 1, 9)),
            Ok(SequenceCheck::Duplicate(_))
        ));
    }

    #[test]
    fn sequences_wrap_at_i32_max() {
        let mut s = ProducerStates::new();
        s.record(&header(1, 0, 0, 1, 0), 0);
        let mut entry = s.producers[&1].clone();
        entry.batches.back_mut().unwrap().last_seq = i32::MAX;
        s.producers.insert(1, entry);
        assert_eq!(s.check(&header(1, 0, 0, 1, 5)), Ok(SequenceCheck::Append));
        assert_eq!(last_seq(i32::MAX - 1, 3), 1);
    }

    #[test]
    fn expiry_retention_and_truncation_forget_producers() {
        let mut s = ProducerStates::new();
        s.record(&header(1, 0, 0, 1, 0), 1_000);
        s.record(&header(2, 0, 0, 1, 5), 5_000);
        s.record(&header(2, 0, 1, 1, 6), 5_000);
        assert_eq!(s.expire(10_000, 6_000), 1);
        assert!(s.get(1).is_none());
        s.truncate_from(6);
        assert_eq!(s.get(2).unwrap().batches.len(), 1);
        s.retain_from(6);
        assert!(s.is_empty());
    }

    #[test]
    fn a_damaged_snapshot_is_an_error() {
        let mut s = ProducerStates::new();
        s.record(&header(1, 0, 0, 4, 10), 0);
        let mut bytes = s.encode_snapshot();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        assert_eq!(ProducerStates::decode_snapshot(&bytes, 0), Err(SnapshotError::Crc));
        assert_eq!(
            ProducerStates::decode_snapshot(&bytes[..3], 0),
            Err(SnapshotError::Truncated)
        );
        assert_eq!(
            ProducerStates::decode_snapshot(&[0, 2, 0, 0, 0, 0], 0),
            Err(SnapshotError::Version(2))
        );
    }

    proptest! {
        /// A snapshot keeps, per producer, the epoch and the last batch.
        #[test]
        fn snapshots_round_trip_the_last_batch(
            batches in proptest::collection::vec((0i64..5, 0i16..3, 1u32..10), 1..40),
        ) {
            let mut s = ProducerStates::new();
            let mut next_offset = 0u64;
            let mut seqs = BTreeMap::new();
            for (id, epoch, records) in batches {
                let seq: &mut (i16, i32) = seqs.entry(id).or_insert((epoch, 0));
                if epoch > seq.0 { *seq = (epoch, 0); }
                let h = header(id, seq.0, seq.1, records, next_offset);
                s.record(&h, 7);
                seq.1 += records as i32;
                next_offset += u64::from(records);
            }
            let back = ProducerStates::decode_snapshot(&s.encode_snapshot(), 7).unwrap();
            prop_assert_eq!(back.len(), s.len());
            for (id, entry) in &s.producers {
                let got = back.get(*id).unwrap();
                prop_assert_eq!(got.epoch, entry.epoch);
                prop_assert_eq!(got.batches.back(), entry.batches.back());
            }
        }
    }
}
