//! Kernel TLS (kTLS) on a TLS listener's connections: rustls does the
//! handshake, then the session's keys go to the kernel's `tls` ULP, which
//! encrypts what the broker writes and decrypts what it reads — and
//! `sendfile` works again, so fetched file regions go from the page cache
//! to the socket without passing through the broker, as on plain TCP.
//!
//! The handshake is driven with rustls's unbuffered API, reading one TLS
//! record from the socket at a time: no byte past the handshake's last
//! record leaves the socket before the kernel holds the keys. Where the
//! kernel has no `tls` ULP (built without `CONFIG_TLS`, module absent) the
//! listener keeps rustls in userspace ([`attach`] says which).
//!
//! Not supported over kernel TLS: a client's TLS 1.3 KeyUpdate (the
//! connection is closed with an error; the client reconnects — Java's
//! client sends one after 2^37 bytes of AES-GCM by default, librdkafka
//! and kafka-python never do) and TLS 1.2 renegotiation (which rustls
//! refuses anyway).

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, Interest, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::rustls;

use rustls::pki_types::CertificateDer;
use rustls::server::UnbufferedServerConnection;
use rustls::unbuffered::{ConnectionState, EncodeError, UnbufferedStatus};

/// Cleared once the kernel turned kernel TLS down for good (no `tls`
/// ULP, or keys it cannot take): later connections use rustls in
/// userspace without asking again.
static KERNEL_TLS_WORKS: AtomicBool = AtomicBool::new(true);

/// Puts the kernel's `tls` ULP on `stream` (before the handshake: until
/// keys are set the socket is plain TCP). True when it did — the
/// connection then goes through [`accept`]; false when the kernel has no
/// kernel TLS (said once in the log) or this socket cannot take it.
pub(crate) fn attach(stream: &TcpStream) -> bool {
    if !KERNEL_TLS_WORKS.load(Ordering::Relaxed) {
        return false;
    }
    match set_option(stream.as_raw_fd(), libc::SOL_TCP, libc::TCP_ULP, b"tls") {
        Ok(()) => true,
        Err(e) => {
            if e.raw_os_error() == Some(libc::ENOENT) && KERNEL_TLS_WORKS.swap(false, Ordering::Relaxed) {
                tracing::info!(
                    "kernel TLS is not available (no `tls` ULP: {e}; the kernel needs its tls module, \
                     `modprobe tls`); TLS runs in userspace"
                );
            }
            false
        }
    }
}

