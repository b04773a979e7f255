//! AddPartitionsToTxn: the partitions a transaction is about to write to
//! join it at its coordinator. As Kafka, a transaction naming a partition
//! that does not exist adds nothing: those answer
//! UNKNOWN_TOPIC_OR_PARTITION, the others OPERATION_NOT_ATTEMPTED.
//!
//! v0–3 come from producers: one transaction, answered by topic. v4–5 come
//! from brokers (KIP-890): several transactions, answered by transaction;
//! one with `verify_only` changes nothing and asks whether its partitions
//! are in the producer's ongoing transaction — a partition leader's
//! verification before a transaction's first batch — answered with the
//! coordinator's codes as they are (TRANSACTION_ABORTABLE for a partition
//! not in it, PRODUCER_FENCED, …; the leader maps them for its client). v5
//! differs from v4 only in that its clients know TRANSACTION_ABORTABLE,
//! which only verification answers here. A batched add that is not
//! verify-only is a partition leader adding a partition implicitly for a
//! producer of transaction version 2 (KIP-890 part 2); client requests
//! (v0–3) are version 0.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::{AddPartitionsToTxnRequest, AddPartitionsToTxnResponse, TopicName};

use super::str_bytes;
use super::transaction::{after_completion, answered, fenced_code_known, is_concurrent};
use gregor_broker::Broker;
use gregor_log::TopicPartition;
use gregor_transaction::{TransactionError, TransactionVersion};

/// The first version from brokers, batching transactions.
const BATCHED_FROM: i16 = 4;

/// One transaction of a request.
struct Asked<'a> {
    transactional_id: &'a str,
    producer_id: i64,
    producer_epoch: i16,
    verify_only: bool,
    partitions: Vec<(String, i32)>,
    /// The transaction version the add is served under.
    version: TransactionVersion,
}

/// Answers an AddPartitionsToTxn request (blocking on the coordinator's
/// write: handler threads only).
pub fn handle(broker: &Broker, request: AddPartitionsToTxnRequest, version: i16) -> AddPartitionsToTxnResponse {
    let mut response = AddPartitionsToTxnResponse::default();
    if version < BATCHED_FROM {
        let asked = Asked {
            transactional_id: &request.v3_and_below_transactional_id.0,
            producer_id: request.v3_and_below_producer_id.0,
            producer_epoch: request.v3_and_below_producer_epoch,
            verify_only: false,
            partitions: partitions_of(&request.v3_and_below_topics),
            version: TransactionVersion::V0,
        };
        let codes = one_transaction(broker, &asked, fenced_code_known(version, 2));
        response.results_by_topic_v3_and_below = by_topic(asked.partitions, codes);
        return response;
    }
    for transaction in &request.transactions {
        let asked = Asked {
            transactional_id: &transaction.transactional_id.0,
            producer_id: transaction.producer_id.0,
            producer_epoch: transaction.producer_epoch,
            verify_only: transaction.verify_only,
            partitions: partitions_of(&transaction.topics),
            version: TransactionVersion::V2,
        };
        let codes = one_transaction(broker, &asked, true);
        let mut result = AddPartitionsToTxnResult::default();
        result.transactional_id = transaction.transactional_id.clone();
        result.topic_results = by_topic(asked.partitions, codes);
        response.results_by_transaction.push(result);
    }
    response
}

/// (topic, partition) of every partition named, in request order.
fn partitions_of(topics: &[AddPartitionsToTxnTopic]) -> Vec<(String, i32)> {
    topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(move |p| (t.name.0.to_string(), *p)))
        .collect()
}

/// Each partition's error code for one transaction, in order.
fn one_transaction(broker: &Broker, asked: &Asked<'_>, fenced_known: bool) -> Vec<i16> {
    let known: Vec<Result<TopicPartition, ResponseError>> = asked
        .partitions
        .iter()
        .map(|(topic, p)| broker.topics().known_partition(topic, *p))
        .collect();
    if known.iter().any(Result::is_err) {
        return known
            .iter()
            .map(|k| match k {
                Err(_) => ResponseError::UnknownTopicOrPartition.code(),
                Ok(_) => ResponseError::OperationNotAttempted.code(),
            })
            .collect();
    }
    let partitions: Vec<TopicPartition> = known.into_iter().flatten().collect();
    let coordinator = broker.transactions().coordinator();
    let (tid, producer_id, producer_epoch) = (asked.transactional_id, asked.producer_id, asked.producer_epoch);
    let answer = if asked.verify_only {
        Some(coordinator.verify_partitions(tid, producer_id, producer_epoch, &partitions))
    } else {
        let ask = || {
            answered(coordinator.add_partitions(tid, producer_id, producer_epoch, partitions.clone(), asked.version))
        };
        after_completion(ask, |a| {
            a.as_ref()
                .is_some_and(|results| !results.is_empty() && results.iter().all(|(_, r)| is_concurrent(r)))
        })
    };
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
}

/// The per-partition codes grouped by topic, in request order.
fn by_topic(asked: Vec<(String, i32)>, codes: Vec<i16>) -> Vec<AddPartitionsToTxnTopicResult> {
    let mut topics: Vec<AddPartitionsToTxnTopicResult> = Vec::new();
    for ((topic, partition), code) in asked.into_iter().zip(codes) {
        if topics.last().is_none_or(|t| t.name.0.as_str() != topic) {
            let mut t = AddPartitionsToTxnTopicResult::default();
            t.name = TopicName(str_bytes(&topic));
            topics.push(t);
        }
        let mut p = AddPartitionsToTxnPartitionResult::default();
        p.partition_index = partition;
        p.partition_error_code = code;
        if let Some(t) = topics.last_mut() {
            t.results_by_partition.push(p);
        }
    }
    topics
}
