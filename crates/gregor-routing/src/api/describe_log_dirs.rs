//! DescribeLogDirs: this broker's log directories, each with the
//! partitions it holds — their size on disk, their offset lag, whether the
//! log is a future one — and (v4) the size and free space of its volume.
//! `kafka-log-dirs --describe` and the Admin client's `describeLogDirs`
//! ask every broker this.
//!
//! As Kafka 3.9 (`ReplicaManager.describeLogDirs`): every directory is
//! listed, whatever the topics asked for (null: every partition); a topic
//! none of whose asked partitions is in a directory is left out of it; the
//! offset lag is `max(high watermark - log end, 0)` (0: gregor has no
//! future logs, AlterReplicaLogDirs is not served); an offline directory
//! (a failed write took it offline) or one whose volume cannot be read
//! answers KAFKA_STORAGE_ERROR, without partitions or sizes.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use kafka_protocol::messages::{DescribeLogDirsRequest, DescribeLogDirsResponse, TopicName};

use super::str_bytes;
use gregor_broker::Broker;
use gregor_log::{Log, TopicPartition};

/// Answers a DescribeLogDirs request (reads the disks: handler threads only).
pub fn handle(broker: &Broker, request: DescribeLogDirsRequest) -> DescribeLogDirsResponse {
    let wanted: Option<BTreeSet<(String, i32)>> = request.topics.map(|topics| {
        topics
            .into_iter()
            .flat_map(|t| {
                let name = t.topic.0.to_string();
                t.partitions.into_iter().map(move |p| (name.clone(), p))
            })
            .collect()
    });
    let mut response = DescribeLogDirsResponse::default();
    for (dir, logs) in broker.logs().logs_by_dir() {
        if broker.logs().dir_failure(&dir).is_some() {
            let mut result = DescribeLogDirsResult::default();
            let path = std::path::absolute(&dir).unwrap_or(dir);
            result.log_dir = str_bytes(&path.to_string_lossy());
            result.error_code = ResponseError::KafkaStorageError.code();
            response.results.push(result);
            continue;
        }
        response.results.push(describe_dir(&dir, &logs, wanted.as_ref()));
    }
    response
}

/// One directory's entry: its partitions among `wanted` (`None`: all).
fn describe_dir(
    dir: &Path,
    logs: &[(TopicPartition, Arc<Log>)],
    wanted: Option<&BTreeSet<(String, i32)>>,
) -> DescribeLogDirsResult {
    let mut result = DescribeLogDirsResult::default();
    let path = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    result.log_dir = str_bytes(&path.to_string_lossy());
    let (total, usable) = match gregor_log::volume_space(&path) {
        Ok(space) => space,
        Err(e) => {
            tracing::warn!(dir = %path.display(), "DescribeLogDirs: cannot read the volume: {e}");
            result.error_code = ResponseError::KafkaStorageError.code();
            return result;
        }
    };
    result.total_bytes = i64::try_from(total).unwrap_or(i64::MAX);
    result.usable_bytes = i64::try_from(usable).unwrap_or(i64::MAX);
    let mut topics: BTreeMap<&str, Vec<DescribeLogDirsPartition>> = BTreeMap::new();
    for (tp, log) in logs {
        let Ok(index) = i32::try_from(tp.partition) else {
            continue;
        };
        if wanted.is_some_and(|w| !w.contains(&(tp.topic.clone(), index))) {
            continue;
        }
        let mut p = DescribeLogDirsPartition::default();
        p.partition_index = index;
        p.partition_size = i64::try_from(log.size_bytes()).unwrap_or(i64::MAX);
        p.offset_lag = offset_lag(log.high_watermark(), log.end_offset());
        p.is_future_key = false;
        topics.entry(&tp.topic).or_default().push(p);
    }
    result.topics = topics
        .into_iter()
        .map(|(name, partitions)| {
            let mut t = DescribeLogDirsTopic::default();
            t.name = TopicName(str_bytes(name));
            t.partitions = partitions;
            t
        })
        .collect();
    result
}

/// Kafka's offset lag of a current (not future) log: how far its high
/// watermark is past its log end, never negative.
fn offset_lag(high_watermark: u64, log_end: u64) -> i64 {
    i64::try_from(high_watermark.saturating_sub(log_end)).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lag_of_a_current_log_is_never_negative() {
        assert_eq!(offset_lag(10, 25), 0);
        assert_eq!(offset_lag(25, 25), 0);
        assert_eq!(offset_lag(30, 25), 5);
    }

    #[test]
    fn a_directory_lists_only_the_partitions_asked_for_and_reports_its_volume() {
        let dir = tempfile::tempdir().unwrap();
        let manager =
            gregor_log::LogManager::open(gregor_log::LogManagerConfig::new(vec![dir.path().to_path_buf()])).unwrap();
        for (topic, p) in [("a", 0), ("a", 1), ("b", 0)] {
            manager.get_or_create(&TopicPartition::new(topic, p), None).unwrap();
        }
        let (_, logs) = manager.logs_by_dir().remove(0);
        let all = describe_dir(dir.path(), &logs, None);
        assert_eq!(all.error_code, 0);
        assert!(all.total_bytes > 0 && all.usable_bytes <= all.total_bytes);
        let shape = |r: &DescribeLogDirsResult| {
            r.topics
                .iter()
                .map(|t| {
                    (
                        t.name.0.to_string(),
                        t.partitions.iter().map(|p| p.partition_index).collect(),
                    )
                })
                .collect::<Vec<(String, Vec<i32>)>>()
        };
        assert_eq!(shape(&all), vec![("a".into(), vec![0, 1]), ("b".into(), vec![0])]);
        let wanted: BTreeSet<_> = [("a".to_string(), 1), ("c".to_string(), 0)].into();
        let some = describe_dir(dir.path(), &logs, Some(&wanted));
        assert_eq!(shape(&some), vec![("a".into(), vec![1])]);
        let missing = describe_dir(&dir.path().join("gone"), &logs, None);
        assert_eq!(missing.error_code, ResponseError::KafkaStorageError.code());
        manager.close().unwrap();
    }
}
