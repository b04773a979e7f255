//! Kafka RecordBatch v2: the unit the log stores, byte for byte as on the wire.
//!
//! ```text
//! offset  size  field
//!      0     8  baseOffset              ┐ outside the CRC: the broker
//!      8     4  batchLength             │ rewrites baseOffset and
//!     12     4  partitionLeaderEpoch    ┘ partitionLeaderEpoch freely
//!     16     1  magic (2)
//!     17     4  crc (CRC-32C of bytes 21..end)
//!     21     2  attributes
//!     23     4  lastOffsetDelta
//!     27     8  baseTimestamp
//!     35     8  maxTimestamp
//!     43     8  producerId
//!     51     2  producerEpoch
//!     53     4  baseSequence
//!     57     4  recordCount
//!     61     …  records (compressed as a whole when attributes say so)
//! ```
//!
//! [`BatchHeader::parse`] reads the fixed part; [`validate_batch`] checks a
//! whole batch (length, magic, CRC and, when uncompressed, every record);
//! [`Records`] walks the records of an uncompressed batch without allocating,
//! [`record_section`] opens compressed ones; [`RecordBatchBuilder`] writes
//! new batches, compressed or not.

use std::borrow::Cow;

use crate::compression;
use crate::varint::{read_varint, read_varlong, varint_len, write_varint, write_varlong};

/// Size of the fixed batch header that precedes the records.
pub const BATCH_HEADER_SIZE: usize = 61;
/// Bytes before `batchLength` ends: a batch occupies `LOG_OVERHEAD + batchLength` bytes.
pub const LOG_OVERHEAD: usize = 12;
/// The only magic value gregor accepts.
pub const MAGIC_V2: u8 = 2;

const PARTITION_LEADER_EPOCH_AT: usize = 12;
const MAGIC_AT: usize = 16;
const CRC_AT: usize = 17;
const ATTRIBUTES_AT: usize = 21;
const MAX_TIMESTAMP_AT: usize = 35;

const COMPRESSION_MASK: i16 = 0x07;
const TIMESTAMP_TYPE_FLAG: i16 = 0x08;
const TRANSACTIONAL_FLAG: i16 = 0x10;
const CONTROL_FLAG: i16 = 0x20;

/// Why a byte range is not a valid record batch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    /// Fewer bytes than the header or the declared length need.
    #[error("batch truncated: need {needed} bytes, have {available}")]
    Truncated {
        /// Bytes the batch needs.
        needed: usize,
        /// Bytes available.
        available: usize,
    },
    /// The length field is impossible (smaller than a header or negative).
    #[error("invalid batch length {0}")]
    InvalidLength(i32),
    /// The magic byte is not 2.
    #[error("unsupported record batch magic {0} (only v2 is supported)")]
    UnsupportedMagic(i8),
    /// The stored CRC does not match the content.
    #[error("CRC mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    CrcMismatch {
        /// CRC found in the batch.
        stored: u32,
        /// CRC of the bytes.
        computed: u32,
    },
    /// Header fields contradict each other or the records.
    #[error("invalid batch: {0}")]
    Invalid(&'static str),
    /// An unknown compression codec id.
    #[error("unknown compression codec {0}")]
    UnknownCompression(i16),
    /// The compressed records cannot be decompressed (or compressed again).
    #[error("compressed records: {0}")]
    Codec(String),
}

/// Compression codec of a batch (attribute bits 0–2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// Records stored as is.
    None,
    /// gzip.
    Gzip,
    /// snappy (xerial framing or one raw block).
    Snappy,
    /// lz4 frame.
    Lz4,
    /// zstd.
    Zstd,
}

impl Compression {
    fn from_attributes(attributes: i16) -> Result<Self, BatchError> {
        match attributes & COMPRESSION_MASK {
            0 => Ok(Self::None),
            1 => Ok(Self::Gzip),
            2 => Ok(Self::Snappy),
            3 => Ok(Self::Lz4),
            4 => Ok(Self::Zstd),
            other => Err(BatchError::UnknownCompression(other)),
        }
    }

    /// The codec's id in a batch's attributes.
    pub fn attribute_bits(self) -> i16 {
        match self {
            Self::None => 0,
            Self::Gzip => 1,
            Self::Snappy => 2,
            Self::Lz4 => 3,
            Self::Zstd => 4,
        }
    }
}

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
    /// magic. Use [`validate_batch`] before trusting the content.
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
            base_timestamp: be_i64(bytes, 27),
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
        Compression::from_attributes(self.attributes)
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

