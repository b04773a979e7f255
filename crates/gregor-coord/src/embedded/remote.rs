//! A session on a [`super::CoordServer`] across TCP.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use parking_lot::Mutex;
use tokio::net::{TcpStream, ToSocketAddrs};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use super::wire::{read_frame, write_frame, ClientFrame, RemoteOp, Reply, ServerFrame};
use crate::coordinator::Coordinator;
use crate::error::{CoordError, Result};
use crate::types::{CreateMode, Op, OpResult, SessionState, Stat, Watch, WatchEvent};

#[derive(Default)]
struct Pending {
    requests: HashMap<u64, oneshot::Sender<Result<Reply>>>,
    watches: HashMap<u64, oneshot::Sender<WatchEvent>>,
}

/// A session on a remote embedded store. Heartbeats while it lives; a lost
/// connection fails calls with `ConnectionLoss` and, once the session
/// timeout has passed, reports the session expired.
pub struct RemoteCoordinator {
    session: i64,
    state: watch::Receiver<SessionState>,
    out: mpsc::UnboundedSender<ClientFrame>,
    pending: Arc<Mutex<Pending>>,
    next_id: AtomicU64,
    tasks: Vec<JoinHandle<()>>,
}

impl RemoteCoordinator {
    /// Connects to the service at `addr` and opens a session.
    pub async fn connect(addr: impl ToSocketAddrs, session_timeout: Duration) -> Result<Self> {
        let loss = |e: std::io::Error| CoordError::ConnectionLoss(e.to_string());
        let stream = TcpStream::connect(addr).await.map_err(loss)?;
        let _ = stream.set_nodelay(true);
        let (mut reader, mut writer) = stream.into_split();
        let hello = ClientFrame::Hello {
            session_timeout_ms: session_timeout.as_millis() as u64,
        };
        write_frame(&mut writer, &hello).await.map_err(loss)?;
        let session =
            match tokio::time::timeout(session_timeout.max(Duration::from_secs(5)), read_frame(&mut reader)).await {
                Ok(Ok(Some(ServerFrame::Welcome { session }))) => session,
                Ok(Err(e)) => return Err(loss(e)),
                _ => {
                    return Err(CoordError::ConnectionLoss(
                        "no welcome from the coordination service".into(),
                    ))
                }
            };
        let (state_tx, state) = watch::channel(SessionState::Connected);
        let (out, mut outgoing) = mpsc::unbounded_channel::<ClientFrame>();
        let pending = Arc::new(Mutex::new(Pending::default()));

        let writer_task = tokio::spawn(async move {
            while let Some(frame) = outgoing.recv().await {
                if write_frame(&mut writer, &frame).await.is_err() {
                    return;
                }
            }
        });
        let reader_pending = pending.clone();
        let reader_task = tokio::spawn(async move {
            loop {
                match read_frame::<ServerFrame>(&mut reader).await {
                    Ok(Some(ServerFrame::Response { id, result })) => {
                        if let Some(tx) = reader_pending.lock().requests.remove(&id) {
                            let _ = tx.send(result);
                        }
                    }
                    Ok(Some(ServerFrame::WatchFired { watch, event })) => {
                        if let Some(tx) = reader_pending.lock().watches.remove(&watch) {
                            let _ = tx.send(event);
                        }
                    }
                    Ok(Some(ServerFrame::WatchDropped { watch })) => {
                        reader_pending.lock().watches.remove(&watch);
                    }
                    Ok(Some(ServerFrame::Pong | ServerFrame::Welcome { .. })) => {}
                    Ok(Some(ServerFrame::SessionEnded(ended))) => {
                        *reader_pending.lock() = Pending::default();
                        let _ = state_tx.send(ended);
                        return;
                    }
                    Ok(None) | Err(_) => {
                        *reader_pending.lock() = Pending::default();
                        let _ = state_tx.send(SessionState::Disconnected);
                        // Without heartbeats the server expires the session.
                        tokio::time::sleep(session_timeout).await;
                        let _ = state_tx.send(SessionState::Expired);
                        return;
                    }
                }
            }
        });
        let heartbeat_out = out.clone();
        let heartbeat_task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(session_timeout / 3);
            loop {
                tick.tick().await;
                if heartbeat_out.send(ClientFrame::Ping).is_err() {
                    return;
                }
            }
        });
        Ok(Self {
            session,
            state,
            out,
            pending,
            next_id: AtomicU64::new(1),
            tasks: vec![writer_task, reader_task, heartbeat_task],
        })
    }

    async fn request(&self, op: RemoteOp) -> Result<Reply> {
        match *self.state.borrow() {
            SessionState::Expired | SessionState::Closed => return Err(CoordError::SessionExpired),
            SessionState::Disconnected => return Err(CoordError::ConnectionLoss("disconnected".into())),
            SessionState::Connected => {}
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.pending.lock().requests.insert(id, tx);
        if self.out.send(ClientFrame::Request { id, op }).is_err() {
            self.pending.lock().requests.remove(&id);
            return Err(CoordError::ConnectionLoss("connection closed".into()));
        }
        match rx.await {
            Ok(result) => result,
            Err(_) => match *self.state.borrow() {
                SessionState::Expired | SessionState::Closed => Err(CoordError::SessionExpired),
                _ => Err(CoordError::ConnectionLoss("connection closed before the answer".into())),
            },
        }
    }

    /// Sends the request `op` builds around a new watch id; the watch is
    /// forgotten again if the request fails.
    async fn watched(&self, op: impl FnOnce(u64) -> RemoteOp) -> Result<(Reply, Watch)> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.pending.lock().watches.insert(id, tx);
        match self.request(op(id)).await {
            Ok(reply) => Ok((reply, Watch::from_channel(rx))),
            Err(e) => {
                self.pending.lock().watches.remove(&id);
                Err(e)
            }
        }
    }
}

impl Drop for RemoteCoordinator {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

fn unexpected(reply: Reply) -> CoordError {
    CoordError::Other(format!("unexpected reply {reply:?}"))
}

#[async_trait]
impl Coordinator for RemoteCoordinator {
    fn session_id(&self) -> i64 {
        self.session
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
        let _ = self.out.send(ClientFrame::Close);
        let mut state = self.state.clone();
        let ended = tokio::time::timeout(
            Duration::from_secs(5),
            state.wait_for(|s| *s != SessionState::Connected),
        )
        .await;
        match ended {
            Ok(_) => Ok(()),
            Err(_) => Err(CoordError::ConnectionLoss("no answer to close".into())),
        }
    }
}
