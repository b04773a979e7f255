//! Per-resource checks of the transaction and offset-maintenance APIs
//! (the companions of [`super::topics`]): DescribeProducers, the
//! transaction listings, TxnOffsetCommit's and OffsetDelete's topics.

use kafka_protocol::messages::*;

use super::topics::Merge;
use super::{take_refused, Access};
use gregor_auth::acl::AclOperation as Op;

const TOPIC: i16 = 29; // TOPIC_AUTHORIZATION_FAILED
const TXN_ID: i16 = 53; // TRANSACTIONAL_ID_AUTHORIZATION_FAILED

fn nothing<R>() -> Merge<R> {
    Box::new(|_| {})
}

/// DescribeProducers: Read on each topic.
pub fn describe_producers(access: &Access, request: &mut DescribeProducersRequest) -> Merge<DescribeProducersResponse> {
    if !access.enabled() {
        return nothing();
    }
    let refused = take_refused(
        &mut request.topics,
        |t| t.name.to_string(),
        |n| access.topic(Op::Read, n),
    );
    Box::new(move |response| {
        response.topics.extend(refused.into_iter().map(|t| {
            let mut topic = describe_producers_response::TopicResponse::default();
            topic.name = t.name;
            topic.partitions = t
                .partition_indexes
                .iter()
                .map(|p| {
                    let mut partition = describe_producers_response::PartitionResponse::default();
                    partition.partition_index = *p;
                    partition.error_code = TOPIC;
                    partition
                })
                .collect();
            topic
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
    let refused = take_refused(
        &mut request.transactional_ids,
        |id| id.to_string(),
        |id| access.transactional_id(Op::Describe, id),
    );
    Box::new(move |response| {
        response.transaction_states.extend(refused.into_iter().map(|id| {
            let mut state = describe_transactions_response::TransactionState::default();
            state.transactional_id = id;
            state.error_code = TXN_ID;
            state.producer_id = (-1).into();
            state.producer_epoch = -1;
            state
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
    if !access.enabled() {
        return nothing();
    }
    let refused = take_refused(
        &mut request.topics,
        |t| t.name.to_string(),
        |n| access.topic(Op::Read, n),
    );
    Box::new(move |response| {
        response.topics.extend(refused.into_iter().map(|t| {
            let mut topic = txn_offset_commit_response::TxnOffsetCommitResponseTopic::default();
            topic.name = t.name;
            topic.partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let mut partition = txn_offset_commit_response::TxnOffsetCommitResponsePartition::default();
                    partition.partition_index = p.partition_index;
                    partition.error_code = TOPIC;
                    partition
                })
                .collect();
            topic
        }))
    })
}

/// OffsetDelete (Delete on the group allowed): Read on each topic.
pub fn offset_delete(access: &Access, request: &mut OffsetDeleteRequest) -> Merge<OffsetDeleteResponse> {
    if !access.enabled() {
        return nothing();
    }
    let refused = take_refused(
        &mut request.topics,
        |t| t.name.to_string(),
        |n| access.topic(Op::Read, n),
    );
    Box::new(move |response| {
        response.topics.extend(refused.into_iter().map(|t| {
            let mut topic = offset_delete_response::OffsetDeleteResponseTopic::default();
            topic.name = t.name;
            topic.partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let mut partition = offset_delete_response::OffsetDeleteResponsePartition::default();
                    partition.partition_index = p.partition_index;
                    partition.error_code = TOPIC;
                    partition
                })
                .collect();
            topic
        }))
    })
}