/// The handshake of a connection [`attach`] prepared, then its keys handed
/// to the kernel: the stream, and the client's certificate (mTLS).
pub(crate) async fn accept(
    mut tcp: TcpStream,
    config: Arc<rustls::ServerConfig>,
) -> io::Result<(KernelTlsStream, Option<CertificateDer<'static>>)> {
    let mut conn = UnbufferedServerConnection::new(config).map_err(tls_error)?;
    handshake(&mut tcp, &mut conn).await?;
    let certificate = conn
        .peer_certificates()
        .and_then(|chain| chain.first())
        .map(|c| c.clone().into_owned());
    let (secrets, kernel) = conn.dangerous_into_kernel_connection().map_err(tls_error)?;
    let suite = kernel.negotiated_cipher_suite();
    let fd = tcp.as_raw_fd();
    for (direction, (seq, secret)) in [(libc::TLS_TX, secrets.tx), (libc::TLS_RX, secrets.rx)] {
        let mut info = ktls::CryptoInfo::from_rustls(suite, (seq, secret))
            .map_err(|e| io::Error::new(io::ErrorKind::Unsupported, format!("kernel TLS: {e}")))?;
        if direction == libc::TLS_TX && matches!(suite, rustls::SupportedCipherSuite::Tls12(_)) {
            // TLS 1.2 AES-GCM: rustls made each record's explicit nonce
            // as iv XOR sequence number; the kernel sends iv and counts
            // up from there. Start past every nonce rustls used.
            match &mut info {
                ktls::CryptoInfo::AesGcm128(i) => i.iv = fresh_explicit_nonce(i.iv, seq),
                ktls::CryptoInfo::AesGcm256(i) => i.iv = fresh_explicit_nonce(i.iv, seq),
                _ => {}
            }
        }
        // SAFETY: `info` is one of the kernel's `tls12_crypto_info_*`
        // structs and `size()` its size.
        let bytes = unsafe { std::slice::from_raw_parts(info.as_ptr().cast::<u8>(), info.size()) };
        if let Err(e) = set_option(fd, libc::SOL_TLS, direction, bytes) {
            let unsupported = matches!(
                e.raw_os_error(),
                Some(libc::EINVAL | libc::EOPNOTSUPP | libc::ENOPROTOOPT | libc::ENOENT)
            );
            if unsupported && KERNEL_TLS_WORKS.swap(false, Ordering::Relaxed) {
                tracing::warn!("the kernel refused the keys of {suite:?} ({e}); TLS runs in userspace from now on");
            }
            return Err(e);
        }
    }
    tracing::debug!(?suite, "kernel TLS");
    let limit = match suite {
        rustls::SupportedCipherSuite::Tls12(s) => s.common.confidentiality_limit,
        rustls::SupportedCipherSuite::Tls13(s) => s.common.confidentiality_limit,
    };
    Ok((
        KernelTlsStream {
            tcp,
            spare: Vec::new(),
            spare_at: 0,
            read_closed: false,
            budget: RecordBudget::new(limit),
        },
        certificate,
    ))
}

/// The first explicit nonce (the last 8 bytes of the GCM nonce) the
/// kernel may send after rustls sent `used` records with the nonces `iv
/// XOR 0`, …, `iv XOR (used - 1)`: those all lie in the aligned block of
/// the next power of two of `used` around `iv`; the kernel counts up from
/// just past that block, and would need 2^64 records to come back to it.
fn fresh_explicit_nonce(iv: [u8; 8], used: u64) -> [u8; 8] {
    let block = used.checked_next_power_of_two().map_or(u64::MAX, |p| p - 1);
    (u64::from_be_bytes(iv) | block).wrapping_add(1).to_be_bytes()
}

/// How many more records the kernel may encrypt with the session's key.
/// rustls in userspace counts records against the cipher suite's
/// confidentiality limit (2^23–2^24 for AES-GCM: a few hundred GB) and
/// updates the key before it is reached; the kernel counts nothing and
/// cannot take a new key here, so the connection closes before it (the
/// client reconnects, with a new key). Records are estimated from above:
/// every write or file region as many 16 KiB records as its bytes fill,
/// plus one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RecordBudget {
    left: u64,
}

/// A TLS record's most plaintext.
const RECORD_PLAINTEXT: u64 = 16 * 1024;

impl RecordBudget {
    /// The budget of a suite whose key encrypts `limit` records at most,
    /// a sixteenth kept in reserve.
    pub(crate) fn new(limit: u64) -> Self {
        Self {
            left: limit - limit / 16,
        }
    }

    /// Spends what sending `bytes` (in one write or one file region) may
    /// take; an error once the budget is spent.
    pub(crate) fn charge(&mut self, bytes: u64) -> io::Result<()> {
        let records = bytes.div_ceil(RECORD_PLAINTEXT) + 1;
        match self.left.checked_sub(records) {
            Some(left) => {
                self.left = left;
                Ok(())
            }
            None => Err(io::Error::other(
                "the TLS session's key has encrypted as many records as it safely may: \
                 the connection closes (the client reconnects with a new key)",
            )),
        }
    }
}

/// The longest TLS record: a 5-byte header and at most 2^14 + 2048 bytes
/// (RFC 5246 6.2.3; TLS 1.3 allows less).
const MAX_RECORD_BODY: usize = (1 << 14) + 2048;

