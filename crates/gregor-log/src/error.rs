//! Errors of the storage engine.

use std::fmt;
use std::io;
use std::path::PathBuf;

use crate::batch::BatchError;

/// What can go wrong in the log. Every variant says what to do about it;
/// none of them is a panic.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// An I/O operation failed; `context` says which.
    #[error("{context}: {source}")]
    Io {
        /// What the log was doing.
        context: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// A batch handed to `append` is malformed or corrupt.
    #[error("corrupt record batch at byte {position} of the append: {source}")]
    CorruptBatch {
        /// Position of the bad batch in the appended bytes.
        position: usize,
        /// What is wrong with it.
        #[source]
        source: BatchError,
    },
    /// A batch is larger than `max.message.bytes`.
    #[error("record batch of {size} bytes exceeds max.message.bytes {max}")]
    RecordTooLarge {
        /// The batch size.
        size: usize,
        /// The configured limit.
        max: usize,
    },
    /// Records of a producer's batch the log refused (a record without a
    /// key on a compacted log, a timestamp out of bounds), each named by
    /// its index in the batch; nothing was written.
    #[error("{0}")]
    InvalidRecords(RecordErrors),
    /// An idempotent producer's batch out of sequence, or of a fenced epoch.
    #[error("{0}")]
    Producer(#[from] crate::producer_state::ProducerError),
    /// A control batch (transaction marker) in a producer's append: only
    /// the transaction coordinator writes them (Kafka answers INVALID_RECORD).
    #[error("a client may not append a control batch (batch at byte {position} of the append)")]
    ControlBatchFromClient {
        /// Position of the batch in the appended bytes.
        position: usize,
    },
    /// An append without batches, or a batch without records.
    #[error("invalid append: {0}")]
    InvalidAppend(&'static str),
    /// Replicated batches whose offsets do not continue the log.
    #[error("out-of-order offsets: batch at offset {offset} does not follow log end offset {log_end}")]
    OffsetsOutOfOrder {
        /// The batch's base offset.
        offset: u64,
        /// The log's next offset.
        log_end: u64,
    },
    /// An offset outside `[log start, log end]`.
    #[error("offset {offset} is out of range [{log_start}, {log_end}]")]
    OffsetOutOfRange {
        /// The requested offset.
        offset: u64,
        /// First readable offset.
        log_start: u64,
        /// Next offset to be written.
        log_end: u64,
    },
    /// The on-disk state cannot be used (not repairable by truncation).
    #[error("log at {dir} cannot be opened: {reason}")]
    Unrecoverable {
        /// The partition or log directory.
        dir: PathBuf,
        /// Why.
        reason: String,
    },
    /// A checkpoint file is malformed.
    #[error("malformed checkpoint file {path}: {reason}")]
    BadCheckpoint {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A configuration value is out of range.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// A partition that does not exist, or exists already.
    #[error("{0}")]
    Partition(String),
    /// An I/O error (a failed write, flush, roll) took the log or its whole
    /// directory offline: it refuses writes (the directory, reads too)
    /// rather than risk acknowledging data that is not on disk.
    #[error("log is offline after an I/O error: {0}")]
    Offline(String),
}

/// The records of a producer's batch the log refused, each with its
/// index in the batch and why, as Kafka's `RecordValidationException`
/// carries them (KIP-467: the Produce answer names them, so a client can
/// tell its application which record was at fault).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordErrors {
    /// Whether a timestamp was among the refusals: Kafka then answers
    /// INVALID_TIMESTAMP for the batch, otherwise INVALID_RECORD.
    pub invalid_timestamp: bool,
    /// (index of the record in its batch, why it was refused), in order.
    pub records: Vec<(i32, String)>,
}

/// Kafka's message for the whole batch (its `processRecordErrors`): at
/// most the first three records' errors are named.
impl fmt::Display for RecordErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.invalid_timestamp {
            return f.write_str("One or more records have been rejected due to invalid timestamp");
        }
        write!(
            f,
            "One or more records have been rejected due to {} record errors in total, and only showing the first \
             three errors at most: [",
            self.records.len()
        )?;
        for (i, (index, message)) in self.records.iter().take(3).enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "RecordError(batchIndex={index}, message='{message}')")?;
        }
        f.write_str("]")
    }
}

/// Result alias for the log.
pub type Result<T, E = LogError> = std::result::Result<T, E>;

/// Adds a description of the operation to an I/O error.
pub(crate) trait IoContext<T> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| LogError::Io {
            context: what(),
            source,
        })
    }
}
