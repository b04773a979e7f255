//! OffsetFetch: a group's committed offsets (-1 where none), for given
//! partitions or all of them; one group before v8, several from v8. From
//! v7 a client may require stable offsets: a partition whose offsets are
//! not committed yet (an open transaction's, or a commit being written)
//! answers UNSTABLE_OFFSET_COMMIT (offset -1), as Kafka does; otherwise
//! the last committed offset.

use gregor_group::GroupCoordinator;
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions, OffsetFetchResponseTopic,
    OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{OffsetFetchRequest, OffsetFetchResponse, TopicName};

use super::str_bytes;
use gregor_broker::errors::group_code;
use gregor_broker::Broker;

/// One partition's answer: partition, offset, leader epoch, metadata,
/// error code.
type Fetched = (i32, i64, i32, String, i16);

/// Per topic, its partitions' answers.
type Committed = Vec<(String, Vec<Fetched>)>;

fn committed(
    groups: &GroupCoordinator,
    group: &str,
    wanted: Option<Vec<(String, i32)>>,
    require_stable: bool,
) -> Committed {
    let fetched = if require_stable {
        groups.committed_stable(group, wanted.as_deref())
    } else {
        groups
            .committed(group, wanted.as_deref())
            .into_iter()
            .map(|(p, o)| (p, Ok(o)))
            .collect()
    };
    let mut by_topic: Committed = Vec::new();
    for ((topic, partition), offset) in fetched {
        let entry = match by_topic.iter_mut().find(|(t, _)| *t == topic) {
            Some(e) => e,
            None => {
                by_topic.push((topic.clone(), Vec::new()));
                by_topic.last_mut().expect("just pushed")
            }
        };
        entry.1.push(match offset {
            Ok(Some(o)) => (partition, o.offset, o.leader_epoch, o.metadata, 0),
            Ok(None) => (partition, -1, -1, String::new(), 0),
            Err(e) => (partition, -1, -1, String::new(), group_code(e)),
        });
    }
    by_topic
}

/// Answers an OffsetFetch request.
pub fn handle(broker: &Broker, request: OffsetFetchRequest, version: i16) -> OffsetFetchResponse {
    let mut response = OffsetFetchResponse::default();
    let not_coordinator = group_code(gregor_group::GroupError::NotCoordinator);
    if version >= 8 {
        for g in &request.groups {
            let wanted = g.topics.as_ref().map(|topics| {
                topics
                    .iter()
                    .flat_map(|t| t.partition_indexes.iter().map(|p| (t.name.0.to_string(), *p)))
                    .collect()
            });
            let mut group = OffsetFetchResponseGroup::default();
            group.group_id = g.group_id.clone();
            let Some(groups) = broker.groups().coordinating(&g.group_id.0) else {
                group.error_code = not_coordinator;
                response.groups.push(group);
                continue;
            };
            // v9: a consumer-protocol member fetches at its epoch.
            let member = g.member_id.as_deref();
            if let Err(e) = groups.fetch_check(&g.group_id.0, member, g.member_epoch) {
                group.error_code = group_code(e);
                response.groups.push(group);
                continue;
            }
            for (topic, partitions) in committed(groups, &g.group_id.0, wanted, request.require_stable) {
                let mut t = OffsetFetchResponseTopics::default();
                t.name = TopicName(str_bytes(&topic));
                t.partitions = partitions
                    .into_iter()
                    .map(|(p, o, e, m, code)| {
                        let mut partition = OffsetFetchResponsePartitions::default();
                        partition.partition_index = p;
                        partition.committed_offset = o;
                        partition.committed_leader_epoch = e;
                        partition.metadata = Some(str_bytes(&m));
                        partition.error_code = code;
                        partition
                    })
                    .collect();
                group.topics.push(t);
            }
            response.groups.push(group);
        }
        return response;
    }
    let Some(groups) = broker.groups().coordinating(&request.group_id.0) else {
        response.error_code = not_coordinator;
        return response;
    };
    let wanted = request.topics.as_ref().map(|topics| {
        topics
            .iter()
            .flat_map(|t| t.partition_indexes.iter().map(|p| (t.name.0.to_string(), *p)))
            .collect()
    });
    let require_stable = version >= 7 && request.require_stable;
    for (topic, partitions) in committed(groups, &request.group_id.0, wanted, require_stable) {
        let mut t = OffsetFetchResponseTopic::default();
        t.name = TopicName(str_bytes(&topic));
        t.partitions = partitions
            .into_iter()
            .map(|(p, o, e, m, code)| {
                let mut partition = OffsetFetchResponsePartition::default();
                partition.partition_index = p;
                partition.committed_offset = o;
                if version >= 5 {
                    partition.committed_leader_epoch = e;
                }
                partition.metadata = Some(str_bytes(&m));
                partition.error_code = code;
                partition
            })
            .collect();
        response.topics.push(t);
    }
    response
}
