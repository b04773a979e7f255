//! The connection under a [`super::RemoteCoordinator`], kept as
//! ZooKeeper's client keeps its own: pings every third of the session
//! timeout, so that a healthy link is heard from; a connection not heard
//! from for two thirds of the timeout is dropped (a stalled TCP connection
//! otherwise looks alive for minutes), and a new one resumes the session —
//! the service answers whether it still exists. The session is over when
//! the service says so, or when a whole timeout passed without hearing
//! from it (the service has expired it by then).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;
use tracing::{info, warn};

use super::auth::{self, CoordSecret};
use super::wire::{read_frame, write_frame, ClientFrame, Reply, ServerFrame};
use crate::error::{CoordError, Result};
use crate::types::{SessionState, WatchEvent};

/// Longest wait for a TCP connection (a link that drops packets would
/// otherwise hold a connect for minutes).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Pause between reconnection attempts.
const RECONNECT_PAUSE: Duration = Duration::from_millis(200);

/// When a link counts as silent and a session as gone, from when the
/// service was last heard from. Pure: the times are given.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Liveness {
    session_timeout: Duration,
    last_heard: Instant,
}

/// What [`Liveness`] makes of a moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Heard from recently enough.
    Alive,
    /// Silent for two thirds of the session timeout: drop the connection
    /// and resume the session on a new one.
    Silent,
    /// Silent for the whole timeout: the service has expired the session.
    Expired,
}

impl Liveness {
    /// Heard from at `now`.
    pub(crate) fn new(session_timeout: Duration, now: Instant) -> Self {
        Self {
            session_timeout,
            last_heard: now,
        }
    }

    /// The service answered (any frame) at `now`.
    pub(crate) fn heard(&mut self, now: Instant) {
        self.last_heard = self.last_heard.max(now);
    }

    /// How often to ping: a third of the timeout, so that two pings fit in
    /// the silence allowed.
    pub(crate) fn ping_interval(&self) -> Duration {
        (self.session_timeout / 3).max(Duration::from_millis(1))
    }

    /// When the connection counts as silent.
    pub(crate) fn silent_at(&self) -> Instant {
        self.last_heard + self.session_timeout * 2 / 3
    }

    /// When the session counts as expired.
    pub(crate) fn expired_at(&self) -> Instant {
        self.last_heard + self.session_timeout
    }

    /// What `now` means for the link and the session.
    pub(crate) fn verdict(&self, now: Instant) -> Verdict {
        if now >= self.expired_at() {
            Verdict::Expired
        } else if now >= self.silent_at() {
            Verdict::Silent
        } else {
            Verdict::Alive
        }
    }
}

/// Requests awaiting their answers and watches awaiting their events.
#[derive(Default)]
pub(crate) struct Pending {
    pub(crate) requests: HashMap<u64, oneshot::Sender<Result<Reply>>>,
    pub(crate) watches: HashMap<u64, oneshot::Sender<Result<WatchEvent>>>,
}

/// What the coordinator and its connection share.
pub(crate) struct Shared {
    pub(crate) session: i64,
    pub(crate) session_timeout: Duration,
    pub(crate) addrs: Vec<SocketAddr>,
    /// The shared secret every connection proves, if the service has one.
    pub(crate) secret: Option<CoordSecret>,
    pub(crate) state: watch::Sender<SessionState>,
    pub(crate) pending: Mutex<Pending>,
    /// The connection's outgoing frames; `None` while disconnected.
    pub(crate) out: Mutex<Option<mpsc::UnboundedSender<ClientFrame>>>,
}

/// How a handshake ended.
pub(crate) enum Handshake {
    /// Welcomed into `session`.
    Welcome(i64, OwnedReadHalf, OwnedWriteHalf),
    /// The service says the session is over.
    Ended(SessionState),
}

