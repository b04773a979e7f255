//! Serves an [`EmbeddedStore`] over TCP so that brokers in other processes
//! (or on other machines) share one coordination store.
//!
//! A connection opens a session (`Hello`) or carries on with one whose
//! connection was lost (`Resume`). A dropped connection does not end the
//! session at once: like ZooKeeper, the session (and its ephemeral nodes)
//! lives until its timeout passes without a heartbeat, and a client that
//! reconnects within it resumes the session; after it, the client is told
//! the session expired. A resumed session's older connection (one the
//! client gave up on, which this side may not have noticed) is closed.
//!
//! A service bound with a [`CoordSecret`] first has every connection —
//! a new session or a resumed one — prove the secret ([`super::auth`]);
//! one that does not is told why, closed, and logged, before any frame of
//! it reaches the store.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream, ToSocketAddrs};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tracing::{debug, warn};

/// Longest a new connection may take to authenticate and say `Hello` or
/// `Resume`.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Largest frame read before a connection is authenticated.
const MAX_HANDSHAKE_FRAME: usize = 4096;

use super::auth::{self, CoordSecret, NONCE_LEN};
use super::store::EmbeddedStore;
use super::wire::{read_frame, read_frame_up_to, write_frame, ClientFrame, RemoteOp, Reply, ServerFrame};
use crate::error::Result;
use crate::types::{Op, OpResult, SessionState, WatchEvent};

/// A running TCP service for an [`EmbeddedStore`].
pub struct CoordServer {
    local_addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl CoordServer {
    /// Listens on `addr` and serves `store` to anyone who connects until
    /// [`CoordServer::shutdown`].
    pub async fn bind(addr: impl ToSocketAddrs, store: Arc<EmbeddedStore>) -> std::io::Result<Self> {
        Self::bind_with_secret(addr, store, None).await
    }

    /// Listens on `addr` and serves `store` until [`CoordServer::shutdown`];
    /// with a `secret`, only to clients that prove they hold it.
    pub async fn bind_with_secret(
        addr: impl ToSocketAddrs,
        store: Arc<EmbeddedStore>,
        secret: Option<CoordSecret>,
    ) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let local_addr = listener.local_addr()?;
        let (shutdown, stop) = watch::channel(false);
        let task = tokio::spawn(accept_loop(listener, store, secret, stop));
        Ok(Self {
            local_addr,
            shutdown,
            task,
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting and closes every connection (sessions then expire
    /// on their own timeouts, as they would if the service crashed).
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let _ = self.task.await;
    }
}

/// The connection serving each session now: a newer one (a resume) closes
/// the older.
#[derive(Default)]
struct Connections {
    next: AtomicU64,
    by_session: Mutex<HashMap<i64, (u64, oneshot::Sender<()>)>>,
}

impl Connections {
    /// Makes this connection `session`'s, closing the one before; returns
    /// this connection's number and what tells it it was superseded.
    fn take_over(&self, session: i64) -> (u64, oneshot::Receiver<()>) {
        let number = self.next.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        if let Some((_, older)) = self.by_session.lock().insert(session, (number, tx)) {
            let _ = older.send(());
        }
        (number, rx)
    }

    /// Forgets connection `number` of `session` (unless a newer one took over).
    fn done(&self, session: i64, number: u64) {
        let mut by_session = self.by_session.lock();
        if by_session.get(&session).is_some_and(|(n, _)| *n == number) {
            by_session.remove(&session);
        }
    }
}

async fn accept_loop(
    listener: TcpListener,
    store: Arc<EmbeddedStore>,
    secret: Option<CoordSecret>,
    mut stop: watch::Receiver<bool>,
) {
    let live = Arc::new(Connections::default());
    let mut connections = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    debug!(%peer, "coordination client connected");
                    connections.spawn(serve(stream, peer, store.clone(), secret.clone(), live.clone(), stop.clone()));
                }
                Err(e) => warn!("accept failed: {e}"),
            },
            _ = stop.changed() => break,
        }
    }
    connections.shutdown().await;
}

