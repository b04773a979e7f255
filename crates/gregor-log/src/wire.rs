//! Kafka's byte forms in the records its internal topics and files keep
//! (`__consumer_offsets`, `__transaction_state`, producer-state
//! snapshots): big-endian numbers, strings with an i16 length, bytes with
//! an i32 length, and the flexible versions' unsigned varints, compact
//! strings and arrays (length + 1, 0 for null) and tagged-field sections.
//! A [`Reader`] never panics: what does not read is a [`WireError`].

/// Why bytes do not read as the form asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The bytes end before the form does.
    #[error("truncated")]
    Truncated,
    /// A length or count negative where none may be, or a varint longer
    /// than Kafka's five bytes.
    #[error("invalid length")]
    InvalidLength,
    /// A string that is not UTF-8.
    #[error("invalid string")]
    InvalidString,
    /// Bytes left after the last form.
    #[error("{0} bytes left over")]
    TrailingBytes(usize),
}

/// Reads the forms off the front of a slice.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    /// A reader of `bytes`.
    pub fn new(bytes: &'a [u8]) -> Self {
        Self { rest: bytes }
    }

    /// What is not read yet.
    pub fn rest(&self) -> &'a [u8] {
        self.rest
    }

    /// The next `N` bytes.
    pub fn take<const N: usize>(&mut self) -> Result<[u8; N], WireError> {
        let (head, rest) = self.rest.split_first_chunk::<N>().ok_or(WireError::Truncated)?;
        self.rest = rest;
        Ok(*head)
    }

    /// The next `len` bytes.
    pub fn bytes(&mut self, len: usize) -> Result<&'a [u8], WireError> {
        let (head, rest) = self.rest.split_at_checked(len).ok_or(WireError::Truncated)?;
        self.rest = rest;
        Ok(head)
    }

    /// An unsigned byte.
    pub fn u8(&mut self) -> Result<u8, WireError> {
        self.take().map(u8::from_be_bytes)
    }

    /// An i8.
    pub fn i8(&mut self) -> Result<i8, WireError> {
        self.take().map(i8::from_be_bytes)
    }

    /// A big-endian i16.
    pub fn i16(&mut self) -> Result<i16, WireError> {
        self.take().map(i16::from_be_bytes)
    }

    /// A big-endian i32.
    pub fn i32(&mut self) -> Result<i32, WireError> {
        self.take().map(i32::from_be_bytes)
    }

    /// A big-endian i64.
    pub fn i64(&mut self) -> Result<i64, WireError> {
        self.take().map(i64::from_be_bytes)
    }

    /// An unsigned varint as Kafka reads one (`ByteUtils.readUnsignedVarint`):
    /// at most five bytes, the fifth's high bits dropped.
    pub fn uvarint(&mut self) -> Result<u32, WireError> {
        let mut value = 0u32;
        for shift in (0..35).step_by(7) {
            let [b] = self.take::<1>()?;
            value |= u32::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(WireError::InvalidLength)
    }

    /// `len` bytes of UTF-8.
    pub fn utf8(&mut self, len: usize) -> Result<String, WireError> {
        let b = self.bytes(len)?;
        String::from_utf8(b.to_vec()).map_err(|_| WireError::InvalidString)
    }

    /// A string with an i16 length.
    pub fn string(&mut self) -> Result<String, WireError> {
        let len = usize::try_from(self.i16()?).map_err(|_| WireError::InvalidLength)?;
        self.utf8(len)
    }

    /// A nullable string: length −1 for null.
    pub fn nullable_string(&mut self) -> Result<Option<String>, WireError> {
        match self.i16()? {
            -1 => Ok(None),
            len => {
                let len = usize::try_from(len).map_err(|_| WireError::InvalidLength)?;
                self.utf8(len).map(Some)
            }
        }
    }

    /// Bytes with an i32 length.
    pub fn sized_bytes(&mut self) -> Result<Vec<u8>, WireError> {
        let len = usize::try_from(self.i32()?).map_err(|_| WireError::InvalidLength)?;
        self.bytes(len).map(<[u8]>::to_vec)
    }

    /// A compact length (an unsigned varint of length + 1): `None` for null.
    pub fn compact_len(&mut self) -> Result<Option<usize>, WireError> {
        Ok(self.uvarint()?.checked_sub(1).map(|n| n as usize))
    }

    /// A compact string (null is an error).
    pub fn compact_string(&mut self) -> Result<String, WireError> {
        let len = self.compact_len()?.ok_or(WireError::InvalidLength)?;
        self.utf8(len)
    }

    /// A compact nullable string.
    pub fn nullable_compact_string(&mut self) -> Result<Option<String>, WireError> {
        match self.compact_len()? {
            None => Ok(None),
            Some(len) => self.utf8(len).map(Some),
        }
    }

    /// An array's length: an i32 (−1 for null), or in a flexible version a
    /// compact length. `None` for null.
    pub fn array_len(&mut self, flexible: bool) -> Result<Option<usize>, WireError> {
        if flexible {
            return self.compact_len();
        }
        match self.i32()? {
            -1 => Ok(None),
            n => usize::try_from(n).map(Some).map_err(|_| WireError::InvalidLength),
        }
    }

    /// Skips a tagged-field section.
    pub fn skip_tagged_fields(&mut self) -> Result<(), WireError> {
        for _ in 0..self.uvarint()? {
            let _tag = self.uvarint()?;
            let size = self.uvarint()?;
            self.bytes(size as usize)?;
        }
        Ok(())
    }

    /// Nothing is left.
    pub fn end(&self) -> Result<(), WireError> {
        match self.rest.len() {
            0 => Ok(()),
            n => Err(WireError::TrailingBytes(n)),
        }
    }
}

