//! The leader's hot path: a follower fetch updating progress and the high
//! watermark, and the purgatory completing acks=all produces.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use gregor_replication::{
    AckPurgatory, LeaderAndIsr, LeaderPartition, LocalPosition, PartitionRecord, ReplicaSettings,
};

fn follower_fetches(c: &mut Criterion) {
    let state = LeaderAndIsr {
        leader: 1,
        leader_epoch: 0,
        isr: vec![1, 2, 3],
        controller_epoch: 1,
    };
    let mut group = c.benchmark_group("leader");
    group.throughput(Throughput::Elements(1));
    group.bench_function("append_fetch_fetch_ack", |b| {
        let record = PartitionRecord {
            replicas: vec![1, 2, 3],
            state: state.clone(),
            version: 0,
        };
        let empty = LocalPosition {
            log_end: 0,
            high_watermark: 0,
        };
        let mut leader = LeaderPartition::new(1, &record, empty, ReplicaSettings::default(), 0);
        let mut purgatory: AckPurgatory<u32, u64> = AckPurgatory::new();
        let mut end = 0u64;
        b.iter(|| {
            end += 10;
            leader.on_append(end);
            assert!(purgatory.watch(end, u64::MAX, [(0, end)], []).is_none());
            leader.on_follower_fetch(2, end, end).unwrap();
            leader.on_follower_fetch(3, end, end).unwrap();
            let done = purgatory.check(&0, |required| leader.ack_status(required));
            assert_eq!(done.len(), 1);
        })
    });
    group.finish();
}

criterion_group!(benches, follower_fetches);
criterion_main!(benches);
