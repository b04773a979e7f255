//! Why a byte range is not a valid record batch.

use crate::compression::CodecError;

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

impl From<CodecError> for BatchError {
    fn from(e: CodecError) -> Self {
        Self::Codec(e.0)
    }
}
