//! ListGroups: every group this coordinator knows (with its state from v4,
//! its type from v5): classic groups, and consumer groups of the KIP-848
//! protocol (type `consumer`, protocol type `consumer`, state Empty,
//! Assigning, Reconciling or Stable), as Kafka 4 lists them.

use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{GroupId, ListGroupsRequest, ListGroupsResponse};

use super::str_bytes;
use gregor_broker::Broker;

const CLASSIC: &str = "classic";
const CONSUMER: &str = "consumer";

/// Answers a ListGroups request, honouring the state (v4) and type (v5)
/// filters, case-insensitively as Kafka does.
pub fn handle(broker: &Broker, request: ListGroupsRequest, version: i16) -> ListGroupsResponse {
    let mut response = ListGroupsResponse::default();
    let names = |filter: &[kafka_protocol::protocol::StrBytes], name: &str| {
        filter.is_empty() || filter.iter().any(|s| s.as_str().eq_ignore_ascii_case(name))
    };
    let groups = broker.groups().coordinator();
    let mut listed: Vec<(String, String, &str, &str)> = Vec::new();
    if names(&request.types_filter, CLASSIC) {
        for (id, protocol_type, state) in groups.list() {
            listed.push((id, protocol_type, state.name(), CLASSIC));
        }
    }
    if names(&request.types_filter, CONSUMER) {
        for (id, state) in groups.list_consumer() {
            listed.push((id, CONSUMER.to_string(), state.name(), CONSUMER));
        }
    }
    for (id, protocol_type, state, group_type) in listed {
        if !names(&request.states_filter, state) {
            continue;
        }
        let mut group = ListedGroup::default();
        group.group_id = GroupId(str_bytes(&id));
        group.protocol_type = str_bytes(&protocol_type);
        if version >= 4 {
            group.group_state = str_bytes(state);
        }
        if version >= 5 {
            group.group_type = str_bytes(group_type);
        }
        response.groups.push(group);
    }
    response
}