/// The most handshake bytes held at once: rustls takes handshake messages
/// of up to 64 KiB (a long certificate chain), which many small records
/// may carry, each with its own header and tag.
const MAX_HANDSHAKE_BUFFER: usize = 4 * 0xffff;

/// Runs rustls's side of the handshake until it may send application
/// data, feeding it one whole record at a time.
async fn handshake(tcp: &mut TcpStream, conn: &mut UnbufferedServerConnection) -> io::Result<()> {
    let mut incoming = Vec::with_capacity(5 + MAX_RECORD_BODY);
    let mut outgoing = vec![0u8; 16 * 1024];
    let mut encoded = 0;
    // What is still to be read of the record whose header came last.
    let mut owed = 0;
    loop {
        let UnbufferedStatus { discard, state } = conn.process_tls_records(&mut incoming);
        let mut read_more = false;
        let state = match state {
            Ok(state) => state,
            Err(e) => {
                incoming.drain(..discard);
                send_alert(tcp, conn, &mut incoming, &mut outgoing).await;
                return Err(tls_error(e));
            }
        };
        match state {
            ConnectionState::EncodeTlsData(mut record) => loop {
                match record.encode(&mut outgoing[encoded..]) {
                    Ok(n) => {
                        encoded += n;
                        break;
                    }
                    Err(EncodeError::InsufficientSize(short)) => outgoing.resize(encoded + short.required_size, 0),
                    Err(e) => return Err(tls_error(e)),
                }
            },
            ConnectionState::TransmitTlsData(sent) => {
                tcp.write_all(&outgoing[..encoded]).await?;
                encoded = 0;
                sent.done();
            }
            ConnectionState::BlockedHandshake => read_more = true,
            ConnectionState::WriteTraffic(_) => return Ok(()),
            ConnectionState::PeerClosed | ConnectionState::Closed => return Err(io::ErrorKind::UnexpectedEof.into()),
            _ => return Err(invalid("application data before the TLS handshake finished")),
        }
        incoming.drain(..discard);
        if incoming.len() > MAX_HANDSHAKE_BUFFER {
            return Err(invalid("a TLS handshake message longer than 64 KiB"));
        }
        if read_more {
            owed = read_record_part(tcp, &mut incoming, owed).await?;
        }
    }
}

/// Sends the alert rustls queued when the handshake failed (the client
/// then learns why: an unknown CA, a bad certificate…), if it can.
async fn send_alert(
    tcp: &mut TcpStream,
    conn: &mut UnbufferedServerConnection,
    incoming: &mut [u8],
    outgoing: &mut [u8],
) {
    let encoded = match conn.process_tls_records(incoming).state {
        Ok(ConnectionState::EncodeTlsData(mut alert)) => alert.encode(outgoing).ok(),
        _ => None,
    };
    if let Some(n) = encoded {
        let _ = tcp.write_all(&outgoing[..n]).await;
    }
}

/// Appends the next part of a TLS record from `tcp` to `incoming`,
/// reading nothing past the record: its header when `owed` is 0 (rustls
/// judges it before the body is waited for: bytes that are not TLS fail
/// at once), else the `owed` bytes of its body. Returns what is owed then.
async fn read_record_part(tcp: &mut TcpStream, incoming: &mut Vec<u8>, owed: usize) -> io::Result<usize> {
    let start = incoming.len();
    if owed > 0 {
        incoming.resize(start + owed, 0);
        tcp.read_exact(&mut incoming[start..]).await?;
        return Ok(0);
    }
    let mut header = [0u8; 5];
    tcp.read_exact(&mut header).await?;
    let len = u16::from_be_bytes([header[3], header[4]]) as usize;
    if len > MAX_RECORD_BODY {
        return Err(invalid("not a TLS record (too long): is the client speaking TLS?"));
    }
    incoming.extend_from_slice(&header);
    Ok(len)
}

