//! JoinGroup: the answer waits until the group's join phase completes.

use std::future::Future;

use gregor_group::{JoinRequest, JoinResponse};
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::{JoinGroupRequest, JoinGroupResponse};

use super::str_bytes;
use gregor_broker::errors::group_code;
use gregor_broker::Broker;

/// Joins; the future resolves with the answer (delayed until the rebalance).
pub fn handle(
    broker: &Broker,
    request: JoinGroupRequest,
    version: i16,
    client_id: String,
    client_host: String,
) -> impl Future<Output = JoinGroupResponse> + Send + 'static {
    let join = JoinRequest {
        group_id: request.group_id.0.to_string(),
        member_id: request.member_id.to_string(),
        group_instance_id: request.group_instance_id.map(|i| i.to_string()),
        client_id,
        client_host,
        protocol_type: request.protocol_type.to_string(),
        protocols: request
            .protocols
            .iter()
            .map(|p| (p.name.to_string(), p.metadata.to_vec()))
            .collect(),
        session_timeout_ms: request.session_timeout_ms,
        rebalance_timeout_ms: if version >= 1 {
            request.rebalance_timeout_ms
        } else {
            request.session_timeout_ms
        },
        require_known_member_id: version >= 4,
    };
    let member_id = join.member_id.clone();
    let (coordinator, now) = (broker.groups().coordinating(&join.group_id), broker.now_ms());
    let waiting = coordinator.map(|g| g.join(join, now));
    async move {
        let answer = match waiting {
            Some(rx) => rx.await.unwrap_or_else(|_| JoinResponse {
                error: Some(gregor_group::GroupError::RebalanceInProgress),
                generation_id: -1,
                member_id,
                ..JoinResponse::default()
            }),
            None => JoinResponse {
                error: Some(gregor_group::GroupError::NotCoordinator),
                generation_id: -1,
                member_id,
                ..JoinResponse::default()
            },
        };
        encode(answer, version)
    }
}

fn encode(answer: JoinResponse, version: i16) -> JoinGroupResponse {
    let mut response = JoinGroupResponse::default();
    response.error_code = answer.error.map_or(0, group_code);
    response.generation_id = answer.generation_id;
    if version >= 7 {
        response.protocol_type = answer.protocol_type.as_deref().map(str_bytes);
    }
    response.protocol_name = answer.protocol_name.as_deref().map(str_bytes);
    if version < 7 && response.protocol_name.is_none() {
        response.protocol_name = Some(str_bytes(""));
    }
    response.leader = str_bytes(&answer.leader);
    response.member_id = str_bytes(&answer.member_id);
    response.members = answer
        .members
        .into_iter()
        .map(|m| {
            let mut member = JoinGroupResponseMember::default();
            member.member_id = str_bytes(&m.member_id);
            if version >= 5 {
                member.group_instance_id = m.group_instance_id.as_deref().map(str_bytes);
            }
            member.metadata = m.metadata.into();
            member
        })
        .collect();
    response
}
