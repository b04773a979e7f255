//! A session on a [`super::CoordServer`] across TCP. The connection is
//! kept by [`super::link`]: pinged, dropped when silent, resumed on a new
//! one while the session lives.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use parking_lot::Mutex;
use tokio::net::ToSocketAddrs;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::auth::CoordSecret;
use super::link::{self, Handshake, Pending, Shared};
use super::wire::{ClientFrame, RemoteOp, Reply};
use crate::coordinator::Coordinator;
use crate::error::{CoordError, Result};
use crate::types::{CreateMode, Op, OpResult, SessionState, Stat, Watch};

/// A session on a remote embedded store, with ZooKeeper's client
/// behaviour: it pings every third of the session timeout; a connection
/// not heard from for two thirds of it is dropped and the session resumed
/// on a new one (calls made meanwhile wait; calls in flight fail with
/// `ConnectionLoss`; watches set before resolve with `ConnectionLoss`
/// once resumed — read again); the session is `Expired` when the service
/// says so on reconnecting, or after a whole timeout without hearing from
/// it.
pub struct RemoteCoordinator {
    shared: Arc<Shared>,
    state: watch::Receiver<SessionState>,
    next_id: AtomicU64,
    task: JoinHandle<()>,
}

impl RemoteCoordinator {
    /// Connects to the service at `addr` and opens a session.
    pub async fn connect(addr: impl ToSocketAddrs, session_timeout: Duration) -> Result<Self> {
        Self::connect_with_secret(addr, session_timeout, None).await
    }

    /// Connects to the service at `addr` and opens a session; with a
    /// `secret`, this connection and every one that resumes the session
    /// prove it (and have the service prove it). A refusal is
    /// [`CoordError::AuthFailed`].
    pub async fn connect_with_secret(
        addr: impl ToSocketAddrs,
        session_timeout: Duration,
        secret: Option<CoordSecret>,
    ) -> Result<Self> {
        let addrs: Vec<_> = tokio::net::lookup_host(addr)
            .await
            .map_err(|e| CoordError::ConnectionLoss(e.to_string()))?
            .collect();
        let hello = ClientFrame::Hello {
            session_timeout_ms: session_timeout.as_millis() as u64,
        };
        let deadline = Instant::now() + session_timeout.max(Duration::from_secs(5));
        let (session, reader, writer) = match link::handshake(&addrs, secret.as_ref(), &hello, deadline).await? {
            Handshake::Welcome(session, reader, writer) => (session, reader, writer),
            Handshake::Ended(state) => {
                return Err(CoordError::ConnectionLoss(format!(
                    "the coordination service refused a session ({state:?})"
                )))
            }
        };
        let (state_tx, state) = watch::channel(SessionState::Connected);
        let shared = Arc::new(Shared {
            session,
            session_timeout,
            addrs,
            secret,
            state: state_tx,
            pending: Mutex::new(Pending::default()),
            out: Mutex::new(None),
        });
        let outgoing = link::install(&shared);
        let task = tokio::spawn(link::run(shared.clone(), (reader, writer, outgoing)));
        Ok(Self {
            shared,
            state,
            next_id: AtomicU64::new(1),
            task,
        })
    }

    /// Waits while the connection is being resumed; `Err` once the
    /// session has ended.
    async fn connected(&self) -> Result<()> {
        let mut state = self.state.clone();
        let found = state.wait_for(|s| *s != SessionState::Disconnected).await.map(|s| *s);
        match found {
            Ok(SessionState::Connected) => Ok(()),
            _ => Err(CoordError::SessionExpired),
        }
    }

    async fn request(&self, op: RemoteOp) -> Result<Reply> {
        self.connected().await?;
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.shared.pending.lock().requests.insert(id, tx);
        let sent = match self.shared.out.lock().as_ref() {
            Some(out) => out.send(ClientFrame::Request { id, op }).is_ok(),
            None => false,
        };
        if !sent {
            self.shared.pending.lock().requests.remove(&id);
            return Err(self.lost("the connection was lost"));
        }
        match rx.await {
            Ok(result) => result,
            Err(_) => Err(self.lost("the connection was lost before the answer")),
        }
    }

    /// The error of a call whose connection went: the session's end, or a
    /// connection loss.
    fn lost(&self, what: &str) -> CoordError {
        match *self.state.borrow() {
            SessionState::Expired | SessionState::Closed => CoordError::SessionExpired,
            _ => CoordError::ConnectionLoss(what.into()),
        }
    }