/// Connects to the first of `addrs` that answers, proves `secret` (and has
/// the service prove it) when there is one, and sends `hello`; waits for
/// the service's frames until `deadline`.
pub(crate) async fn handshake(
    addrs: &[SocketAddr],
    secret: Option<&CoordSecret>,
    hello: &ClientFrame,
    deadline: Instant,
) -> Result<Handshake> {
    let loss = |e: std::io::Error| CoordError::ConnectionLoss(e.to_string());
    let mut last = CoordError::ConnectionLoss("no address to connect to".into());
    for addr in addrs {
        let connect_by = deadline.min(Instant::now() + CONNECT_TIMEOUT);
        let stream = match tokio::time::timeout_at(connect_by, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => {
                last = loss(e);
                continue;
            }
            Err(_) => {
                last = CoordError::ConnectionLoss(format!("connecting to {addr} timed out"));
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let (mut reader, mut writer) = stream.into_split();
        let opened = async {
            if let Some(secret) = secret {
                authenticate(&mut reader, &mut writer, secret).await?;
            }
            write_frame(&mut writer, hello).await.map_err(loss)?;
            match read_frame::<ServerFrame>(&mut reader).await {
                Ok(Some(ServerFrame::Welcome { session })) => Ok(Handshake::Welcome(session, reader, writer)),
                Ok(Some(ServerFrame::SessionEnded(state))) => Ok(Handshake::Ended(state)),
                other => Err(unexpected(other)),
            }
        };
        return match tokio::time::timeout_at(deadline, opened).await {
            Ok(result) => result,
            Err(_) => Err(CoordError::ConnectionLoss(
                "no welcome from the coordination service".into(),
            )),
        };
    }
    Err(last)
}

/// The client's side of [`super::auth`]'s challenge–response: fails when
/// the service refuses the proof or cannot prove the secret itself.
async fn authenticate(reader: &mut OwnedReadHalf, writer: &mut OwnedWriteHalf, secret: &CoordSecret) -> Result<()> {
    let loss = |e: std::io::Error| CoordError::ConnectionLoss(e.to_string());
    let client_nonce = auth::nonce();
    write_frame(
        writer,
        &ClientFrame::AuthStart {
            nonce: client_nonce.clone(),
        },
    )
    .await
    .map_err(loss)?;
    let server_nonce = match read_frame::<ServerFrame>(reader).await {
        Ok(Some(ServerFrame::AuthChallenge { nonce, proof })) => {
            if !secret.verify_server(&client_nonce, &nonce, &proof) {
                return Err(CoordError::AuthFailed(
                    "the coordination service did not prove the shared secret (a different secret, or not the service)"
                        .into(),
                ));
            }
            nonce
        }
        other => return Err(unexpected(other)),
    };
    let proof = secret.client_proof(&client_nonce, &server_nonce);
    write_frame(writer, &ClientFrame::AuthProof { proof })
        .await
        .map_err(loss)
}

/// The error for a frame other than the one the handshake expects: the
/// service's refusal, or a lost connection.
fn unexpected(frame: std::io::Result<Option<ServerFrame>>) -> CoordError {
    match frame {
        Ok(Some(ServerFrame::Refused { reason })) => {
            CoordError::AuthFailed(format!("the coordination service refused the connection: {reason}"))
        }
        Ok(Some(other)) => CoordError::ConnectionLoss(format!("unexpected handshake frame {other:?}")),
        Ok(None) => CoordError::ConnectionLoss("the coordination service closed the connection".into()),
        Err(e) => CoordError::ConnectionLoss(e.to_string()),
    }
}

/// A connection: its two halves and the frames queued for it.
pub(crate) type Link = (OwnedReadHalf, OwnedWriteHalf, mpsc::UnboundedReceiver<ClientFrame>);

/// Makes a new connection's queue the one calls send to.
pub(crate) fn install(shared: &Shared) -> mpsc::UnboundedReceiver<ClientFrame> {
    let (out, outgoing) = mpsc::unbounded_channel();
    *shared.out.lock() = Some(out);
    outgoing
}

/// Runs the session's connections until the session ends: serves `first`,
/// and after each lost connection resumes the session on a new one.
pub(crate) async fn run(shared: Arc<Shared>, first: Link) {
    let mut link = first;
    loop {
        let mut liveness = Liveness::new(shared.session_timeout, Instant::now());
        match serve(&shared, link, &mut liveness).await {
            Some(ended) => return finish(&shared, ended),
            None => {
                // Answers in flight are lost with the connection; callers
                // see ConnectionLoss (the call may or may not have happened).
                shared.state.send_replace(SessionState::Disconnected);
                shared.pending.lock().requests.clear();
                warn!(
                    session = shared.session,
                    "lost the coordination service: resuming the session"
                );
            }
        }
        link = match resume(&shared, &liveness).await {
            Ok((reader, writer)) => (reader, writer, install(&shared)),
            Err(ended) => return finish(&shared, ended),
        };
        // Watches set before may have missed their event while no
        // connection carried it: they resolve now, and their owners read
        // (and watch) again.
        let stale: Vec<_> = shared.pending.lock().watches.drain().collect();
        shared.state.send_replace(SessionState::Connected);
        info!(session = shared.session, "coordination session resumed");
        for (_, watch) in stale {
            let _ = watch.send(Err(CoordError::ConnectionLoss(
                "the connection was lost: read again".into(),
            )));
        }
    }
}

/// The session ended (`state`): every caller and watch learns it.
fn finish(shared: &Shared, state: SessionState) {
    *shared.out.lock() = None;
    shared.state.send_replace(state);
    *shared.pending.lock() = Pending::default();
    if state == SessionState::Expired {
        warn!(session = shared.session, "the coordination session expired");
    }
}

/// Serves one connection until it is lost (`None`) or the service ends the
/// session.
async fn serve(
    shared: &Arc<Shared>,
    (mut reader, mut writer, mut outgoing): Link,
    liveness: &mut Liveness,
) -> Option<SessionState> {
    let ping_every = liveness.ping_interval();
    let writer_task = tokio::spawn(async move {
        let mut ping = tokio::time::interval(ping_every);
        loop {
            let frame = tokio::select! {
                frame = outgoing.recv() => match frame {
                    Some(frame) => frame,
                    None => return,
                },
                _ = ping.tick() => ClientFrame::Ping,
            };
            if write_frame(&mut writer, &frame).await.is_err() {
                return;
            }
        }
    });
    let ended = loop {
        let frame = match tokio::time::timeout_at(liveness.silent_at(), read_frame::<ServerFrame>(&mut reader)).await {
            Ok(Ok(Some(frame))) => frame,
            Ok(Ok(None)) | Ok(Err(_)) => break None,
            Err(_) => {
                warn!(
                    session = shared.session,
                    "nothing heard from the coordination service for {:?}: dropping the connection",
                    shared.session_timeout * 2 / 3
                );
                break None;
            }
        };
        liveness.heard(Instant::now());
        match frame {
            ServerFrame::Response { id, result } => {
                if let Some(tx) = shared.pending.lock().requests.remove(&id) {
                    let _ = tx.send(result);
                }
            }
            ServerFrame::WatchFired { watch, event } => {
                if let Some(tx) = shared.pending.lock().watches.remove(&watch) {
                    let _ = tx.send(Ok(event));
                }
            }
            ServerFrame::WatchDropped { watch } => {
                shared.pending.lock().watches.remove(&watch);
            }
            ServerFrame::Pong
            | ServerFrame::Welcome { .. }
            | ServerFrame::AuthChallenge { .. }
            | ServerFrame::Refused { .. } => {}
            ServerFrame::SessionEnded(ended) => break Some(ended),
        }
    };
    *shared.out.lock() = None;
    writer_task.abort();
    ended
}

/// Opens new connections until one resumes the session (or the service
/// says it is over, or the session timeout passed without hearing from it).
async fn resume(
    shared: &Shared,
    liveness: &Liveness,
) -> std::result::Result<(OwnedReadHalf, OwnedWriteHalf), SessionState> {
    let hello = ClientFrame::Resume {
        session: shared.session,
    };
    loop {
        if liveness.verdict(Instant::now()) == Verdict::Expired {
            return Err(SessionState::Expired);
        }
        match handshake(&shared.addrs, shared.secret.as_ref(), &hello, liveness.expired_at()).await {
            Ok(Handshake::Welcome(session, reader, writer)) if session == shared.session => {
                return Ok((reader, writer))
            }
            Ok(Handshake::Welcome(..)) => return Err(SessionState::Expired),
            Ok(Handshake::Ended(state)) => return Err(state),
            Err(e @ CoordError::AuthFailed(_)) => {
                warn!(session = shared.session, "resuming the coordination session: {e}")
            }
            Err(e) => tracing::debug!(session = shared.session, "resuming the coordination session: {e}"),
        }
        let pause = RECONNECT_PAUSE.min(liveness.expired_at().saturating_duration_since(Instant::now()));
        tokio::time::sleep(pause).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMEOUT: Duration = Duration::from_millis(3000);

    #[test]
    fn a_link_heard_from_recently_is_alive() {
        let start = Instant::now();
        let liveness = Liveness::new(TIMEOUT, start);
        assert_eq!(liveness.verdict(start), Verdict::Alive);
        assert_eq!(liveness.verdict(start + Duration::from_millis(1999)), Verdict::Alive);
        assert_eq!(liveness.ping_interval(), Duration::from_millis(1000));
    }

    #[test]
    fn two_thirds_of_the_timeout_in_silence_drops_the_link_a_whole_timeout_ends_the_session() {
        let start = Instant::now();
        let liveness = Liveness::new(TIMEOUT, start);
        assert_eq!(liveness.verdict(start + Duration::from_millis(2000)), Verdict::Silent);
        assert_eq!(liveness.verdict(start + Duration::from_millis(2999)), Verdict::Silent);
        assert_eq!(liveness.verdict(start + TIMEOUT), Verdict::Expired);
    }

    #[test]
    fn hearing_from_the_service_moves_both_deadlines_and_never_back() {
        let start = Instant::now();
        let mut liveness = Liveness::new(TIMEOUT, start);
        liveness.heard(start + Duration::from_millis(1500));
        assert_eq!(liveness.verdict(start + Duration::from_millis(3000)), Verdict::Alive);
        assert_eq!(liveness.silent_at(), start + Duration::from_millis(3500));
        // An answer processed late (an earlier time) does not move them back.
        liveness.heard(start + Duration::from_millis(100));
        assert_eq!(liveness.expired_at(), start + Duration::from_millis(4500));
    }
}
