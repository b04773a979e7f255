//! The network side: accept connections, read size-prefixed requests,
//! dispatch them, write responses in request order.
//!
//! Each connection is one task that handles its requests in order, which
//! keeps Kafka's per-connection ordering without any reordering buffer.
//! Bad input — a negative or oversized length, an undecodable header, an
//! unknown API — closes that connection only.

use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::ResponseHeader;
use kafka_protocol::protocol::Encodable;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tracing::{debug, warn};

use crate::api::fetch::Splice;
use crate::broker::Broker;
use crate::dispatch::{dispatch, Outcome};
use crate::request::decode_frame;

/// Serves Kafka clients on `listener` until `shutdown` turns true.
pub async fn serve(listener: TcpListener, broker: Arc<Broker>, mut shutdown: watch::Receiver<bool>) {
    let mut connections = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    debug!(%peer, "client connected");
                    let broker = broker.clone();
                    let stop = shutdown.clone();
                    connections.spawn(async move {
                        if let Err(e) = connection(stream, broker, stop).await {
                            debug!(%peer, "connection closed: {e}");
                        }
                    });
                }
                Err(e) => warn!("accept failed: {e}"),
            },
            _ = shutdown.changed() => break,
        }
        while connections.try_join_next().is_some() {}
    }
    connections.shutdown().await;
}

async fn connection(
    mut stream: TcpStream,
    broker: Arc<Broker>,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let _ = stream.set_nodelay(true);
    let max = broker.config().socket_request_max_bytes;
    let mut out = BytesMut::new();
    loop {
        let size = tokio::select! {
            size = stream.read_i32() => size?,
            _ = stop.changed() => return Ok(()),
        };
        if size < 4 || size as usize > max {
            return Err(invalid(format!("request size {size} outside [4, {max}]")));
        }
        let mut body = vec![0u8; size as usize];
        stream.read_exact(&mut body).await?;
        let frame = decode_frame(Bytes::from(body)).map_err(invalid)?;
        let (key, correlation_id) = (frame.key, frame.header.correlation_id);
        match dispatch(&broker, frame).await {
            Outcome::Respond {
                version,
                encode,
                splices,
            } => {
                out.clear();
                out.put_i32(0);
                let mut response_header = ResponseHeader::default();
                response_header.correlation_id = correlation_id;
                response_header
                    .encode(&mut out, key.response_header_version(version))
                    .map_err(|e| invalid(format!("encoding a response header: {e}")))?;
                encode(&mut out).map_err(|e| invalid(format!("encoding a {key:?} response: {e}")))?;
                if splices.is_empty() {
                    let len = (out.len() - 4) as i32;
                    out[..4].copy_from_slice(&len.to_be_bytes());
                    stream.write_all(&out).await?;
                } else {
                    send_spliced(&mut stream, &mut out, &splices).await?;
                }
            }
            Outcome::NoResponse => {}
        }
    }
}

/// Sends `out` (size prefix first) with each placeholder replaced by its
/// file region: memory parts with `write_all`, regions with `sendfile`.
async fn send_spliced(stream: &mut TcpStream, out: &mut BytesMut, splices: &[Splice]) -> std::io::Result<()> {
    // Where each placeholder is; its 4-byte length prefix precedes it.
    let mut at = Vec::with_capacity(splices.len());
    let mut from = 4;
    for splice in splices {
        let found = out[from..]
            .windows(16)
            .position(|w| w == splice.placeholder)
            .map(|p| p + from)
            .ok_or_else(|| invalid("a fetch placeholder is missing from the response".into()))?;
        let len = i32::try_from(splice.region.len()).map_err(|_| invalid("a fetch region over 2 GiB".into()))?;
        out[found - 4..found].copy_from_slice(&len.to_be_bytes());
        at.push(found);
        from = found + 16;
    }
    let total = out.len() - 4 - 16 * splices.len() + splices.iter().map(|s| s.region.len() as usize).sum::<usize>();
    let total = i32::try_from(total).map_err(|_| invalid("a response over 2 GiB".into()))?;
    out[..4].copy_from_slice(&total.to_be_bytes());
    let mut start = 0;
    for (splice, found) in splices.iter().zip(at) {
        stream.write_all(&out[start..found]).await?;
        send_region(stream, &splice.region).await?;
        start = found + 16;
    }
    stream.write_all(&out[start..]).await
}

/// `sendfile` of a whole region to a non-blocking socket.
async fn send_region(stream: &TcpStream, region: &gregor_log::FileRegion) -> std::io::Result<()> {
    let mut sent = 0u64;
    while sent < region.len() {
        stream.writable().await?;
        match stream.try_io(tokio::io::Interest::WRITABLE, || region.send_to(stream, &mut sent)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn invalid(message: String) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, message)
}
