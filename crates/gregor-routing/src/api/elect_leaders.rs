//! ElectLeaders (KIP-183, KIP-460): preferred or unclean elections asked
//! of the controller running here (another broker answers
//! NOT_CONTROLLER), per partition; null partitions means all of them.

use std::future::Future;

use gregor_broker::Broker;
use gregor_log::TopicPartition;
use gregor_replication::ElectionKind;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::elect_leaders_response::{PartitionResult, ReplicaElectionResult};
use kafka_protocol::messages::{ElectLeadersRequest, ElectLeadersResponse};
use kafka_protocol::protocol::StrBytes;

use super::grouping::{by_topic_name, topic_name};

/// Holds the elections; answers with each partition's outcome. v0 has
/// no top-level error: a refusal is every partition's then.
pub fn handle(
    broker: &Broker,
    request: ElectLeadersRequest,
    version: i16,
) -> impl Future<Output = ElectLeadersResponse> {
    let kind = match request.election_type {
        1 => Some(ElectionKind::Unclean),
        0 => Some(ElectionKind::Preferred),
        _ => None,
    };
    let asked: Option<Vec<TopicPartition>> = request.topic_partitions.map(|topics| {
        topics
            .into_iter()
            .flat_map(|t| {
                let name = t.topic.to_string();
                t.partitions
                    .into_iter()
                    .filter_map(move |p| Some(TopicPartition::new(&name, u32::try_from(p).ok()?)))
            })
            .collect()
    });
    let answer = kind.map(|kind| broker.controller_inbox().elect(kind, asked.clone()));
    async move {
        let mut response = ElectLeadersResponse::default();
        let outcomes = match answer {
            None => Err(ResponseError::InvalidRequest),
            Some(answer) => answer.await.unwrap_or(Err(ResponseError::NotController)),
        };
        let results = match outcomes {
            Ok(outcomes) => outcomes,
            Err(e) if version >= 1 => {
                response.error_code = e.code();
                return response;
            }
            Err(e) => asked
                .unwrap_or_default()
                .into_iter()
                .map(|tp| (tp, Err((e, None))))
                .collect(),
        };
        let results = results.into_iter().map(|(tp, outcome)| {
            let mut r = PartitionResult::default();
            r.partition_id = tp.partition as i32;
            if let Err((e, message)) = outcome {
                r.error_code = e.code();
                r.error_message = message.map(StrBytes::from_string);
            }
            (tp.topic, r)
        });
        response.replica_election_results = by_topic_name(results, |name, partitions| {
            let mut t = ReplicaElectionResult::default();
            t.topic = topic_name(name);
            t.partition_result = partitions;
            t
        });
        response
    }
}