/// A connection whose TLS records the kernel encrypts and decrypts. Reads
/// give the application data; a close_notify is the end of the stream,
/// any other alert or handshake message after the handshake an error.
pub(crate) struct KernelTlsStream {
    tcp: TcpStream,
    /// What a small read received beyond what its caller could take,
    /// from `spare_at` on.
    spare: Vec<u8>,
    spare_at: usize,
    read_closed: bool,
    budget: RecordBudget,
}

/// A read buffer smaller than this reads through a buffer of this size
/// (what the caller cannot take waits in `spare`): a control record (an
/// alert, a KeyUpdate) must fit the buffer it arrives in.
const SMALLEST_READ: usize = 256;

/// TLS record content types (RFC 8446 5.1).
const ALERT: u8 = 21;
const HANDSHAKE: u8 = 22;
const APPLICATION_DATA: u8 = 23;

impl KernelTlsStream {
    /// The TCP socket under the session, for `sendfile` of `bytes` (the
    /// records they take are charged first).
    pub(crate) fn tcp_for_sending(&mut self, bytes: u64) -> io::Result<&TcpStream> {
        self.budget.charge(bytes)?;
        Ok(&self.tcp)
    }

    /// What a record of `record_type` with `content` means for the reader:
    /// `Ok(true)` the end of the stream, `Ok(false)` nothing (a warning
    /// alert, which rustls ignores too).
    fn control(&mut self, record_type: u8, content: &[u8]) -> io::Result<bool> {
        match (record_type, content) {
            (ALERT, [_, 0]) => {
                self.read_closed = true;
                Ok(true)
            }
            (ALERT, [1, _]) => Ok(false),
            (ALERT, [_, description]) => Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                format!("the client sent TLS alert {description}"),
            )),
            (HANDSHAKE, [24, ..]) => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "the client updated its TLS keys (KeyUpdate), which kernel TLS here does not take: reconnect",
            )),
            (HANDSHAKE, [message, ..]) => Err(invalid(&format!("TLS handshake message {message} after the handshake"))),
            _ => Err(invalid(&format!(
                "TLS record of type {record_type} after the handshake"
            ))),
        }
    }
}

impl AsyncRead for KernelTlsStream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.spare_at < this.spare.len() {
            let n = buf.remaining().min(this.spare.len() - this.spare_at);
            buf.put_slice(&this.spare[this.spare_at..this.spare_at + n]);
            this.spare_at += n;
            return Poll::Ready(Ok(()));
        }
        if this.read_closed || buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        let fd = this.tcp.as_raw_fd();
        let into_small = buf.remaining() < SMALLEST_READ;
        let mut small = [0u8; SMALLEST_READ];
        loop {
            ready!(this.tcp.poll_read_ready(cx))?;
            let received = if into_small {
                this.tcp
                    .try_io(Interest::READABLE, || recv_record(fd, small.as_mut_ptr(), small.len()))
            } else {
                // SAFETY: recvmsg only writes into the unfilled part, and
                // only the `n` bytes it reports are then marked filled.
                let unfilled = unsafe { buf.unfilled_mut() };
                this.tcp.try_io(Interest::READABLE, || {
                    recv_record(fd, unfilled.as_mut_ptr().cast(), unfilled.len())
                })
            };
            let (n, record_type) = match received {
                Ok(got) => got,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Poll::Ready(Err(e)),
            };
            let Some(record_type) = record_type else {
                this.read_closed = true; // TCP's end without a close_notify
                return Poll::Ready(Ok(()));
            };
            if n == 0 && record_type == APPLICATION_DATA {
                continue; // an empty record
            }
            if record_type != APPLICATION_DATA {
                let content: &[u8] = if into_small {
                    &small[..n]
                } else {
                    // SAFETY: recvmsg wrote these `n` bytes.
                    unsafe { std::slice::from_raw_parts(buf.unfilled_mut().as_ptr().cast::<u8>(), n) }
                };
                if this.control(record_type, content)? {
                    return Poll::Ready(Ok(()));
                }
                continue;
            }
            if into_small {
                let given = buf.remaining().min(n);
                buf.put_slice(&small[..given]);
                this.spare.clear();
                this.spare.extend_from_slice(&small[given..n]);
                this.spare_at = 0;
            } else {
                // SAFETY: recvmsg wrote `n` bytes into the unfilled part.
                unsafe { buf.assume_init(n) };
                buf.advance(n);
            }
            return Poll::Ready(Ok(()));
        }
    }
}

