//! Round trips on the embedded backend: in-process and over TCP (loopback).
//!
//! `cargo bench -p gregor-coord --bench embedded` (results: docs/PERFORMANCE.md).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use gregor_coord::{CoordServer, Coordinator, CreateMode, EmbeddedCoordinator, EmbeddedStore, RemoteCoordinator};

fn round_trips(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (in_memory, durable, remote, server) = runtime.block_on(async {
        let durable_store = EmbeddedStore::open(dir.path()).unwrap();
        let memory_store = EmbeddedStore::in_memory();
        let server = CoordServer::bind("127.0.0.1:0", memory_store.clone()).await.unwrap();
        let remote = RemoteCoordinator::connect(server.local_addr(), Duration::from_secs(30))
            .await
            .unwrap();
        let in_memory = EmbeddedCoordinator::connect(&memory_store, Duration::from_secs(30));
        let durable = EmbeddedCoordinator::connect(&durable_store, Duration::from_secs(30));
        (in_memory, durable, remote, server)
    });
    let sessions: [(&str, &dyn Coordinator); 3] = [
        ("in-process", &in_memory),
        ("in-process-fsync", &durable),
        ("tcp", &remote),
    ];
    let counter = AtomicU64::new(0);
    let mut group = c.benchmark_group("coord");
    for (name, coord) in sessions {
        let root = format!("/{name}");
        runtime
            .block_on(coord.create(&root, b"", CreateMode::Persistent))
            .unwrap();
        let node = format!("{root}/node");
        runtime
            .block_on(coord.create(&node, b"{}", CreateMode::Persistent))
            .unwrap();
        group.bench_function(format!("{name}/create"), |b| {
            b.iter(|| {
                let n = counter.fetch_add(1, Ordering::Relaxed);
                runtime
                    .block_on(coord.create(&format!("{root}/c{n}"), b"{\"broker\":1}", CreateMode::Persistent))
                    .unwrap()
            })
        });
        group.bench_function(format!("{name}/get"), |b| {
            b.iter(|| runtime.block_on(coord.get(&node)).unwrap())
        });
        group.bench_function(format!("{name}/set"), |b| {
            b.iter(|| runtime.block_on(coord.set(&node, b"{\"leader\":1}", None)).unwrap())
        });
    }
    group.finish();
    runtime.block_on(server.shutdown());
}

criterion_group!(benches, round_trips);
criterion_main!(benches);
