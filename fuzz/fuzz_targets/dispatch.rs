//! Requests of every API, through the dispatch table, to a running
//! in-process broker (embedded coordination, its own temporary log dir):
//! the handlers — not only the decoder — must answer any body a client can
//! send with a response or a closed connection, never a panic, and their
//! responses must encode.
//!
//! The input is structure-aware: its first byte picks the API (of those
//! the broker serves, controller APIs included), the second the version
//! (within the served range), and the rest is the body after a valid
//! request header, so inputs are not spent on headers the decoder refuses.
#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::RequestHeader;
use kafka_protocol::protocol::{Encodable, StrBytes};
use libfuzzer_sys::fuzz_target;

#[global_allocator]
static ALLOCATOR: gregor_routing::HugeAllocationGuard = gregor_routing::HugeAllocationGuard;

/// The broker every input is sent to, started once per fuzzing process.
struct Harness {
    runtime: tokio::runtime::Runtime,
    server: gregor_server::Server,
    _data: tempfile::TempDir,
}

fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| {
        let data = tempfile::tempdir().expect("temp dir");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let mut config = gregor_server::ServerConfig::default();
        config.listeners = "PLAINTEXT://127.0.0.1:0".into();
        config.log_dirs = data.path().display().to_string();
        config.offsets_topic_replication_factor = 1;
        config.offsets_topic_num_partitions = 2;
        config.controlled_shutdown_enable = false;
        let server = runtime.block_on(gregor_server::Server::start(config)).expect("broker starts");
        Harness {
            runtime,
            server,
            _data: data,
        }
    })
}

/// Every API the broker decodes: (key, lowest, highest version).
fn apis() -> &'static [(i16, i16, i16)] {
    static APIS: OnceLock<Vec<(i16, i16, i16)>> = OnceLock::new();
    APIS.get_or_init(|| {
        let served = gregor_routing::SUPPORTED.iter().map(|(k, lo, hi)| (*k as i16, *lo, *hi));
        served.chain(gregor_routing::CONTROLLER_APIS).collect()
    })
}

/// The request header version of `key` at `version`.
fn header_version(key: i16, version: i16) -> i16 {
    match kafka_protocol::messages::ApiKey::try_from(key) {
        Ok(api) => api.request_header_version(version),
        // The controller APIs: LeaderAndIsr v4, StopReplica v3 and
        // UpdateMetadata v6 are flexible; ControlledShutdown from v3.
        Err(_) if key == 7 && version < 3 => 1,
        Err(_) => 2,
    }
}

fuzz_target!(|data: &[u8]| {
    let [api, version, body @ ..] = data else { return };
    let (key, lowest, highest) = apis()[*api as usize % apis().len()];
    let version = lowest + (*version as i16) % (highest - lowest + 1);
    let mut header = RequestHeader::default();
    header.request_api_key = key;
    header.request_api_version = version;
    header.correlation_id = 1;
    header.client_id = Some(StrBytes::from_static_str("fuzz"));
    let mut frame = BytesMut::new();
    header
        .encode(&mut frame, header_version(key, version))
        .expect("a header encodes");
    frame.extend_from_slice(body);
    let Ok(frame) = gregor_routing::decode_frame(Bytes::from(frame)) else { return };
    let harness = harness();
    let broker = harness.server.broker().clone();
    // Handlers block (appends, coordination): run them on the blocking pool
    // as the handler threads would, and wait a little for delayed ones.
    let outcome = harness.runtime.block_on(async move {
        let outcome = tokio::task::spawn_blocking(move || gregor_routing::dispatch(&broker, frame))
            .await
            .expect("a handler panicked");
        match outcome {
            gregor_routing::Outcome::Delayed(operation) => {
                tokio::time::timeout(Duration::from_millis(200), operation).await.ok()
            }
            ready => Some(ready),
        }
    });
    if let Some(gregor_routing::Outcome::Respond { encode, .. }) = outcome {
        // An encoding error closes the connection; a panic is a bug.
        let _ = encode(&mut BytesMut::new());
    }
});
