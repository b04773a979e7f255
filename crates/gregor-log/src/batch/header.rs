//! The fixed 61-byte batch header: parsing it, and rewriting the fields the
//! broker owns (base offset, leader epoch, append time) in place.

use super::error::BatchError;
use crate::compression::Compression;

/// Size of the fixed batch header that precedes the records.
pub const BATCH_HEADER_SIZE: usize = 61;
/// Bytes before `batchLength` ends: a batch occupies `LOG_OVERHEAD + batchLength` bytes.
pub const LOG_OVERHEAD: usize = 12;
/// The only magic value gregor accepts.
pub const MAGIC_V2: u8 = 2;

const PARTITION_LEADER_EPOCH_AT: usize = 12;
pub(super) const MAGIC_AT: usize = 16;
pub(super) const CRC_AT: usize = 17;
pub(super) const ATTRIBUTES_AT: usize = 21;
pub(super) const BASE_TIMESTAMP_AT: usize = 27;
pub(super) const MAX_TIMESTAMP_AT: usize = 35;

pub(super) const COMPRESSION_MASK: i16 = 0x07;
const TIMESTAMP_TYPE_FLAG: i16 = 0x08;
pub(super) const TRANSACTIONAL_FLAG: i16 = 0x10;
pub(super) const CONTROL_FLAG: i16 = 0x20;
/// Attribute bit 6 (KIP-534): the base timestamp is the batch's delete
/// horizon, set by the log cleaner.
pub(super) const DELETE_HORIZON_FLAG: i16 = 0x40;

/// Which clock a batch's timestamps come from (attribute bit 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampType {
    /// Set by the producer.
    CreateTime,
    /// Set by the broker when appending.
    LogAppendTime,
}

/// The fixed 61-byte header of a record batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    /// Offset of the first record.
    pub base_offset: u64,
    /// Bytes after the length field; the batch is `LOG_OVERHEAD + batch_length` long.
    pub batch_length: u32,
    /// Leader epoch of the broker that appended the batch.
    pub partition_leader_epoch: i32,
    /// Stored CRC-32C.
    pub crc: u32,
    /// Raw attribute bits.
    pub attributes: i16,
    /// `last offset - base offset`.
    pub last_offset_delta: u32,
    /// Timestamp of the first record.
    pub base_timestamp: i64,
    /// Largest record timestamp (or the append time for `LogAppendTime`).
    pub max_timestamp: i64,
    /// Producer id, -1 when not idempotent.
    pub producer_id: i64,
    /// Producer epoch, -1 when not idempotent.
    pub producer_epoch: i16,
    /// Sequence number of the first record, -1 when not idempotent.
    pub base_sequence: i32,
    /// Number of records in the batch.
    pub record_count: u32,
}

impl BatchHeader {
    /// Parses the header at the start of `bytes` (which may hold more than one batch).
    ///
    /// Checks only what the header alone can tell: size, length field and
    /// magic. Use [`validate_batch`](super::validate_batch) before trusting the content.
    pub fn parse(bytes: &[u8]) -> Result<Self, BatchError> {
        if bytes.len() < BATCH_HEADER_SIZE {
            return Err(BatchError::Truncated {
                needed: BATCH_HEADER_SIZE,
                available: bytes.len(),
            });
        }
        let batch_length = be_i32(bytes, 8);
        if batch_length < (BATCH_HEADER_SIZE - LOG_OVERHEAD) as i32 {
            return Err(BatchError::InvalidLength(batch_length));
        }
        let magic = bytes[MAGIC_AT] as i8;
        if magic != MAGIC_V2 as i8 {
            return Err(BatchError::UnsupportedMagic(magic));
        }
        let last_offset_delta = be_i32(bytes, 23);
        let record_count = be_i32(bytes, 57);
        if last_offset_delta < 0 || record_count < 0 {
            return Err(BatchError::Invalid("negative lastOffsetDelta or record count"));
        }
        let base_offset = be_i64(bytes, 0);
        if base_offset < 0 {
            return Err(BatchError::Invalid("negative base offset"));
        }
        Ok(Self {
            base_offset: base_offset as u64,
            batch_length: batch_length as u32,
            partition_leader_epoch: be_i32(bytes, PARTITION_LEADER_EPOCH_AT),
            crc: be_i32(bytes, CRC_AT) as u32,
            attributes: i16::from_be_bytes([bytes[21], bytes[22]]),
            last_offset_delta: last_offset_delta as u32,
            base_timestamp: be_i64(bytes, BASE_TIMESTAMP_AT),
            max_timestamp: be_i64(bytes, MAX_TIMESTAMP_AT),
            producer_id: be_i64(bytes, 43),
            producer_epoch: i16::from_be_bytes([bytes[51], bytes[52]]),
            base_sequence: be_i32(bytes, 53),
            record_count: record_count as u32,
        })
    }

