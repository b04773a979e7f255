//! TxnOffsetCommit (KIP-98): a transactional producer commits a group's
//! offsets as part of its transaction. They are written to the group's
//! `__consumer_offsets` partition in a transactional batch of the producer
//! and stay pending — invisible to OffsetFetch — until the transaction's
//! marker reaches that partition.
//!
//! Versions: v0–v1 name no member; v2 adds each offset's leader epoch; v3
//! (flexible) names the generation, member id and instance id, checked
//! against the group (UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION,
//! FENCED_INSTANCE_ID) — earlier versions decode with generation −1 and no
//! member, which the coordinator takes from any producer. Kafka turns
//! COORDINATOR_LOAD_IN_PROGRESS into COORDINATOR_NOT_AVAILABLE below v2;
//! gregor never answers the former (a partition is served only once
//! loaded), so every version gets the same codes.
//!
//! Transaction verification (KIP-890 part 1): when the producer has no
//! transaction open in the group's `__consumer_offsets` partition yet, the
//! transaction coordinator must have that partition in the producer's
//! ongoing transaction (AddOffsetsToTxn added it) before the offsets are
//! written; otherwise every partition gets its error, as Kafka 3.9
//! answers: INVALID_TXN_STATE (not added), INVALID_PRODUCER_EPOCH (another
//! epoch), INVALID_PRODUCER_ID_MAPPING (another producer id), ….
//! v4 only lets TRANSACTION_ABORTABLE through (INVALID_TXN_STATE before).
//!
//! Transactions v2 (v5+, KIP-890 part 2): the producer sends no
//! AddOffsetsToTxn; the group's partition is added to the transaction at
//! the coordinator ([`Broker::add_to_transaction`]) before the offsets
//! go pending, whether verification is on or not.

use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::{TxnOffsetCommitRequest, TxnOffsetCommitResponse};

use super::offset_commits::{RequestedOffset, ScreenedCommit};
use gregor_broker::errors::{group_code, offsets_verification_error};
use gregor_broker::{Broker, ADD_ATTEMPTS};
use gregor_group::{GroupError, MemberOf, TxnProducer, OFFSETS_TOPIC};
use gregor_log::{TopicPartition, VerificationGuard};
use kafka_protocol::error::ResponseError;
use std::sync::Arc;

/// The first version whose offsets add the group's partition to the
/// transaction (transactions v2).
const ADD_FROM: i16 = 5;

/// Answers a TxnOffsetCommit request. Per partition: one that does not
/// exist is UNKNOWN_TOPIC_OR_PARTITION; otherwise NOT_COORDINATOR when
/// this broker does not coordinate the group; the group's refusal of the
/// member (INVALID_GROUP_ID, UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION,
/// FENCED_INSTANCE_ID); OFFSET_METADATA_TOO_LARGE for metadata over
/// `offset.metadata.max.bytes`; then the write's outcome:
/// INVALID_PRODUCER_EPOCH when the log knows a newer epoch of the
/// producer (Kafka passes it through unchanged at every version: no
/// PRODUCER_FENCED here), COORDINATOR_NOT_AVAILABLE when it was not
/// stored.
pub fn handle(broker: &Arc<Broker>, request: TxnOffsetCommitRequest, version: i16) -> TxnOffsetCommitResponse {
    let requested = request.topics.iter().flat_map(|t| {
        t.partitions.iter().map(move |p| RequestedOffset {
            topic: t.name.0.as_str(),
            partition: p.partition_index,
            offset: p.committed_offset,
            leader_epoch: p.committed_leader_epoch,
            metadata: p.committed_metadata.as_deref(),
        })
    });
    let screened = ScreenedCommit::new(broker, requested, broker.now_ms());
    let group = request.group_id.0.as_str();
    let member = MemberOf::new(
        group,
        request.generation_id,
        &request.member_id,
        request.group_instance_id.as_deref(),
    );
    let result = match broker.groups().coordinating(group) {
        Some(groups) if screened.reaches_group() => {
            let commit = || {
                verified(broker, &request, version).and_then(|producer| {
                    groups
                        .txn_commit(producer, member, &screened.offsets)
                        .map_err(group_code)
                })
            };
            if version >= ADD_FROM {
                // A guard the previous transaction's marker cleared while
                // the add waited for it to complete: taken and added again.
                let cleared = |r: &Result<(), i16>| *r == Err(ResponseError::InvalidTxnState.code());
                let mut result = commit();
                for _ in 1..ADD_ATTEMPTS {
                    if !cleared(&result) {
                        break;
                    }
                    result = commit();
                }
                result
            } else {
                commit()
            }
        }
        Some(_) => Ok(()),
        None => Err(group_code(GroupError::NotCoordinator)),
    };
    answer(&request, |topic, partition| screened.code_of(topic, partition, result))
}