async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    store: Arc<EmbeddedStore>,
    secret: Option<CoordSecret>,
    live: Arc<Connections>,
    mut stop: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let (mut reader, mut writer) = stream.into_split();
    let opening = tokio::time::timeout(
        HANDSHAKE_TIMEOUT,
        opening_frame(&mut reader, &mut writer, secret.as_ref()),
    )
    .await
    .unwrap_or_else(|_| Err("no handshake within the timeout".into()));
    let opening = match opening {
        Ok(Some(frame)) => frame,
        // A port probe: connected and closed without a word.
        Ok(None) => return,
        Err(reason) => {
            warn!(%peer, "coordination connection refused: {reason}");
            let _ = write_frame(&mut writer, &ServerFrame::Refused { reason }).await;
            return;
        }
    };
    if secret.is_some() {
        debug!(%peer, "coordination client authenticated");
    }
    let (session, mut state) = match opening {
        ClientFrame::Hello { session_timeout_ms } => {
            store.open_session(Duration::from_millis(session_timeout_ms.max(1)))
        }
        ClientFrame::Resume { session } => match store.resume(session) {
            Some(state) => {
                debug!(session, "coordination session resumed on a new connection");
                (session, state)
            }
            None => {
                let _ = write_frame(&mut writer, &ServerFrame::SessionEnded(SessionState::Expired)).await;
                return;
            }
        },
        _ => return,
    };
    let (number, mut superseded) = live.take_over(session);
    let (out, mut outgoing) = mpsc::unbounded_channel::<ServerFrame>();
    let writer_task = tokio::spawn(async move {
        while let Some(frame) = outgoing.recv().await {
            if write_frame(&mut writer, &frame).await.is_err() {
                return;
            }
        }
    });
    let _ = out.send(ServerFrame::Welcome { session });
    loop {
        tokio::select! {
            frame = read_frame::<ClientFrame>(&mut reader) => match frame {
                Ok(Some(ClientFrame::Request { id, op })) => {
                    let result = execute(&store, session, op, &out);
                    let _ = out.send(ServerFrame::Response { id, result });
                }
                Ok(Some(ClientFrame::Ping)) => {
                    let _ = match store.touch(session) {
                        Ok(()) => out.send(ServerFrame::Pong),
                        Err(_) => out.send(ServerFrame::SessionEnded(SessionState::Expired)),
                    };
                }
                Ok(Some(ClientFrame::Close)) => {
                    store.close_session(session);
                    let _ = out.send(ServerFrame::SessionEnded(SessionState::Closed));
                    break;
                }
                // A second Hello, Resume or handshake, a dropped or broken
                // connection: the session is left to expire on its timeout
                // (or to be resumed on another connection).
                Ok(Some(
                    ClientFrame::Hello { .. }
                    | ClientFrame::Resume { .. }
                    | ClientFrame::AuthStart { .. }
                    | ClientFrame::AuthProof { .. },
                ))
                | Ok(None)
                | Err(_) => break,
            },
            _ = &mut superseded => break,
            changed = state.changed() => {
                let ended = *state.borrow();
                if changed.is_err() || matches!(ended, SessionState::Expired | SessionState::Closed) {
                    let _ = out.send(ServerFrame::SessionEnded(SessionState::Expired));
                    break;
                }
            }
            _ = stop.changed() => break,
        }
    }
    live.done(session, number);
    drop(out);
    // A stalled link may block the writer for good: give it a moment.
    let mut writer_task = writer_task;
    if tokio::time::timeout(Duration::from_secs(2), &mut writer_task)
        .await
        .is_err()
    {
        writer_task.abort();
    }
}

