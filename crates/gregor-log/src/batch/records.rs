//! Walking batches and their records: [`BatchIter`] over batches laid end to
//! end, [`Records`] over one batch's records, [`for_each_record`] over both.

use std::borrow::Cow;

use super::error::BatchError;
use super::header::{BatchHeader, TimestampType, BATCH_HEADER_SIZE};
use crate::compression::{self, Compression};
use crate::varint::{read_varint, read_varlong};

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
        codec => Ok(Cow::Owned(compression::decompress(codec, section)?)),
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
