//! A processor: an OS thread with its own single-threaded tokio runtime
//! that owns a share of the connections. Each connection is a task that
//! reads a size-prefixed request, decodes it, queues it for the handlers,
//! waits for its outcome (completing a delayed fetch here), and writes the
//! response — record bytes by `sendfile` on plain TCP and kernel TLS,
//! read and encrypted in userspace through rustls — before reading the
//! next.
//!
//! Bad input — a negative or oversized length, an undecodable header, an
//! unknown API — closes that connection only.
//!
//! What a connection costs the broker is bounded: the bytes of the one
//! request it is receiving (its buffer grows as they arrive, not to the
//! size the prefix announces) and of the one response it is being sent.
//! A client that pipelines requests without reading its responses fills
//! its socket buffers, and then the broker stops reading from it; it is
//! closed after `connections.max.idle.ms` without progress.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use gregor_auth::{KafkaPrincipal, Session};
use kafka_protocol::messages::ResponseHeader;
use kafka_protocol::protocol::Encodable;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tracing::debug;

use super::connection_quotas::ConnectionSlot;
use super::idle::{self, Activity, Tracked};
use super::kernel_tls;
use super::request_queue::RequestQueue;
use super::sasl_gate::{After, SaslGate, Verdict};
use super::transport::Transport;
use super::{Accepted, ListenerContext};
use crate::outcome::Outcome;
use crate::request::decode_frame;
use crate::splice::{Splice, PLACEHOLDER_LEN};

/// A running processor thread.
pub struct Processor {
    inbox: mpsc::UnboundedSender<Accepted>,
    thread: JoinHandle<()>,
}

impl Processor {
    /// Starts processor `id`; it serves the connections sent to its inbox
    /// until `stop` turns true, then closes them.
    pub fn start(
        id: usize,
        queue: RequestQueue,
        limits: ConnectionLimits,
        stop: watch::Receiver<bool>,
    ) -> std::io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let (inbox, streams) = mpsc::unbounded_channel();
        let thread = std::thread::Builder::new()
            .name(format!("gregor-network-{id}"))
            .spawn(move || runtime.block_on(run(streams, queue, limits, stop)))?;
        Ok(Self { inbox, thread })
    }

    /// Where the acceptor sends this processor's new connections.
    pub fn inbox(&self) -> mpsc::UnboundedSender<Accepted> {
        self.inbox.clone()
    }

    /// Waits for the thread to end (after the stop signal).
    pub fn join(self) {
        drop(self.inbox);
        let _ = self.thread.join();
    }
}

/// What bounds one connection: `socket.request.max.bytes` and
/// `connections.max.idle.ms` (`None`: never closed as idle).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConnectionLimits {
    /// The largest request accepted.
    pub(crate) max_request_bytes: usize,
    /// How long a connection may make no progress.
    pub(crate) max_idle: Option<Duration>,
}

async fn run(
    mut streams: mpsc::UnboundedReceiver<Accepted>,
    queue: RequestQueue,
    limits: ConnectionLimits,
    mut stop: watch::Receiver<bool>,
) {
    let mut connections = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            stream = streams.recv() => {
                let Some((stream, listener, slot)) = stream else { break };
                let queue = queue.clone();
                connections.spawn(serve(stream, listener, queue, limits, slot));
            }
            _ = stop.changed() => break,
        }
        while connections.try_join_next().is_some() {}
    }
    connections.shutdown().await;
}

