//! A group's committed offsets on its coordinator: OffsetFetch and
//! OffsetCommit, shared by the consumer (its own positions) and the group
//! admin (every partition, or a reset plan).

use std::collections::BTreeMap;

use kafka_protocol::messages::offset_commit_request::{OffsetCommitRequestPartition, OffsetCommitRequestTopic};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::{GroupId, OffsetCommitRequest, OffsetFetchRequest};
use kafka_protocol::protocol::StrBytes;

use crate::cluster::topic_name;
use crate::{ClientError, Connection};

/// Offsets by (topic, partition).
pub type OffsetMap = BTreeMap<(String, i32), i64>;

fn group_id(group: &str) -> GroupId {
    GroupId(StrBytes::from_string(group.to_string()))
}

/// The group's committed offsets of `partitions` (`None`: every partition
/// it has committed); partitions without a committed offset are left out.
pub(crate) async fn fetch(
    coordinator: &mut Connection,
    group: &str,
    partitions: Option<Vec<(String, i32)>>,
) -> Result<OffsetMap, ClientError> {
    let mut request = OffsetFetchRequest::default();
    request.group_id = group_id(group);
    request.topics = partitions.map(|partitions| {
        let mut by_topic: BTreeMap<String, Vec<i32>> = BTreeMap::new();
        for (t, p) in partitions {
            by_topic.entry(t).or_default().push(p);
        }
        by_topic
            .into_iter()
            .map(|(t, ps)| {
                let mut topic = OffsetFetchRequestTopic::default();
                topic.name = topic_name(&t);
                topic.partition_indexes = ps;
                topic
            })
            .collect()
    });
    let response = coordinator.send(request, 5).await?;
    if response.error_code != 0 {
        return Err(ClientError::from_code(
            response.error_code,
            format!("offsets of group {group}"),
        ));
    }
    let mut out = OffsetMap::new();
    for t in response.topics {
        for p in t.partitions {
            if p.error_code != 0 {
                return Err(ClientError::from_code(
                    p.error_code,
                    format!("offset of group {group} for {}-{}", t.name.0, p.partition_index),
                ));
            }
            if p.committed_offset >= 0 {
                out.insert((t.name.0.to_string(), p.partition_index), p.committed_offset);
            }
        }
    }
    Ok(out)
}

/// Commits `offsets` for `group`: as a member (its generation and id) or,
/// with generation -1 and an empty member id, as a standalone consumer or
/// an admin tool does — which the coordinator refuses while the group has
/// members.
pub(crate) async fn commit(
    coordinator: &mut Connection,
    group: &str,
    generation: i32,
    member_id: &str,
    offsets: &OffsetMap,
) -> Result<(), ClientError> {
    let mut by_topic: BTreeMap<&str, Vec<OffsetCommitRequestPartition>> = BTreeMap::new();
    for ((t, p), offset) in offsets {
        let mut partition = OffsetCommitRequestPartition::default();
        partition.partition_index = *p;
        partition.committed_offset = *offset;
        partition.committed_leader_epoch = -1;
        by_topic.entry(t).or_default().push(partition);
    }
    let mut request = OffsetCommitRequest::default();
    request.group_id = group_id(group);
    request.generation_id_or_member_epoch = generation;
    request.member_id = StrBytes::from_string(member_id.to_string());
    request.topics = by_topic
        .into_iter()
        .map(|(t, ps)| {
            let mut topic = OffsetCommitRequestTopic::default();
            topic.name = topic_name(t);
            topic.partitions = ps;
            topic
        })
        .collect();
    let response = coordinator.send(request, 7).await?;
    for t in response.topics {
        for p in t.partitions {
            if p.error_code != 0 {
                return Err(ClientError::from_code(
                    p.error_code,
                    format!("committing {}-{} for group {group}", t.name.0, p.partition_index),
                ));
            }
        }
    }
    Ok(())
}
