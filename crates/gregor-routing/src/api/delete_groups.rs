//! DeleteGroups: groups without members lose their committed offsets.

use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{DeleteGroupsRequest, DeleteGroupsResponse};

use gregor_broker::errors::group_code;
use gregor_broker::Broker;

/// Answers a DeleteGroups request.
pub fn handle(broker: &Broker, request: DeleteGroupsRequest) -> DeleteGroupsResponse {
    let mut response = DeleteGroupsResponse::default();
    for id in &request.groups_names {
        let mut result = DeletableGroupResult::default();
        result.group_id = id.clone();
        let outcome = match broker.groups().coordinating(&id.0) {
            Some(groups) => groups.delete(&id.0),
            None => Err(gregor_group::GroupError::NotCoordinator),
        };
        result.error_code = outcome.err().map_or(0, group_code);
        response.results.push(result);
    }
    response
}
