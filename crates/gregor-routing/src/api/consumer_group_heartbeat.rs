//! ConsumerGroupHeartbeat (KIP-848): a consumer-protocol member joins,
//! heartbeats or leaves; the coordinator answers with its epoch and, when
//! it changed, the partitions it is to hold (by topic id).

use std::collections::BTreeMap;
use std::sync::Arc;

use gregor_broker::ClusterView;
use gregor_group::consumer::{Assignment, ConsumerHeartbeat, TopicLookup};
use gregor_group::GroupError;
use kafka_protocol::messages::consumer_group_heartbeat_response::{Assignment as WireAssignment, TopicPartitions};
use kafka_protocol::messages::{ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse};
use uuid::Uuid;

use super::str_bytes;
use gregor_broker::errors::group_code;
use gregor_broker::Broker;

/// Answers a ConsumerGroupHeartbeat from `client_id` at `client_host`.
pub fn handle(
    broker: &Broker,
    request: ConsumerGroupHeartbeatRequest,
    version: i16,
    client_id: String,
    client_host: String,
) -> ConsumerGroupHeartbeatResponse {
    let mut response = ConsumerGroupHeartbeatResponse::default();
    if version >= 1 && request.member_id.is_empty() {
        // From v1 the client makes its member id (KIP-1082).
        return failed(response, GroupError::InvalidRequest("MemberId can't be empty."));
    }
    let Some(groups) = broker.groups().coordinating(&request.group_id.0) else {
        return failed(response, GroupError::NotCoordinator);
    };
    let heartbeat = ConsumerHeartbeat {
        group_id: request.group_id.0.to_string(),
        member_id: request.member_id.to_string(),
        member_epoch: request.member_epoch,
        instance_id: request.instance_id.map(|s| s.to_string()),
        rack_id: request.rack_id.map(|s| s.to_string()),
        rebalance_timeout_ms: request.rebalance_timeout_ms,
        subscribed_topic_names: request
            .subscribed_topic_names
            .map(|names| names.into_iter().map(|n| n.0.to_string()).collect()),
        subscribed_topic_regex: request.subscribed_topic_regex.map(|s| s.to_string()),
        server_assignor: request.server_assignor.map(|s| s.to_string()),
        owned: request.topic_partitions.map(|topics| {
            let mut owned = Assignment::new();
            // A topic listed without partitions holds nothing.
            for t in topics.into_iter().filter(|t| !t.partitions.is_empty()) {
                owned.entry(t.topic_id).or_default().extend(t.partitions);
            }
            owned
        }),
        client_id,
        client_host,
    };
    let topics = KnownTopics {
        broker,
        view: broker.replicas().view(),
    };
    match groups.consumer_heartbeat(heartbeat, &topics, broker.now_ms()) {
        Ok(answer) => {
            response.member_id = Some(str_bytes(&answer.member_id));
            response.member_epoch = answer.member_epoch;
            response.heartbeat_interval_ms = answer.heartbeat_interval_ms;
            response.assignment = answer
                .assignment
                .map(|a| WireAssignment::default().with_topic_partitions(wire(a)));
            response
        }
        Err(e) => failed(response, e),
    }
}

/// Topics as this broker's metadata knows them (those Metadata answers:
/// the controller named a partition of them).
struct KnownTopics<'a> {
    broker: &'a Broker,
    view: Arc<ClusterView>,
}

impl TopicLookup for KnownTopics<'_> {
    fn topic(&self, name: &str) -> Option<(Uuid, i32)> {
        self.view.topic(name)?;
        let topic = self.broker.topics().get(name)?;
        Some((topic.id, i32::try_from(topic.partitions).unwrap_or(i32::MAX)))
    }

    fn names(&self) -> Vec<String> {
        self.broker
            .topics()
            .all()
            .into_keys()
            .filter(|name| !super::is_internal_topic(name) && self.view.topic(name).is_some())
            .collect()
    }
}

/// An assignment on the wire: topic id and partitions.
fn wire(assignment: Assignment) -> Vec<TopicPartitions> {
    let by_topic: BTreeMap<_, _> = assignment.into_iter().collect();
    by_topic
        .into_iter()
        .map(|(topic, partitions)| {
            TopicPartitions::default()
                .with_topic_id(topic)
                .with_partitions(partitions.into_iter().collect())
        })
        .collect()
}

/// An error answer; an invalid request's message is Kafka's own wording.
fn failed(mut response: ConsumerGroupHeartbeatResponse, error: GroupError) -> ConsumerGroupHeartbeatResponse {
    response.error_code = group_code(error);
    let message = match error {
        GroupError::InvalidRequest(why) => why.to_string(),
        e => e.to_string(),
    };
    response.error_message = Some(str_bytes(&message));
    response
}