/// Checks the batch at the start of `bytes` completely and returns its header.
///
/// Checks the length against the available bytes, the magic, the CRC-32C
/// and, for uncompressed batches, that the records fill the batch exactly
/// with offset deltas `0..count` in order and `lastOffsetDelta = count - 1`.
/// Compressed batches are checked up to their CRC: the codec payload is kept
/// as sent and never recompressed.
pub fn validate_batch(bytes: &[u8]) -> Result<BatchHeader, BatchError> {
    let header = validate_batch_integrity(bytes)?;
    let batch = &bytes[..header.total_size()];
    if header.compression()? == Compression::None {
        let mut count = 0u32;
        for record in Records::new(batch, &header) {
            let record = record?;
            if record.offset_delta as u32 != count {
                return Err(BatchError::Invalid("record offset deltas are not 0, 1, 2, …"));
            }
            count += 1;
        }
        if count != header.record_count {
            return Err(BatchError::Invalid("record count does not match the records"));
        }
        if count > 0 && header.last_offset_delta != count - 1 {
            return Err(BatchError::Invalid("lastOffsetDelta does not match the records"));
        }
    }
    Ok(header)
}

/// Checks what every stored batch must satisfy, however it was produced
/// (compaction leaves offset gaps inside batches): header, length, CRC.
/// Recovery and replicated appends use this; producer appends use the
/// stricter [`validate_batch`].
pub fn validate_batch_integrity(bytes: &[u8]) -> Result<BatchHeader, BatchError> {
    let header = BatchHeader::parse(bytes)?;
    let size = header.total_size();
    if bytes.len() < size {
        return Err(BatchError::Truncated {
            needed: size,
            available: bytes.len(),
        });
    }
    let batch = &bytes[..size];
    let computed = compute_crc(batch);
    if computed != header.crc {
        return Err(BatchError::CrcMismatch {
            stored: header.crc,
            computed,
        });
    }
    header.compression()?;
    Ok(header)
}

/// Writes `base_offset` into the batch starting at `batch[0]`. Outside the CRC.
pub fn set_base_offset(batch: &mut [u8], base_offset: u64) {
    batch[..8].copy_from_slice(&(base_offset as i64).to_be_bytes());
}

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

/// A copy of `batch` holding only the `retained` records (encoded records
/// taken from its [`record_section`], in order), as the log cleaner writes
/// it: base offset, `lastOffsetDelta` and producer fields are kept, so
/// offsets keep their meaning; count, length, max timestamp and CRC are
/// recomputed. The records are compressed again with the batch's codec; a
/// batch left without records is written uncompressed, as Kafka does.
pub fn rebuild_with_records(
    batch: &[u8],
    header: &BatchHeader,
    retained: &[Record<'_>],
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
        records.extend_from_slice(r.raw);
    }
    if codec != Compression::None {
        let section = compression::compress(codec, records)?;
        out.extend_from_slice(&section);
    }
    let length = (out.len() - LOG_OVERHEAD) as i32;
    out[8..12].copy_from_slice(&length.to_be_bytes());
    if codec == Compression::None {
        let attributes = header.attributes & !COMPRESSION_MASK;
        out[ATTRIBUTES_AT..ATTRIBUTES_AT + 2].copy_from_slice(&attributes.to_be_bytes());
    }
    out[57..61].copy_from_slice(&(retained.len() as i32).to_be_bytes());
    if header.timestamp_type() == TimestampType::CreateTime {
        let max = retained
            .iter()
            .map(|r| header.base_timestamp + r.timestamp_delta)
            .max()
            .unwrap_or(header.base_timestamp);
        out[MAX_TIMESTAMP_AT..MAX_TIMESTAMP_AT + 8].copy_from_slice(&max.to_be_bytes());
    }
    let crc = compute_crc(&out);
    out[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
    Ok(out)
}

/// Iterates over the batches laid end to end in `bytes`, yielding each
/// batch's position and header. Stops at the first incomplete batch; a
/// malformed header is yielded as an error and ends the iteration.
pub struct BatchIter<'a> {
    bytes: &'a [u8],
    pos: usize,
    done: bool,
}

impl<'a> BatchIter<'a> {
    /// Iterates over `bytes` from its start.
    pub fn new(bytes: &'a [u8]) -> Self {
        Self {
            bytes,
            pos: 0,
            done: false,
        }
    }
}

