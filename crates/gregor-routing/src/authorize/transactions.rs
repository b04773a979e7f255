//! Per-resource checks of the transaction and offset-maintenance APIs
//! (the companions of [`super::topics`]): DescribeProducers, the
//! transaction listings, TxnOffsetCommit's and OffsetDelete's topics.

use kafka_protocol::messages::*;

use super::{nothing, take_refused, Access, Merge};
use gregor_auth::acl::AclOperation as Op;

const TOPIC: i16 = 29; // TOPIC_AUTHORIZATION_FAILED
const TXN_ID: i16 = 53; // TRANSACTIONAL_ID_AUTHORIZATION_FAILED

/// DescribeProducers: Read on each topic.
pub fn describe_producers(access: &Access, request: &mut DescribeProducersRequest) -> Merge<DescribeProducersResponse> {
    use describe_producers_response::{PartitionResponse, TopicResponse};
    if !access.enabled() {
        return nothing();
    }
    let refused = take_refused(&mut request.topics, |t| access.topic(Op::Read, &t.name));
    Box::new(move |response| {
        response.topics.extend(refused.into_iter().map(|t| {
            let partitions = t.partition_indexes.iter();
            TopicResponse::default().with_name(t.name).with_partitions(
                partitions
                    .map(|&p| {
                        PartitionResponse::default()
                            .with_partition_index(p)
                            .with_error_code(TOPIC)
                    })
                    .collect(),
            )
        }))
    })
}

/// DescribeTransactions: Describe on each transactional id.
pub fn describe_transactions(
    access: &Access,
    request: &mut DescribeTransactionsRequest,
) -> Merge<DescribeTransactionsResponse> {
    if !access.enabled() {
        return nothing();
    }
    let refused = take_refused(&mut request.transactional_ids, |id| {
        access.transactional_id(Op::Describe, id)
    });
    Box::new(move |response| {
        response.transaction_states.extend(refused.into_iter().map(|id| {
            describe_transactions_response::TransactionState::default()
                .with_transactional_id(id)
                .with_error_code(TXN_ID)
                .with_producer_id((-1).into())
                .with_producer_epoch(-1)
        }))
    })
}

/// ListTransactions: only the transactional ids the principal may describe.
pub fn list_transactions(access: &Access, response: &mut ListTransactionsResponse) {
    if access.enabled() {
        response
            .transaction_states
            .retain(|s| access.transactional_id(Op::Describe, &s.transactional_id));
    }
}

/// TxnOffsetCommit (transactional id and group allowed): Read on each topic.
pub fn txn_offset_commit(access: &Access, request: &mut TxnOffsetCommitRequest) -> Merge<TxnOffsetCommitResponse> {
    use txn_offset_commit_response::{TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic};
    if !access.enabled() {
        return nothing();
    }
    let refused = take_refused(&mut request.topics, |t| access.topic(Op::Read, &t.name));
    Box::new(move |response| {
        response.topics.extend(refused.into_iter().map(|t| {
            let partitions = t.partitions.iter().map(|p| {
                TxnOffsetCommitResponsePartition::default()
                    .with_partition_index(p.partition_index)
                    .with_error_code(TOPIC)
            });
            TxnOffsetCommitResponseTopic::default()
                .with_name(t.name)
                .with_partitions(partitions.collect())
        }))
    })
}

/// OffsetDelete (Delete on the group allowed): Read on each topic.
pub fn offset_delete(access: &Access, request: &mut OffsetDeleteRequest) -> Merge<OffsetDeleteResponse> {
    use offset_delete_response::{OffsetDeleteResponsePartition, OffsetDeleteResponseTopic};
    if !access.enabled() {
        return nothing();
    }
    let refused = take_refused(&mut request.topics, |t| access.topic(Op::Read, &t.name));
    Box::new(move |response| {
        response.topics.extend(refused.into_iter().map(|t| {
            let partitions = t.partitions.iter().map(|p| {
                OffsetDeleteResponsePartition::default()
                    .with_partition_index(p.partition_index)
                    .with_error_code(TOPIC)
            });
            OffsetDeleteResponseTopic::default()
                .with_name(t.name)
                .with_partitions(partitions.collect())
        }))
    })
}
