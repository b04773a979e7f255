//! OffsetCommit: a group's consumed positions, stored in `__consumer_offsets`.

use kafka_protocol::messages::offset_commit_response::{OffsetCommitResponsePartition, OffsetCommitResponseTopic};
use kafka_protocol::messages::{OffsetCommitRequest, OffsetCommitResponse};

use super::offset_commits::{RequestedOffset, ScreenedCommit};
use gregor_broker::Broker;

/// Answers an OffsetCommit request: partitions that do not exist get
/// UNKNOWN_TOPIC_OR_PARTITION and metadata over `offset.metadata.max.bytes`
/// OFFSET_METADATA_TOO_LARGE (and are not stored), as Kafka answers; the
/// others the group's verdict.
pub fn handle(broker: &Broker, request: OffsetCommitRequest) -> OffsetCommitResponse {
    let requested = request.topics.iter().flat_map(|t| {
        t.partitions.iter().map(move |p| RequestedOffset {
            topic: t.name.0.as_str(),
            partition: p.partition_index,
            offset: p.committed_offset,
            leader_epoch: p.committed_leader_epoch,
            metadata: p.committed_metadata.as_deref(),
        })
    });
    // Screened once, so the stored commits and the answer agree.
    let screened = ScreenedCommit::new(broker, requested, broker.now_ms());
    let result = match broker.groups().coordinating(&request.group_id.0) {
        Some(groups) => groups.commit(
            &request.group_id.0,
            request.generation_id_or_member_epoch,
            &request.member_id,
            request.group_instance_id.as_deref(),
            &screened.offsets,
        ),
        None => Err(gregor_group::GroupError::NotCoordinator),
    };
    answer(&request, |topic, partition| screened.code(topic, partition, result))
}

/// The answer to `request`: every partition it names, with the error
/// code `code(topic, partition)` gives (also the authorizer's refusal).
pub fn answer(request: &OffsetCommitRequest, code: impl Fn(&str, i32) -> i16) -> OffsetCommitResponse {
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
                    partition.error_code = code(t.name.0.as_str(), p.partition_index);
                    partition
                })
                .collect();
            topic
        })
        .collect();
    response
}
