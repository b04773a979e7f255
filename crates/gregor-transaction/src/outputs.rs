//! What the state machine gives back and is handed: answers addressed to
//! the requests waiting for them, writes to `__transaction_state`, marker
//! requests for the data partitions, and the producer id generator.

use gregor_log::TopicPartition;

use crate::protocol::{ProducerIdAndEpoch, TransactionError, TransactionResult};

/// A stored record: key, and value or `None` for a tombstone.
pub type StoredRecord = (Vec<u8>, Option<Vec<u8>>);

/// Names a request the caller waits on; its answer carries it back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RequestId(pub u64);

/// Names a write handed out with [`Output::Write`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WriteId(pub(crate) u64);

/// Names a marker request handed out with [`Output::SendMarkers`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MarkerId(pub(crate) u64);

/// The answer to one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// InitProducerId.
    InitProducerId(Result<ProducerIdAndEpoch, TransactionError>),
    /// AddPartitionsToTxn (v0–v3): one result per partition asked for
    /// (Kafka's coordinator decides for the whole set; partitions the wire
    /// layer refused itself are not among them).
    AddPartitions(Vec<(TopicPartition, Result<(), TransactionError>)>),
    /// AddOffsetsToTxn.
    AddOffsets(Result<(), TransactionError>),
    /// EndTxn: under transaction version 2 the producer id and epoch the
    /// producer continues with; (−1, −1) under versions 0 and 1.
    EndTxn(Result<ProducerIdAndEpoch, TransactionError>),
}

/// Records for the caller to append to partition `partition` of
/// `__transaction_state`, as leader at `coordinator_epoch` (an append at
/// an older leader epoch must be refused), then report with
/// [`crate::TransactionStateMachine::persisted`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Write {
    /// Which write this is.
    pub id: WriteId,
    /// The `__transaction_state` partition.
    pub partition: i32,
    /// Its leader epoch when the write was decided.
    pub coordinator_epoch: i32,
    /// The records, in order (one state change, or a batch of tombstones).
    pub records: Vec<StoredRecord>,
}

/// Transaction markers to write (WriteTxnMarkers) to every partition of a
/// transaction: the sender delivers them to the partitions' leaders,
/// retrying until each partition has its marker (a partition that no
/// longer exists counts as done, as Kafka drops it), then reports with
/// [`crate::TransactionStateMachine::markers_written`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarkerRequest {
    /// Which marker request this is.
    pub id: MarkerId,
    /// The transactional id (for logs).
    pub transactional_id: String,
    /// The producer whose transaction ends.
    pub producer_id: i64,
    /// Its epoch (a fenced transaction's markers carry the bumped epoch).
    pub producer_epoch: i16,
    /// The coordinator's epoch, for the partition leaders to refuse
    /// markers of a deposed coordinator.
    pub coordinator_epoch: i32,
    /// Commit or abort.
    pub result: TransactionResult,
    /// The partitions of the transaction.
    pub partitions: Vec<TopicPartition>,
}

/// What the state machine asks of its caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Answer `request` with `response` (each request is answered once).
    Respond {
        /// The request answered.
        request: RequestId,
        /// Its answer.
        response: Response,
    },
    /// Append these records, then report the outcome.
    Write(Write),
    /// Deliver these markers, then report.
    SendMarkers(MarkerRequest),
}

/// Where new producer ids come from (Kafka's `ProducerIdManager`).
pub trait ProducerIdGenerator {
    /// A producer id never handed out before, or the error to answer
    /// (Kafka answers COORDINATOR_LOAD_IN_PROGRESS while no block of ids
    /// is available yet).
    fn next_producer_id(&mut self) -> Result<i64, TransactionError>;
}

impl<F: FnMut() -> Result<i64, TransactionError>> ProducerIdGenerator for F {
    fn next_producer_id(&mut self) -> Result<i64, TransactionError> {
        self()
    }
}

/// Adds the answer to `request` to `out`.
pub(crate) fn respond(out: &mut Vec<Output>, request: RequestId, response: Response) {
    out.push(Output::Respond { request, response });
}
