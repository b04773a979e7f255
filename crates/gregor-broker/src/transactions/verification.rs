//! Transaction verification (KIP-890 part 1, Kafka 3.9's
//! `transaction.partition.verification.enable`), the partition leader's
//! side: before a transactional batch opens its producer's transaction in a
//! partition led here, the transaction coordinator confirms the partition
//! is in the producer's ongoing transaction. The log hands out a guard
//! when it refuses such a batch (or when asked ahead, for TxnOffsetCommit);
//! the coordinator is asked — in process when this broker leads the
//! transactional id's `__transaction_state` partition, otherwise through
//! the server's verifier (AddPartitionsToTxn v4 with `verify_only`,
//! batched per coordinator as Kafka's `AddPartitionsToTxnManager` does);
//! then the batch is appended with the guard, which a marker landing in
//! between has invalidated.

use std::future::Future;
use std::time::Duration;

use gregor_log::{AppendOrigin, TopicPartition, TxnVerification, VerificationGuard};
use gregor_transaction::{partition_for, TransactionError, TRANSACTION_STATE_TOPIC};
use kafka_protocol::error::ResponseError;
use tokio::sync::oneshot;

use crate::broker::Broker;
use crate::errors::{invalid_records_error, log_error, replication_error};
use crate::replicas::{LeaderAppend, ReplicaAppendError};
use gregor_log::producer_state::ProducerError;
use gregor_log::{LogError, RecordErrors};

/// How long a leader waits for a coordinator on another broker (Kafka's
/// `request.timeout.ms` for its inter-broker send).
const REMOTE_TIMEOUT: Duration = Duration::from_secs(30);

/// The coordinator's answer per partition: verified, or the error it (or
/// the way to it) gave — Kafka's codes as the coordinator sends them
/// (PRODUCER_FENCED, TRANSACTION_ABORTABLE, …); the request's handler maps
/// them for its client ([`crate::errors::verification_error`]).
pub type Verdicts = Vec<(TopicPartition, Result<(), ResponseError>)>;

/// A verification for a coordinator on another broker, for the server's
/// verifier to send (AddPartitionsToTxn v4+, `verify_only`).
#[derive(Debug)]
pub struct RemoteVerification {
    /// The broker leading the transactional id's `__transaction_state`
    /// partition.
    pub coordinator: i32,
    /// The transactional id.
    pub transactional_id: String,
    /// The producer.
    pub producer_id: i64,
    /// Its epoch.
    pub producer_epoch: i16,
    /// The partitions to verify (or add).
    pub partitions: Vec<TopicPartition>,
    /// Add the partitions to the transaction instead of verifying them
    /// (transactions v2's implicit add: AddPartitionsToTxn v5, not
    /// `verify_only`).
    pub add: bool,
    /// Where the verdicts go, one per partition.
    pub reply: oneshot::Sender<Verdicts>,
}

/// A transactional batch that would open its producer's transaction and
/// was not appended: verify, then append again with `guard`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unverified {
    /// The batch's producer.
    pub producer_id: i64,
    /// Its epoch.
    pub producer_epoch: i16,
    /// The guard to append with once verified.
    pub guard: VerificationGuard,
}

/// Why a producer's append did not happen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProduceRefusal {
    /// Refused: the error to answer, and what the log said.
    Refused(ResponseError, String),
    /// Refused for some of its records (KIP-467): the error to answer
    /// (INVALID_RECORD or INVALID_TIMESTAMP) and each record's.
    InvalidRecords(ResponseError, RecordErrors),
    /// Not yet: the transaction it opens must be verified first.
    Unverified(Unverified),
    /// The transaction coordinator did not confirm the transaction the
    /// batch opens: the error to answer (nothing was asked of the log).
    NotVerified(ResponseError),
}

/// The verdicts of an ask: at once (`Err`), or the remote answer, for up
/// to [`REMOTE_TIMEOUT`] (NETWORK_EXCEPTION past that).
pub(super) async fn remote_answer(
    pending: Result<oneshot::Receiver<Verdicts>, Verdicts>,
    partitions: Vec<TopicPartition>,
) -> Verdicts {
    match pending {
        Err(verdicts) => verdicts,
        Ok(answer) => match tokio::time::timeout(REMOTE_TIMEOUT, answer).await {
            Ok(Ok(verdicts)) => verdicts,
            _ => all(&partitions, ResponseError::NetworkException),
        },
    }
}

/// The coordinator's per-partition results as verdicts (its errors as
/// their Kafka codes).
pub(super) fn verdicts_of(results: Vec<(TopicPartition, Result<(), TransactionError>)>) -> Verdicts {
    results
        .into_iter()
        .map(|(tp, r)| (tp, r.map_err(|e| coordinator_error(e.code()))))
        .collect()
}

/// Every partition of `partitions` with `error`.
pub(super) fn all(partitions: &[TopicPartition], error: ResponseError) -> Verdicts {
    partitions.iter().map(|tp| (tp.clone(), Err(error))).collect()
}

impl Broker {
    /// How an append from a client or coordinator is checked for
    /// verification: with `guard` when verification is on or the request
    /// adds its partitions implicitly (`implicit_add`: transactions v2,
    /// whatever the setting), not at all otherwise.
    pub fn txn_verification(&self, guard: VerificationGuard, implicit_add: bool) -> TxnVerification {
        if implicit_add || self.config().transaction_partition_verification {
            TxnVerification::Guard(guard)
        } else {
            TxnVerification::Skip
        }
    }

