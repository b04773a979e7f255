//! Heartbeat: keeps a member alive and tells it when to rejoin.

use kafka_protocol::messages::{HeartbeatRequest, HeartbeatResponse};

use gregor_broker::errors::group_code;
use gregor_broker::Broker;

/// Answers a Heartbeat request.
pub fn handle(broker: &Broker, request: HeartbeatRequest) -> HeartbeatResponse {
    let mut response = HeartbeatResponse::default();
    let result = match broker.groups().coordinating(&request.group_id.0) {
        Some(groups) => groups.heartbeat(
            &request.group_id.0,
            request.generation_id,
            &request.member_id,
            request.group_instance_id.as_deref(),
            broker.now_ms(),
        ),
        None => Err(gregor_group::GroupError::NotCoordinator),
    };
    response.error_code = result.err().map_or(0, group_code);
    response
}
