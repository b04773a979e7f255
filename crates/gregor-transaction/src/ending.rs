//! What EndTxn may do with a transaction, under each transaction
//! version: the checks of Kafka's `endTransaction` before anything is
//! written. Under version 0/1 (Kafka 3.x) the producer's epoch must be the
//! current one and a retry is recognised by the state alone. Under version
//! 2 (KIP-890 part 2) every ended transaction bumps the epoch, so a retry
//! is recognised by its epoch: one below the current one (the bump it
//! caused), or the exhausted epoch of the producer id the transaction
//! rotated away from; only when the current state was reached by an end
//! under version 2 (the stored client transaction version), and never
//! into the largest epoch (a fence's).
//!
//! ```text
//! state           abort retry   abort current   commit retry   commit current
//! Ongoing         FENCED        PrepareAbort    FENCED         PrepareCommit
//! Empty           FENCED        PrepareAbort    FENCED         INVALID_TXN_STATE
//! CompleteAbort   NONE          PrepareAbort    INVALID_TXN    INVALID_TXN_STATE
//! CompleteCommit  INVALID_TXN   PrepareAbort    NONE           INVALID_TXN_STATE
//! Prepare*        CONCURRENT_TRANSACTIONS (the completion is pending)
//! ```
//!
//! "Retry" is the epoch below the current one (or the overflow retry),
//! "current" the current epoch. A pending transition (other than a fence)
//! is checked first, and answers CONCURRENT_TRANSACTIONS to any producer;
//! then a wrong producer id is INVALID_PRODUCER_ID_MAPPING.

use crate::metadata::{TxnMetadata, EXHAUSTED_EPOCH};
use crate::protocol::{TransactionError, TransactionResult, TransactionState, TransactionVersion};

/// What an EndTxn (or the coordinator's own abort) leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EndDecision {
    /// Write this Prepare* state.
    Prepare(TransactionState),
    /// The transaction already ended so: answered NONE at once.
    AlreadyEnded,
}

impl TxnMetadata {
    /// Checks an end of the transaction by producer `producer_id` at
    /// `producer_epoch`, under `version`. `from_client` is false for the
    /// coordinator's own abort after an epoch fence, which carries the
    /// fencing epoch.
    pub(crate) fn ending(
        &self,
        producer_id: i64,
        producer_epoch: i16,
        result: TransactionResult,
        version: TransactionVersion,
        from_client: bool,
    ) -> Result<EndDecision, TransactionError> {
        if version.bumps_epoch() {
            self.ending_with_epoch_bump(producer_id, producer_epoch, result, from_client)
        } else {
            self.ending_without_epoch_bump(producer_id, producer_epoch, result, from_client)
        }
    }

    /// Whether the transaction is being fenced (the epoch bump before the
    /// coordinator aborts it is pending).
    pub(crate) fn fencing(&self) -> bool {
        self.pending == Some(TransactionState::PrepareEpochFence)
    }

    /// Whether the coordinator allocates the next producer id when this
    /// transaction ends under version 2: its epoch is exhausted, and it
    /// is not a fence (whose abort keeps the producer id).
    pub(crate) fn ending_rotates(&self) -> bool {
        !self.fencing() && self.epoch_exhausted()
    }

    /// Versions 0 and 1, as Kafka 3.9.
    fn ending_without_epoch_bump(
        &self,
        producer_id: i64,
        producer_epoch: i16,
        result: TransactionResult,
        from_client: bool,
    ) -> Result<EndDecision, TransactionError> {
        let current = self.fields.producer_epoch;
        if self.fields.producer_id != producer_id {
            return Err(TransactionError::InvalidProducerIdMapping);
        }
        if (from_client && producer_epoch != current) || producer_epoch < current {
            return Err(TransactionError::ProducerFenced);
        }
        if self.pending.is_some() && !self.fencing() {
            return Err(TransactionError::ConcurrentTransactions);
        }
        use TransactionResult::{Abort, Commit};
        use TransactionState::*;
        match (self.state(), result) {
            (Ongoing, Commit) => Ok(EndDecision::Prepare(PrepareCommit)),
            (Ongoing, Abort) => Ok(EndDecision::Prepare(PrepareAbort)),
            (CompleteCommit, Commit) | (CompleteAbort, Abort) => Ok(EndDecision::AlreadyEnded),
            (PrepareCommit, Commit) | (PrepareAbort, Abort) => Err(TransactionError::ConcurrentTransactions),
            (Dead | PrepareEpochFence, _) => Err(TransactionError::UnknownServerError),
            _ => Err(TransactionError::InvalidTxnState),
        }
    }

