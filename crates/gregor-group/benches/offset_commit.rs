//! OffsetCommit throughput through the coordinator into an in-memory store
//! (the coordinator's own cost: checks, record encoding, the offsets map).
//!
//! `cargo bench -p gregor-group --bench offset_commit` (results: docs/PERFORMANCE.md).

use std::sync::Arc;

use gregor_log::SystemClock;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use gregor_group::{
    CommittedOffset, GroupConfig, GroupCoordinator, LoadedRecord, OffsetStore, StoreError, StoredRecord, TxnProducer,
};
use parking_lot::Mutex;

#[derive(Default)]
struct MemoryStore(Mutex<usize>);

impl OffsetStore for MemoryStore {
    fn append(&self, _group: &str, records: &[StoredRecord], _: Option<TxnProducer>) -> Result<u64, StoreError> {
        let mut stored = self.0.lock();
        let first = *stored as u64;
        *stored += records.len();
        Ok(first)
    }
    fn load(&self) -> Result<Vec<Vec<LoadedRecord>>, String> {
        Ok(Vec::new())
    }
}

fn offset_commit(c: &mut Criterion) {
    let coordinator = GroupCoordinator::new(
        GroupConfig::default(),
        Arc::new(MemoryStore::default()),
        Arc::new(SystemClock),
    )
    .unwrap();
    let offsets: Vec<(String, i32, CommittedOffset)> = (0..100)
        .map(|p| {
            let value = CommittedOffset {
                offset: 1_000_000 + i64::from(p),
                leader_epoch: 0,
                metadata: String::new(),
                commit_timestamp: 1_700_000_000_000,
            };
            ("orders".to_string(), p, value)
        })
        .collect();
    let mut group = c.benchmark_group("offset_commit");
    group.throughput(Throughput::Elements(offsets.len() as u64));
    group.bench_function("100-partitions", |b| {
        b.iter(|| coordinator.commit("bench", -1, "", None, &offsets).unwrap())
    });
    group.finish();
}

criterion_group!(benches, offset_commit);
criterion_main!(benches);