/// The answer to `request`: every partition it names, with the error
/// code `code(topic, partition)` gives (also the authorizer's refusal).
pub fn answer(request: &TxnOffsetCommitRequest, code: impl Fn(&str, i32) -> i16) -> TxnOffsetCommitResponse {
    let mut response = TxnOffsetCommitResponse::default();
    response.topics = request
        .topics
        .iter()
        .map(|t| {
            let mut topic = TxnOffsetCommitResponseTopic::default();
            topic.name = t.name.clone();
            topic.partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let mut partition = TxnOffsetCommitResponsePartition::default();
                    partition.partition_index = p.partition_index;
                    partition.error_code = code(t.name.0.as_str(), p.partition_index);
                    partition
                })
                .collect();
            topic
        })
        .collect();
    response
}

/// The request's producer, once the transaction its offsets would open in
/// the group's partition is verified with the transaction coordinator
/// (blocking: on the runtime's blocking pool); the error code for every
/// partition otherwise. With verification on, the batch is appended with
/// the guard (or with none when the transaction is open there already: a
/// marker landing meanwhile then refuses it). From v5 the partition is
/// added to the transaction instead.
fn verified(broker: &Arc<Broker>, request: &TxnOffsetCommitRequest, version: i16) -> Result<TxnProducer, i16> {
    let (producer_id, producer_epoch) = (request.producer_id.0, request.producer_epoch);
    let implicit_add = version >= ADD_FROM;
    let mut producer = TxnProducer::new(producer_id, producer_epoch);
    producer.verification = broker.txn_verification(VerificationGuard::NONE, implicit_add);
    let group = request.group_id.0.as_str();
    let Some(partition) = broker.groups().offsets_topic().partition_of(group) else {
        return Err(ResponseError::CoordinatorNotAvailable.code());
    };
    let tp = TopicPartition::new(OFFSETS_TOPIC, partition);
    // Kafka's maybeConvertOffsetCommitError: no longer the partition's
    // leader is NOT_COORDINATOR.
    let not_coordinator = |_| ResponseError::NotCoordinator.code();
    let Some(guard) = broker
        .start_txn_verification(&tp, producer_id, producer_epoch, implicit_add)
        .map_err(not_coordinator)?
    else {
        return Ok(producer);
    };
    let tid = request.transactional_id.0.as_str();
    let verdicts = tokio::runtime::Handle::current().block_on(async {
        if implicit_add {
            broker
                .add_to_transaction(tid, producer_id, producer_epoch, vec![tp])
                .await
        } else {
            broker
                .verify_transaction(tid, producer_id, producer_epoch, vec![tp])
                .await
        }
    });
    match verdicts.into_iter().next().map(|(_, r)| r) {
        Some(Ok(())) => {
            producer.verification = broker.txn_verification(guard, implicit_add);
            Ok(producer)
        }
        Some(Err(e)) => Err(offsets_verification_error(e, version).code()),
        None => Err(ResponseError::UnknownServerError.code()),
    }
}
