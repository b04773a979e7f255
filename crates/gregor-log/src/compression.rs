//! The record-section codecs of RecordBatch v2: gzip, snappy, lz4 and zstd.
//!
//! The log stores compressed batches as producers sent them; it opens them
//! only where it must look at the records: the key check of compacted topics
//! and the compactor, which filters records and compresses the survivors
//! again with the batch's codec.
//!
//! Snappy comes in two framings: Kafka's Java client writes xerial's
//! stream format (a magic header, then length-prefixed blocks), librdkafka
//! may write one raw block. Both are read; xerial is written, as Java does.

use std::io::{Read, Write};

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
    /// The codec whose id is `id` (a batch's attribute bits 0–2), if any.
    pub fn from_attribute_bits(id: i16) -> Option<Self> {
        match id {
            0 => Some(Self::None),
            1 => Some(Self::Gzip),
            2 => Some(Self::Snappy),
            3 => Some(Self::Lz4),
            4 => Some(Self::Zstd),
            _ => None,
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

/// A codec failed: the bytes do not decompress (or decompress to too much),
/// or compressing them failed. The message starts with the codec's name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CodecError(pub String);

/// The most bytes one batch's records may decompress to; more is refused
/// as a decompression bomb.
pub const MAX_DECOMPRESSED_BYTES: usize = 256 << 20;

const XERIAL_MAGIC: [u8; 8] = [0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0];
const XERIAL_HEADER_SIZE: usize = 16;
const XERIAL_BLOCK_SIZE: usize = 32 << 10;

/// Decompresses a batch's record section; `Compression::None` copies it.
pub fn decompress(codec: Compression, data: &[u8]) -> Result<Vec<u8>, CodecError> {
    decompress_at_most(codec, data, MAX_DECOMPRESSED_BYTES)
}

fn decompress_at_most(codec: Compression, data: &[u8], limit: usize) -> Result<Vec<u8>, CodecError> {
    let fail = |what: &str, e: &dyn std::fmt::Display| CodecError(format!("{what}: {e}"));
    match codec {
        Compression::None => Ok(data.to_vec()),
        Compression::Gzip => read_bounded(flate2::read::MultiGzDecoder::new(data), limit).map_err(|e| fail("gzip", &e)),
        Compression::Snappy => snappy_decompress(data, limit),
        Compression::Lz4 => {
            let decoder = lz4::Decoder::new(data).map_err(|e| fail("lz4", &e))?;
            read_bounded(decoder, limit).map_err(|e| fail("lz4", &e))
        }
        Compression::Zstd => {
            let decoder = zstd::stream::read::Decoder::new(data).map_err(|e| fail("zstd", &e))?;
            read_bounded(decoder, limit).map_err(|e| fail("zstd", &e))
        }
    }
}

/// Compresses a record section with `codec`; `Compression::None` copies it.
pub fn compress(codec: Compression, data: &[u8]) -> Result<Vec<u8>, CodecError> {
    let fail = |what: &str, e: std::io::Error| CodecError(format!("{what}: {e}"));
    match codec {
        Compression::None => Ok(data.to_vec()),
        Compression::Gzip => {
            let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            encoder.write_all(data).map_err(|e| fail("gzip", e))?;
            encoder.finish().map_err(|e| fail("gzip", e))
        }
        Compression::Snappy => snappy_compress_xerial(data),
        Compression::Lz4 => {
            let mut encoder = lz4::EncoderBuilder::new()
                .build(Vec::new())
                .map_err(|e| fail("lz4", e))?;
            encoder.write_all(data).map_err(|e| fail("lz4", e))?;
            let (out, result) = encoder.finish();
            result.map_err(|e| fail("lz4", e))?;
            Ok(out)
        }
        Compression::Zstd => zstd::bulk::compress(data, zstd::DEFAULT_COMPRESSION_LEVEL).map_err(|e| fail("zstd", e)),
    }
}

/// Reads `reader` to its end, refusing more than `limit` bytes.
fn read_bounded(reader: impl Read, limit: usize) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    reader.take(limit as u64 + 1).read_to_end(&mut out)?;
    if out.len() > limit {
        return Err(std::io::Error::other(format!(
            "records decompress to more than {limit} bytes"
        )));
    }
    Ok(out)
}

fn snappy_decompress(data: &[u8], limit: usize) -> Result<Vec<u8>, CodecError> {
    let fail = |e: &dyn std::fmt::Display| CodecError(format!("snappy: {e}"));
    if !data.starts_with(&XERIAL_MAGIC) {
        return snappy_block(data, limit).map_err(|e| fail(&e));
    }
    let mut out = Vec::new();
    let mut pos = XERIAL_HEADER_SIZE.min(data.len());
    while pos < data.len() {
        let len_bytes: [u8; 4] = data
            .get(pos..pos + 4)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| fail(&"truncated xerial block length"))?;
        let len = u32::from_be_bytes(len_bytes) as usize;
        pos += 4;
        let block = data
            .get(pos..pos.saturating_add(len))
            .ok_or_else(|| fail(&"truncated xerial block"))?;
        let room = limit.saturating_sub(out.len());
        out.extend_from_slice(&snappy_block(block, room).map_err(|e| fail(&e))?);
        pos += len;
    }
    Ok(out)
}

