//! InitProducerId. Without a transactional id (an idempotent producer): a
//! fresh producer id, unique in the cluster (from this broker's block of
//! ids), and epoch 0 — what Kafka answers, also when the producer asks to
//! bump the epoch of its current id. With one: the transaction
//! coordinator's answer (the id's producer id with its epoch bumped, the
//! previous producer fenced; KIP-360 epoch recovery from v3).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};

use super::transaction::{answered, fenced_code_known};
use gregor_broker::Broker;
use gregor_transaction::{ProducerIdAndEpoch, TransactionError};

/// Answers an InitProducerId request (blocks until the coordinator's
/// write, if any, is acknowledged: handler threads only).
pub fn handle(broker: &Broker, request: InitProducerIdRequest, version: i16) -> InitProducerIdResponse {
    let mut response = InitProducerIdResponse::default();
    response.producer_id = ProducerId(-1);
    response.producer_epoch = -1;
    let Some(transactional_id) = request.transactional_id.as_ref().map(|t| t.0.as_str()) else {
        match broker.next_producer_id() {
            Ok(id) => {
                response.producer_id = ProducerId(id);
                response.producer_epoch = 0;
            }
            Err(e) => {
                tracing::warn!("no producer id: {e}");
                response.error_code = ResponseError::CoordinatorNotAvailable.code();
            }
        }
        return response;
    };
    let expected = (version >= 3 && request.producer_id.0 >= 0).then_some(ProducerIdAndEpoch {
        producer_id: request.producer_id.0,
        producer_epoch: request.producer_epoch,
    });
    let coordinator = broker.transactions().coordinator();
    let outcome =
        answered(coordinator.init_producer_id(Some(transactional_id), request.transaction_timeout_ms, expected))
            .unwrap_or(Err(TransactionError::CoordinatorNotAvailable));
    match outcome {
        Ok(producer) => {
            response.producer_id = ProducerId(producer.producer_id);
            response.producer_epoch = producer.producer_epoch;
        }
        Err(e) => response.error_code = e.for_version(fenced_code_known(version, 4)).code(),
    }
    response
}
