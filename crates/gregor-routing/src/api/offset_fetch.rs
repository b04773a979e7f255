//! OffsetFetch: a group's committed offsets (-1 where none), for given
//! partitions or all of them; one group before v8, several from v8.

use gregor_group::GroupCoordinator;
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions, OffsetFetchResponseTopic,
    OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{OffsetFetchRequest, OffsetFetchResponse, TopicName};

use super::str_bytes;
use gregor_broker::errors::group_code;
use gregor_broker::Broker;

/// Per topic, per partition: (partition, offset, leader epoch, metadata).
type Committed = Vec<(String, Vec<(i32, i64, i32, String)>)>;

fn committed(groups: &GroupCoordinator, group: &str, wanted: Option<Vec<(String, i32)>>) -> Committed {
    let mut by_topic: Committed = Vec::new();
    for ((topic, partition), offset) in groups.committed(group, wanted.as_deref()) {
        let entry = match by_topic.iter_mut().find(|(t, _)| *t == topic) {
            Some(e) => e,
            None => {
                by_topic.push((topic.clone(), Vec::new()));
                by_topic.last_mut().expect("just pushed")
            }
        };
        let (o, e, m) = offset.map_or((-1, -1, String::new()), |o| (o.offset, o.leader_epoch, o.metadata));
        entry.1.push((partition, o, e, m));
    }
    by_topic
}

/// Answers an OffsetFetch request.
pub fn handle(broker: &Broker, request: OffsetFetchRequest, version: i16) -> OffsetFetchResponse {
    let mut response = OffsetFetchResponse::default();
    let unavailable = group_code(gregor_group::GroupError::CoordinatorNotAvailable);
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
                group.error_code = unavailable;
                response.groups.push(group);
                continue;
            };
            for (topic, partitions) in committed(groups, &g.group_id.0, wanted) {
                let mut t = OffsetFetchResponseTopics::default();
                t.name = TopicName(str_bytes(&topic));
                t.partitions = partitions
                    .into_iter()
                    .map(|(p, o, e, m)| {
                        let mut partition = OffsetFetchResponsePartitions::default();
                        partition.partition_index = p;
                        partition.committed_offset = o;
                        partition.committed_leader_epoch = e;
                        partition.metadata = Some(str_bytes(&m));
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
        response.error_code = unavailable;
        return response;
    };
    let wanted = request.topics.as_ref().map(|topics| {
        topics
            .iter()
            .flat_map(|t| t.partition_indexes.iter().map(|p| (t.name.0.to_string(), *p)))
            .collect()
    });
    for (topic, partitions) in committed(groups, &request.group_id.0, wanted) {
        let mut t = OffsetFetchResponseTopic::default();
        t.name = TopicName(str_bytes(&topic));
        t.partitions = partitions
            .into_iter()
            .map(|(p, o, e, m)| {
                let mut partition = OffsetFetchResponsePartition::default();
                partition.partition_index = p;
                partition.committed_offset = o;
                if version >= 5 {
                    partition.committed_leader_epoch = e;
                }
                partition.metadata = Some(str_bytes(&m));
                partition
            })
            .collect();
        response.topics.push(t);
    }
    response
}
