//! The one place where gregor's errors become Kafka error codes.

use gregor_log::producer_state::ProducerError;
use gregor_log::{LogError, RecordErrors};
use kafka_protocol::error::ResponseError;

/// The Kafka error code for a log error, as clients expect to retry on it.
pub fn code_for(error: &LogError) -> i16 {
    log_error(error).code()
}

/// The Kafka error for a log error.
pub fn log_error(error: &LogError) -> ResponseError {
    match error {
        LogError::CorruptBatch { .. } => ResponseError::CorruptMessage,
        LogError::RecordTooLarge { .. } => ResponseError::MessageTooLarge,
        LogError::InvalidAppend(_) | LogError::OffsetsOutOfOrder { .. } => ResponseError::InvalidRecord,
        LogError::InvalidRecords(records) => invalid_records_error(records),
        LogError::Producer(ProducerError::InvalidEpoch { .. }) => ResponseError::InvalidProducerEpoch,
        LogError::Producer(ProducerError::OutOfOrderSequence { .. }) => ResponseError::OutOfOrderSequenceNumber,
        LogError::Producer(ProducerError::CoordinatorFenced { .. }) => ResponseError::TransactionCoordinatorFenced,
        LogError::Producer(ProducerError::InvalidTxnState { .. } | ProducerError::TransactionNotVerified { .. }) => {
            ResponseError::InvalidTxnState
        }
        LogError::ControlBatchFromClient { .. } => ResponseError::InvalidRecord,
        LogError::OffsetOutOfRange { .. } => ResponseError::OffsetOutOfRange,
        LogError::Offline(_) => ResponseError::KafkaStorageError,
        LogError::Io { .. } => ResponseError::KafkaStorageError,
        LogError::Partition(_) => ResponseError::UnknownTopicOrPartition,
        LogError::InvalidConfig(_) => ResponseError::InvalidConfig,
        _ => ResponseError::UnknownServerError,
    }
}

/// The Kafka error for a batch refused for some of its records: as
/// Kafka's `processRecordErrors`, INVALID_TIMESTAMP when a timestamp was
/// among the refusals, INVALID_RECORD otherwise.
pub fn invalid_records_error(records: &RecordErrors) -> ResponseError {
    if records.invalid_timestamp {
        ResponseError::InvalidTimestamp
    } else {
        ResponseError::InvalidRecord
    }
}

/// The Kafka error code for a group-protocol error.
pub fn group_code(error: gregor_group::GroupError) -> i16 {
    use gregor_group::GroupError as G;
    let kafka = match error {
        G::UnknownMemberId => ResponseError::UnknownMemberId,
        G::IllegalGeneration => ResponseError::IllegalGeneration,
        G::RebalanceInProgress => ResponseError::RebalanceInProgress,
        G::InconsistentGroupProtocol => ResponseError::InconsistentGroupProtocol,
        G::MemberIdRequired => ResponseError::MemberIdRequired,
        G::FencedInstanceId => ResponseError::FencedInstanceId,
        G::InvalidSessionTimeout => ResponseError::InvalidSessionTimeout,
        G::NonEmptyGroup => ResponseError::NonEmptyGroup,
        G::GroupIdNotFound => ResponseError::GroupIdNotFound,
        G::GroupSubscribedToTopic => ResponseError::GroupSubscribedToTopic,
        G::InvalidGroupId => ResponseError::InvalidGroupId,
        G::CoordinatorNotAvailable => ResponseError::CoordinatorNotAvailable,
        G::NotCoordinator => ResponseError::NotCoordinator,
        G::UnstableOffsetCommit => ResponseError::UnstableOffsetCommit,
        G::InvalidProducerEpoch => ResponseError::InvalidProducerEpoch,
        G::InvalidTxnState => ResponseError::InvalidTxnState,
        G::FencedMemberEpoch => ResponseError::FencedMemberEpoch,
        G::StaleMemberEpoch => ResponseError::StaleMemberEpoch,
        G::UnsupportedAssignor => ResponseError::UnsupportedAssignor,
        G::UnreleasedInstanceId => ResponseError::UnreleasedInstanceId,
        G::GroupMaxSizeReached => ResponseError::GroupMaxSizeReached,
        G::InvalidRequest(_) => ResponseError::InvalidRequest,
        G::InvalidRegularExpression => ResponseError::InvalidRegularExpression,
    };
    kafka.code()
}

