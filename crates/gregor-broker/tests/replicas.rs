//! The replica manager over real logs, without the network: a leader and a
//! follower on two log directories, the follower's fetches carried by
//! hand. acks=all answers only once the follower has the records; a
//! leader change makes the old leader truncate what it alone had.

use std::sync::Arc;

use gregor_broker::ReplicaManager;
use gregor_log::batch::RecordBatchBuilder;
use gregor_log::{Log, LogConfig, LogManager, LogManagerConfig, SystemClock, TopicPartition};
use gregor_replication::{FollowerRequest, LeaderAndIsr, PartitionRecord, ReplicaSettings, ReplicationError};

/// Records the queued ISR changes as coordination would, always accepting
/// them (the ISR writer's job in a server).
fn accept_isr_updates(leader: &ReplicaManager) {
    for update in leader.take_isr_updates() {
        let version = update.expected_version + 1;
        leader.isr_update_done(update, Some(version));
    }
}

fn manager(id: i32, settings: ReplicaSettings) -> ReplicaManager {
    ReplicaManager::new(id, settings, Arc::new(SystemClock))
}

fn logs(dir: &std::path::Path) -> Arc<LogManager> {
    let mut config = LogManagerConfig::new(vec![dir.to_path_buf()]);
    config.replicated = true;
    Arc::new(LogManager::open(config).unwrap())
}

fn record(leader: i32, epoch: i32) -> PartitionRecord {
    PartitionRecord {
        replicas: vec![1, 2],
        state: LeaderAndIsr {
            leader,
            leader_epoch: epoch,
            isr: vec![1, 2],
            controller_epoch: 1,
        },
        version: epoch,
    }
}

fn batch(values: &[&str]) -> Vec<u8> {
    let mut b = RecordBatchBuilder::new(1_700_000_000_000);
    for v in values {
        b.append(None, Some(v.as_bytes()), &[], 1_700_000_000_000);
    }
    b.build()
}

/// One follower round: ask what to do, carry a fetch to the leader.
fn follow_once(leader: &ReplicaManager, follower: &ReplicaManager, tp: &TopicPartition, epoch: i32) {
    match follower.next_follower_request(tp, epoch).expect("follows") {
        FollowerRequest::EpochEndOffset { epoch: asked } => {
            let (log, _) = leader.leader_log(tp, Some(epoch)).unwrap();
            let end = log
                .end_offset_for_epoch(asked)
                .map(|(e, end)| gregor_replication::EpochEnd {
                    epoch: Some(e),
                    end_offset: Some(end),
                });
            follower.on_epoch_end(tp, epoch, asked, Ok(end.unwrap())).unwrap();
        }
        FollowerRequest::Fetch { offset } => {
            let (log, hw) = leader
                .on_follower_fetch(tp, follower.local(), offset as i64, -1, Some(epoch))
                .unwrap();
            accept_isr_updates(leader);
            let bytes = log.read_bytes(offset, 1 << 20).unwrap();
            follower.on_fetched(tp, epoch, offset, &bytes, hw).unwrap();
        }
    }
}

fn values(log: &Log) -> usize {
    log.end_offset() as usize
}

