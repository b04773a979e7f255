//! ListGroups: every group this coordinator knows (with its state from v4).

use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{GroupId, ListGroupsRequest, ListGroupsResponse};

use super::str_bytes;
use gregor_broker::Broker;

/// Answers a ListGroups request, honouring the v4 state filter.
pub fn handle(broker: &Broker, request: ListGroupsRequest, version: i16) -> ListGroupsResponse {
    let mut response = ListGroupsResponse::default();
    let groups = broker.groups().coordinator();
    for (id, protocol_type, state) in groups.list() {
        if !request.states_filter.is_empty() && !request.states_filter.iter().any(|s| s.as_str() == state.name()) {
            continue;
        }
        let mut group = ListedGroup::default();
        group.group_id = GroupId(str_bytes(&id));
        group.protocol_type = str_bytes(&protocol_type);
        if version >= 4 {
            group.group_state = str_bytes(state.name());
        }
        response.groups.push(group);
    }
    response
}
