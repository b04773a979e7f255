//! TxnOffsetCommit (KIP-98): a transactional producer commits a group's
//! offsets as part of its transaction. They are written to the group's
//! `__consumer_offsets` partition in a transactional batch of the producer
//! and stay pending — invisible to OffsetFetch — until the transaction's
//! marker reaches that partition.
//!
//! Versions: v0–v1 name no member; v2 adds each offset's leader epoch; v3
//! (flexible) names the generation, member id and instance id, checked
//! against the group (UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION,
//! FENCED_INSTANCE_ID) — earlier versions decode with generation −1 and no
//! member, which the coordinator takes from any producer. Kafka turns
//! COORDINATOR_LOAD_IN_PROGRESS into COORDINATOR_NOT_AVAILABLE below v2;
//! gregor never answers the former (a partition is served only once
//! loaded), so every version gets the same codes.

use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::{TxnOffsetCommitRequest, TxnOffsetCommitResponse};

use super::offset_commits::{RequestedOffset, ScreenedCommit};
use gregor_broker::Broker;
use gregor_group::{GroupError, MemberOf};

/// Answers a TxnOffsetCommit request. Per partition: one that does not
/// exist is UNKNOWN_TOPIC_OR_PARTITION; otherwise NOT_COORDINATOR when
/// this broker does not coordinate the group; the group's refusal of the
/// member (INVALID_GROUP_ID, UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION,
/// FENCED_INSTANCE_ID); OFFSET_METADATA_TOO_LARGE for metadata over
/// `offset.metadata.max.bytes`; then the write's outcome:
/// INVALID_PRODUCER_EPOCH when the log knows a newer epoch of the
/// producer (Kafka passes it through unchanged at every version: no
/// PRODUCER_FENCED here), COORDINATOR_NOT_AVAILABLE when it was not
/// stored.
pub fn handle(broker: &Broker, request: TxnOffsetCommitRequest) -> TxnOffsetCommitResponse {
    let requested = request.topics.iter().flat_map(|t| {
        t.partitions.iter().map(move |p| RequestedOffset {
            topic: t.name.0.as_str(),
            partition: p.partition_index,
            offset: p.committed_offset,
            leader_epoch: p.committed_leader_epoch,
            metadata: p.committed_metadata.as_deref(),
        })
    });
    let screened = ScreenedCommit::new(broker, requested, broker.now_ms());
    let group = request.group_id.0.as_str();
    let member = MemberOf::new(
        group,
        request.generation_id,
        &request.member_id,
        request.group_instance_id.as_deref(),
    );
    let result = match broker.groups().coordinating(group) {
        Some(groups) => groups.txn_commit(request.producer_id.0, request.producer_epoch, member, &screened.offsets),
        None => Err(GroupError::NotCoordinator),
    };
    let mut response = TxnOffsetCommitResponse::default();
    response.topics = request
        .topics
        .iter()
        .map(|t| {
            let mut topic = TxnOffsetCommitResponseTopic::default();
            topic.name = t.name.clone();
            topic.partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let mut partition = TxnOffsetCommitResponsePartition::default();
                    partition.partition_index = p.partition_index;
                    partition.error_code = screened.code(t.name.0.as_str(), p.partition_index, result);
                    partition
                })
                .collect();
            topic
        })
        .collect();
    response
}
