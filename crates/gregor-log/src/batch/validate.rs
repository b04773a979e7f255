//! Checking a whole batch before the log trusts it.

use super::error::BatchError;
use super::header::{compute_crc, BatchHeader};
use super::records::Records;
use crate::compression::Compression;

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