/// How long a TLS handshake may take before the connection is dropped.
const TLS_HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The connection's transport (after the TLS handshake on a TLS listener;
/// kernel TLS where the listener and the kernel allow it, else rustls in
/// userspace) and its session: an mTLS client is `User:` + its
/// certificate's subject (mapped by `ssl.principal.mapping.rules`),
/// anyone else anonymous.
async fn establish(
    stream: TcpStream,
    listener: &ListenerContext,
    peer: Option<std::net::SocketAddr>,
) -> std::io::Result<(Transport, Session)> {
    let mut session = Session {
        principal: KafkaPrincipal::anonymous(),
        client_address: peer.map(|p| p.ip()),
        listener: listener.name.clone(),
        security_protocol: listener.protocol,
    };
    let Some(tls_config) = &listener.tls else {
        return Ok((Transport::Plain(stream), session));
    };
    let (config, reload_error) = tls_config.current();
    if let Some(e) = reload_error {
        tracing::warn!(listener = %listener.name, "the changed TLS files do not load, the previous ones stay: {e}");
    }
    let handshake = async {
        if listener.kernel_tls && kernel_tls::attach(&stream) {
            let (stream, certificate) = kernel_tls::accept(stream, config).await?;
            Ok((Transport::KernelTls(stream), certificate))
        } else {
            let tls = tokio_rustls::TlsAcceptor::from(config).accept(stream).await?;
            let certificate = tls.get_ref().1.peer_certificates().and_then(|c| c.first()).cloned();
            Ok((Transport::Tls(Box::new(tls)), certificate))
        }
    };
    let (transport, certificate) = tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, handshake)
        .await
        .map_err(|_| invalid("the TLS handshake timed out".into()))?
        .map_err(|e: std::io::Error| {
            tracing::info!(?peer, listener = %listener.name, "failed TLS handshake: {e}");
            e
        })?;
    if let Some(cert) = certificate {
        let subject = gregor_auth::certificate_subject(&cert).map_err(|e| invalid(e.to_string()))?;
        session.principal = KafkaPrincipal::user(listener.principal_mapper.name_of(&subject));
        tracing::debug!(?peer, principal = %session.principal, "TLS client authenticated");
    }
    Ok((transport, session))
}

/// Serves one connection until it closes, is idle too long, or breaks
/// the protocol; then gives its connection slot back.
async fn serve(
    stream: std::net::TcpStream,
    listener: Arc<ListenerContext>,
    queue: RequestQueue,
    limits: ConnectionLimits,
    slot: ConnectionSlot,
) {
    let peer = stream.peer_addr().ok();
    let metrics = queue.metrics_handle();
    metrics.connection_opened(&listener.name);
    let activity = Activity::new();
    let served = connection(
        stream,
        listener.clone(),
        queue,
        limits.max_request_bytes,
        activity.clone(),
    );
    let closed = match limits.max_idle {
        Some(max_idle) => tokio::select! {
            closed = served => closed,
            _ = idle::expired(&activity, max_idle) => {
                metrics.connection_expired(&listener.name);
                Err(invalid(format!("idle for connections.max.idle.ms ({} ms)", max_idle.as_millis())))
            }
        },
        None => served.await,
    };
    if let Err(e) = closed {
        debug!(?peer, listener = %listener.name, "connection closed: {e}");
    }
    metrics.connection_closed(&listener.name);
    drop(slot);
}

