//! ListTransactions (KIP-664): the transactions this broker coordinates,
//! filtered by state, producer id and (v1) how long they have been open.

use kafka_protocol::messages::list_transactions_response::TransactionState;
use kafka_protocol::messages::{ListTransactionsRequest, ListTransactionsResponse, ProducerId, TransactionalId};

use super::str_bytes;
use gregor_broker::Broker;

/// Answers a ListTransactions request.
pub fn handle(broker: &Broker, request: ListTransactionsRequest, version: i16) -> ListTransactionsResponse {
    let states: Vec<String> = request.state_filters.iter().map(|s| s.to_string()).collect();
    let producers: Vec<i64> = request.producer_id_filters.iter().map(|p| p.0).collect();
    let min_duration = if version >= 1 { request.duration_filter } else { -1 };
    let listing = broker
        .transactions()
        .coordinator()
        .list(&states, &producers, min_duration);
    let mut response = ListTransactionsResponse::default();
    response.error_code = listing.error.map_or(0, |e| e.code());
    response.unknown_state_filters = listing.unknown_state_filters.iter().map(|s| str_bytes(s)).collect();
    for t in listing.transactions {
        let mut state = TransactionState::default();
        state.transactional_id = TransactionalId(str_bytes(&t.transactional_id));
        state.producer_id = ProducerId(t.producer_id);
        state.transaction_state = str_bytes(t.state.name());
        response.transaction_states.push(state);
    }
    response
}