    /// Appends a producer's batches to a partition this broker leads. With
    /// transaction verification on, a transactional batch that would open
    /// its producer's transaction needs `guard` (from an earlier refusal,
    /// then verified); without one ([`VerificationGuard::NONE`]) it is
    /// refused as [`ProduceRefusal::Unverified`], nothing written. With
    /// `implicit_add` (Produce v12+) such a batch needs a guard whatever
    /// the setting: its partition is added to the transaction first.
    pub fn append(
        &self,
        topic: &str,
        partition: i32,
        batches: &[u8],
        acks_all: bool,
        guard: VerificationGuard,
        implicit_add: bool,
    ) -> Result<LeaderAppend, ProduceRefusal> {
        let tp = self
            .topics()
            .known_partition(topic, partition)
            .map_err(|e| ProduceRefusal::Refused(e, String::new()))?;
        let verification = self.txn_verification(guard, implicit_add);
        self.replicas()
            .append_as_leader_verified(&tp, batches, acks_all, AppendOrigin::Client, verification)
            .map_err(|e| match e {
                ReplicaAppendError::Log(LogError::Producer(ProducerError::TransactionNotVerified {
                    producer_id,
                    producer_epoch,
                    guard: Some(guard),
                })) => ProduceRefusal::Unverified(Unverified {
                    producer_id,
                    producer_epoch,
                    guard,
                }),
                ReplicaAppendError::Log(LogError::InvalidRecords(records)) => {
                    ProduceRefusal::InvalidRecords(invalid_records_error(&records), records)
                }
                ReplicaAppendError::Replication(r) => ProduceRefusal::Refused(replication_error(r), r.to_string()),
                ReplicaAppendError::Log(l) => ProduceRefusal::Refused(log_error(&l), l.to_string()),
            })
    }

    /// Starts verifying the transaction `producer_id` would open in `tp`
    /// (led here) with a batch of no sequence, as a TxnOffsetCommit's:
    /// the guard to append with once verified, `None` when its transaction
    /// is open there already or verification is off (and not
    /// `implicit_add`: TxnOffsetCommit v5+ adds the partition).
    pub fn start_txn_verification(
        &self,
        tp: &TopicPartition,
        producer_id: i64,
        producer_epoch: i16,
        implicit_add: bool,
    ) -> Result<Option<VerificationGuard>, ResponseError> {
        if !implicit_add && !self.config().transaction_partition_verification {
            return Ok(None);
        }
        self.replicas()
            .start_txn_verification(tp, producer_id, producer_epoch, -1)
            .map_err(replication_error)
    }

    /// Asks `transactional_id`'s coordinator whether each of `partitions`
    /// is in the ongoing transaction of `producer_id` at `producer_epoch`:
    /// at once when this broker leads the id's `__transaction_state`
    /// partition, otherwise through the server's verifier (up to 30 s;
    /// NETWORK_EXCEPTION past that, or with no verifier running).
    /// COORDINATOR_NOT_AVAILABLE when the partition has no leader.
    pub fn verify_transaction(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        partitions: Vec<TopicPartition>,
    ) -> impl Future<Output = Verdicts> + Send + 'static {
        let pending = match self.verify_here(transactional_id, producer_id, producer_epoch, &partitions) {
            Some(verdicts) => Err(verdicts),
            None => self.ask_remotely(transactional_id, producer_id, producer_epoch, &partitions, false),
        };
        remote_answer(pending, partitions)
    }

    /// The verdicts at once when no other broker need be asked: this
    /// broker coordinates the id (a read of the coordinator's memory), or
    /// nobody does (COORDINATOR_NOT_AVAILABLE). `None`: another broker is
    /// the coordinator.
    pub fn verify_here(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        partitions: &[TopicPartition],
    ) -> Option<Verdicts> {
        match self.transaction_coordinator_of(transactional_id) {
            None => Some(all(partitions, ResponseError::CoordinatorNotAvailable)),
            Some(local) if local == self.config().node_id => {
                let coordinator = self.transactions().coordinator();
                let verdicts = coordinator.verify_partitions(transactional_id, producer_id, producer_epoch, partitions);
                Some(verdicts_of(verdicts))
            }
            Some(_) => None,
        }
    }

    /// The broker leading `transactional_id`'s `__transaction_state`
    /// partition, as the cluster view has it.
    pub(super) fn transaction_coordinator_of(&self, transactional_id: &str) -> Option<i32> {
        let state_partition = partition_for(transactional_id, self.config().transaction_state.partitions);
        self.replicas()
            .partition_record(&TopicPartition::new(
                TRANSACTION_STATE_TOPIC,
                state_partition.unsigned_abs(),
            ))
            .map(|r| r.state.leader)
            .filter(|leader| *leader >= 0)
    }

    /// Queues a verification (or with `add` an add) for the coordinator
    /// on another broker; its answer, or the verdicts when it cannot be
    /// queued.
    pub(super) fn ask_remotely(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        partitions: &[TopicPartition],
        add: bool,
    ) -> Result<oneshot::Receiver<Verdicts>, Verdicts> {
        let Some(coordinator) = self.transaction_coordinator_of(transactional_id) else {
            return Err(all(partitions, ResponseError::CoordinatorNotAvailable));
        };
        let (reply, answer) = oneshot::channel();
        let request = RemoteVerification {
            coordinator,
            transactional_id: transactional_id.to_string(),
            producer_id,
            producer_epoch,
            partitions: partitions.to_vec(),
            add,
            reply,
        };
        match self.transactions().queue_verification(request) {
            Ok(()) => Ok(answer),
            Err(()) => Err(all(partitions, ResponseError::NetworkException)),
        }
    }
}

/// A coordinator's error code as a [`ResponseError`].
pub fn coordinator_error(code: i16) -> ResponseError {
    ResponseError::try_from_code(code).unwrap_or(ResponseError::UnknownServerError)
}