    /// Total bytes the batch occupies, header included.
    pub fn total_size(&self) -> usize {
        LOG_OVERHEAD + self.batch_length as usize
    }

    /// Offset of the last record (records may have been removed by compaction,
    /// but the batch keeps its offset range).
    pub fn last_offset(&self) -> u64 {
        self.base_offset + u64::from(self.last_offset_delta)
    }

    /// The offset that follows this batch.
    pub fn next_offset(&self) -> u64 {
        self.last_offset() + 1
    }

    /// The compression codec, or an error for an unknown id.
    pub fn compression(&self) -> Result<Compression, BatchError> {
        let id = self.attributes & COMPRESSION_MASK;
        Compression::from_attribute_bits(id).ok_or(BatchError::UnknownCompression(id))
    }

    /// Where the timestamps come from.
    pub fn timestamp_type(&self) -> TimestampType {
        if self.attributes & TIMESTAMP_TYPE_FLAG != 0 {
            TimestampType::LogAppendTime
        } else {
            TimestampType::CreateTime
        }
    }

    /// Part of a transaction.
    pub fn is_transactional(&self) -> bool {
        self.attributes & TRANSACTIONAL_FLAG != 0
    }

    /// A control batch (transaction marker).
    pub fn is_control(&self) -> bool {
        self.attributes & CONTROL_FLAG != 0
    }

    /// When the log cleaner may remove the batch's tombstones, or the batch
    /// itself if it is a marker whose transaction left no records (KIP-534):
    /// set once by the cleaner pass that first kept them. With attribute
    /// bit 6 set, the base timestamp holds the horizon (record timestamp
    /// deltas are relative to it, so record timestamps are unchanged);
    /// `None` for a batch the cleaner has not stamped.
    pub fn delete_horizon_ms(&self) -> Option<i64> {
        (self.attributes & DELETE_HORIZON_FLAG != 0).then_some(self.base_timestamp)
    }
}

fn be_i32(b: &[u8], at: usize) -> i32 {
    i32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn be_i64(b: &[u8], at: usize) -> i64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[at..at + 8]);
    i64::from_be_bytes(x)
}

/// CRC-32C of the batch bytes the CRC field covers (attributes to the end).
pub fn compute_crc(batch: &[u8]) -> u32 {
    crc32c::crc32c(&batch[ATTRIBUTES_AT..])
}

/// Writes `base_offset` into the batch starting at `batch[0]`. Outside the CRC.
pub fn set_base_offset(batch: &mut [u8], base_offset: u64) {
    batch[..8].copy_from_slice(&(base_offset as i64).to_be_bytes());
}

/// How many bytes at the start of a batch a leader's append stamps: base
/// offset, length (unchanged) and partition leader epoch, all outside the
/// CRC — what [`set_base_offset`] and [`set_partition_leader_epoch`] write.
pub const STAMPED_PREFIX_LEN: usize = PARTITION_LEADER_EPOCH_AT + 4;

/// Writes `epoch` as the batch's partition leader epoch. Outside the CRC.
pub fn set_partition_leader_epoch(batch: &mut [u8], epoch: i32) {
    batch[PARTITION_LEADER_EPOCH_AT..PARTITION_LEADER_EPOCH_AT + 4].copy_from_slice(&epoch.to_be_bytes());
}

/// Marks the batch as `LogAppendTime` with `timestamp` as its max timestamp
/// and recomputes the CRC (both fields lie inside it).
pub fn set_log_append_time(batch: &mut [u8], timestamp: i64) {
    let attributes = i16::from_be_bytes([batch[21], batch[22]]) | TIMESTAMP_TYPE_FLAG;
    batch[ATTRIBUTES_AT..ATTRIBUTES_AT + 2].copy_from_slice(&attributes.to_be_bytes());
    batch[MAX_TIMESTAMP_AT..MAX_TIMESTAMP_AT + 8].copy_from_slice(&timestamp.to_be_bytes());
    let crc = compute_crc(batch);
    batch[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
}
