//! Fetch from followers (KIP-392) in the replica manager over real logs:
//! the leader's preferred read replica for a consumer in another rack,
//! and a follower serving consumers to its own high watermark, with the
//! leader epoch checks Kafka makes.

use std::collections::BTreeMap;
use std::sync::Arc;

use gregor_broker::{BrokerEndpoint, ReplicaManager};
use gregor_log::batch::RecordBatchBuilder;
use gregor_log::{LogConfig, LogManager, LogManagerConfig, SystemClock, TopicPartition};
use gregor_replication::{
    FollowerRequest, LeaderAndIsr, PartitionRecord, ReplicaSelector, ReplicaSettings, ReplicationError,
};

fn logs(dir: &std::path::Path) -> Arc<LogManager> {
    let mut config = LogManagerConfig::new(vec![dir.to_path_buf()]);
    config.replicated = true;
    Arc::new(LogManager::open(config).unwrap())
}

fn record(leader: i32, epoch: i32, isr: Vec<i32>, version: i32) -> PartitionRecord {
    PartitionRecord {
        replicas: vec![1, 2],
        state: LeaderAndIsr {
            leader,
            leader_epoch: epoch,
            isr,
            controller_epoch: 1,
        },
        version,
    }
}

fn batch(n: usize) -> Vec<u8> {
    let mut b = RecordBatchBuilder::new(1_700_000_000_000);
    for _ in 0..n {
        b.append(None, Some(b"v"), &[], 1_700_000_000_000);
    }
    b.build()
}

/// Broker 1 in rack r0, broker 2 in rack r1.
fn racks(manager: &ReplicaManager) {
    let endpoint = |rack: &str| BrokerEndpoint {
        host: "127.0.0.1".into(),
        port: 9092,
        rack: Some(rack.into()),
        listeners: BTreeMap::new(),
    };
    manager.update_view(1, BTreeMap::from([(1, endpoint("r0")), (2, endpoint("r1"))]), []);
}

/// One follower round: ask what to do, carry it to the leader.
fn follow_once(leader: &ReplicaManager, follower: &ReplicaManager, tp: &TopicPartition, epoch: i32) {
    match follower.next_follower_request(tp, epoch).expect("follows") {
        FollowerRequest::EpochEndOffset { epoch: asked } => {
            let (log, _) = leader.leader_log(tp, Some(epoch)).unwrap();
            let (e, end) = log.end_offset_for_epoch(asked).unwrap();
            let end = gregor_replication::EpochEnd {
                epoch: Some(e),
                end_offset: Some(end),
            };
            follower.on_epoch_end(tp, epoch, asked, Ok(end)).unwrap();
        }
        FollowerRequest::Fetch { offset } => {
            let (log, hw) = leader
                .on_follower_fetch(tp, follower.local(), offset as i64, 0, Some(epoch))
                .unwrap();
            for update in leader.take_isr_updates() {
                let version = update.expected_version + 1;
                leader.isr_update_done(update, Some(version));
            }
            let bytes = log.read_bytes(offset, 1 << 20).unwrap();
            follower.on_fetched(tp, epoch, offset, &bytes, hw).unwrap();
        }
    }
}

#[test]
fn a_consumer_in_the_followers_rack_is_sent_there_and_served_to_its_high_watermark() {
    let dir = tempfile::tempdir().unwrap();
    let tp = TopicPartition::new("t", 0);
    let (b1, b2) = (
        ReplicaManager::new(1, ReplicaSettings::default(), Arc::new(SystemClock)),
        ReplicaManager::new(2, ReplicaSettings::default(), Arc::new(SystemClock)),
    );
    racks(&b1);
    racks(&b2);
    let log1 = logs(&dir.path().join("b1"))
        .get_or_create(&tp, Some(LogConfig::default()))
        .unwrap();
    let log2 = logs(&dir.path().join("b2"))
        .get_or_create(&tp, Some(LogConfig::default()))
        .unwrap();
    b1.become_leader_or_follower(&tp, &record(1, 0, vec![1, 2], 0), log1.clone(), None)
        .unwrap();
    b2.become_leader_or_follower(&tp, &record(1, 0, vec![1, 2], 0), log2.clone(), None)
        .unwrap();
    b1.append_as_leader(&tp, &batch(3), false).unwrap();
    for _ in 0..3 {
        follow_once(&b1, &b2, &tp, 0);
    }
    assert_eq!((log1.high_watermark(), log2.high_watermark()), (3, 3));

    // No selector (Kafka's default): consumers stay with the leader.
    assert_eq!(b1.preferred_read_replica(&tp, "r1", 0, "PLAINTEXT"), None);
    b1.set_replica_selector(Some(ReplicaSelector::RackAware));
    assert_eq!(b1.preferred_read_replica(&tp, "r1", 0, "PLAINTEXT"), Some(2));
    assert_eq!(b1.preferred_read_replica(&tp, "r1", 3, "PLAINTEXT"), Some(2));
    // The leader's own rack, no rack, an offset the follower lacks, and a
    // follower that is not the leader: no preferred replica.
    assert_eq!(b1.preferred_read_replica(&tp, "r0", 0, "PLAINTEXT"), None);
    assert_eq!(b1.preferred_read_replica(&tp, "", 0, "PLAINTEXT"), None);
    assert_eq!(b1.preferred_read_replica(&tp, "r1", 4, "PLAINTEXT"), None);
    b2.set_replica_selector(Some(ReplicaSelector::RackAware));
    assert_eq!(b2.preferred_read_replica(&tp, "r1", 0, "PLAINTEXT"), None);

    // The follower serves consumers that may read from followers, to its
    // high watermark: records it has but the leader has not committed to
    // it yet stay unseen.
    assert_eq!(
        b2.consumer_log(&tp, Some(0), false).err(),
        Some(ReplicationError::NotLeaderOrFollower)
    );
    assert_eq!(b2.consumer_log(&tp, Some(0), true).unwrap().1, 3);
    b1.append_as_leader(&tp, &batch(2), false).unwrap();
    follow_once(&b1, &b2, &tp, 0);
    assert_eq!(log2.end_offset(), 5);
    assert_eq!(b2.consumer_log(&tp, None, true).unwrap().1, 3);
    follow_once(&b1, &b2, &tp, 0);
    assert_eq!(b2.consumer_log(&tp, None, true).unwrap().1, 5);
    // The client's leader epoch is checked against the follower's.
    assert_eq!(
        b2.consumer_log(&tp, Some(1), true).err(),
        Some(ReplicationError::UnknownLeaderEpoch)
    );

    // The follower leaves the ISR: no longer preferred.
    b1.become_leader_or_follower(&tp, &record(1, 0, vec![1], 1), log1.clone(), None)
        .unwrap();
    assert_eq!(b1.preferred_read_replica(&tp, "r1", 0, "PLAINTEXT"), None);

    // A new leader epoch fences a consumer still on the old one.
    b2.become_leader_or_follower(&tp, &record(1, 1, vec![1], 2), log2.clone(), None)
        .unwrap();
    assert_eq!(
        b2.consumer_log(&tp, Some(0), true).err(),
        Some(ReplicationError::FencedLeaderEpoch)
    );
    assert!(b2.consumer_log(&tp, Some(1), true).is_ok());
}