/// Reads a request body of `size` bytes. A body of up to
/// [`INITIAL_BODY_BUFFER`] is read into one allocation of its size (no
/// regrowing, no copying: a full produce request of the clients' default
/// 1 MB); a larger one grows its buffer as bytes arrive, so a client
/// announcing a large request and sending it slowly holds only what it has
/// sent (and of the first allocation, only the pages its bytes touched).
async fn read_body<S: tokio::io::AsyncRead + Unpin>(
    stream: &mut S,
    size: usize,
    body: &mut Vec<u8>,
) -> std::io::Result<()> {
    body.reserve(size.min(INITIAL_BODY_BUFFER));
    (&mut *stream).take(size as u64).read_to_end(body).await?;
    if body.len() < size {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    Ok(())
}

/// The first allocation of a request body's buffer, at most: room for a
/// produce request of the clients' default maximum (`max.request.size`,
/// `message.max.bytes`: 1 MB) with its headers.
const INITIAL_BODY_BUFFER: usize = 1100 * 1024;

async fn connection(
    stream: std::net::TcpStream,
    listener: Arc<ListenerContext>,
    queue: RequestQueue,
    max: usize,
    activity: Arc<Activity>,
) -> std::io::Result<()> {
    let stream = TcpStream::from_std(stream)?;
    let _ = stream.set_nodelay(true);
    let peer = stream.peer_addr().ok();
    let (stream, session) = establish(stream, &listener, peer).await?;
    let mut stream = Tracked {
        inner: stream,
        activity: activity.clone(),
    };
    let mut session = Arc::new(session);
    let mut gate = listener
        .sasl
        .clone()
        .map(|sasl| SaslGate::new(sasl, listener.max_reauth));
    let mut out = BytesMut::new();
    loop {
        let size = match stream.read_i32().await {
            Ok(size) => size,
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e),
        };
        if size < 4 || size as usize > max {
            return Err(invalid(format!("request size {size} outside [4, {max}]")));
        }
        let mut body = Vec::new();
        read_body(&mut stream, size as usize, &mut body).await?;
        let started = std::time::Instant::now();
        if let Some(g) = gate.as_mut().filter(|g| g.expects_bare_token()) {
            let (answer, after) = g.bare_token(&body);
            let mut framed = Vec::with_capacity(answer.len() + 4);
            framed.extend_from_slice(&(answer.len() as i32).to_be_bytes());
            framed.extend_from_slice(&answer);
            if !matches!(after, After::Failed(_)) {
                stream.write_all(&framed).await?;
                stream.flush().await?;
            }
            session = after_authentication(session, after, &listener, peer).await?;
            continue;
        }
        let mut frame = decode_frame(Bytes::from(body)).map_err(invalid)?;
        if let Some(g) = gate.as_mut().filter(|g| g.is_open()) {
            g.admit(&frame).map_err(invalid)?;
        }
        if let Some(g) = gate.as_mut().filter(|g| !g.is_open()) {
            let (key, correlation_id, header_version) = (
                frame.api_key,
                frame.header.correlation_id,
                frame.response_header_version,
            );
            match g.check(frame) {
                Verdict::Pass(f) => frame = *f,
                Verdict::Answer(outcome, after) => {
                    write_response(&mut stream, &mut out, key, header_version, correlation_id, outcome).await?;
                    session = after_authentication(session, after, &listener, peer).await?;
                    continue;
                }
                Verdict::Close(why) => return Err(invalid(why)),
            }
        }
        frame.session = session.clone();
        frame.size = size as usize;
        let (key, correlation_id) = (frame.api_key, frame.header.correlation_id);
        let header_version = frame.response_header_version;
        tracing::trace!(?peer, api = key, correlation_id, "request");
        activity.set_busy(true);
        let outcome = queue
            .submit(frame)
            .await
            .await
            .map_err(|_| invalid(format!("no outcome for an API {key} request")))?;
        let outcome = match outcome {
            Outcome::Delayed(operation) => operation.await,
            ready => ready,
        };
        activity.set_busy(false);
        if matches!(outcome, Outcome::Close) {
            return Err(invalid(format!("the handler of an API {key} request failed")));
        }
        let mute_ms = match &outcome {
            Outcome::Respond { throttle_ms, .. } | Outcome::Mute(throttle_ms) => *throttle_ms,
            _ => 0,
        };
        let written = write_response(&mut stream, &mut out, key, header_version, correlation_id, outcome).await?;
        queue
            .metrics()
            .observe_request(key, started.elapsed(), size as usize + 4, written);
        tracing::trace!(?peer, api = key, correlation_id, "response sent");
        if mute_ms > 0 {
            // The client is over a quota: its channel is muted — no
            // request read — for the throttle time (KIP-219).
            activity.set_busy(true);
            tokio::time::sleep(Duration::from_millis(mute_ms as u64)).await;
            activity.set_busy(false);
        }
    }
}

/// The session after a SASL step: `User:<name>` once authenticated; after
/// a failure, the connection closes once the delay has passed (Kafka's
/// `connection.failed.authentication.delay.ms`, which slows password
/// guessing).
async fn after_authentication(
    session: Arc<Session>,
    after: After,
    listener: &ListenerContext,
    peer: Option<std::net::SocketAddr>,
) -> std::io::Result<Arc<Session>> {
    match after {
        After::Continue => Ok(session),
        After::Authenticated(user) => {
            let mut authenticated = (*session).clone();
            authenticated.principal = KafkaPrincipal::user(user);
            tracing::debug!(?peer, principal = %authenticated.principal, listener = %listener.name, "SASL client authenticated");
            Ok(Arc::new(authenticated))
        }
        After::Failed(message) => {
            tracing::info!(?peer, listener = %listener.name, "failed authentication: {message}");
            tokio::time::sleep(listener.failed_authentication_delay).await;
            Err(invalid(format!("failed authentication: {message}")))
        }
    }
}

