//! EndTxn: commit or abort. Answered once the coordinator has stored
//! PrepareCommit/PrepareAbort; the markers are written to the
//! transaction's partitions after (the transaction completes then).

use kafka_protocol::messages::{EndTxnRequest, EndTxnResponse};

use super::transaction::{answered, fenced_code_known};
use gregor_broker::Broker;
use gregor_transaction::{TransactionError, TransactionResult};

/// Answers an EndTxn request (blocking: handler threads only).
pub fn handle(broker: &Broker, request: EndTxnRequest, version: i16) -> EndTxnResponse {
    let result = if request.committed {
        TransactionResult::Commit
    } else {
        TransactionResult::Abort
    };
    let coordinator = broker.transactions().coordinator();
    let outcome = answered(coordinator.end_txn(
        &request.transactional_id.0,
        request.producer_id.0,
        request.producer_epoch,
        result,
    ))
    .unwrap_or(Err(TransactionError::CoordinatorNotAvailable));
    let mut response = EndTxnResponse::default();
    if let Err(e) = outcome {
        response.error_code = e.for_version(fenced_code_known(version, 2)).code();
    }
    response
}