impl<'a> Iterator for BatchIter<'a> {
    type Item = Result<(usize, BatchHeader), BatchError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.pos >= self.bytes.len() {
            return None;
        }
        let rest = &self.bytes[self.pos..];
        match BatchHeader::parse(rest) {
            Ok(header) if header.total_size() <= rest.len() => {
                let at = self.pos;
                self.pos += header.total_size();
                Some(Ok((at, header)))
            }
            Ok(_) | Err(BatchError::Truncated { .. }) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

/// The record section of a batch, decompressed when the batch is
/// compressed (borrowed as is when it is not); walk it with
/// [`Records::from_section`].
pub fn record_section<'a>(batch: &'a [u8], header: &BatchHeader) -> Result<Cow<'a, [u8]>, BatchError> {
    let end = header.total_size().min(batch.len());
    let section = &batch[BATCH_HEADER_SIZE.min(end)..end];
    match header.compression()? {
        Compression::None => Ok(Cow::Borrowed(section)),
        codec => compression::decompress(codec, section).map(Cow::Owned),
    }
}

/// A record inside a batch, borrowing its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record<'a> {
    /// Record attributes (unused by Kafka today).
    pub attributes: i8,
    /// Timestamp relative to the batch's base timestamp.
    pub timestamp_delta: i64,
    /// Offset relative to the batch's base offset.
    pub offset_delta: i32,
    /// Key, `None` for a null key.
    pub key: Option<&'a [u8]>,
    /// Value, `None` for a tombstone.
    pub value: Option<&'a [u8]>,
    /// Headers in order: key and optional value.
    pub headers: Vec<(&'a [u8], Option<&'a [u8]>)>,
    /// The whole encoded record (length prefix included), to copy it as is.
    pub raw: &'a [u8],
}

/// Walks the records of an uncompressed batch, or of a batch's
/// [`record_section`].
pub struct Records<'a> {
    body: &'a [u8],
    pos: usize,
    remaining: u32,
}

impl<'a> Records<'a> {
    /// Records of `batch` (whole batch bytes) with its parsed `header`.
    pub fn new(batch: &'a [u8], header: &BatchHeader) -> Self {
        let end = header.total_size().min(batch.len());
        Self {
            body: &batch[BATCH_HEADER_SIZE.min(end)..end],
            pos: 0,
            remaining: header.record_count,
        }
    }

    /// Records of an uncompressed record section holding `record_count` records.
    pub fn from_section(section: &'a [u8], record_count: u32) -> Self {
        Self {
            body: section,
            pos: 0,
            remaining: record_count,
        }
    }
}

impl<'a> Iterator for Records<'a> {
    type Item = Result<Record<'a>, BatchError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.remaining == 0 {
            return if self.pos == self.body.len() {
                None
            } else {
                self.pos = self.body.len();
                Some(Err(BatchError::Invalid("bytes left after the last record")))
            };
        }
        self.remaining -= 1;
        let parsed = parse_record(self.body, &mut self.pos);
        if parsed.is_none() {
            self.remaining = 0;
            self.pos = self.body.len();
        }
        Some(parsed.ok_or(BatchError::Invalid("malformed record")))
    }
}

fn parse_record<'a>(body: &'a [u8], pos: &mut usize) -> Option<Record<'a>> {
    let start = *pos;
    let length = usize::try_from(read_varint(body, pos)?).ok()?;
    let end = pos.checked_add(length)?;
    let record = body.get(*pos..end)?;
    let mut p = 0;
    let attributes = *record.first()? as i8;
    p += 1;
    let timestamp_delta = read_varlong(record, &mut p)?;
    let offset_delta = read_varint(record, &mut p)?;
    let key = read_bytes(record, &mut p)?;
    let value = read_bytes(record, &mut p)?;
    let header_count = usize::try_from(read_varint(record, &mut p)?).ok()?;
    let mut headers = Vec::with_capacity(header_count.min(64));
    for _ in 0..header_count {
        let key = read_bytes(record, &mut p)??;
        let value = read_bytes(record, &mut p)?;
        headers.push((key, value));
    }
    if p != record.len() {
        return None;
    }
    *pos = end;
    Some(Record {
        attributes,
        timestamp_delta,
        offset_delta,
        key,
        value,
        headers,
        raw: &body[start..end],
    })
}