async fn write_response(
    stream: &mut Tracked<Transport>,
    out: &mut BytesMut,
    key: i16,
    header_version: i16,
    correlation_id: i32,
    outcome: Outcome,
) -> std::io::Result<usize> {
    let Outcome::Respond {
        version,
        encode,
        splices,
        ..
    } = outcome
    else {
        return Ok(0);
    };
    out.clear();
    out.put_i32(0);
    let mut response_header = ResponseHeader::default();
    response_header.correlation_id = correlation_id;
    response_header
        .encode(out, header_version)
        .map_err(|e| invalid(format!("encoding a response header: {e}")))?;
    encode(out).map_err(|e| invalid(format!("encoding an API {key} response (v{version}): {e}")))?;
    if splices.is_empty() {
        let len = (out.len() - 4) as i32;
        out[..4].copy_from_slice(&len.to_be_bytes());
        stream.write_all(out).await?;
        // TLS keeps written records until flushed.
        stream.flush().await?;
        Ok(out.len())
    } else {
        let sent = send_spliced(stream, out, &splices).await?;
        stream.flush().await?;
        Ok(sent)
    }
}

/// Sends `out` (size prefix first) with each placeholder replaced by its
/// file region and the placeholder's length prefix by the region's:
/// memory parts with `write_all`, regions with `sendfile`. Returns the
/// bytes sent.
async fn send_spliced(
    stream: &mut Tracked<Transport>,
    out: &mut BytesMut,
    splices: &[Splice],
) -> std::io::Result<usize> {
    // Where each placeholder's length prefix starts, and the region's prefix.
    let mut at = Vec::with_capacity(splices.len());
    let mut from = 4;
    let mut total = out.len() - 4;
    for splice in splices {
        let found = out[from..]
            .windows(PLACEHOLDER_LEN)
            .position(|w| w == splice.placeholder)
            .map(|p| p + from)
            .ok_or_else(|| invalid("a fetch placeholder is missing from the response".into()))?;
        let old = splice.placeholder_prefix();
        let old = old.as_slice();
        let prefix_at = found
            .checked_sub(old.len())
            .filter(|&p| out[p..found] == *old)
            .ok_or_else(|| invalid("a fetch placeholder without its length prefix".into()))?;
        let new = splice.region_prefix().map_err(invalid)?;
        total = total - old.len() - PLACEHOLDER_LEN + new.as_slice().len() + splice.region.len() as usize;
        at.push((prefix_at, found + PLACEHOLDER_LEN, new));
        from = found + PLACEHOLDER_LEN;
    }
    let size = i32::try_from(total).map_err(|_| invalid("a response over 2 GiB".into()))?;
    out[..4].copy_from_slice(&size.to_be_bytes());
    let mut start = 0;
    let mut chunk = Vec::new();
    for (splice, (prefix_at, after, prefix)) in splices.iter().zip(at) {
        chunk.clear();
        chunk.extend_from_slice(&out[start..prefix_at]);
        chunk.extend_from_slice(prefix.as_slice());
        stream.write_all(&chunk).await?;
        stream.inner.send_region(&splice.region, &stream.activity).await?;
        start = after;
    }
    stream.write_all(&out[start..]).await?;
    Ok(total + 4)
}

fn invalid(message: String) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_request_buffer_grows_with_the_bytes_received_not_the_size_announced() {
        let (mut client, mut server) = tokio::io::duplex(1024);
        client.write_all(&[7u8; 1000]).await.unwrap();
        let mut body = Vec::new();
        let announced = 100 << 20;
        let read = tokio::time::timeout(Duration::from_millis(200), read_body(&mut server, announced, &mut body));
        assert!(read.await.is_err(), "the rest of the request never comes");
        assert_eq!(body.len(), 1000);
        assert!(body.capacity() <= INITIAL_BODY_BUFFER, "{}", body.capacity());
        // A whole request is read whole.
        client.write_all(&[1, 2, 3]).await.unwrap();
        let mut body = Vec::new();
        read_body(&mut server, 3, &mut body).await.unwrap();
        assert_eq!(body, [1, 2, 3]);
    }
}
