//! Writing batches: [`RecordBatchBuilder`] for new ones, and
//! [`rebuild_with_records`] / [`rebuild_with_delete_horizon`] for the
//! cleaner's filtered copies.

use super::error::BatchError;
use super::header::{
    compute_crc, BatchHeader, TimestampType, ATTRIBUTES_AT, BASE_TIMESTAMP_AT, BATCH_HEADER_SIZE, COMPRESSION_MASK,
    CRC_AT, DELETE_HORIZON_FLAG, LOG_OVERHEAD, MAGIC_V2, MAX_TIMESTAMP_AT, TRANSACTIONAL_FLAG,
};
use super::records::Record;
use crate::compression::{self, Compression};
use crate::varint::{varint_len, write_varint, write_varlong};

/// Builds an uncompressed RecordBatch v2 record by record.
///
/// ```
/// use gregor_log::batch::{RecordBatchBuilder, validate_batch};
/// let mut builder = RecordBatchBuilder::new(1_700_000_000_000);
/// builder.append(Some(b"key"), Some(b"value"), &[], 1_700_000_000_000);
/// let batch = builder.build();
/// assert_eq!(validate_batch(&batch).unwrap().record_count, 1);
/// ```
#[derive(Debug, Clone)]
pub struct RecordBatchBuilder {
    base_timestamp: i64,
    max_timestamp: i64,
    count: i32,
    records: Vec<u8>,
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
    /// Attribute bits besides compression (transactional, control).
    flags: i16,
}

impl RecordBatchBuilder {
    /// A new empty batch whose timestamps are relative to `base_timestamp`.
    pub fn new(base_timestamp: i64) -> Self {
        Self {
            base_timestamp,
            max_timestamp: base_timestamp,
            count: 0,
            records: Vec::new(),
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
            flags: 0,
        }
    }

    /// Marks the batch as sent by an idempotent producer.
    pub fn producer(mut self, producer_id: i64, producer_epoch: i16, base_sequence: i32) -> Self {
        self.producer_id = producer_id;
        self.producer_epoch = producer_epoch;
        self.base_sequence = base_sequence;
        self
    }

    /// Marks the batch as part of its producer's transaction (attribute
    /// bit 4; needs [`RecordBatchBuilder::producer`]).
    pub fn transactional(self) -> Self {
        self.with_attributes(TRANSACTIONAL_FLAG)
    }

    /// Sets attribute bits besides the codec's (transactional, control).
    pub(super) fn with_attributes(mut self, flags: i16) -> Self {
        self.flags |= flags & !COMPRESSION_MASK;
        self
    }

    /// Adds a record; `None` key or value encode Kafka's null.
    pub fn append(
        &mut self,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[(&[u8], Option<&[u8]>)],
        timestamp: i64,
    ) -> &mut Self {
        let delta = timestamp - self.base_timestamp;
        write_record(&mut self.records, 0, delta, self.count, key, value, headers);
        self.max_timestamp = self.max_timestamp.max(timestamp);
        self.count += 1;
        self
    }

    /// Number of records added so far.
    pub fn len(&self) -> usize {
        self.count as usize
    }

    /// True when no record was added.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Bytes the batch will occupy.
    pub fn size(&self) -> usize {
        BATCH_HEADER_SIZE + self.records.len()
    }

    /// The finished batch with base offset 0 and a valid CRC.
    pub fn build(&self) -> Vec<u8> {
        self.assemble(Compression::None, &self.records)
    }

    /// The finished batch with its records compressed with `codec`.
    pub fn build_compressed(&self, codec: Compression) -> Result<Vec<u8>, BatchError> {
        let section = compression::compress(codec, &self.records)?;
        Ok(self.assemble(codec, &section))
    }

