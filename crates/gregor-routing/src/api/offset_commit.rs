//! OffsetCommit: a group's consumed positions, stored in `__consumer_offsets`.

use std::collections::HashSet;

use gregor_group::CommittedOffset;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_commit_response::{OffsetCommitResponsePartition, OffsetCommitResponseTopic};
use kafka_protocol::messages::{OffsetCommitRequest, OffsetCommitResponse};

use gregor_broker::errors::group_code;
use gregor_broker::Broker;

/// Answers an OffsetCommit request: partitions that do not exist get
/// UNKNOWN_TOPIC_OR_PARTITION (and are not stored), as Kafka answers;
/// the others the group's verdict.
pub fn handle(broker: &Broker, request: OffsetCommitRequest) -> OffsetCommitResponse {
    let now = broker.now_ms();
    // Looked up once, so the stored commits and the answer agree.
    let missing: HashSet<(&str, i32)> = request
        .topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(move |p| (t.name.0.as_str(), p.partition_index)))
        .filter(|&(topic, partition)| broker.topics().known_partition(topic, partition).is_err())
        .collect();
    let exists = |topic: &str, partition: i32| !missing.contains(&(topic, partition));
    let offsets: Vec<(String, i32, CommittedOffset)> = request
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .filter(move |p| exists(t.name.0.as_str(), p.partition_index))
                .map(move |p| {
                    let value = CommittedOffset {
                        offset: p.committed_offset,
                        leader_epoch: p.committed_leader_epoch,
                        metadata: p.committed_metadata.as_deref().unwrap_or("").to_string(),
                        commit_timestamp: now,
                    };
                    (t.name.0.to_string(), p.partition_index, value)
                })
        })
        .collect();
    let result = match broker.groups().coordinating(&request.group_id.0) {
        Some(groups) => groups.commit(
            &request.group_id.0,
            request.generation_id_or_member_epoch,
            &request.member_id,
            request.group_instance_id.as_deref(),
            &offsets,
        ),
        None => Err(gregor_group::GroupError::CoordinatorNotAvailable),
    };
    let code = result.err().map_or(0, group_code);
    let mut response = OffsetCommitResponse::default();
    response.topics = request
        .topics
        .iter()
        .map(|t| {
            let mut topic = OffsetCommitResponseTopic::default();
            topic.name = t.name.clone();
            topic.partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let mut partition = OffsetCommitResponsePartition::default();
                    partition.partition_index = p.partition_index;
                    partition.error_code = if exists(t.name.0.as_str(), p.partition_index) {
                        code
                    } else {
                        ResponseError::UnknownTopicOrPartition.code()
                    };
                    partition
                })
                .collect();
            topic
        })
        .collect();
    response
}
