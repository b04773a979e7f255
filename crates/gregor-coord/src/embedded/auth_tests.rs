//! A service with a shared secret against raw connections that speak the
//! wire protocol without proving the secret: each is refused before its
//! frames reach the store, and a live session stays untouched.

use std::time::Duration;

use tokio::net::TcpStream;

use super::wire::{read_frame, write_frame, ClientFrame, RemoteOp, ServerFrame};
use super::{CoordSecret, CoordServer, EmbeddedStore, RemoteCoordinator};
use crate::coordinator::Coordinator;
use crate::types::{CreateMode, SessionState};

const TIMEOUT: Duration = Duration::from_secs(10);

fn secret() -> CoordSecret {
    CoordSecret::new("a secret of the cluster, 32 bytes").unwrap()
}

/// Sends `frames` on a new connection and returns what the service answers
/// first.
async fn raw(addr: std::net::SocketAddr, frames: &[ClientFrame]) -> Option<ServerFrame> {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    for frame in frames {
        if write_frame(&mut writer, frame).await.is_err() {
            break;
        }
    }
    tokio::time::timeout(Duration::from_secs(5), read_frame::<ServerFrame>(&mut reader))
        .await
        .expect("an answer")
        .ok()
        .flatten()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unauthenticated_frames_are_refused_and_touch_nothing() {
    let store = EmbeddedStore::in_memory();
    let server = CoordServer::bind_with_secret("127.0.0.1:0", store.clone(), Some(secret()))
        .await
        .unwrap();
    let addr = server.local_addr();
    let broker = RemoteCoordinator::connect_with_secret(addr, TIMEOUT, Some(secret()))
        .await
        .unwrap();
    broker.create("/brokers", b"", CreateMode::Persistent).await.unwrap();
    let mut state = broker.session_state();
    state.borrow_and_update();

    let write = ClientFrame::Request {
        id: 1,
        op: RemoteOp::Create {
            path: "/owned".into(),
            data: vec![],
            mode: CreateMode::Persistent,
        },
    };
    let attempts = [
        // A new session without the handshake.
        vec![
            ClientFrame::Hello {
                session_timeout_ms: 30_000,
            },
            write,
        ],
        // Taking over the broker's session without the handshake.
        vec![ClientFrame::Resume {
            session: broker.session_id(),
        }],
        // A request straight away.
        vec![ClientFrame::Request {
            id: 2,
            op: RemoteOp::Delete {
                path: "/brokers".into(),
                version: None,
            },
        }],
        // A made-up proof.
        vec![
            ClientFrame::AuthStart { nonce: vec![7; 32] },
            ClientFrame::AuthProof { proof: vec![0; 32] },
            ClientFrame::Resume {
                session: broker.session_id(),
            },
        ],
    ];
    for frames in attempts {
        match raw(addr, &frames).await {
            Some(ServerFrame::Refused { reason }) => assert!(!reason.is_empty()),
            // The made-up proof gets the challenge first, then the refusal.
            Some(ServerFrame::AuthChallenge { .. }) => {}
            other => panic!("{frames:?} answered {other:?}"),
        }
    }
    // The made-up proof's connection: challenge, then refusal.
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    for frame in [
        ClientFrame::AuthStart { nonce: vec![7; 32] },
        ClientFrame::AuthProof { proof: vec![0; 32] },
    ] {
        write_frame(&mut writer, &frame).await.unwrap();
    }
    assert!(matches!(
        read_frame::<ServerFrame>(&mut reader).await,
        Ok(Some(ServerFrame::AuthChallenge { .. }))
    ));
    match read_frame::<ServerFrame>(&mut reader).await {
        Ok(Some(ServerFrame::Refused { reason })) => assert_eq!(reason, "wrong shared secret"),
        other => panic!("{other:?}"),
    }

    // Nothing reached the store: no node, the broker's session never taken
    // over (its connection was not superseded), no session opened.
    assert_eq!(broker.exists("/owned").await.unwrap(), None);
    assert!(broker.exists("/brokers").await.unwrap().is_some());
    assert!(
        !state.has_changed().unwrap(),
        "the broker's link moved: {:?}",
        *state.borrow()
    );
    assert_eq!(*state.borrow(), SessionState::Connected);
    let next = RemoteCoordinator::connect_with_secret(addr, TIMEOUT, Some(secret()))
        .await
        .unwrap();
    assert_eq!(
        next.session_id(),
        broker.session_id() + 1,
        "a refused connection opened a session"
    );
    server.shutdown().await;
}