/// Appends an unsigned varint.
pub fn put_uvarint(out: &mut Vec<u8>, value: u32) {
    crate::varint::write_unsigned(out, u64::from(value));
}

/// Appends a compact length (length + 1; lengths past `u32` are far
/// beyond anything a record holds and are capped).
pub fn put_compact_len(out: &mut Vec<u8>, len: usize) {
    put_uvarint(out, u32::try_from(len).unwrap_or(u32::MAX - 1).saturating_add(1));
}

/// Appends an array's length: an i32, or in a flexible version a compact
/// length.
pub fn put_array_len(out: &mut Vec<u8>, len: usize, flexible: bool) {
    if flexible {
        put_compact_len(out, len);
    } else {
        out.extend_from_slice(&i32::try_from(len).unwrap_or(i32::MAX).to_be_bytes());
    }
}

/// Appends a string with its i16 length. The names these records hold
/// (groups, topics, transactional ids, members) are far below 32 KiB —
/// the request layer refuses longer ones — and a longer one is cut there
/// rather than written with a length that does not match.
pub fn put_string(out: &mut Vec<u8>, s: &str) {
    let len = floor_char_boundary(s, i16::MAX as usize);
    out.extend_from_slice(&(len as i16).to_be_bytes());
    out.extend_from_slice(&s.as_bytes()[..len]);
}

/// Appends a nullable string (length −1 for null).
pub fn put_nullable_string(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => put_string(out, s),
        None => out.extend_from_slice(&(-1i16).to_be_bytes()),
    }
}

/// Appends bytes with their i32 length.
pub fn put_sized_bytes(out: &mut Vec<u8>, b: &[u8]) {
    let len = b.len().min(i32::MAX as usize);
    out.extend_from_slice(&(len as i32).to_be_bytes());
    out.extend_from_slice(&b[..len]);
}

/// Appends a compact string.
pub fn put_compact_string(out: &mut Vec<u8>, s: &str) {
    let len = floor_char_boundary(s, u32::MAX as usize - 1);
    put_compact_len(out, len);
    out.extend_from_slice(&s.as_bytes()[..len]);
}