fn snappy_block(block: &[u8], limit: usize) -> Result<Vec<u8>, snap::Error> {
    let len = snap::raw::decompress_len(block)?;
    if len > limit {
        return Err(snap::Error::TooBig {
            given: len as u64,
            max: limit as u64,
        });
    }
    snap::raw::Decoder::new().decompress_vec(block)
}

fn snappy_compress_xerial(data: &[u8]) -> Result<Vec<u8>, CodecError> {
    let mut out = Vec::with_capacity(XERIAL_HEADER_SIZE + data.len() / 2);
    out.extend_from_slice(&XERIAL_MAGIC);
    out.extend_from_slice(&1i32.to_be_bytes()); // version
    out.extend_from_slice(&1i32.to_be_bytes()); // minimum compatible version
    let mut encoder = snap::raw::Encoder::new();
    for chunk in data.chunks(XERIAL_BLOCK_SIZE) {
        let block = encoder
            .compress_vec(chunk)
            .map_err(|e| CodecError(format!("snappy: {e}")))?;
        out.extend_from_slice(&(block.len() as u32).to_be_bytes());
        out.extend_from_slice(&block);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CODECS: [Compression; 5] = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];

    #[test]
    fn every_codec_round_trips() {
        let data: Vec<u8> = (0..100_000u32).flat_map(|i| (i % 251).to_le_bytes()).collect();
        for codec in CODECS {
            let packed = compress(codec, &data).unwrap();
            assert_eq!(decompress(codec, &packed).unwrap(), data, "{codec:?}");
        }
        assert!(compress(Compression::Zstd, &data).unwrap().len() < data.len() / 4);
    }

    #[test]
    fn raw_snappy_blocks_are_read_too() {
        let data = b"librdkafka may write one raw snappy block".repeat(10);
        let raw = snap::raw::Encoder::new().compress_vec(&data).unwrap();
        assert_eq!(decompress(Compression::Snappy, &raw).unwrap(), data);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for codec in &CODECS[1..] {
            for garbage in [
                &b""[..],
                b"\x00\x01\x02",
                &XERIAL_MAGIC,
                b"\x82SNAPPY\x00\0\0\0\x01\0\0\0\x01\xff\xff\xff\xff",
            ] {
                let _ = decompress(*codec, garbage);
            }
            assert!(
                decompress(*codec, b"definitely not compressed data").is_err(),
                "{codec:?}"
            );
        }
    }

    #[test]
    fn bombs_are_refused() {
        let zeros = vec![0u8; 1 << 20];
        for codec in &CODECS[1..] {
            let packed = compress(*codec, &zeros).unwrap();
            assert!(packed.len() < zeros.len() / 10, "{codec:?}");
            assert_eq!(decompress_at_most(*codec, &packed, zeros.len()).unwrap(), zeros);
            let refused = decompress_at_most(*codec, &packed, zeros.len() - 1);
            assert!(matches!(refused, Err(CodecError(_))), "{codec:?}");
        }
    }
}
