//! The byte forms Kafka's `__consumer_offsets` records are made of:
//! big-endian numbers, strings with an i16 length, and the flexible
//! versions' compact strings and arrays (unsigned-varint lengths + 1) and
//! tagged-field sections. A [`Reader`] never panics: a short or malformed
//! input reads as `None`.

use uuid::Uuid;

/// A stored record: key, and value or `None` for a tombstone.
pub type StoredRecord = (Vec<u8>, Option<Vec<u8>>);

/// Appends a string with its i16 length.
pub(crate) fn put_string(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as i16).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// Appends a nullable string (length -1 for null).
pub(crate) fn put_nullable(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => put_string(out, s),
        None => out.extend_from_slice(&(-1i16).to_be_bytes()),
    }
}

/// Appends bytes with their i32 length.
pub(crate) fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as i32).to_be_bytes());
    out.extend_from_slice(b);
}

fn put_uvarint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// A compact array's length (or a compact string's): n + 1.
pub(crate) fn put_len(out: &mut Vec<u8>, n: usize) {
    put_uvarint(out, n as u64 + 1);
}

/// Appends a compact string.
pub(crate) fn put_compact(out: &mut Vec<u8>, s: &str) {
    put_len(out, s.len());
    out.extend_from_slice(s.as_bytes());
}

/// Appends a compact nullable string (length 0 for null).
pub(crate) fn put_nullable_compact(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => put_compact(out, s),
        None => out.push(0),
    }
}

/// Reads the byte forms off the front of a slice.
pub(crate) struct Reader<'a>(pub(crate) &'a [u8]);

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, rest) = self.0.split_first_chunk::<N>()?;
        self.0 = rest;
        Some(*head)
    }
    pub(crate) fn u8(&mut self) -> Option<u8> {
        self.take::<1>().map(|b| b[0])
    }
    pub(crate) fn i16(&mut self) -> Option<i16> {
        self.take().map(i16::from_be_bytes)
    }
    pub(crate) fn i32(&mut self) -> Option<i32> {
        self.take().map(i32::from_be_bytes)
    }
    pub(crate) fn i64(&mut self) -> Option<i64> {
        self.take().map(i64::from_be_bytes)
    }
    pub(crate) fn uuid(&mut self) -> Option<Uuid> {
        self.take().map(Uuid::from_bytes)
    }
    /// A string with an i16 length.
    pub(crate) fn string(&mut self) -> Option<String> {
        let len = usize::try_from(self.i16()?).ok()?;
        self.utf8(len)
    }
    /// A nullable string: `Some(None)` for length −1.
    pub(crate) fn nullable(&mut self) -> Option<Option<String>> {
        let (len, _) = self.0.split_first_chunk::<2>()?;
        if i16::from_be_bytes(*len) == -1 {
            self.0 = &self.0[2..];
            return Some(None);
        }
        self.string().map(Some)
    }
    /// Bytes with an i32 length.
    pub(crate) fn bytes(&mut self) -> Option<Vec<u8>> {
        let len = usize::try_from(self.i32()?).ok()?;
        let (b, rest) = self.0.split_at_checked(len)?;
        self.0 = rest;
        Some(b.to_vec())
    }
    fn utf8(&mut self, len: usize) -> Option<String> {
        let (s, rest) = self.0.split_at_checked(len)?;
        self.0 = rest;
        String::from_utf8(s.to_vec()).ok()
    }
    fn uvarint(&mut self) -> Option<u64> {
        let mut n = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.u8()?;
            n |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Some(n);
            }
        }
        None
    }
    /// A compact length: `None` (outer) when malformed, `Some(None)` for
    /// null.
    pub(crate) fn len(&mut self) -> Option<Option<usize>> {
        match self.uvarint()? {
            0 => Some(None),
            n => usize::try_from(n - 1).ok().map(Some),
        }
    }
    /// A compact string.
    pub(crate) fn compact(&mut self) -> Option<String> {
        let len = self.len()??;
        self.utf8(len)
    }
    /// A compact nullable string.
    pub(crate) fn nullable_compact(&mut self) -> Option<Option<String>> {
        match self.len()? {
            None => Some(None),
            Some(len) => self.utf8(len).map(Some),
        }
    }
    /// Skips a tagged-field section.
    pub(crate) fn tags(&mut self) -> Option<()> {
        for _ in 0..self.uvarint()? {
            self.uvarint()?;
            let size = usize::try_from(self.uvarint()?).ok()?;
            self.0 = self.0.get(size..)?;
        }
        Some(())
    }
}