    /// Version 2, as Kafka 4.x.
    fn ending_with_epoch_bump(
        &self,
        producer_id: i64,
        producer_epoch: i16,
        result: TransactionResult,
        from_client: bool,
    ) -> Result<EndDecision, TransactionError> {
        let fields = &self.fields;
        let current = fields.producer_epoch;
        let fencing = self.fencing();
        // First (KAFKA-18464): the producer may already end its next
        // transaction with the epoch (or producer id) the pending
        // completion moves to; it waits, it is not fenced.
        if self.pending.is_some() && !fencing {
            return Err(TransactionError::ConcurrentTransactions);
        }
        // Only an end under version 2 (the stored client version) bumped
        // the epoch or moved the producer id: after anything else (a
        // version 0/1 end, a fence at level 0/1) the epoch below is a
        // stale producer's (as Kafka's `endTxnEpochBumped`).
        let ended_by_version_2 = !fencing && fields.client_transaction_version.bumps_epoch();
        // The producer retries an end that bumped its epoch. The largest
        // epoch is only ever reached by a fence (a client's end at the
        // exhausted epoch moves to a new producer id): it is never handed
        // out, and the epoch below is the fenced producer's.
        let retry_on_epoch_bump =
            ended_by_version_2 && current != i16::MAX && i32::from(current) == i32::from(producer_epoch) + 1;
        // The producer retries an end that moved it to a new producer id.
        let retry_on_overflow = ended_by_version_2
            && fields.last_producer_id == producer_id
            && fields.producer_id != producer_id
            && producer_epoch == EXHAUSTED_EPOCH
            && current == 0;
        let retry = retry_on_epoch_bump || retry_on_overflow;
        use TransactionState::*;
        let valid_epoch = if fencing {
            (!from_client || producer_epoch == current) && producer_epoch >= current
        } else {
            match self.state() {
                Ongoing | Empty | Dead | PrepareEpochFence => producer_epoch == current,
                PrepareCommit | PrepareAbort => retry_on_epoch_bump,
                CompleteCommit | CompleteAbort => retry || producer_epoch == current,
            }
        };
        if fields.producer_id != producer_id && !retry_on_overflow {
            return Err(TransactionError::InvalidProducerIdMapping);
        }
        if !valid_epoch {
            return Err(TransactionError::ProducerFenced);
        }
        use TransactionResult::{Abort, Commit};
        match (self.state(), result) {
            (Ongoing, Commit) => Ok(EndDecision::Prepare(PrepareCommit)),
            (Ongoing, Abort) => Ok(EndDecision::Prepare(PrepareAbort)),
            (CompleteCommit, Commit) | (CompleteAbort, Abort) if retry => Ok(EndDecision::AlreadyEnded),
            (CompleteCommit, Abort) if retry => Err(TransactionError::InvalidTxnState),
            // An abort of a transaction the coordinator never saw a
            // partition of (the producer added them only locally).
            (Empty | CompleteCommit | CompleteAbort, Abort) => Ok(EndDecision::Prepare(PrepareAbort)),
            (PrepareCommit, Commit) | (PrepareAbort, Abort) => Err(TransactionError::ConcurrentTransactions),
            (Dead | PrepareEpochFence, _) => Err(TransactionError::UnknownServerError),
            _ => Err(TransactionError::InvalidTxnState),
        }
    }
}
