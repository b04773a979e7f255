//! LeaveGroup: members leave (one before v3, a batch from v3); the rest rebalance.

use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::{LeaveGroupRequest, LeaveGroupResponse};

use gregor_broker::errors::group_code;
use gregor_broker::Broker;

/// Answers a LeaveGroup request.
pub fn handle(broker: &Broker, request: LeaveGroupRequest, version: i16) -> LeaveGroupResponse {
    let mut response = LeaveGroupResponse::default();
    let leaving: Vec<(String, Option<String>)> = if version >= 3 {
        request
            .members
            .iter()
            .map(|m| {
                (
                    m.member_id.to_string(),
                    m.group_instance_id.as_ref().map(|i| i.to_string()),
                )
            })
            .collect()
    } else {
        vec![(request.member_id.to_string(), None)]
    };
    let Some(groups) = broker.groups().coordinating(&request.group_id.0) else {
        response.error_code = group_code(gregor_group::GroupError::NotCoordinator);
        return response;
    };
    let results = groups.leave(&request.group_id.0, &leaving, broker.now_ms());
    if version >= 3 {
        response.members = leaving
            .iter()
            .zip(&results)
            .map(|((id, instance), result)| {
                let mut m = MemberResponse::default();
                m.member_id = super::str_bytes(id);
                m.group_instance_id = instance.as_deref().map(super::str_bytes);
                m.error_code = result.err().map_or(0, group_code);
                m
            })
            .collect();
    } else {
        response.error_code = results.first().and_then(|r| r.err()).map_or(0, group_code);
    }
    response
}