impl AsyncWrite for KernelTlsStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let written = ready!(Pin::new(&mut this.tcp).poll_write(cx, buf))?;
        this.budget.charge(written as u64)?;
        Poll::Ready(Ok(written))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_shutdown(cx)
    }
}

/// One `recvmsg` from a kernel TLS socket: the bytes read and the content
/// type of the record they came from (the kernel never mixes types in one
/// read; application data unless it says otherwise) — `None` for the end
/// of the TCP stream.
fn recv_record(fd: RawFd, into: *mut u8, len: usize) -> io::Result<(usize, Option<u8>)> {
    let mut iov = libc::iovec {
        iov_base: into.cast(),
        iov_len: len,
    };
    // Room for one control message of one byte, aligned for cmsghdr.
    let mut control = [0u64; 4];
    // SAFETY: a zeroed msghdr is valid; the pointers set below outlive
    // the call, and CMSG_* walk only the control buffer recvmsg filled.
    unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = std::mem::size_of_val(&control) as _;
        let n = libc::recvmsg(fd, &mut msg, 0);
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        if msg.msg_flags & libc::MSG_CTRUNC != 0 {
            return Err(invalid("a TLS control message did not fit"));
        }
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        let record_type =
            if !cmsg.is_null() && (*cmsg).cmsg_level == libc::SOL_TLS && (*cmsg).cmsg_type == libc::TLS_GET_RECORD_TYPE
            {
                Some(*libc::CMSG_DATA(cmsg))
            } else if n == 0 {
                None
            } else {
                Some(APPLICATION_DATA)
            };
        Ok((n as usize, record_type))
    }
}

fn set_option(fd: RawFd, level: libc::c_int, name: libc::c_int, value: &[u8]) -> io::Result<()> {
    // SAFETY: `value` is valid for its length for the call.
    let set = unsafe { libc::setsockopt(fd, level, name, value.as_ptr().cast(), value.len() as _) };
    if set < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// A rustls error, worded as tokio-rustls words it.
fn tls_error(e: impl std::fmt::Display) -> io::Error {
    invalid(&e.to_string())
}

fn invalid(why: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, why.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #[test]
        fn the_kernel_never_sends_a_nonce_rustls_used(iv in proptest::prelude::any::<u64>(), used in 1u64..5000) {
            let first = u64::from_be_bytes(fresh_explicit_nonce(iv.to_be_bytes(), used));
            let rustls: std::collections::HashSet<u64> = (0..used).map(|seq| iv ^ seq).collect();
            for k in 0..10_000u64 {
                proptest::prop_assert!(!rustls.contains(&first.wrapping_add(k)), "record {} reuses a nonce", k);
            }
        }
    }

    #[test]
    fn the_record_budget_runs_out_before_the_confidentiality_limit() {
        let limit = 1 << 10;
        let mut budget = RecordBudget::new(limit);
        let mut sent = 0u64;
        // Writes of 20 KiB: two records each, three charged.
        while budget.charge(20 * 1024).is_ok() {
            sent += 2;
        }
        assert!(sent <= limit, "{sent} records sent on a key good for {limit}");
        assert!(sent >= limit / 2, "the budget closed too early: {sent} of {limit}");
        assert!(budget.charge(1).is_err(), "spent stays spent");
        // A one-byte write is a record of its own (charged as two, the
        // estimate being from above): 30 records of budget, 15 writes.
        let mut tiny = RecordBudget::new(32);
        let writes = (0..100).take_while(|_| tiny.charge(1).is_ok()).count();
        assert_eq!(writes, 15);
    }
}
