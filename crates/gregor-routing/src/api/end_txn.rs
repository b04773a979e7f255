//! EndTxn: commit or abort. Answered once the coordinator has stored
//! PrepareCommit/PrepareAbort; the markers are written to the
//! transaction's partitions after (the transaction completes then).
//!
//! v5+ is served under transaction version 2 (KIP-890 part 2): the end
//! bumps the producer's epoch, and the response carries the producer id
//! and epoch the producer continues with.

use kafka_protocol::messages::{EndTxnRequest, EndTxnResponse, ProducerId};

use super::transaction::{answered, fenced_code_known};
use gregor_broker::Broker;
use gregor_transaction::{ProducerIdAndEpoch, TransactionError, TransactionResult, TransactionVersion};

/// The first EndTxn version of transaction version 2.
const TRANSACTION_V2_FROM: i16 = 5;

/// Answers an EndTxn request (blocking: handler threads only).
pub fn handle(broker: &Broker, request: EndTxnRequest, version: i16) -> EndTxnResponse {
    let result = if request.committed {
        TransactionResult::Commit
    } else {
        TransactionResult::Abort
    };
    let transaction_version = if version >= TRANSACTION_V2_FROM {
        TransactionVersion::V2
    } else {
        TransactionVersion::V0
    };
    let coordinator = broker.transactions().coordinator();
    let outcome = answered(coordinator.end_txn(
        &request.transactional_id.0,
        request.producer_id.0,
        request.producer_epoch,
        result,
        transaction_version,
    ))
    .unwrap_or(Err(TransactionError::CoordinatorNotAvailable));
    let mut response = EndTxnResponse::default();
    let producer = match outcome {
        Ok(producer) => producer,
        Err(e) => {
            response.error_code = e.for_version(fenced_code_known(version, 2)).code();
            ProducerIdAndEpoch::NONE
        }
    };
    // Only v5+ carries them (the codec leaves them out below).
    response.producer_id = ProducerId(producer.producer_id);
    response.producer_epoch = producer.producer_epoch;
    response
}
