//! Issue #20, finding 2, through the replica manager: a broker that
//! crashed and restarted (its logs recovered and their producer state
//! rebuilt by the log manager), followed the leader — truncating by
//! leader epoch, copying its idempotent batches — and then became leader
//! answers a producer's retry of any of its last five batches with the
//! original offsets, writing nothing.

use std::sync::Arc;

use gregor_broker::ReplicaManager;
use gregor_log::batch::RecordBatchBuilder;
use gregor_log::{LogConfig, LogManager, LogManagerConfig, SystemClock, TopicPartition};
use gregor_replication::{FollowerRequest, LeaderAndIsr, PartitionRecord, ReplicaSettings};

fn logs(dir: &std::path::Path) -> Arc<LogManager> {
    let mut config = LogManagerConfig::new(vec![dir.to_path_buf()]);
    config.replicated = true;
    Arc::new(LogManager::open(config).unwrap())
}

fn record(leader: i32, epoch: i32, isr: &[i32]) -> PartitionRecord {
    PartitionRecord {
        replicas: vec![1, 2],
        state: LeaderAndIsr {
            leader,
            leader_epoch: epoch,
            isr: isr.to_vec(),
            controller_epoch: 1,
        },
        version: epoch,
    }
}

/// Producer 7's batch at `epoch` from `first_seq`, `records` long.
fn batch(epoch: i16, first_seq: i32, records: i32) -> Vec<u8> {
    let mut b = RecordBatchBuilder::new(1_700_000_000_000).producer(7, epoch, first_seq);
    for i in 0..records {
        let value = format!("7:{}", first_seq + i);
        b.append(None, Some(value.as_bytes()), &[], 1_700_000_000_000);
    }
    b.build()
}

/// Small segments: rolls, and a producer snapshot at each.
fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 1_000,
        ..LogConfig::default()
    }
}

/// Follower rounds until the follower has the leader's log end (ISR
/// changes accepted as coordination would).
fn catch_up(leader: &ReplicaManager, follower: &ReplicaManager, tp: &TopicPartition, epoch: i32) {
    for _ in 0..1_000 {
        match follower.next_follower_request(tp, epoch).expect("follows") {
            FollowerRequest::EpochEndOffset { epoch: asked } => {
                let (log, _) = leader.leader_log(tp, Some(epoch)).unwrap();
                let (e, end) = log.end_offset_for_epoch(asked).unwrap();
                let answer = gregor_replication::EpochEnd {
                    epoch: Some(e),
                    end_offset: Some(end),
                };
                follower.on_epoch_end(tp, epoch, asked, Ok(answer)).unwrap();
            }
            FollowerRequest::Fetch { offset } => {
                let (log, hw) = leader
                    .on_follower_fetch(tp, follower.local(), offset as i64, -1, Some(epoch))
                    .unwrap();
                for update in leader.take_isr_updates() {
                    let version = update.expected_version + 1;
                    leader.isr_update_done(update, Some(version));
                }
                if offset == log.end_offset() {
                    return;
                }
                // A fetch's size limit: a few batches at a time.
                let bytes = log.read_bytes(offset, 300).unwrap();
                follower.on_fetched(tp, epoch, offset, &bytes, hw).unwrap();
            }
        }
    }
    panic!("the follower did not catch up");
}

#[tokio::test]
async fn a_restarted_follower_become_leader_answers_retries_with_the_original_offsets() {
    for crash in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let tp = TopicPartition::new("soak", 1);
        let settings = ReplicaSettings {
            replica_lag_time_max_ms: 30_000,
            min_insync_replicas: 1,
        };
        let (dir1, dir2) = (dir.path().join("b1"), dir.path().join("b2"));
        let logs1 = logs(&dir1);
        let b1 = ReplicaManager::new(1, settings, Arc::new(SystemClock));
        let log1 = logs1.get_or_create(&tp, Some(config())).unwrap();
        b1.become_leader_or_follower(&tp, &record(1, 0, &[1, 2]), log1.clone(), None)
            .unwrap();
        let mut written = Vec::new(); // (first_seq, records, first offset, last offset)
        let mut seq = 0;
        let mut produce = |b: &ReplicaManager, records: i32| {
            let info = b.append_as_leader(&tp, &batch(0, seq, records), false).unwrap().info;
            assert!(!info.duplicate);
            written.push((seq, records, info.first_offset, info.last_offset));
            seq += records;
        };
        {
            let logs2 = logs(&dir2);
            let b2 = ReplicaManager::new(2, settings, Arc::new(SystemClock));
            let log2 = logs2.get_or_create(&tp, Some(config())).unwrap();
            b2.become_leader_or_follower(&tp, &record(1, 0, &[1, 2]), log2.clone(), None)
                .unwrap();
            for i in 0..40 {
                produce(&b1, 1 + i % 3);
            }
            catch_up(&b1, &b2, &tp, 0);
            logs2.checkpoint().unwrap();
            for _ in 0..5 {
                produce(&b1, 2);
            }
            catch_up(&b1, &b2, &tp, 0);
            assert!(log2.segment_count() > 3, "the test needs rolls");
            if !crash {
                logs2.close().unwrap();
            }
            // A crash: dropped without closing — no snapshot at the end,
            // a checkpoint older than the log end.
        }
        // Broker 2 starts again and follows broker 1 at a new epoch.
        let logs2 = logs(&dir2);
        let b2 = ReplicaManager::new(2, settings, Arc::new(SystemClock));
        let log2 = logs2.get(&tp).expect("recovered");
        b1.become_leader_or_follower(&tp, &record(1, 1, &[1, 2]), log1.clone(), None)
            .unwrap();
        b2.become_leader_or_follower(&tp, &record(1, 1, &[1, 2]), log2.clone(), None)
            .unwrap();
        for i in 0..6 {
            produce(&b1, 1 + i % 2);
        }
        catch_up(&b1, &b2, &tp, 1);
        // Broker 1 dies; broker 2 leads.
        b2.become_leader_or_follower(&tp, &record(2, 2, &[2]), log2.clone(), None)
            .unwrap();
        let end = log2.end_offset();
        assert_eq!(end, log1.end_offset());
        for &(first_seq, records, first, last) in &written[written.len() - 5..] {
            let retry = b2.append_as_leader(&tp, &batch(0, first_seq, records), true).unwrap();
            assert!(retry.info.duplicate, "crash {crash}: retry of sequence {first_seq}");
            assert_eq!((retry.info.first_offset, retry.info.last_offset), (first, last));
        }
        assert_eq!(log2.end_offset(), end, "nothing written twice");
        // The producer carries on where it was.
        b2.append_as_leader(&tp, &batch(0, seq, 1), true).unwrap();
    }
}