    fn assemble(&self, codec: Compression, section: &[u8]) -> Vec<u8> {
        let size = BATCH_HEADER_SIZE + section.len();
        let mut out = Vec::with_capacity(size);
        out.extend_from_slice(&0i64.to_be_bytes());
        out.extend_from_slice(&((size - LOG_OVERHEAD) as i32).to_be_bytes());
        out.extend_from_slice(&(-1i32).to_be_bytes()); // partition leader epoch
        out.push(MAGIC_V2);
        out.extend_from_slice(&[0; 4]); // crc, filled below
        out.extend_from_slice(&(codec.attribute_bits() | self.flags).to_be_bytes());
        out.extend_from_slice(&(self.count - 1).max(0).to_be_bytes());
        out.extend_from_slice(&self.base_timestamp.to_be_bytes());
        out.extend_from_slice(&self.max_timestamp.to_be_bytes());
        out.extend_from_slice(&self.producer_id.to_be_bytes());
        out.extend_from_slice(&self.producer_epoch.to_be_bytes());
        out.extend_from_slice(&self.base_sequence.to_be_bytes());
        out.extend_from_slice(&self.count.to_be_bytes());
        out.extend_from_slice(section);
        let crc = compute_crc(&out);
        out[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
        out
    }
}

/// Appends one encoded record, length prefix included, to `out`.
fn write_record(
    out: &mut Vec<u8>,
    attributes: i8,
    timestamp_delta: i64,
    offset_delta: i32,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
    headers: &[(&[u8], Option<&[u8]>)],
) {
    let mut body = Vec::with_capacity(16 + key.map_or(0, <[u8]>::len) + value.map_or(0, <[u8]>::len));
    body.push(attributes as u8);
    write_varlong(&mut body, timestamp_delta);
    write_varint(&mut body, offset_delta);
    write_optional_bytes(&mut body, key);
    write_optional_bytes(&mut body, value);
    write_varint(&mut body, headers.len() as i32);
    for (k, v) in headers {
        write_optional_bytes(&mut body, Some(k));
        write_optional_bytes(&mut body, *v);
    }
    out.reserve(varint_len(body.len() as i32) + body.len());
    write_varint(out, body.len() as i32);
    out.extend_from_slice(&body);
}

fn write_optional_bytes(out: &mut Vec<u8>, bytes: Option<&[u8]>) {
    match bytes {
        Some(b) => {
            write_varint(out, b.len() as i32);
            out.extend_from_slice(b);
        }
        None => write_varint(out, -1),
    }
}

/// A copy of `batch` holding only the `retained` records (encoded records
/// taken from its [`record_section`](super::record_section), in order), as the log cleaner writes
/// it: base offset, `lastOffsetDelta` and producer fields are kept, so
/// offsets keep their meaning; count, length, max timestamp and CRC are
/// recomputed. The records are compressed again with the batch's codec; a
/// batch left without records is written uncompressed and keeps its max
/// timestamp, as Kafka's empty batches do (a producer's last batch kept
/// empty still tells a rebuilt producer state when it last wrote).
pub fn rebuild_with_records(
    batch: &[u8],
    header: &BatchHeader,
    retained: &[Record<'_>],
) -> Result<Vec<u8>, BatchError> {
    rebuild(batch, header, retained, None)
}

/// As [`rebuild_with_records`], and stamps `horizon_ms` as the batch's
/// delete horizon (KIP-534, see [`BatchHeader::delete_horizon_ms`]): sets
/// attribute bit 6 and makes the horizon the base timestamp, re-encoding
/// each record's timestamp delta so that record timestamps are unchanged
/// (as Kafka's `MemoryRecordsBuilder` does). Fails if a record's timestamp
/// is too far from the horizon for a delta.
pub fn rebuild_with_delete_horizon(
    batch: &[u8],
    header: &BatchHeader,
    retained: &[Record<'_>],
    horizon_ms: i64,
) -> Result<Vec<u8>, BatchError> {
    rebuild(batch, header, retained, Some(horizon_ms))
}

fn rebuild(
    batch: &[u8],
    header: &BatchHeader,
    retained: &[Record<'_>],
    horizon_ms: Option<i64>,
) -> Result<Vec<u8>, BatchError> {
    let codec = if retained.is_empty() {
        Compression::None
    } else {
        header.compression()?
    };
    let raw_len: usize = retained.iter().map(|r| r.raw.len()).sum();
    let mut out = Vec::with_capacity(BATCH_HEADER_SIZE + raw_len);
    out.extend_from_slice(&batch[..BATCH_HEADER_SIZE]);
    // Uncompressed records go straight into the batch; compressed ones are
    // gathered once for the codec.
    let records = if codec == Compression::None {
        &mut out
    } else {
        &mut Vec::with_capacity(raw_len)
    };
    for r in retained {
        match horizon_ms {
            None => records.extend_from_slice(r.raw),
            Some(horizon) => {
                let delta = header
                    .base_timestamp
                    .checked_add(r.timestamp_delta)
                    .and_then(|timestamp| timestamp.checked_sub(horizon))
                    .ok_or(BatchError::Invalid("record timestamp too far from the delete horizon"))?;
                write_record(records, r.attributes, delta, r.offset_delta, r.key, r.value, &r.headers);
            }
        }
    }
    if codec != Compression::None {
        let section = compression::compress(codec, records)?;
        out.extend_from_slice(&section);
    }
    let length = (out.len() - LOG_OVERHEAD) as i32;
    out[8..12].copy_from_slice(&length.to_be_bytes());
    let mut attributes = header.attributes;
    if codec == Compression::None {
        attributes &= !COMPRESSION_MASK;
    }
    if let Some(horizon) = horizon_ms {
        attributes |= DELETE_HORIZON_FLAG;
        out[BASE_TIMESTAMP_AT..BASE_TIMESTAMP_AT + 8].copy_from_slice(&horizon.to_be_bytes());
    }
    out[ATTRIBUTES_AT..ATTRIBUTES_AT + 2].copy_from_slice(&attributes.to_be_bytes());
    out[57..61].copy_from_slice(&(retained.len() as i32).to_be_bytes());
    if header.timestamp_type() == TimestampType::CreateTime && !retained.is_empty() {
        // The records' own timestamps, from the original base timestamp.
        let max = retained
            .iter()
            .map(|r| header.base_timestamp.saturating_add(r.timestamp_delta))
            .max()
            .unwrap_or(header.base_timestamp);
        out[MAX_TIMESTAMP_AT..MAX_TIMESTAMP_AT + 8].copy_from_slice(&max.to_be_bytes());
    }
    let crc = compute_crc(&out);
    out[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
    Ok(out)
}
