//! DescribeTransactions (KIP-664): each transactional id's state,
//! producer, timeout, start time and partitions, from its coordinator
//! (NOT_COORDINATOR elsewhere, TRANSACTIONAL_ID_NOT_FOUND for an unknown id).

use kafka_protocol::messages::describe_transactions_response::{TopicData, TransactionState};
use kafka_protocol::messages::{
    DescribeTransactionsRequest, DescribeTransactionsResponse, ProducerId, TopicName, TransactionalId,
};

use super::str_bytes;
use gregor_broker::Broker;

/// Answers a DescribeTransactions request.
pub fn handle(broker: &Broker, request: DescribeTransactionsRequest) -> DescribeTransactionsResponse {
    let ids: Vec<String> = request.transactional_ids.iter().map(|t| t.0.to_string()).collect();
    let mut response = DescribeTransactionsResponse::default();
    for (id, described) in broker.transactions().coordinator().describe(&ids) {
        let mut state = TransactionState::default();
        state.transactional_id = TransactionalId(str_bytes(&id));
        state.producer_id = ProducerId(-1);
        state.producer_epoch = -1;
        state.transaction_start_time_ms = -1;
        match described {
            Err(e) => state.error_code = e.code(),
            Ok(d) => {
                state.transaction_state = str_bytes(d.state.name());
                state.transaction_timeout_ms = d.timeout_ms;
                state.transaction_start_time_ms = d.start_ms;
                state.producer_id = ProducerId(d.producer_id);
                state.producer_epoch = d.producer_epoch;
                for tp in d.partitions {
                    let index = i32::try_from(tp.partition).unwrap_or(i32::MAX);
                    match state.topics.iter_mut().find(|t| t.topic.0.as_str() == tp.topic) {
                        Some(topic) => topic.partitions.push(index),
                        None => {
                            let mut topic = TopicData::default();
                            topic.topic = TopicName(str_bytes(&tp.topic));
                            topic.partitions.push(index);
                            state.topics.push(topic);
                        }
                    }
                }
            }
        }
        response.transaction_states.push(state);
    }
    response
}
