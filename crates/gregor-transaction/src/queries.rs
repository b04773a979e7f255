//! What DescribeTransactions and ListTransactions read of the state
//! machine: the state of the ids this coordinator has loaded.

use crate::machine::TransactionStateMachine;
use crate::protocol::{
    ListedTransaction, TransactionDescription, TransactionError, TransactionListing, TransactionState,
};

impl TransactionStateMachine {
    /// DescribeTransactions for each id.
    pub fn describe(
        &self,
        transactional_ids: &[String],
    ) -> Vec<(String, Result<TransactionDescription, TransactionError>)> {
        transactional_ids
            .iter()
            .map(|id| (id.clone(), self.describe_one(id)))
            .collect()
    }

    fn describe_one(&self, id: &str) -> Result<TransactionDescription, TransactionError> {
        if id.is_empty() {
            return Err(TransactionError::InvalidRequest);
        }
        let txn = self
            .loaded_ref(id)?
            .txns
            .get(id)
            .filter(|t| t.state() != TransactionState::Dead && t.pending != Some(TransactionState::Dead))
            .ok_or(TransactionError::TransactionalIdNotFound)?;
        Ok(TransactionDescription {
            transactional_id: id.to_string(),
            state: txn.state(),
            producer_id: txn.fields.producer_id,
            producer_epoch: txn.fields.producer_epoch,
            timeout_ms: txn.fields.timeout_ms,
            start_ms: txn.fields.start_ms,
            partitions: txn.fields.partitions.iter().cloned().collect(),
        })
    }

    /// ListTransactions: the ids in one of `state_filters` (by Kafka's
    /// names; none: any) with one of `producer_id_filters` (none: any),
    /// open longer than `min_duration_ms` at `now_ms` (−1: any).
    pub fn list(
        &self,
        state_filters: &[String],
        producer_id_filters: &[i64],
        min_duration_ms: i64,
        now_ms: i64,
    ) -> TransactionListing {
        if !self.loading.is_empty() {
            return TransactionListing {
                error: Some(TransactionError::CoordinatorLoadInProgress),
                unknown_state_filters: Vec::new(),
                transactions: Vec::new(),
            };
        }
        let mut states = Vec::new();
        let mut unknown_state_filters = Vec::new();
        for name in state_filters {
            match TransactionState::from_name(name) {
                Some(s) => states.push(s),
                None => unknown_state_filters.push(name.clone()),
            }
        }
        let transactions = self
            .partitions
            .values()
            .flat_map(|l| l.txns.iter())
            .filter(|(_, t)| {
                t.state() != TransactionState::Dead
                    && (producer_id_filters.is_empty() || producer_id_filters.contains(&t.fields.producer_id))
                    && (state_filters.is_empty() || states.contains(&t.state()))
                    && (min_duration_ms < 0 || now_ms.saturating_sub(t.fields.start_ms) > min_duration_ms)
            })
            .map(|(id, t)| ListedTransaction {
                transactional_id: id.clone(),
                producer_id: t.fields.producer_id,
                state: t.state(),
            })
            .collect();
        TransactionListing {
            error: None,
            unknown_state_filters,
            transactions,
        }
    }
}
