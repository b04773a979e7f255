//! Frames between a [`super::RemoteCoordinator`] and a [`super::CoordServer`]:
//! a 4-byte big-endian length, then a bincode body.

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::error::{CoordError, Result};
use crate::types::{CreateMode, Op, OpResult, SessionState, Stat, WatchEvent};

/// Largest frame either side accepts.
const MAX_FRAME: usize = 64 << 20;

/// Client → server.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum ClientFrame {
    Hello {
        session_timeout_ms: u64,
    },
    Request {
        id: u64,
        op: RemoteOp,
    },
    Ping,
    Close,
    /// Instead of `Hello` on a new connection: carry on with `session`
    /// (answered `Welcome` with the same session, or `SessionEnded` when
    /// the store no longer has it).
    Resume {
        session: i64,
    },
    /// First frame to a service with a shared secret: the client's nonce
    /// (see [`super::auth`]).
    AuthStart {
        nonce: Vec<u8>,
    },
    /// The client's proof of the secret, after the service's challenge.
    AuthProof {
        proof: Vec<u8>,
    },
}

/// An operation; `watch` carries the client's id for a watch to set.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum RemoteOp {
    Create {
        path: String,
        data: Vec<u8>,
        mode: CreateMode,
    },
    Get {
        path: String,
        watch: Option<u64>,
    },
    Set {
        path: String,
        data: Vec<u8>,
        version: Option<i32>,
    },
    Delete {
        path: String,
        version: Option<i32>,
    },
    Exists {
        path: String,
        watch: Option<u64>,
    },
    Children {
        path: String,
        watch: Option<u64>,
    },
    Multi(Vec<Op>),
}

/// Server → client.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum ServerFrame {
    Welcome {
        session: i64,
    },
    Response {
        id: u64,
        result: Result<Reply, CoordError>,
    },
    WatchFired {
        watch: u64,
        event: WatchEvent,
    },
    WatchDropped {
        watch: u64,
    },
    Pong,
    SessionEnded(SessionState),
    /// The service's nonce and its own proof of the shared secret.
    AuthChallenge {
        nonce: Vec<u8>,
        proof: Vec<u8>,
    },
    /// The connection is refused (why); the service closes it.
    Refused {
        reason: String,
    },
}

/// A successful answer.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Reply {
    Created(String),
    Data(Vec<u8>, Stat),
    Stat(Stat),
    MaybeStat(Option<Stat>),
    Children(Vec<String>),
    Done,
    Multi(Vec<OpResult>),
}

pub(crate) async fn write_frame<T: Serialize>(out: &mut (impl AsyncWrite + Unpin), frame: &T) -> std::io::Result<()> {
    // One buffer, one write: with TCP_NODELAY a separate length write
    // would go out as its own packet.
    let mut buf = vec![0u8; 4];
    bincode::serde::encode_into_std_write(frame, &mut buf, bincode::config::standard())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
    let len = (buf.len() - 4) as u32;
    buf[..4].copy_from_slice(&len.to_be_bytes());
    out.write_all(&buf).await?;
    out.flush().await
}

/// Reads one frame; `Ok(None)` at a clean end of stream.
pub(crate) async fn read_frame<T: for<'de> Deserialize<'de>>(
    input: &mut (impl AsyncRead + Unpin),
) -> std::io::Result<Option<T>> {
    read_frame_up_to(input, MAX_FRAME).await
}

/// Reads one frame of at most `max` bytes (a peer not yet authenticated
/// gets no 64 MiB buffer); `Ok(None)` at a clean end of stream.
pub(crate) async fn read_frame_up_to<T: for<'de> Deserialize<'de>>(
    input: &mut (impl AsyncRead + Unpin),
    max: usize,
) -> std::io::Result<Option<T>> {
    let mut len = [0u8; 4];
    match input.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > max.min(MAX_FRAME) {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("frame of {len} bytes"),
        ));
    }
    let mut body = vec![0u8; len];
    input.read_exact(&mut body).await?;
    decode_frame(&body).map(Some)
}

/// Decodes a frame body; no length inside it may claim more than a frame holds.
pub(crate) fn decode_frame<T: for<'de> Deserialize<'de>>(body: &[u8]) -> std::io::Result<T> {
    let config = bincode::config::standard().with_limit::<MAX_FRAME>();
    bincode::serde::decode_from_slice(body, config)
        .map(|(frame, _)| frame)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn frames_round_trip() {
        let frame = ClientFrame::Request {
            id: 7,
            op: RemoteOp::Get {
                path: "/a".into(),
                watch: Some(3),
            },
        };
        let mut buf = Vec::new();
        block_on(write_frame(&mut buf, &frame)).unwrap();
        match decode_frame::<ClientFrame>(&buf[4..]).unwrap() {
            ClientFrame::Request {
                id: 7,
                op: RemoteOp::Get { path, watch: Some(3) },
            } => assert_eq!(path, "/a"),
            other => panic!("{other:?}"),
        }
    }

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    proptest! {
        /// Whatever bytes arrive, decoding answers with a frame or an error.
        #[test]
        fn arbitrary_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode_frame::<ClientFrame>(&body);
            let _ = decode_frame::<ServerFrame>(&body);
        }
    }
}
