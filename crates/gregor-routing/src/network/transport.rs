//! A connection's byte stream: plain TCP, TLS in the kernel (rustls's
//! handshake, then kernel TLS: see `kernel_tls`), or TLS in userspace
//! (rustls) where the kernel has no kernel TLS. Fetch responses send
//! their file regions with `sendfile` over plain TCP and kernel TLS;
//! through userspace TLS the regions are read and encrypted by rustls.

use std::io;
use std::os::unix::fs::FileExt;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;

use super::idle::Activity;
use super::kernel_tls::KernelTlsStream;

/// A connection's stream.
pub(crate) enum Transport {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS over TCP, records encrypted and decrypted by the kernel.
    KernelTls(KernelTlsStream),
    /// TLS over TCP, records encrypted and decrypted by rustls.
    Tls(Box<TlsStream<TcpStream>>),
}

/// How much of a file region goes through TLS at a time.
const TLS_REGION_CHUNK: usize = 256 * 1024;

impl Transport {
    /// Sends a whole file region: `sendfile` on plain TCP and kernel TLS,
    /// read and written through rustls otherwise; each step of progress is
    /// recorded in `activity`.
    pub(crate) async fn send_region(&mut self, region: &gregor_log::FileRegion, activity: &Activity) -> io::Result<()> {
        match self {
            Transport::Plain(stream) => send_file(stream, region, activity).await,
            Transport::KernelTls(stream) => send_file(stream.tcp_for_sending(region.len())?, region, activity).await,
            Transport::Tls(stream) => {
                let mut buf = vec![0u8; TLS_REGION_CHUNK.min(region.len() as usize)];
                let mut sent = 0u64;
                while sent < region.len() {
                    let n = ((region.len() - sent) as usize).min(buf.len());
                    // A page-cache read of a segment already written: as
                    // short as the sendfile it replaces.
                    region.file().read_exact_at(&mut buf[..n], region.position() + sent)?;
                    stream.write_all(&buf[..n]).await?;
                    activity.touch();
                    sent += n as u64;
                }
                Ok(())
            }
        }
    }
}

/// `sendfile` of a whole region to a non-blocking socket.
async fn send_file(stream: &TcpStream, region: &gregor_log::FileRegion, activity: &Activity) -> io::Result<()> {
    let mut sent = 0u64;
    while sent < region.len() {
        stream.writable().await?;
        let before = sent;
        let result = stream.try_io(tokio::io::Interest::WRITABLE, || region.send_to(stream, &mut sent));
        if sent > before {
            activity.touch();
        }
        match result {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

impl AsyncRead for Transport {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Transport::KernelTls(s) => Pin::new(s).poll_read(cx, buf),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Transport {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Transport::KernelTls(s) => Pin::new(s).poll_write(cx, buf),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_flush(cx),
            Transport::KernelTls(s) => Pin::new(s).poll_flush(cx),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Transport::KernelTls(s) => Pin::new(s).poll_shutdown(cx),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}
