//! The transaction protocol's vocabulary: states, results, errors with
//! their Kafka codes, settings with Kafka's names and defaults, and what
//! DescribeTransactions and ListTransactions show. Plain data, shared by
//! the state machine and its driver.

use gregor_log::TopicPartition;

/// Kafka's "no producer id" (`RecordBatch.NO_PRODUCER_ID`).
pub const NO_PRODUCER_ID: i64 = -1;
/// Kafka's "no producer epoch" (`RecordBatch.NO_PRODUCER_EPOCH`).
pub const NO_PRODUCER_EPOCH: i16 = -1;

/// The state of a transactional id, with Kafka's ids (stored in
/// `__transaction_state`) and names (shown by Describe/ListTransactions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TransactionState {
    /// No transaction open.
    Empty,
    /// A transaction is open: partitions were added.
    Ongoing,
    /// EndTxn(commit) was stored; markers are being written.
    PrepareCommit,
    /// EndTxn(abort) was stored; markers are being written.
    PrepareAbort,
    /// Every marker of a commit was written.
    CompleteCommit,
    /// Every marker of an abort was written.
    CompleteAbort,
    /// The id is expiring (only ever a pending state here; its record is a
    /// tombstone).
    Dead,
    /// A producer's epoch is being bumped to fence it before its open
    /// transaction is aborted (only ever a pending state).
    PrepareEpochFence,
}

impl TransactionState {
    /// Every state, in id order.
    pub const ALL: [Self; 8] = [
        Self::Empty,
        Self::Ongoing,
        Self::PrepareCommit,
        Self::PrepareAbort,
        Self::CompleteCommit,
        Self::CompleteAbort,
        Self::Dead,
        Self::PrepareEpochFence,
    ];

    /// Kafka's id of the state (`TransactionState.id`).
    pub fn id(self) -> i8 {
        self as i8
    }

    /// The state of a stored id; `None` for an id Kafka does not have.
    pub fn from_id(id: i8) -> Option<Self> {
        Self::ALL.get(usize::try_from(id).ok()?).copied()
    }

    /// Kafka's name ("Empty", "Ongoing", …).
    pub fn name(self) -> &'static str {
        match self {
            Self::Empty => "Empty",
            Self::Ongoing => "Ongoing",
            Self::PrepareCommit => "PrepareCommit",
            Self::PrepareAbort => "PrepareAbort",
            Self::CompleteCommit => "CompleteCommit",
            Self::CompleteAbort => "CompleteAbort",
            Self::Dead => "Dead",
            Self::PrepareEpochFence => "PrepareEpochFence",
        }
    }

    /// The state named `name` (ListTransactions' state filters).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.name() == name)
    }

    /// The states a transition to `self` may start from (Kafka's
    /// `validPreviousStates`).
    pub(crate) fn valid_previous(self) -> &'static [Self] {
        use TransactionState::*;
        match self {
            Empty => &[Empty, CompleteCommit, CompleteAbort],
            Ongoing => &[Ongoing, Empty, CompleteCommit, CompleteAbort],
            PrepareCommit => &[Ongoing],
            // From Empty and Complete* only under transaction version 2
            // (`TxnMetadata::prepare_end` refuses the others).
            PrepareAbort => &[Ongoing, PrepareEpochFence, Empty, CompleteCommit, CompleteAbort],
            CompleteCommit => &[PrepareCommit],
            CompleteAbort => &[PrepareAbort],
            Dead => &[Empty, CompleteAbort, CompleteCommit],
            PrepareEpochFence => &[Ongoing],
        }
    }

    /// Whether an idle id in this state may expire.
    pub(crate) fn expiration_allowed(self) -> bool {
        matches!(self, Self::Empty | Self::CompleteCommit | Self::CompleteAbort)
    }
}

/// How a transaction ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TransactionResult {
    /// Its records become visible.
    Commit,
    /// Its records are discarded.
    Abort,
}

/// The transaction version (KIP-890 `transaction.version`) a request is
/// served under, and a transaction was last handled under. The broker
/// decides a request's from its API version alone (EndTxn v5+,
/// AddPartitionsToTxn v4+ from a broker adding: [`Self::V2`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum TransactionVersion {
    /// Level 0: transactions as in Kafka 3.x.
    #[default]
    V0,
    /// Level 1: the flexible `__transaction_state` value; no change in
    /// behaviour.
    V1,
    /// Level 2: every ended transaction bumps the producer epoch, and
    /// partitions join a transaction implicitly.
    V2,
}

impl TransactionVersion {
    /// The version of `level` (levels above 2 are served as 2).
    pub fn from_level(level: i16) -> Self {
        match level {
            i16::MIN..=0 => Self::V0,
            1 => Self::V1,
            _ => Self::V2,
        }
    }

