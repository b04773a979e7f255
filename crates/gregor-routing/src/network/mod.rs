//! The request pipeline, shaped like Kafka's `SocketServer`:
//!
//! ```text
//! acceptor ──round robin──▶ processor 1..N (num.network.threads)
//!                             │ one task per connection: read a frame, decode,
//!                             │ take a queue slot (waits when the queue is full)
//!                             ▼
//!                    request queue (queued.max.requests)
//!                             ▼
//!                    handler pool (num.io.threads OS threads: appends,
//!                             │ fsyncs, topic changes — blocking work)
//!                             ▼
//!                    the connection's response slot ──▶ processor writes it
//! ```
//!
//! A connection has one request in the pipeline at a time (Kafka mutes a
//! channel the same way), so responses leave in request order and a
//! client's produce requests append in the order it sent them. A full
//! request queue stops processors reading: back-pressure reaches the
//! clients' sockets. A Fetch that must wait for data leaves the handler
//! as a delayed operation that its processor completes when data arrives
//! or its `max_wait_ms` passes (Kafka's fetch purgatory).
//!
//! Abusive clients cost bounded memory: an acceptor admits a connection
//! only within `max.connections` (waiting while the broker is full; the
//! inter-broker listener is exempt when there are others),
//! `listener.name.<l>.max.connections` and `max.connections.per.ip`
//! (closing the one over), see `connection_quotas`; a connection holds at
//! most one request and one response, grows its request buffer as bytes
//! arrive, and is closed after `connections.max.idle.ms` without progress
//! (`idle`).

mod connection_quotas;
mod handlers;
mod idle;
mod kernel_tls;
mod processor;
mod request_queue;
mod sasl_gate;
mod transport;

use std::sync::Arc;

use gregor_auth::SecurityProtocol;

use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tracing::{debug, info, warn};

use gregor_broker::Broker;

use crate::metrics::BrokerMetrics;
pub use connection_quotas::{parse_per_ip_overrides, ConnectionLimits};
use connection_quotas::{ConnectionQuotas, ConnectionSlot, ListenerQuota};
use handlers::HandlerPool;
use processor::Processor;
use request_queue::RequestQueue;

/// Sizes of the pipeline, with Kafka's names and defaults.
#[derive(Debug, Clone)]
pub struct NetworkConfig {
    /// `num.network.threads`: processor threads doing socket I/O.
    pub num_network_threads: usize,
    /// `num.io.threads`: handler threads running requests.
    pub num_io_threads: usize,
    /// `queued.max.requests`: requests waiting for a handler at most.
    pub queued_max_requests: usize,
    /// `socket.request.max.bytes`: the largest request accepted.
    pub socket_request_max_bytes: usize,
    /// `max.connections`, `max.connections.per.ip` and its overrides.
    pub connection_limits: ConnectionLimits,
    /// `connections.max.idle.ms`: a connection without progress for this
    /// long is closed (`None`: never).
    pub connections_max_idle: Option<std::time::Duration>,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        Self {
            num_network_threads: 3,
            num_io_threads: 8,
            queued_max_requests: 500,
            socket_request_max_bytes: 100 * 1024 * 1024,
            connection_limits: ConnectionLimits::default(),
            connections_max_idle: Some(std::time::Duration::from_millis(600_000)),
        }
    }
}

/// One listener the socket server serves: its name and security protocol
/// (every connection's [`gregor_auth::Session`] carries them) and, on a
/// TLS listener, the TLS settings of its handshakes.
pub struct ListenerContext {
    /// The listener's name (`PLAINTEXT`, `INTERNAL`, …).
    pub name: String,
    /// Its security protocol.
    pub protocol: SecurityProtocol,
    /// The TLS settings of an SSL or SASL_SSL listener (reloaded when
    /// their files change).
    pub tls: Option<Arc<gregor_auth::tls::ReloadingServerConfig>>,
    /// Whether this TLS listener hands its connections' keys to the kernel
    /// after the handshake (kernel TLS: fetches keep `sendfile`), where
    /// the kernel can (`ssl.kernel.tls.enable`, gregor's own).
    pub kernel_tls: bool,
    /// How an SSL client's certificate subject becomes its principal.
    pub principal_mapper: gregor_auth::SslPrincipalMapper,
    /// SASL authentication of a SASL_PLAINTEXT or SASL_SSL listener.
    pub sasl: Option<Arc<gregor_auth::SaslServerConfig>>,
    /// `connection.failed.authentication.delay.ms`: how long a connection
    /// that failed to authenticate waits before it is closed.
    pub failed_authentication_delay: std::time::Duration,
    /// `connections.max.reauth.ms` (KIP-368) when positive: how long a
    /// SASL session lasts before the client must re-authenticate.
    pub max_reauth: Option<std::time::Duration>,
    /// `listener.name.<l>.max.connections`: this listener's connections at
    /// most (`None`: no limit of its own).
    pub max_connections: Option<usize>,
    /// Whether this is the inter-broker listener (exempt from
    /// `max.connections` when the broker has other listeners too).
    pub inter_broker: bool,
}

