//! AddPartitionsToTxn (v0–3, from producers): the partitions a transaction
//! is about to write to join it at its coordinator. As Kafka, a request
//! naming a partition that does not exist adds nothing: those answer
//! UNKNOWN_TOPIC_OR_PARTITION, the others OPERATION_NOT_ATTEMPTED.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::{AddPartitionsToTxnRequest, AddPartitionsToTxnResponse, TopicName};

use super::str_bytes;
use super::transaction::{after_completion, answered, fenced_code_known, is_concurrent};
use gregor_broker::Broker;
use gregor_log::TopicPartition;
use gregor_transaction::TransactionError;

/// Answers an AddPartitionsToTxn request (blocking on the coordinator's
/// write: handler threads only).
pub fn handle(broker: &Broker, request: AddPartitionsToTxnRequest, version: i16) -> AddPartitionsToTxnResponse {
    let asked: Vec<(String, i32)> = request
        .v3_and_below_topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(move |p| (t.name.0.to_string(), *p)))
        .collect();
    let known: Vec<Result<TopicPartition, ResponseError>> = asked
        .iter()
        .map(|(topic, p)| broker.topics().known_partition(topic, *p))
        .collect();
    let results: Vec<i16> = if known.iter().any(Result::is_err) {
        known
            .iter()
            .map(|k| match k {
                Err(_) => ResponseError::UnknownTopicOrPartition.code(),
                Ok(_) => ResponseError::OperationNotAttempted.code(),
            })
            .collect()
    } else {
        let partitions: Vec<TopicPartition> = known.into_iter().flatten().collect();
        let coordinator = broker.transactions().coordinator();
        let ask = || {
            answered(coordinator.add_partitions(
                &request.v3_and_below_transactional_id.0,
                request.v3_and_below_producer_id.0,
                request.v3_and_below_producer_epoch,
                partitions.clone(),
            ))
        };
        let answer = after_completion(ask, |a| {
            a.as_ref()
                .is_some_and(|results| !results.is_empty() && results.iter().all(|(_, r)| is_concurrent(r)))
        });
        let fenced_known = fenced_code_known(version, 2);
        partitions
            .iter()
            .map(|tp| {
                let outcome = answer
                    .as_ref()
                    .and_then(|a| a.iter().find(|(t, _)| t == tp).map(|(_, r)| *r))
                    .unwrap_or(Err(TransactionError::CoordinatorNotAvailable));
                outcome.err().map_or(0, |e| e.for_version(fenced_known).code())
            })
            .collect()
    };
    let mut response = AddPartitionsToTxnResponse::default();
    for ((topic, partition), code) in asked.into_iter().zip(results) {
        let same = response
            .results_by_topic_v3_and_below
            .last()
            .is_some_and(|t| t.name.0.as_str() == topic);
        if !same {
            let mut t = AddPartitionsToTxnTopicResult::default();
            t.name = TopicName(str_bytes(&topic));
            response.results_by_topic_v3_and_below.push(t);
        }
        let mut p = AddPartitionsToTxnPartitionResult::default();
        p.partition_index = partition;
        p.partition_error_code = code;
        if let Some(t) = response.results_by_topic_v3_and_below.last_mut() {
            t.results_by_partition.push(p);
        }
    }
    response
}
