//! Zero-copy responses: a file region sent with `sendfile(2)` in place of
//! 16 placeholder bytes of an encoded response (Fetch's records), with the
//! length prefix before them rewritten for the region — a 4-byte length
//! (BYTES, Fetch ≤ v11) or an unsigned varint of the length + 1
//! (COMPACT_BYTES, the flexible versions).

use std::sync::atomic::{AtomicU64, Ordering};

use gregor_log::FileRegion;

/// The placeholder's length.
pub const PLACEHOLDER_LEN: usize = 16;

/// A file region to send in place of a placeholder in the encoded response.
#[derive(Debug, Clone)]
pub struct Splice {
    /// The 16 bytes that stand for the region in the encoded response.
    pub placeholder: [u8; PLACEHOLDER_LEN],
    /// The batches to send there.
    pub region: FileRegion,
    /// The field is COMPACT_BYTES (varint length) rather than BYTES.
    pub compact: bool,
}

impl Splice {
    /// The length prefix the encoder wrote for the placeholder.
    pub fn placeholder_prefix(&self) -> LengthPrefix {
        LengthPrefix::new(PLACEHOLDER_LEN as u64, self.compact)
    }

    /// The length prefix the region needs in its place.
    pub fn region_prefix(&self) -> Result<LengthPrefix, String> {
        if self.region.len() > i32::MAX as u64 {
            return Err("a fetch region over 2 GiB".into());
        }
        Ok(LengthPrefix::new(self.region.len(), self.compact))
    }
}

/// A BYTES (i32) or COMPACT_BYTES (unsigned varint of len + 1) length,
/// held inline (the fetch path makes one per partition).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LengthPrefix {
    bytes: [u8; 5],
    len: usize,
}

impl LengthPrefix {
    fn new(len: u64, compact: bool) -> Self {
        let mut bytes = [0u8; 5];
        if !compact {
            bytes[..4].copy_from_slice(&(len as i32).to_be_bytes());
            return Self { bytes, len: 4 };
        }
        let (mut v, mut n) = (len + 1, 0);
        while v >= 0x80 {
            bytes[n] = (v as u8 & 0x7f) | 0x80;
            v >>= 7;
            n += 1;
        }
        bytes[n] = v as u8;
        Self { bytes, len: n + 1 }
    }

    /// The encoded bytes.
    pub fn as_slice(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

static PLACEHOLDERS: AtomicU64 = AtomicU64::new(0x5eed_0000_0000_0000);

/// A fresh placeholder: unlikely bytes for a response to contain by
/// chance (a fixed tag and a counter), checked by the connection before it
/// splices.
pub fn placeholder() -> [u8; PLACEHOLDER_LEN] {
    let mut p = [0u8; PLACEHOLDER_LEN];
    p[..8].copy_from_slice(b"\xfe\xffGREGOR");
    p[8..].copy_from_slice(&PLACEHOLDERS.fetch_add(1, Ordering::Relaxed).to_be_bytes());
    p
}

#[cfg(test)]
mod tests {
    use super::LengthPrefix;

    fn length_prefix(len: u64, compact: bool) -> Vec<u8> {
        LengthPrefix::new(len, compact).as_slice().to_vec()
    }

    #[test]
    fn prefixes_are_kafkas_length_encodings() {
        assert_eq!(length_prefix(16, false), vec![0, 0, 0, 16]);
        assert_eq!(length_prefix(16, true), vec![17]);
        assert_eq!(length_prefix(126, true), vec![127]);
        assert_eq!(length_prefix(127, true), vec![0x80, 0x01]);
        assert_eq!(length_prefix(1 << 20, true), vec![0x81, 0x80, 0x40]);
        assert_eq!(length_prefix(1 << 20, false), vec![0, 0x10, 0, 0]);
    }
}