/// Reads the connection's `Hello` or `Resume`, after the client proved
/// the shared secret when there is one; `Err` says why it is refused,
/// `None` that the client closed the connection before its first frame.
async fn opening_frame(
    reader: &mut OwnedReadHalf,
    writer: &mut OwnedWriteHalf,
    secret: Option<&CoordSecret>,
) -> std::result::Result<Option<ClientFrame>, String> {
    let first = match read_frame_up_to::<ClientFrame>(reader, MAX_HANDSHAKE_FRAME).await {
        Ok(Some(frame)) => frame,
        Ok(None) => return Ok(None),
        Err(e) => return Err(format!("unreadable handshake: {e}")),
    };
    let Some(secret) = secret else {
        return match first {
            ClientFrame::AuthStart { .. } => {
                Err("the client offers a shared secret but this coordination service has none configured".into())
            }
            frame @ (ClientFrame::Hello { .. } | ClientFrame::Resume { .. }) => Ok(Some(frame)),
            _ => Err("the connection did not start with Hello or Resume".into()),
        };
    };
    let client_nonce = match first {
        ClientFrame::AuthStart { nonce } if nonce.len() == NONCE_LEN => nonce,
        ClientFrame::AuthStart { .. } => return Err("a malformed authentication start".into()),
        _ => {
            return Err(
                "authentication required: the client has no shared secret (coordination.auth.secret.file)".into(),
            )
        }
    };
    let server_nonce = auth::nonce();
    let challenge = ServerFrame::AuthChallenge {
        proof: secret.server_proof(&client_nonce, &server_nonce),
        nonce: server_nonce.clone(),
    };
    write_frame(writer, &challenge)
        .await
        .map_err(|e| format!("sending the challenge: {e}"))?;
    match handshake_frame(reader).await? {
        ClientFrame::AuthProof { proof } if secret.verify_client(&client_nonce, &server_nonce, &proof) => {}
        ClientFrame::AuthProof { .. } => return Err("wrong shared secret".into()),
        _ => return Err("no proof of the shared secret".into()),
    }
    match handshake_frame(reader).await? {
        frame @ (ClientFrame::Hello { .. } | ClientFrame::Resume { .. }) => Ok(Some(frame)),
        _ => Err("no Hello or Resume after authenticating".into()),
    }
}

/// One small frame of the handshake.
async fn handshake_frame(reader: &mut OwnedReadHalf) -> std::result::Result<ClientFrame, String> {
    match read_frame_up_to::<ClientFrame>(reader, MAX_HANDSHAKE_FRAME).await {
        Ok(Some(frame)) => Ok(frame),
        Ok(None) => Err("the client closed the connection".into()),
        Err(e) => Err(format!("unreadable handshake: {e}")),
    }
}

/// Runs one request, registering a watch that reports back through `out`.
fn execute(
    store: &EmbeddedStore,
    session: i64,
    op: RemoteOp,
    out: &mpsc::UnboundedSender<ServerFrame>,
) -> Result<Reply> {
    let watch = |id: Option<u64>| {
        id.map(|watch| {
            let (tx, rx) = oneshot::channel::<WatchEvent>();
            let out = out.clone();
            tokio::spawn(async move {
                let _ = match rx.await {
                    Ok(event) => out.send(ServerFrame::WatchFired { watch, event }),
                    Err(_) => out.send(ServerFrame::WatchDropped { watch }),
                };
            });
            tx
        })
    };
    let one = |op: Op| -> Result<OpResult> { Ok(store.write(session, &[op])?.remove(0)) };
    Ok(match op {
        RemoteOp::Create { path, data, mode } => match one(Op::Create { path, data, mode })? {
            OpResult::Created(p) => Reply::Created(p),
            _ => Reply::Done,
        },
        RemoteOp::Set { path, data, version } => match one(Op::Set { path, data, version })? {
            OpResult::Set(stat) => Reply::Stat(stat),
            _ => Reply::Done,
        },
        RemoteOp::Delete { path, version } => {
            one(Op::Delete { path, version })?;
            Reply::Done
        }
        RemoteOp::Get { path, watch: w } => {
            let (data, stat) = store.get(session, &path, watch(w))?;
            Reply::Data(data, stat)
        }
        RemoteOp::Exists { path, watch: w } => Reply::MaybeStat(store.exists(session, &path, watch(w))?),
        RemoteOp::Children { path, watch: w } => Reply::Children(store.children(session, &path, watch(w))?),
        RemoteOp::Multi(ops) => Reply::Multi(store.write(session, &ops)?),
    })
}