/// Reads a varint-length-prefixed byte string; `Some(None)` for length -1.
fn read_bytes<'a>(buf: &'a [u8], pos: &mut usize) -> Option<Option<&'a [u8]>> {
    let len = read_varint(buf, pos)?;
    if len < 0 {
        return (len == -1).then_some(None);
    }
    let end = pos.checked_add(len as usize)?;
    let bytes = buf.get(*pos..end)?;
    *pos = end;
    Some(Some(bytes))
}

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
        }
    }

    /// Marks the batch as sent by an idempotent producer.
    pub fn producer(mut self, producer_id: i64, producer_epoch: i16, base_sequence: i32) -> Self {
        self.producer_id = producer_id;
        self.producer_epoch = producer_epoch;
        self.base_sequence = base_sequence;
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
        let mut body = Vec::with_capacity(16 + key.map_or(0, <[u8]>::len) + value.map_or(0, <[u8]>::len));
        body.push(0); // attributes
        write_varlong(&mut body, timestamp - self.base_timestamp);
        write_varint(&mut body, self.count);
        write_optional_bytes(&mut body, key);
        write_optional_bytes(&mut body, value);
        write_varint(&mut body, headers.len() as i32);
        for (k, v) in headers {
            write_optional_bytes(&mut body, Some(k));
            write_optional_bytes(&mut body, *v);
        }
        self.records.reserve(varint_len(body.len() as i32) + body.len());
        write_varint(&mut self.records, body.len() as i32);
        self.records.extend_from_slice(&body);
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
        out.extend_from_slice(&codec.attribute_bits().to_be_bytes());
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

fn write_optional_bytes(out: &mut Vec<u8>, bytes: Option<&[u8]>) {
    match bytes {
        Some(b) => {
            write_varint(out, b.len() as i32);
            out.extend_from_slice(b);
        }
        None => write_varint(out, -1),
    }
}

/// Calls `f` for every record of the whole batches in `bytes` (as a
/// fetch or a log read returns them), compressed batches decompressed,
/// with the batch header and the record's absolute offset and timestamp.
/// Control batches are skipped. Returns the offset after the last batch
/// (`None`: no whole batch); stops at the first malformed batch.
pub fn for_each_record(
    bytes: &[u8],
    mut f: impl FnMut(&BatchHeader, u64, i64, &Record<'_>),
) -> Result<Option<u64>, BatchError> {
    let mut next = None;
    for item in BatchIter::new(bytes) {
        let (at, header) = item?;
        next = Some(header.next_offset());
        if header.is_control() {
            continue;
        }
        let batch = &bytes[at..at + header.total_size()];
        let section = record_section(batch, &header)?;
        for record in Records::from_section(&section, header.record_count) {
            let record = record?;
            let offset = header.base_offset + record.offset_delta as u64;
            let timestamp = match header.timestamp_type() {
                TimestampType::LogAppendTime => header.max_timestamp,
                TimestampType::CreateTime => header.base_timestamp + record.timestamp_delta,
            };
            f(&header, offset, timestamp, &record);
        }
    }
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> Vec<u8> {
        let mut b = RecordBatchBuilder::new(1000);
        b.append(Some(b"k1"), Some(b"v1"), &[(b"h", Some(b"x"))], 1000);
        b.append(None, None, &[], 1005);
        b.append(Some(b"k3"), Some(b""), &[(b"h2", None)], 1003);
        b.build()
    }

    #[test]
    fn built_batch_validates_and_reads_back() {
        let batch = sample();
        let header = validate_batch(&batch).unwrap();
        assert_eq!(header.record_count, 3);
        assert_eq!(header.last_offset_delta, 2);
        assert_eq!(header.max_timestamp, 1005);
        assert_eq!(header.compression().unwrap(), Compression::None);
        let records: Vec<_> = Records::new(&batch, &header).map(Result::unwrap).collect();
        assert_eq!(records[0].key, Some(&b"k1"[..]));
        assert_eq!(records[0].headers, vec![(&b"h"[..], Some(&b"x"[..]))]);
        assert_eq!(records[1].key, None);
        assert_eq!(records[1].value, None);
        assert_eq!(records[1].timestamp_delta, 5);
        assert_eq!(records[2].value, Some(&b""[..]));
        assert_eq!(records[2].headers, vec![(&b"h2"[..], None)]);
    }

    #[test]
    fn offset_and_epoch_rewrites_keep_the_crc_valid() {
        let mut batch = sample();
        set_base_offset(&mut batch, 42);
        set_partition_leader_epoch(&mut batch, 7);
        let header = validate_batch(&batch).unwrap();
        assert_eq!(header.base_offset, 42);
        assert_eq!(header.last_offset(), 44);
        assert_eq!(header.partition_leader_epoch, 7);
    }

    #[test]
    fn log_append_time_rewrite_recomputes_the_crc() {
        let mut batch = sample();
        set_log_append_time(&mut batch, 99_999);
        let header = validate_batch(&batch).unwrap();
        assert_eq!(header.timestamp_type(), TimestampType::LogAppendTime);
        assert_eq!(header.max_timestamp, 99_999);
    }

    #[test]
    fn corruption_is_detected() {
        let mut batch = sample();
        let last = batch.len() - 1;
        batch[last] ^= 1;
        assert!(matches!(validate_batch(&batch), Err(BatchError::CrcMismatch { .. })));
        let mut batch = sample();
        batch[MAGIC_AT] = 1;
        assert_eq!(validate_batch(&batch), Err(BatchError::UnsupportedMagic(1)));
        let batch = sample();
        assert!(matches!(
            validate_batch(&batch[..batch.len() - 1]),
            Err(BatchError::Truncated { .. })
        ));
    }

    #[test]
    fn rebuilt_batches_keep_offsets_and_validate() {
        let mut batch = sample();
        set_base_offset(&mut batch, 100);
        let header = validate_batch(&batch).unwrap();
        let records: Vec<_> = Records::new(&batch, &header).map(Result::unwrap).collect();
        let kept = vec![records[0].clone(), records[2].clone()];
        let rebuilt = rebuild_with_records(&batch, &header, &kept).unwrap();
        let h = validate_batch_integrity(&rebuilt).unwrap();
        assert_eq!((h.base_offset, h.last_offset(), h.record_count), (100, 102, 2));
        assert_eq!(h.max_timestamp, 1003);
        let again: Vec<_> = Records::new(&rebuilt, &h).map(Result::unwrap).collect();
        assert_eq!(again[1].offset_delta, 2);
        assert_eq!(again[1].key, Some(&b"k3"[..]));
    }

    #[test]
    fn batch_iter_stops_at_a_partial_batch() {
        let one = sample();
        let mut bytes = one.clone();
        bytes.extend_from_slice(&one);
        bytes.extend_from_slice(&one[..30]);
        let found: Vec<_> = BatchIter::new(&bytes).map(|r| r.unwrap().0).collect();
        assert_eq!(found, vec![0, one.len()]);
    }

    proptest! {
        #[test]
        fn builder_round_trips_arbitrary_records(
            records in proptest::collection::vec(
                (proptest::option::of(proptest::collection::vec(any::<u8>(), 0..40)),
                 proptest::option::of(proptest::collection::vec(any::<u8>(), 0..200)),
                 -1000i64..1000),
                1..30)
        ) {
            let mut b = RecordBatchBuilder::new(10_000);
            for (k, v, dt) in &records {
                b.append(k.as_deref(), v.as_deref(), &[], 10_000 + dt);
            }
            let batch = b.build();
            let header = validate_batch(&batch).unwrap();
            prop_assert_eq!(header.record_count as usize, records.len());
            for (r, (k, v, dt)) in Records::new(&batch, &header).zip(&records) {
                let r = r.unwrap();
                prop_assert_eq!(r.key, k.as_deref());
                prop_assert_eq!(r.value, v.as_deref());
                prop_assert_eq!(r.timestamp_delta, *dt);
            }
        }

        #[test]
        fn validate_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = validate_batch(&bytes);
            for _ in BatchIter::new(&bytes) {}
        }
    }

    #[test]
    fn every_record_of_plain_and_compressed_batches_with_offsets_and_timestamps() {
        let mut plain = RecordBatchBuilder::new(1_000);
        plain.append(Some(b"a"), Some(b"1"), &[], 1_000);
        plain.append(None, Some(b"2"), &[], 1_005);
        let mut bytes = plain.build();
        set_base_offset(&mut bytes, 10);
        let mut zipped = RecordBatchBuilder::new(2_000);
        zipped.append(Some(b"c"), None, &[], 2_000);
        let mut second = zipped.build_compressed(Compression::Gzip).unwrap();
        set_base_offset(&mut second, 12);
        bytes.extend_from_slice(&second);
        let mut seen = Vec::new();
        let next = for_each_record(&bytes, |_, offset, ts, r| {
            seen.push((offset, ts, r.key.map(<[u8]>::to_vec), r.value.map(<[u8]>::to_vec)));
        })
        .unwrap();
        assert_eq!(next, Some(13));
        assert_eq!(
            seen,
            vec![
                (10, 1_000, Some(b"a".to_vec()), Some(b"1".to_vec())),
                (11, 1_005, None, Some(b"2".to_vec())),
                (12, 2_000, Some(b"c".to_vec()), None),
            ]
        );
        assert_eq!(for_each_record(&[], |_, _, _, _| {}).unwrap(), None);
    }
}