#[tokio::test]
async fn acks_all_waits_for_the_follower_and_a_new_leader_wins() {
    let dir = tempfile::tempdir().unwrap();
    let (logs1, logs2) = (logs(&dir.path().join("b1")), logs(&dir.path().join("b2")));
    let tp = TopicPartition::new("t", 0);
    let settings = ReplicaSettings {
        replica_lag_time_max_ms: 30_000,
        min_insync_replicas: 2,
    };
    let (b1, b2) = (manager(1, settings), manager(2, settings));
    let log1 = logs1.get_or_create(&tp, Some(LogConfig::default())).unwrap();
    let log2 = logs2.get_or_create(&tp, Some(LogConfig::default())).unwrap();
    b1.become_leader_or_follower(&tp, &record(1, 0), log1.clone(), None)
        .unwrap();
    b2.become_leader_or_follower(&tp, &record(1, 0), log2.clone(), None)
        .unwrap();

    // acks=all: written, not acknowledged until broker 2 has it.
    let appended = b1.append_as_leader(&tp, &batch(&["a", "b"]), true).unwrap();
    let required = appended.waiting_for.expect("waits for the follower");
    let mut acked = b1.wait_for_acks(vec![(tp.clone(), required)], 10_000);
    assert!(acked.try_recv().is_err());
    assert_eq!(log1.high_watermark(), 0, "consumers do not see it yet");
    follow_once(&b1, &b2, &tp, 0); // fetches the records
    assert!(acked.try_recv().is_err(), "the leader learns at the next fetch");
    follow_once(&b1, &b2, &tp, 0); // reports its new end
    assert_eq!(acked.await.unwrap(), vec![(tp.clone(), Ok(()))]);
    assert_eq!(log1.high_watermark(), 2);
    follow_once(&b1, &b2, &tp, 0);
    assert_eq!(log2.high_watermark(), 2);

    // Broker 1 takes a record nobody else gets, then loses leadership.
    b1.append_as_leader(&tp, &batch(&["lost"]), false).unwrap();
    b2.become_leader_or_follower(&tp, &record(2, 1), log2.clone(), None)
        .unwrap();
    b1.become_leader_or_follower(&tp, &record(2, 1), log1.clone(), None)
        .unwrap();
    assert_eq!(
        b1.append_as_leader(&tp, &batch(&["x"]), true).unwrap_err().to_string(),
        ReplicationError::NotLeaderOrFollower.to_string()
    );
    b2.append_as_leader(&tp, &batch(&["c"]), false).unwrap();
    // The old leader truncates its unreplicated record, then copies "c".
    follow_once(&b2, &b1, &tp, 1);
    assert_eq!(values(&log1), 2);
    follow_once(&b2, &b1, &tp, 1);
    assert_eq!(values(&log1), 3);
    assert_eq!(
        log1.read_bytes(2, 1 << 20).unwrap(),
        log2.read_bytes(2, 1 << 20).unwrap()
    );
}

#[tokio::test]
async fn acks_all_is_refused_below_min_insync_replicas() {
    let dir = tempfile::tempdir().unwrap();
    let logs1 = logs(dir.path());
    let tp = TopicPartition::new("t", 0);
    let settings = ReplicaSettings {
        replica_lag_time_max_ms: 30_000,
        min_insync_replicas: 2,
    };
    let b1 = manager(1, settings);
    let log = logs1.get_or_create(&tp, Some(LogConfig::default())).unwrap();
    let mut alone = record(1, 0);
    alone.state.isr = vec![1];
    b1.become_leader_or_follower(&tp, &alone, log.clone(), None).unwrap();
    let refused = b1.append_as_leader(&tp, &batch(&["a"]), true).unwrap_err();
    assert_eq!(refused.to_string(), ReplicationError::NotEnoughReplicas.to_string());
    assert_eq!(log.end_offset(), 0, "nothing written");
    // acks=1 still goes through, and commits at once on a lone ISR.
    b1.append_as_leader(&tp, &batch(&["a"]), false).unwrap();
    assert_eq!(log.high_watermark(), 1);
}

#[tokio::test]
async fn a_follower_fetch_outside_the_log_records_no_progress() {
    let dir = tempfile::tempdir().unwrap();
    let logs1 = logs(dir.path());
    let tp = TopicPartition::new("t", 0);
    let b1 = manager(1, ReplicaSettings::default());
    let log = logs1.get_or_create(&tp, Some(LogConfig::default())).unwrap();
    // Broker 2 is a replica out of the ISR; the log is empty.
    let mut alone = record(1, 0);
    alone.state.isr = vec![1];
    b1.become_leader_or_follower(&tp, &alone, log, None).unwrap();
    // Before the log start, past its end: not caught up (taken as the
    // nearest offset, either would have been), so no ISR expansion.
    for outside in [-1, 1] {
        b1.on_follower_fetch(&tp, 2, outside, -1, Some(0)).unwrap();
        assert!(b1.take_isr_updates().is_empty(), "empty log, fetch offset {outside}");
    }
    b1.append_as_leader(&tp, &batch(&["a", "b"]), false).unwrap();
    for outside in [3, i64::MAX] {
        b1.on_follower_fetch(&tp, 2, outside, -1, Some(0)).unwrap();
        assert!(b1.take_isr_updates().is_empty(), "fetch offset {outside}");
    }
    assert!(
        matches!(
            b1.on_follower_fetch(&tp, 3, -1, -1, Some(0)),
            Err(ReplicationError::UnknownReplica)
        ),
        "not a replica, whatever its offset"
    );
    // At the log end it is caught up.
    b1.on_follower_fetch(&tp, 2, 2, -1, Some(0)).unwrap();
    assert_eq!(b1.take_isr_updates().len(), 1);
}

