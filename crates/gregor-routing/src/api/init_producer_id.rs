//! InitProducerId for idempotent producers: a fresh producer id, unique in
//! the cluster (from this broker's block of ids), and epoch 0 — what Kafka
//! answers a producer without a transactional id, also when it asks to bump
//! the epoch of its current id. Transactions are not supported.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};

use gregor_broker::Broker;

/// Answers an InitProducerId request.
pub fn handle(broker: &Broker, _request: InitProducerIdRequest) -> InitProducerIdResponse {
    let mut response = InitProducerIdResponse::default();
    match broker.next_producer_id() {
        Ok(id) => {
            response.producer_id = ProducerId(id);
            response.producer_epoch = 0;
        }
        Err(e) => {
            tracing::warn!("no producer id: {e}");
            response.producer_id = ProducerId(-1);
            response.producer_epoch = -1;
            response.error_code = ResponseError::CoordinatorNotAvailable.code();
        }
    }
    response
}
