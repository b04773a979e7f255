//! ConsumerGroupDescribe (KIP-848): consumer groups with their epochs,
//! members, and each member's current and target assignment, topics
//! named by id and by name. A group that is not a consumer group here is
//! GROUP_ID_NOT_FOUND (Kafka's Admin then asks DescribeGroups).

use gregor_group::consumer::{Assignment, ConsumerGroupDescription};
use gregor_group::GroupError;
use kafka_protocol::messages::consumer_group_describe_response::{
    Assignment as WireAssignment, DescribedGroup, Member, TopicPartitions,
};
use kafka_protocol::messages::{ConsumerGroupDescribeRequest, ConsumerGroupDescribeResponse, GroupId, TopicName};

use super::str_bytes;
use gregor_broker::errors::group_code;
use gregor_broker::Broker;

/// The member type of ConsumerGroupDescribe v1: a consumer-protocol member.
const CONSUMER_MEMBER: i8 = 1;

/// Answers a ConsumerGroupDescribe request.
pub fn handle(broker: &Broker, request: ConsumerGroupDescribeRequest, version: i16) -> ConsumerGroupDescribeResponse {
    let mut response = ConsumerGroupDescribeResponse::default();
    for group_id in request.group_ids {
        let id = group_id.0.to_string();
        let described = match broker.groups().coordinating(&id) {
            Some(groups) => groups.describe_consumer(&id),
            None => Err(GroupError::NotCoordinator),
        };
        let entry = match described {
            Ok(group) => described_group(broker, group, version),
            Err(e) => {
                let mut entry = DescribedGroup::default();
                entry.error_code = group_code(e);
                entry.error_message = Some(str_bytes(&match e {
                    GroupError::GroupIdNotFound => format!("Group {id} is not a consumer group."),
                    e => e.to_string(),
                }));
                entry
            }
        };
        response.groups.push(entry.with_group_id(GroupId(group_id.0)));
    }
    response
}

fn described_group(broker: &Broker, group: ConsumerGroupDescription, version: i16) -> DescribedGroup {
    let mut entry = DescribedGroup::default();
    entry.group_state = str_bytes(group.state.name());
    entry.group_epoch = group.epoch;
    entry.assignment_epoch = group.assignment_epoch;
    entry.assignor_name = str_bytes(&group.assignor_name);
    entry.members = group
        .members
        .into_iter()
        .map(|m| {
            let mut member = Member::default();
            member.member_id = str_bytes(&m.member_id);
            member.instance_id = m.instance_id.as_deref().map(str_bytes);
            member.rack_id = m.rack_id.as_deref().map(str_bytes);
            member.member_epoch = m.member_epoch;
            member.client_id = str_bytes(&m.client_id);
            member.client_host = str_bytes(&m.client_host);
            member.subscribed_topic_names = m
                .subscribed_topic_names
                .iter()
                .map(|t| TopicName(str_bytes(t)))
                .collect();
            member.assignment = wire(broker, &m.assignment);
            member.target_assignment = wire(broker, &m.target_assignment);
            if version >= 1 {
                member.member_type = CONSUMER_MEMBER;
            }
            member
        })
        .collect();
    entry
}

/// An assignment with topic names; topics no longer known are left out,
/// as Kafka does.
fn wire(broker: &Broker, assignment: &Assignment) -> WireAssignment {
    let topics = broker.topics();
    let partitions = assignment
        .iter()
        .filter_map(|(id, partitions)| {
            let name = topics.name_of(*id)?;
            Some(
                TopicPartitions::default()
                    .with_topic_id(*id)
                    .with_topic_name(TopicName(str_bytes(&name)))
                    .with_partitions(partitions.iter().copied().collect()),
            )
        })
        .collect();
    WireAssignment::default().with_topic_partitions(partitions)
}
