//! Transaction verification (KIP-890 part 1): a partition leader about to
//! append the first transactional batch of a producer asks whether the
//! partition is in that producer's ongoing transaction (AddPartitionsToTxn
//! v4+ with `verify_only`, or in process). Answered from memory, changing
//! nothing, as Kafka 3.9's `handleVerifyPartitionsInTransaction` does; a
//! state change being written is not looked at, since the leader's
//! verification guard catches a marker that lands before its append.

use gregor_log::TopicPartition;

use crate::machine::TransactionStateMachine;
use crate::protocol::{TransactionError, TransactionState};

impl TransactionStateMachine {
    /// Whether each of `partitions` is in the ongoing transaction of
    /// `producer_id` at `producer_epoch` under `transactional_id`. Errors
    /// for every partition: INVALID_REQUEST (empty id), COORDINATOR_LOAD_IN_PROGRESS,
    /// NOT_COORDINATOR, INVALID_PRODUCER_ID_MAPPING (unknown id, or another
    /// producer id), PRODUCER_FENCED (another epoch),
    /// CONCURRENT_TRANSACTIONS (the transaction is ending); otherwise per
    /// partition OK, or TRANSACTION_ABORTABLE for one not in the
    /// transaction (no transaction open: none is).
    pub fn verify_partitions(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        partitions: &[TopicPartition],
    ) -> Vec<(TopicPartition, Result<(), TransactionError>)> {
        let verdict = self.verify(transactional_id, producer_id, producer_epoch);
        partitions
            .iter()
            .map(|tp| {
                let result = match &verdict {
                    Err(e) => Err(*e),
                    Ok(in_txn) if in_txn(tp) => Ok(()),
                    Ok(_) => Err(TransactionError::TransactionAbortable),
                };
                (tp.clone(), result)
            })
            .collect()
    }

    /// The error for the whole request, or which partitions the
    /// transaction holds.
    fn verify(
        &self,
        tid: &str,
        producer_id: i64,
        producer_epoch: i16,
    ) -> Result<impl Fn(&TopicPartition) -> bool + '_, TransactionError> {
        if tid.is_empty() {
            return Err(TransactionError::InvalidRequest);
        }
        let txn = self
            .loaded_ref(tid)?
            .txns
            .get(tid)
            .filter(|t| t.state() != TransactionState::Dead)
            .ok_or(TransactionError::InvalidProducerIdMapping)?;
        if txn.fields.producer_id != producer_id {
            return Err(TransactionError::InvalidProducerIdMapping);
        }
        if txn.fields.producer_epoch != producer_epoch {
            return Err(TransactionError::ProducerFenced);
        }
        if matches!(
            txn.state(),
            TransactionState::PrepareCommit | TransactionState::PrepareAbort
        ) {
            return Err(TransactionError::ConcurrentTransactions);
        }
        // Partitions are cleared when a transaction completes, so outside
        // Ongoing none is found.
        Ok(move |tp: &TopicPartition| txn.fields.partitions.contains(tp))
    }
}
