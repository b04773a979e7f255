//! ListGroups: every group this coordinator knows (with its state from v4,
//! its type from v5). Every group here is a classic one (KIP-848's
//! consumer groups are not served yet), so a type filter without
//! `classic` lists none, as Kafka 3.9 answers.

use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{GroupId, ListGroupsRequest, ListGroupsResponse};

use super::str_bytes;
use gregor_broker::Broker;

const CLASSIC: &str = "classic";

/// Answers a ListGroups request, honouring the state (v4) and type (v5)
/// filters, case-insensitively as Kafka does.
pub fn handle(broker: &Broker, request: ListGroupsRequest, version: i16) -> ListGroupsResponse {
    let mut response = ListGroupsResponse::default();
    let names = |filter: &[kafka_protocol::protocol::StrBytes], name: &str| {
        filter.is_empty() || filter.iter().any(|s| s.as_str().eq_ignore_ascii_case(name))
    };
    if !names(&request.types_filter, CLASSIC) {
        return response;
    }
    let groups = broker.groups().coordinator();
    for (id, protocol_type, state) in groups.list() {
        if !names(&request.states_filter, state.name()) {
            continue;
        }
        let mut group = ListedGroup::default();
        group.group_id = GroupId(str_bytes(&id));
        group.protocol_type = str_bytes(&protocol_type);
        if version >= 4 {
            group.group_state = str_bytes(state.name());
        }
        if version >= 5 {
            group.group_type = str_bytes(CLASSIC);
        }
        response.groups.push(group);
    }
    response
}