#[tokio::test]
async fn a_replica_on_a_broker_the_controller_does_not_list_as_live_stays_out_of_the_isr() {
    let dir = tempfile::tempdir().unwrap();
    let logs1 = logs(dir.path());
    let tp = TopicPartition::new("t", 0);
    let b1 = manager(1, ReplicaSettings::default());
    let log = logs1.get_or_create(&tp, Some(LogConfig::default())).unwrap();
    let mut alone = record(1, 0);
    alone.state.isr = vec![1];
    b1.become_leader_or_follower(&tp, &alone, log, None).unwrap();
    b1.append_as_leader(&tp, &batch(&["a", "b"]), false).unwrap();
    let endpoint = |port| gregor_broker::BrokerEndpoint {
        host: "127.0.0.1".into(),
        port,
        ..Default::default()
    };
    // Broker 2's session expired: the controller lists only broker 1.
    b1.update_view(
        1,
        [(1, endpoint(9001))].into(),
        Vec::<(TopicPartition, PartitionRecord)>::new(),
    );
    for _ in 0..3 {
        b1.on_follower_fetch(&tp, 2, 2, -1, Some(0)).unwrap();
        assert!(b1.take_isr_updates().is_empty(), "caught up, but not live");
    }
    // Registered again: live in the next UpdateMetadata, and in sync.
    b1.update_view(
        1,
        [(1, endpoint(9001)), (2, endpoint(9002))].into(),
        Vec::<(TopicPartition, PartitionRecord)>::new(),
    );
    b1.on_follower_fetch(&tp, 2, 2, -1, Some(0)).unwrap();
    let updates = b1.take_isr_updates();
    assert_eq!(updates.len(), 1);
    assert_eq!(updates[0].state.isr, vec![1, 2]);
}

#[tokio::test]
async fn a_partition_taken_offline_with_its_log_dir_answers_storage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let (logs1, logs2) = (logs(&dir.path().join("b1")), logs(&dir.path().join("b2")));
    let tp = TopicPartition::new("t", 0);
    let settings = ReplicaSettings {
        replica_lag_time_max_ms: 30_000,
        min_insync_replicas: 2,
    };
    let (b1, b2) = (manager(1, settings), manager(2, settings));
    let log1 = logs1.get_or_create(&tp, Some(LogConfig::default())).unwrap();
    let log2 = logs2.get_or_create(&tp, Some(LogConfig::default())).unwrap();
    b1.become_leader_or_follower(&tp, &record(1, 0), log1, None).unwrap();
    b2.become_leader_or_follower(&tp, &record(1, 0), log2, None).unwrap();
    let appended = b1.append_as_leader(&tp, &batch(&["a"]), true).unwrap();
    let acked = b1.wait_for_acks(vec![(tp.clone(), appended.waiting_for.unwrap())], 10_000);

    // The leader's log directory fails: a produce waiting for acks=all is
    // answered KAFKA_STORAGE_ERROR, and so are later produces and reads.
    b1.take_offline(std::slice::from_ref(&tp));
    let outcome = acked.await.unwrap();
    assert_eq!(outcome[0].1, Err(ReplicationError::KafkaStorageError));
    assert!(b1.is_offline(&tp));
    assert!(matches!(
        b1.append_as_leader(&tp, &batch(&["b"]), true),
        Err(gregor_broker::ReplicaAppendError::Replication(
            ReplicationError::KafkaStorageError
        ))
    ));
    assert_eq!(
        b1.leader_log(&tp, None).err(),
        Some(ReplicationError::KafkaStorageError)
    );
    // A follower whose directory fails no longer follows.
    assert_eq!(b2.followed().len(), 1);
    b2.take_offline(std::slice::from_ref(&tp));
    assert!(b2.followed().is_empty());
    assert!(b2.next_follower_request(&tp, 0).is_none());
}
