//! The shape Kafka requires of a partition's records in a Produce request
//! from v3 (its `ProduceRequest.validateRecords`, checked by KafkaApis
//! before any append): exactly one batch, of magic 2, not zstd-compressed
//! before v7. Only the first batch's header is read, no copy is made.

use kafka_protocol::error::ResponseError;

/// Length field, magic and attributes positions in a batch header.
const LENGTH_AT: usize = 8;
const LOG_OVERHEAD: usize = 12;
const MAGIC_AT: usize = 16;
const ATTRIBUTES_AT: usize = 22;
/// Kafka's `HEADER_SIZE_UP_TO_MAGIC`: the smallest length field a batch
/// may declare.
const MIN_LENGTH: i32 = 5;
/// The codec bits of the attributes, and zstd's id.
const CODEC_MASK: u8 = 0x07;
const ZSTD: u8 = 4;
/// The first Produce version whose clients may send zstd (KIP-110).
const ZSTD_FROM: i16 = 7;

/// Checks `records` of one partition of a Produce v`version` request.
pub(crate) fn check(records: &[u8], version: i16) -> Result<(), ResponseError> {
    if version < 3 {
        return Ok(());
    }
    let Some(size) = batch_size(records)? else {
        return Err(ResponseError::InvalidRecord); // no whole batch
    };
    match records[MAGIC_AT] as i8 {
        2 => {}
        0 | 1 => return Err(ResponseError::InvalidRecord),
        _ => return Err(ResponseError::CorruptMessage),
    }
    if version < ZSTD_FROM && records[ATTRIBUTES_AT] & CODEC_MASK == ZSTD {
        return Err(ResponseError::UnsupportedCompressionType);
    }
    if batch_size(&records[size..])?.is_some() {
        return Err(ResponseError::InvalidRecord); // a second whole batch
    }
    Ok(())
}

/// The size of the whole batch at the start of `bytes` (Kafka's
/// `ByteBufferLogInputStream.nextBatch`): `None` when the bytes hold no
/// whole batch, CORRUPT_MESSAGE for a length no batch can have.
fn batch_size(bytes: &[u8]) -> Result<Option<usize>, ResponseError> {
    let Some(field) = bytes.get(LENGTH_AT..LOG_OVERHEAD) else {
        return Ok(None);
    };
    let length = i32::from_be_bytes([field[0], field[1], field[2], field[3]]);
    if length < MIN_LENGTH {
        return Err(ResponseError::CorruptMessage);
    }
    let size = LOG_OVERHEAD + length as usize;
    // A whole batch reaches past the magic and attributes read above.
    Ok((bytes.len() >= size && size > ATTRIBUTES_AT).then_some(size))
}

#[cfg(test)]
mod tests {
    use super::*;
    use gregor_log::batch::{Compression, RecordBatchBuilder};

    fn one() -> Vec<u8> {
        let mut b = RecordBatchBuilder::new(0);
        b.append(Some(b"k"), Some(b"v"), &[], 0);
        b.build()
    }

    #[test]
    fn one_v2_batch_passes() {
        assert_eq!(check(&one(), 3), Ok(()));
        assert_eq!(check(&one(), 11), Ok(()));
    }

    #[test]
    fn no_batch_two_batches_or_an_old_magic_are_invalid_records() {
        assert_eq!(check(&[], 3), Err(ResponseError::InvalidRecord));
        assert_eq!(check(&one()[..30], 3), Err(ResponseError::InvalidRecord));
        let mut two = one();
        two.extend(one());
        assert_eq!(check(&two, 3), Err(ResponseError::InvalidRecord));
        // A partial second batch is no batch (Kafka's iterator stops there).
        assert_eq!(check(&two[..two.len() - 1], 3), Ok(()));
        let mut v1 = one();
        v1[MAGIC_AT] = 1;
        assert_eq!(check(&v1, 3), Err(ResponseError::InvalidRecord));
        v1[MAGIC_AT] = 7;
        assert_eq!(check(&v1, 3), Err(ResponseError::CorruptMessage));
        let mut short = one();
        short[LENGTH_AT..LOG_OVERHEAD].copy_from_slice(&2i32.to_be_bytes());
        assert_eq!(check(&short, 3), Err(ResponseError::CorruptMessage));
        // Before v3 the log judges alone.
        assert_eq!(check(&two, 2), Ok(()));
    }

    #[test]
    fn zstd_needs_v7() {
        let mut b = RecordBatchBuilder::new(0);
        b.append(Some(b"k"), Some(b"v"), &[], 0);
        let zstd = b.build_compressed(Compression::Zstd).unwrap();
        assert_eq!(check(&zstd, 6), Err(ResponseError::UnsupportedCompressionType));
        assert_eq!(check(&zstd, 7), Ok(()));
    }
}
