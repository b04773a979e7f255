//! Serves an [`EmbeddedStore`] over TCP so that brokers in other processes
//! (or on other machines) share one coordination store.
//!
//! One connection is one session. A dropped connection does not end the
//! session at once: like ZooKeeper, the session (and its ephemeral nodes)
//! lives until its timeout passes without a heartbeat.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream, ToSocketAddrs};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tracing::{debug, warn};

use super::store::EmbeddedStore;
use super::wire::{read_frame, write_frame, ClientFrame, RemoteOp, Reply, ServerFrame};
use crate::error::Result;
use crate::types::{Op, OpResult, SessionState, WatchEvent};

/// A running TCP service for an [`EmbeddedStore`].
pub struct CoordServer {
    local_addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl CoordServer {
    /// Listens on `addr` and serves `store` until [`CoordServer::shutdown`].
    pub async fn bind(addr: impl ToSocketAddrs, store: Arc<EmbeddedStore>) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let local_addr = listener.local_addr()?;
        let (shutdown, stop) = watch::channel(false);
        let task = tokio::spawn(accept_loop(listener, store, stop));
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

async fn accept_loop(listener: TcpListener, store: Arc<EmbeddedStore>, mut stop: watch::Receiver<bool>) {
    let mut connections = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    debug!(%peer, "coordination client connected");
                    connections.spawn(serve(stream, store.clone(), stop.clone()));
                }
                Err(e) => warn!("accept failed: {e}"),
            },
            _ = stop.changed() => break,
        }
    }
    connections.shutdown().await;
}

async fn serve(stream: TcpStream, store: Arc<EmbeddedStore>, mut stop: watch::Receiver<bool>) {
    let _ = stream.set_nodelay(true);
    let (mut reader, mut writer) = stream.into_split();
    let session_timeout = match read_frame::<ClientFrame>(&mut reader).await {
        Ok(Some(ClientFrame::Hello { session_timeout_ms })) => Duration::from_millis(session_timeout_ms.max(1)),
        _ => return,
    };
    let (session, mut state) = store.open_session(session_timeout);
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
                // A second Hello, a dropped or broken connection: the
                // session is left to expire on its timeout.
                Ok(Some(ClientFrame::Hello { .. })) | Ok(None) | Err(_) => break,
            },
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
    drop(out);
    let _ = writer_task.await;
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