    /// Sends the request `op` builds around a new watch id; the watch is
    /// forgotten again if the request fails.
    async fn watched(&self, op: impl FnOnce(u64) -> RemoteOp) -> Result<(Reply, Watch)> {
        self.connected().await?;
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.shared.pending.lock().watches.insert(id, tx);
        match self.request(op(id)).await {
            Ok(reply) => Ok((
                reply,
                Watch::new(async move { rx.await.unwrap_or(Err(CoordError::SessionExpired)) }),
            )),
            Err(e) => {
                self.shared.pending.lock().watches.remove(&id);
                Err(e)
            }
        }
    }
}

impl Drop for RemoteCoordinator {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn unexpected(reply: Reply) -> CoordError {
    CoordError::Other(format!("unexpected reply {reply:?}"))
}

#[async_trait]
impl Coordinator for RemoteCoordinator {
    fn session_id(&self) -> i64 {
        self.shared.session
    }

    fn session_state(&self) -> watch::Receiver<SessionState> {
        self.state.clone()
    }

    async fn create(&self, path: &str, data: &[u8], mode: CreateMode) -> Result<String> {
        let op = RemoteOp::Create {
            path: path.into(),
            data: data.to_vec(),
            mode,
        };
        match self.request(op).await? {
            Reply::Created(p) => Ok(p),
            other => Err(unexpected(other)),
        }
    }

    async fn get(&self, path: &str) -> Result<(Vec<u8>, Stat)> {
        match self
            .request(RemoteOp::Get {
                path: path.into(),
                watch: None,
            })
            .await?
        {
            Reply::Data(d, s) => Ok((d, s)),
            other => Err(unexpected(other)),
        }
    }

    async fn get_and_watch(&self, path: &str) -> Result<(Vec<u8>, Stat, Watch)> {
        match self
            .watched(|w| RemoteOp::Get {
                path: path.into(),
                watch: Some(w),
            })
            .await?
        {
            (Reply::Data(d, s), watch) => Ok((d, s, watch)),
            (other, _) => Err(unexpected(other)),
        }
    }

    async fn set(&self, path: &str, data: &[u8], version: Option<i32>) -> Result<Stat> {
        let op = RemoteOp::Set {
            path: path.into(),
            data: data.to_vec(),
            version,
        };
        match self.request(op).await? {
            Reply::Stat(s) => Ok(s),
            other => Err(unexpected(other)),
        }
    }

    async fn delete(&self, path: &str, version: Option<i32>) -> Result<()> {
        self.request(RemoteOp::Delete {
            path: path.into(),
            version,
        })
        .await
        .map(|_| ())
    }

    async fn exists(&self, path: &str) -> Result<Option<Stat>> {
        match self
            .request(RemoteOp::Exists {
                path: path.into(),
                watch: None,
            })
            .await?
        {
            Reply::MaybeStat(s) => Ok(s),
            other => Err(unexpected(other)),
        }
    }

    async fn exists_and_watch(&self, path: &str) -> Result<(Option<Stat>, Watch)> {
        match self
            .watched(|w| RemoteOp::Exists {
                path: path.into(),
                watch: Some(w),
            })
            .await?
        {
            (Reply::MaybeStat(s), watch) => Ok((s, watch)),
            (other, _) => Err(unexpected(other)),
        }
    }

    async fn children(&self, path: &str) -> Result<Vec<String>> {
        match self
            .request(RemoteOp::Children {
                path: path.into(),
                watch: None,
            })
            .await?
        {
            Reply::Children(c) => Ok(c),
            other => Err(unexpected(other)),
        }
    }

    async fn children_and_watch(&self, path: &str) -> Result<(Vec<String>, Watch)> {
        match self
            .watched(|w| RemoteOp::Children {
                path: path.into(),
                watch: Some(w),
            })
            .await?
        {
            (Reply::Children(c), watch) => Ok((c, watch)),
            (other, _) => Err(unexpected(other)),
        }
    }

    async fn multi(&self, ops: Vec<Op>) -> Result<Vec<OpResult>> {
        match self.request(RemoteOp::Multi(ops)).await? {
            Reply::Multi(r) => Ok(r),
            other => Err(unexpected(other)),
        }
    }

    async fn close(&self) -> Result<()> {
        let sent = match self.shared.out.lock().as_ref() {
            Some(out) => out.send(ClientFrame::Close).is_ok(),
            None => false,
        };
        if !sent {
            // No connection: the service expires the session on its own.
            self.task.abort();
            self.shared.state.send_replace(SessionState::Closed);
            return Ok(());
        }
        let mut state = self.state.clone();
        let ended = tokio::time::timeout(
            Duration::from_secs(5),
            state.wait_for(|s| matches!(s, SessionState::Closed | SessionState::Expired)),
        )
        .await;
        match ended {
            Ok(_) => Ok(()),
            Err(_) => Err(CoordError::ConnectionLoss("no answer to close".into())),
        }
    }
}