/// The first Produce version whose clients know TRANSACTION_ABORTABLE.
pub const PRODUCE_ABORTABLE_FROM: i16 = 11;
/// The first Produce version whose transactional batches add their
/// partition to the transaction (transactions v2, KIP-890 part 2).
pub const PRODUCE_ADD_FROM: i16 = 12;

/// A transaction coordinator's verification (or implicit add) verdict
/// (KIP-890) as a partition leader answers a Produce of `version`: as
/// Kafka's `AddPartitionsToTxnManager`, PRODUCER_FENCED becomes
/// INVALID_PRODUCER_EPOCH and TRANSACTION_ABORTABLE becomes
/// INVALID_TXN_STATE below v11; then, as its `ReplicaManager`, the
/// retriable errors older clients would not retry become
/// NOT_ENOUGH_REPLICAS — CONCURRENT_TRANSACTIONS only below v12 (a
/// transactions v2 producer retries it).
pub fn produce_verification_error(error: ResponseError, version: i16) -> ResponseError {
    use ResponseError as E;
    match verification_error(error, version >= PRODUCE_ABORTABLE_FROM) {
        E::ConcurrentTransactions if version >= PRODUCE_ADD_FROM => E::ConcurrentTransactions,
        E::ConcurrentTransactions
        | E::NetworkException
        | E::CoordinatorLoadInProgress
        | E::CoordinatorNotAvailable
        | E::NotCoordinator => E::NotEnoughReplicas,
        other => other,
    }
}

/// The first TxnOffsetCommit version whose clients know
/// TRANSACTION_ABORTABLE.
pub const TXN_OFFSET_COMMIT_ABORTABLE_FROM: i16 = 4;

/// A transaction coordinator's verification (or implicit add) verdict
/// (KIP-890) as the group coordinator answers a TxnOffsetCommit of
/// `version`: PRODUCER_FENCED becomes INVALID_PRODUCER_EPOCH,
/// TRANSACTION_ABORTABLE becomes INVALID_TXN_STATE below v4, then
/// NETWORK_EXCEPTION becomes COORDINATOR_LOAD_IN_PROGRESS (Kafka's
/// `maybeConvertOffsetCommitError`: clients retry it without looking the
/// coordinator up again).
pub fn offsets_verification_error(error: ResponseError, version: i16) -> ResponseError {
    match verification_error(error, version >= TXN_OFFSET_COMMIT_ABORTABLE_FROM) {
        ResponseError::NetworkException => ResponseError::CoordinatorLoadInProgress,
        other => other,
    }
}

/// Kafka's `AddPartitionsToTxnManager` mapping of a verdict.
fn verification_error(error: ResponseError, abortable_known: bool) -> ResponseError {
    match error {
        ResponseError::ProducerFenced => ResponseError::InvalidProducerEpoch,
        ResponseError::TransactionAbortable if !abortable_known => ResponseError::InvalidTxnState,
        other => other,
    }
}

/// The Kafka error for a replication refusal.
pub fn replication_error(error: gregor_replication::ReplicationError) -> ResponseError {
    use gregor_replication::ReplicationError as R;
    match error {
        R::NotLeaderOrFollower | R::UnknownReplica => ResponseError::NotLeaderOrFollower,
        R::FencedLeaderEpoch => ResponseError::FencedLeaderEpoch,
        R::UnknownLeaderEpoch => ResponseError::UnknownLeaderEpoch,
        R::NotEnoughReplicas => ResponseError::NotEnoughReplicas,
        R::NotEnoughReplicasAfterAppend => ResponseError::NotEnoughReplicasAfterAppend,
        R::RequestTimedOut => ResponseError::RequestTimedOut,
        R::StaleControllerEpoch => ResponseError::StaleControllerEpoch,
        R::StaleLeaderEpoch => ResponseError::FencedLeaderEpoch,
        R::KafkaStorageError => ResponseError::KafkaStorageError,
    }
}
