//! AlterPartitionReassignments and ListPartitionReassignments (KIP-455):
//! handed to the controller running here (another broker answers
//! NOT_CONTROLLER, and clients send them to the controller Metadata names).

use std::future::Future;

use gregor_broker::Broker;
use gregor_log::TopicPartition;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::alter_partition_reassignments_response::{
    ReassignablePartitionResponse, ReassignableTopicResponse,
};
use kafka_protocol::messages::list_partition_reassignments_response::{
    OngoingPartitionReassignment, OngoingTopicReassignment,
};
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse, BrokerId,
    ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse,
};
use kafka_protocol::protocol::StrBytes;

use super::grouping::{by_topic_name, topic_name};

/// Starts, replaces or cancels (null replicas) reassignments; answers
/// once each is recorded (not completed), per partition.
pub fn alter(
    broker: &Broker,
    request: AlterPartitionReassignmentsRequest,
) -> impl Future<Output = AlterPartitionReassignmentsResponse> {
    let mut asked = Vec::new();
    let mut refused = Vec::new();
    for topic in request.topics {
        for p in topic.partitions {
            let replicas = p.replicas.map(|r| r.into_iter().map(|b| b.0).collect());
            match u32::try_from(p.partition_index) {
                Ok(index) => asked.push((TopicPartition::new(topic.name.as_str(), index), replicas)),
                Err(_) => refused.push((topic.name.to_string(), p.partition_index)),
            }
        }
    }
    let answer = broker.controller_inbox().reassign(asked.clone());
    async move {
        let mut response = AlterPartitionReassignmentsResponse::default();
        let outcomes = match answer.await.unwrap_or(Err(ResponseError::NotController)) {
            Ok(outcomes) => outcomes,
            Err(e) => {
                response.error_code = e.code();
                return response;
            }
        };
        let mut results: Vec<(String, ReassignablePartitionResponse)> = outcomes
            .into_iter()
            .map(|(tp, outcome)| {
                let mut r = ReassignablePartitionResponse::default();
                r.partition_index = tp.partition as i32;
                if let Err((e, message)) = outcome {
                    r.error_code = e.code();
                    r.error_message = message.map(StrBytes::from_string);
                }
                (tp.topic, r)
            })
            .collect();
        results.extend(refused.into_iter().map(|(topic, index)| {
            let mut r = ReassignablePartitionResponse::default();
            r.partition_index = index;
            r.error_code = ResponseError::UnknownTopicOrPartition.code();
            (topic, r)
        }));
        response.responses = by_topic_name(results, |name, partitions| {
            let mut t = ReassignableTopicResponse::default();
            t.name = topic_name(name);
            t.partitions = partitions;
            t
        });
        response
    }
}

/// The reassignments in progress, of the partitions asked about (null:
/// all).
pub fn list(
    broker: &Broker,
    request: ListPartitionReassignmentsRequest,
) -> impl Future<Output = ListPartitionReassignmentsResponse> {
    let partitions = request.topics.map(|topics| {
        topics
            .into_iter()
            .flat_map(|t| {
                let name = t.name.to_string();
                t.partition_indexes
                    .into_iter()
                    .filter_map(move |p| Some(TopicPartition::new(&name, u32::try_from(p).ok()?)))
            })
            .collect()
    });
    let answer = broker.controller_inbox().list_reassignments(partitions);
    async move {
        let mut response = ListPartitionReassignmentsResponse::default();
        match answer.await.unwrap_or(Err(ResponseError::NotController)) {
            Ok(listing) => {
                let ids = |v: Vec<i32>| v.into_iter().map(BrokerId).collect();
                let ongoing = listing.into_iter().map(|(tp, replicas, r)| {
                    let mut p = OngoingPartitionReassignment::default();
                    p.partition_index = tp.partition as i32;
                    p.replicas = ids(replicas);
                    p.adding_replicas = ids(r.adding);
                    p.removing_replicas = ids(r.removing);
                    (tp.topic, p)
                });
                response.topics = by_topic_name(ongoing, |name, partitions| {
                    let mut t = OngoingTopicReassignment::default();
                    t.name = topic_name(name);
                    t.partitions = partitions;
                    t
                });
            }
            Err(e) => response.error_code = e.code(),
        }
        response
    }
}