impl ListenerContext {
    /// A PLAINTEXT listener named `name`.
    pub fn plaintext(name: &str) -> Self {
        Self {
            name: name.to_string(),
            protocol: SecurityProtocol::Plaintext,
            tls: None,
            kernel_tls: true,
            principal_mapper: gregor_auth::SslPrincipalMapper::default(),
            sasl: None,
            failed_authentication_delay: std::time::Duration::from_millis(100),
            max_reauth: None,
            max_connections: None,
            inter_broker: false,
        }
    }
}

/// A running pipeline: acceptor, processors and handlers.
pub struct SocketServer {
    stop: watch::Sender<bool>,
    acceptors: Vec<tokio::task::JoinHandle<()>>,
    processors: Vec<Processor>,
    handlers: HandlerPool,
}

impl SocketServer {
    /// Starts serving `listeners` (one acceptor each, on the caller's tokio
    /// runtime; processors and handlers on threads of their own, shared by
    /// every listener), counting requests in `metrics`.
    pub fn start(
        listeners: Vec<(TcpListener, Arc<ListenerContext>)>,
        broker: Arc<Broker>,
        metrics: Arc<BrokerMetrics>,
        config: NetworkConfig,
    ) -> std::io::Result<Self> {
        let (stop, stopped) = watch::channel(false);
        let (queue, requests) = RequestQueue::new(config.queued_max_requests.max(1), metrics.clone());
        let handlers = HandlerPool::start(config.num_io_threads.max(1), broker, requests)?;
        let limits = processor::ConnectionLimits {
            max_request_bytes: config.socket_request_max_bytes,
            max_idle: config.connections_max_idle,
        };
        let processors = (0..config.num_network_threads.max(1))
            .map(|id| Processor::start(id, queue.clone(), limits, stopped.clone()))
            .collect::<std::io::Result<Vec<_>>>()?;
        let inboxes: Vec<_> = processors.iter().map(Processor::inbox).collect();
        let quotas = ConnectionQuotas::new(config.connection_limits);
        let several = listeners.len() > 1;
        let acceptors = listeners
            .into_iter()
            .map(|(listener, context)| {
                let quota = ListenerQuota {
                    name: context.name.clone(),
                    max_connections: context.max_connections,
                    protected: context.inter_broker && several,
                };
                let acceptor = Acceptor {
                    context,
                    quota,
                    quotas: quotas.clone(),
                    metrics: metrics.clone(),
                    inboxes: inboxes.clone(),
                };
                tokio::spawn(acceptor.run(listener, stopped.clone()))
            })
            .collect();
        Ok(Self {
            stop,
            acceptors,
            processors,
            handlers,
        })
    }

    /// Stops accepting, closes every connection, lets the handlers finish
    /// the requests they hold, and waits for every thread.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for acceptor in self.acceptors {
            let _ = acceptor.await;
        }
        let processors = self.processors;
        let handlers = self.handlers;
        let joined = tokio::task::spawn_blocking(move || {
            for p in processors {
                p.join();
            }
            handlers.join();
        });
        let _ = joined.await;
    }
}

/// A new connection for a processor, with the listener it came through
/// and its place in the connection counts.
pub(crate) type Accepted = (std::net::TcpStream, Arc<ListenerContext>, ConnectionSlot);

/// One listener's acceptor.
struct Acceptor {
    context: Arc<ListenerContext>,
    quota: ListenerQuota,
    quotas: ConnectionQuotas,
    metrics: Arc<BrokerMetrics>,
    inboxes: Vec<mpsc::UnboundedSender<Accepted>>,
}

impl Acceptor {
    /// Accepts connections within the limits and deals them to processors
    /// in turn, until `stop`.
    async fn run(self, listener: TcpListener, mut stop: watch::Receiver<bool>) {
        self.metrics.listener_started(&self.context.name);
        // Each listener starts at another processor.
        let mut next = self.context.name.len() % self.inboxes.len().max(1);
        loop {
            let (stream, peer) = tokio::select! {
                accepted = listener.accept() => match accepted.and_then(|(s, peer)| Ok((s.into_std()?, peer))) {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        // Out of file descriptors, most likely: wait for some
                        // to close rather than spin.
                        warn!(listener = %self.context.name, "accept failed: {e}");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        continue;
                    }
                },
                _ = stop.changed() => break,
            };
            let admitted = match self.quotas.try_admit(&self.quota, peer.ip()) {
                Some(admitted) => admitted,
                None => {
                    // The broker or the listener is full: accept nothing
                    // more until a connection closes (Kafka's acceptor
                    // blocks the same way).
                    let started = std::time::Instant::now();
                    let admitted = tokio::select! {
                        admitted = self.quotas.admit(&self.quota, peer.ip()) => admitted,
                        _ = stop.changed() => break,
                    };
                    self.metrics.acceptor_blocked(&self.context.name, started.elapsed());
                    admitted
                }
            };
            match admitted {
                Ok(slot) => {
                    debug!(%peer, listener = %self.context.name, processor = next, "client connected");
                    if self.inboxes[next].send((stream, self.context.clone(), slot)).is_err() {
                        break;
                    }
                    next = (next + 1) % self.inboxes.len();
                }
                Err(refused) => {
                    info!(%peer, listener = %self.context.name, "connection closed: {refused}");
                    self.metrics
                        .connection_refused(&self.context.name, "max.connections.per.ip");
                    drop(stream);
                }
            }
        }
    }
}