    /// The feature level (0, 1 or 2).
    pub fn level(self) -> i16 {
        self as i16
    }

    /// Whether ending a transaction bumps the producer epoch (level 2).
    pub fn bumps_epoch(self) -> bool {
        self == Self::V2
    }
}

/// A producer id and epoch (InitProducerId's answer, and EndTxn's under
/// transaction version 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ProducerIdAndEpoch {
    /// The producer id.
    pub producer_id: i64,
    /// Its epoch.
    pub producer_epoch: i16,
}

impl ProducerIdAndEpoch {
    /// No producer id and epoch (−1, −1): what EndTxn answers under
    /// transaction versions 0 and 1 and with an error.
    pub const NONE: Self = Self {
        producer_id: NO_PRODUCER_ID,
        producer_epoch: NO_PRODUCER_EPOCH,
    };
}

/// Errors of the transaction APIs, each one a Kafka error code.
///
/// Kafka answers some of them differently by API version; the wire layer
/// maps them (see [`TransactionError::ProducerFenced`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TransactionError {
    /// UNKNOWN_SERVER_ERROR (−1): the producer id generator failed in a
    /// way Kafka has no code for, or stored state is inconsistent.
    #[error("unknown server error")]
    UnknownServerError,
    /// COORDINATOR_LOAD_IN_PROGRESS (14): the id's `__transaction_state`
    /// partition is being loaded; retry.
    #[error("coordinator load in progress")]
    CoordinatorLoadInProgress,
    /// COORDINATOR_NOT_AVAILABLE (15): the write to `__transaction_state`
    /// failed (not enough replicas, timeout); retry.
    #[error("coordinator not available")]
    CoordinatorNotAvailable,
    /// NOT_COORDINATOR (16): this broker does not lead the id's partition
    /// (or stopped leading it while the request waited); find the
    /// coordinator again.
    #[error("not coordinator")]
    NotCoordinator,
    /// INVALID_REQUEST (42): an empty transactional id.
    #[error("invalid request")]
    InvalidRequest,
    /// INVALID_PRODUCER_EPOCH (47). The coordinator itself answers
    /// [`Self::ProducerFenced`]; Kafka sends this code instead to clients
    /// that predate PRODUCER_FENCED: InitProducerId v0–v3, EndTxn v0–v1,
    /// AddPartitionsToTxn v0–v1, AddOffsetsToTxn v0–v1.
    #[error("invalid producer epoch")]
    InvalidProducerEpoch,
    /// INVALID_TXN_STATE (48): EndTxn with a result the state does not
    /// allow (abort after commit, end with no transaction open, …).
    #[error("invalid transaction state")]
    InvalidTxnState,
    /// INVALID_PRODUCER_ID_MAPPING (49): the transactional id is unknown or
    /// mapped to another producer id.
    #[error("invalid producer id mapping")]
    InvalidProducerIdMapping,
    /// INVALID_TRANSACTION_TIMEOUT (50): timeout ≤ 0 or above
    /// `transaction.max.timeout.ms`.
    #[error("invalid transaction timeout")]
    InvalidTransactionTimeout,
    /// CONCURRENT_TRANSACTIONS (51): a transaction is completing (or
    /// another state change is being written); retry with backoff.
    #[error("concurrent transactions")]
    ConcurrentTransactions,
    /// PRODUCER_FENCED (90): a newer producer with the same transactional
    /// id took over (its epoch is higher). The wire layer answers
    /// [`Self::InvalidProducerEpoch`] instead to InitProducerId v0–v3,
    /// EndTxn v0–v1, AddPartitionsToTxn v0–v1 and AddOffsetsToTxn v0–v1.
    #[error("producer fenced")]
    ProducerFenced,
    /// TRANSACTIONAL_ID_NOT_FOUND (105): DescribeTransactions of an id not
    /// known (or expiring).
    #[error("transactional id not found")]
    TransactionalIdNotFound,
    /// TRANSACTION_ABORTABLE (120, KIP-890): a verified partition is not
    /// in the producer's ongoing transaction. Partition leaders answer
    /// INVALID_TXN_STATE instead to clients that predate the code.
    #[error("transaction abortable")]
    TransactionAbortable,
}

