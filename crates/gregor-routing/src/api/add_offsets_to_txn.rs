//! AddOffsetsToTxn: a transaction will commit a group's offsets
//! (TxnOffsetCommit follows), so the group's `__consumer_offsets`
//! partition joins it and gets its marker.

use kafka_protocol::messages::{AddOffsetsToTxnRequest, AddOffsetsToTxnResponse};

use super::transaction::{after_completion, answered, fenced_code_known, is_concurrent};
use gregor_broker::Broker;
use gregor_transaction::TransactionError;

/// Answers an AddOffsetsToTxn request (blocking: handler threads only).
pub fn handle(broker: &Broker, request: AddOffsetsToTxnRequest, version: i16) -> AddOffsetsToTxnResponse {
    let coordinator = broker.transactions().coordinator();
    let ask = || {
        answered(coordinator.add_offsets(
            &request.transactional_id.0,
            request.producer_id.0,
            request.producer_epoch,
            &request.group_id.0,
        ))
        .unwrap_or(Err(TransactionError::CoordinatorNotAvailable))
    };
    let outcome = after_completion(ask, is_concurrent);
    let mut response = AddOffsetsToTxnResponse::default();
    if let Err(e) = outcome {
        response.error_code = e.for_version(fenced_code_known(version, 2)).code();
    }
    response
}
