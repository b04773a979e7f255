//! InitProducerId: a fresh producer id and epoch 0, so that idempotent
//! producers (the default in current clients) can start. Sequence numbers
//! are not checked yet: that is the idempotent-producer work.

use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};

use crate::broker::Broker;

/// Answers an InitProducerId request.
pub fn handle(broker: &Broker, _request: InitProducerIdRequest) -> InitProducerIdResponse {
    let mut response = InitProducerIdResponse::default();
    response.producer_id = ProducerId(broker.next_producer_id());
    response.producer_epoch = 0;
    response
}
