//! OffsetDelete (KIP-496): removes a group's committed offsets of some
//! partitions (`kafka-consumer-groups --delete-offsets`, the Admin
//! client's `deleteConsumerGroupOffsets`). The group coordinator decides
//! (gregor-group's `delete_offsets`: GROUP_ID_NOT_FOUND, NON_EMPTY_GROUP,
//! GROUP_SUBSCRIBED_TO_TOPIC per partition) and writes tombstones to
//! `__consumer_offsets` before answering, so the deletion survives a
//! coordinator failover.
//!
//! As Kafka's `KafkaApis.handleOffsetDeleteRequest`: partitions of unknown
//! topics, or beyond a topic's partition count, are answered
//! UNKNOWN_TOPIC_OR_PARTITION and not passed on; a group-level error
//! (NOT_COORDINATOR on a broker that does not coordinate the group, …)
//! replaces every partition's answer.

use kafka_protocol::messages::offset_delete_response::{OffsetDeleteResponsePartition, OffsetDeleteResponseTopic};
use kafka_protocol::messages::{OffsetDeleteRequest, OffsetDeleteResponse, TopicName};

use super::str_bytes;
use gregor_broker::errors::group_code;
use gregor_broker::Broker;
use gregor_group::GroupError;

/// Answers an OffsetDelete request (waits for the tombstones to reach the
/// in-sync replicas: off the handler threads).
pub fn handle(broker: &Broker, request: OffsetDeleteRequest) -> OffsetDeleteResponse {
    let group_id = request.group_id.0.to_string();
    let mut known = Vec::new();
    let mut answers: Vec<((String, i32), i16)> = Vec::new();
    for topic in &request.topics {
        let name = topic.name.0.to_string();
        for p in &topic.partitions {
            let partition = (name.clone(), p.partition_index);
            match broker.topics().known_partition(&name, p.partition_index) {
                Ok(_) => known.push(partition),
                Err(e) => answers.push((partition, e.code())),
            }
        }
    }
    let outcome = match broker.groups().coordinating(&group_id) {
        Some(groups) => groups.delete_offsets(&group_id, &known),
        None => Err(GroupError::NotCoordinator),
    };
    let mut response = OffsetDeleteResponse::default();
    match outcome {
        Err(e) => response.error_code = group_code(e),
        Ok(results) => {
            answers.extend(results.into_iter().map(|(p, r)| (p, r.err().map_or(0, group_code))));
            response.topics = by_topic(answers);
        }
    }
    response
}

/// The partitions' answers grouped by topic, in the order topics first
/// appear.
fn by_topic(answers: Vec<((String, i32), i16)>) -> Vec<OffsetDeleteResponseTopic> {
    let mut topics: Vec<OffsetDeleteResponseTopic> = Vec::new();
    for ((topic, partition_index), error_code) in answers {
        let mut p = OffsetDeleteResponsePartition::default();
        p.partition_index = partition_index;
        p.error_code = error_code;
        match topics.iter_mut().find(|t| t.name.0.as_str() == topic) {
            Some(t) => t.partitions.push(p),
            None => {
                let mut t = OffsetDeleteResponseTopic::default();
                t.name = TopicName(str_bytes(&topic));
                t.partitions.push(p);
                topics.push(t);
            }
        }
    }
    topics
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::error::ResponseError;

    #[test]
    fn answers_are_grouped_by_topic_in_order() {
        let unknown = ResponseError::UnknownTopicOrPartition.code();
        let topics = by_topic(vec![
            (("b".into(), 0), unknown),
            (("a".into(), 1), 0),
            (("b".into(), 2), 0),
        ]);
        let shape: Vec<(String, Vec<(i32, i16)>)> = topics
            .iter()
            .map(|t| {
                let parts = t.partitions.iter().map(|p| (p.partition_index, p.error_code)).collect();
                (t.name.0.to_string(), parts)
            })
            .collect();
        assert_eq!(
            shape,
            vec![("b".into(), vec![(0, unknown), (2, 0)]), ("a".into(), vec![(1, 0)])]
        );
    }
}