/// Appends a compact nullable string (length 0 for null).
pub fn put_nullable_compact_string(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => put_compact_string(out, s),
        None => put_uvarint(out, 0),
    }
}

/// The longest prefix of `s` of at most `max` bytes that ends on a
/// character boundary.
fn floor_char_boundary(s: &str, max: usize) -> usize {
    if s.len() <= max {
        return s.len();
    }
    (0..=max).rev().find(|&i| s.is_char_boundary(i)).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn short_or_malformed_bytes_are_errors() {
        assert_eq!(Reader::new(&[0]).i16(), Err(WireError::Truncated));
        assert_eq!(Reader::new(&[0xff, 0xfe]).string(), Err(WireError::InvalidLength));
        assert_eq!(Reader::new(&[0, 2, 0xff, 0xff]).string(), Err(WireError::InvalidString));
        assert_eq!(Reader::new(&[0x80; 6]).uvarint(), Err(WireError::InvalidLength));
        assert_eq!(Reader::new(&[0]).compact_string(), Err(WireError::InvalidLength));
        assert_eq!(Reader::new(&[0, 1]).end(), Err(WireError::TrailingBytes(2)));
        assert_eq!(Reader::new(&[0xff, 0xff]).nullable_string(), Ok(None));
        assert_eq!(Reader::new(&[0]).nullable_compact_string(), Ok(None));
        assert_eq!(Reader::new(&[0xff, 0xff, 0xff, 0xff]).array_len(false), Ok(None));
    }

    #[test]
    fn a_fifth_varint_byte_keeps_its_low_bits_as_kafka_does() {
        assert_eq!(Reader::new(&[0xff, 0xff, 0xff, 0xff, 0x0f]).uvarint(), Ok(u32::MAX));
        assert_eq!(Reader::new(&[0xff, 0xff, 0xff, 0xff, 0x7f]).uvarint(), Ok(u32::MAX));
    }

    #[test]
    fn an_overlong_string_is_cut_on_a_character_boundary() {
        let s = "é".repeat(20_000); // 40,000 bytes
        let mut out = Vec::new();
        put_string(&mut out, &s);
        let read = Reader::new(&out).string().unwrap();
        assert_eq!(read.len(), 32_766);
        assert!(s.starts_with(&read));
    }

    proptest! {
        #[test]
        fn every_form_reads_back_what_was_written(
            a in any::<u32>(), s in ".{0,40}", n in proptest::option::of(".{0,10}"),
            b in proptest::collection::vec(any::<u8>(), 0..40), len in 0usize..100_000, flexible in any::<bool>(),
        ) {
            let mut out = Vec::new();
            put_uvarint(&mut out, a);
            put_string(&mut out, &s);
            put_nullable_string(&mut out, n.as_deref());
            put_sized_bytes(&mut out, &b);
            put_compact_string(&mut out, &s);
            put_nullable_compact_string(&mut out, n.as_deref());
            put_array_len(&mut out, len, flexible);
            let mut r = Reader::new(&out);
            prop_assert_eq!(r.uvarint(), Ok(a));
            prop_assert_eq!(r.string(), Ok(s.clone()));
            prop_assert_eq!(r.nullable_string(), Ok(n.clone()));
            prop_assert_eq!(r.sized_bytes(), Ok(b));
            prop_assert_eq!(r.compact_string(), Ok(s));
            prop_assert_eq!(r.nullable_compact_string(), Ok(n));
            prop_assert_eq!(r.array_len(flexible), Ok(Some(len)));
            prop_assert_eq!(r.end(), Ok(()));
        }

        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let mut r = Reader::new(&bytes);
            let _ = r.nullable_compact_string();
            let _ = r.skip_tagged_fields();
            let _ = r.array_len(true);
            let _ = r.sized_bytes();
            let _ = r.nullable_string();
        }
    }
}
