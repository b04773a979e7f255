//! Zero-copy responses: a file region sent with `sendfile(2)` in place of
//! 16 placeholder bytes of an encoded response (Fetch's records).

use std::sync::atomic::{AtomicU64, Ordering};

use gregor_log::FileRegion;

/// A file region to send in place of a placeholder in the encoded response.
#[derive(Debug, Clone)]
pub struct Splice {
    /// The 16 bytes that stand for the region in the encoded response.
    pub placeholder: [u8; 16],
    /// The batches to send there.
    pub region: FileRegion,
}

static PLACEHOLDERS: AtomicU64 = AtomicU64::new(0x5eed_0000_0000_0000);

/// A fresh placeholder: unlikely bytes for a response to contain by
/// chance (a fixed tag and a counter), checked by the connection before it
/// splices.
pub fn placeholder() -> [u8; 16] {
    let mut p = [0u8; 16];
    p[..8].copy_from_slice(b"\xfe\xffGREGOR");
    p[8..].copy_from_slice(&PLACEHOLDERS.fetch_add(1, Ordering::Relaxed).to_be_bytes());
    p
}
