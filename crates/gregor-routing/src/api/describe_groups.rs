//! DescribeGroups: state, protocol and members of each group; an unknown
//! group is described as Dead with no members, as Kafka does.

use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::{DescribeGroupsRequest, DescribeGroupsResponse};

use super::str_bytes;
use gregor_broker::errors::group_code;
use gregor_broker::Broker;

/// Answers a DescribeGroups request.
pub fn handle(broker: &Broker, request: DescribeGroupsRequest, version: i16) -> DescribeGroupsResponse {
    let mut response = DescribeGroupsResponse::default();
    for id in &request.groups {
        let mut group = DescribedGroup::default();
        group.group_id = id.clone();
        match broker.groups().coordinating(&id.0) {
            None => group.error_code = group_code(gregor_group::GroupError::NotCoordinator),
            Some(groups) => match groups.describe(&id.0) {
                None => group.group_state = str_bytes("Dead"),
                Some(d) => {
                    group.group_state = str_bytes(d.state.name());
                    group.protocol_type = str_bytes(&d.protocol_type);
                    group.protocol_data = str_bytes(&d.protocol);
                    group.members = d
                        .members
                        .into_iter()
                        .map(|m| {
                            let mut member = DescribedGroupMember::default();
                            member.member_id = str_bytes(&m.member_id);
                            if version >= 4 {
                                member.group_instance_id = m.group_instance_id.as_deref().map(str_bytes);
                            }
                            member.client_id = str_bytes(&m.client_id);
                            member.client_host = str_bytes(&m.client_host);
                            member.member_metadata = m.metadata.into();
                            member.member_assignment = m.assignment.into();
                            member
                        })
                        .collect();
                }
            },
        }
        response.groups.push(group);
    }
    response
}
