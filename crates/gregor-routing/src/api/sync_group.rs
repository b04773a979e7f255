//! SyncGroup: the leader hands out assignments; followers wait for theirs.

use std::future::Future;

use gregor_group::{GroupError, SyncRequest, SyncResponse};
use kafka_protocol::messages::{SyncGroupRequest, SyncGroupResponse};

use super::str_bytes;
use gregor_broker::errors::group_code;
use gregor_broker::Broker;

/// Syncs; the future resolves once this member's assignment is known.
pub fn handle(
    broker: &Broker,
    request: SyncGroupRequest,
    version: i16,
) -> impl Future<Output = SyncGroupResponse> + Send + 'static {
    let sync = SyncRequest {
        group_id: request.group_id.0.to_string(),
        generation_id: request.generation_id,
        member_id: request.member_id.to_string(),
        group_instance_id: request.group_instance_id.map(|i| i.to_string()),
        assignments: request
            .assignments
            .iter()
            .map(|a| (a.member_id.to_string(), a.assignment.to_vec()))
            .collect(),
    };
    let (coordinator, now) = (broker.groups().coordinating(&sync.group_id), broker.now_ms());
    let waiting = coordinator.map(|g| g.sync(sync, now));
    async move {
        let answer = match waiting {
            Some(rx) => rx.await.unwrap_or_else(|_| SyncResponse {
                error: Some(GroupError::RebalanceInProgress),
                ..SyncResponse::default()
            }),
            None => SyncResponse {
                error: Some(GroupError::NotCoordinator),
                ..SyncResponse::default()
            },
        };
        let mut response = SyncGroupResponse::default();
        response.error_code = answer.error.map_or(0, group_code);
        if version >= 5 {
            response.protocol_type = answer.protocol_type.as_deref().map(str_bytes);
            response.protocol_name = answer.protocol_name.as_deref().map(str_bytes);
        }
        response.assignment = answer.assignment.into();
        response
    }
}