impl TransactionError {
    /// Kafka's error code.
    pub fn code(self) -> i16 {
        match self {
            Self::UnknownServerError => -1,
            Self::CoordinatorLoadInProgress => 14,
            Self::CoordinatorNotAvailable => 15,
            Self::NotCoordinator => 16,
            Self::InvalidRequest => 42,
            Self::InvalidProducerEpoch => 47,
            Self::InvalidTxnState => 48,
            Self::InvalidProducerIdMapping => 49,
            Self::InvalidTransactionTimeout => 50,
            Self::ConcurrentTransactions => 51,
            Self::ProducerFenced => 90,
            Self::TransactionalIdNotFound => 105,
            Self::TransactionAbortable => 120,
        }
    }

    /// The error as answered to a client of an API version that predates
    /// PRODUCER_FENCED (`fenced_code_known` false): INVALID_PRODUCER_EPOCH.
    pub fn for_version(self, fenced_code_known: bool) -> Self {
        match self {
            Self::ProducerFenced if !fenced_code_known => Self::InvalidProducerEpoch,
            other => other,
        }
    }
}

/// Settings, with Kafka's names and defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionSettings {
    /// `transaction.max.timeout.ms` (900000): the longest transaction
    /// timeout a producer may ask for.
    pub max_timeout_ms: i32,
    /// `transactional.id.expiration.ms` (604800000): an id idle this long
    /// (no transaction open) is forgotten.
    pub transactional_id_expiration_ms: i64,
    /// `transaction.abort.timed.out.transaction.cleanup.interval.ms`
    /// (10000): how often timed-out transactions are looked for.
    pub abort_timed_out_interval_ms: i64,
    /// `transaction.remove.expired.transaction.cleanup.interval.ms`
    /// (3600000): how often expired ids are looked for.
    pub remove_expired_interval_ms: i64,
    /// `transaction.state.log.num.partitions` (50).
    pub state_log_partitions: u32,
    /// `offsets.topic.num.partitions` (50): where AddOffsetsToTxn finds a
    /// group's `__consumer_offsets` partition.
    pub offsets_topic_partitions: u32,
    /// The cluster's finalized `transaction.version` level (0..=2, default
    /// 0): what the coordinator's own aborts (timeouts, fencing) run
    /// under. At 2 such an abort bumps the epoch once more than the fence,
    /// so the fenced producer's EndTxn is refused.
    pub transaction_version: u8,
}

impl Default for TransactionSettings {
    fn default() -> Self {
        Self {
            max_timeout_ms: 900_000,
            transactional_id_expiration_ms: 604_800_000,
            abort_timed_out_interval_ms: 10_000,
            remove_expired_interval_ms: 3_600_000,
            state_log_partitions: 50,
            offsets_topic_partitions: 50,
            transaction_version: 0,
        }
    }
}

/// DescribeTransactions for one id that is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionDescription {
    /// The transactional id.
    pub transactional_id: String,
    /// Its state.
    pub state: TransactionState,
    /// Its producer id.
    pub producer_id: i64,
    /// Its producer epoch.
    pub producer_epoch: i16,
    /// Its transaction timeout (ms).
    pub timeout_ms: i32,
    /// When the open transaction started (ms; −1: none).
    pub start_ms: i64,
    /// The partitions in the transaction.
    pub partitions: Vec<TopicPartition>,
}

/// One entry of ListTransactions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedTransaction {
    /// The transactional id.
    pub transactional_id: String,
    /// Its producer id.
    pub producer_id: i64,
    /// Its state.
    pub state: TransactionState,
}

/// ListTransactions' answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionListing {
    /// COORDINATOR_LOAD_IN_PROGRESS while a partition loads (Kafka lists
    /// nothing then); otherwise `None`.
    pub error: Option<TransactionError>,
    /// State filters that name no state (echoed back, as Kafka does).
    pub unknown_state_filters: Vec<String>,
    /// The transactions that pass the filters.
    pub transactions: Vec<ListedTransaction>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_names_are_kafkas() {
        for (i, s) in TransactionState::ALL.into_iter().enumerate() {
            assert_eq!(s.id() as usize, i);
            assert_eq!(TransactionState::from_id(s.id()), Some(s));
            assert_eq!(TransactionState::from_name(s.name()), Some(s));
        }
        assert_eq!(TransactionState::PrepareEpochFence.id(), 7);
        assert_eq!(TransactionState::from_id(8), None);
        assert_eq!(TransactionState::from_id(-1), None);
    }

    #[test]
    fn codes_are_kafkas() {
        assert_eq!(TransactionError::ConcurrentTransactions.code(), 51);
        assert_eq!(TransactionError::ProducerFenced.code(), 90);
        assert_eq!(TransactionError::ProducerFenced.for_version(false).code(), 47);
        assert_eq!(TransactionError::ProducerFenced.for_version(true).code(), 90);
        assert_eq!(TransactionError::TransactionalIdNotFound.code(), 105);
    }
}
