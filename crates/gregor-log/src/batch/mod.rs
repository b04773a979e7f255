//! Kafka RecordBatch v2: the unit the log stores, byte for byte as on the wire.
//!
//! ```text
//! offset  size  field
//!      0     8  baseOffset              ┐ outside the CRC: the broker
//!      8     4  batchLength             │ rewrites baseOffset and
//!     12     4  partitionLeaderEpoch    ┘ partitionLeaderEpoch freely
//!     16     1  magic (2)
//!     17     4  crc (CRC-32C of bytes 21..end)
//!     21     2  attributes
//!     23     4  lastOffsetDelta
//!     27     8  baseTimestamp           (the delete horizon if attributes bit 6)
//!     35     8  maxTimestamp
//!     43     8  producerId
//!     51     2  producerEpoch
//!     53     4  baseSequence
//!     57     4  recordCount
//!     61     …  records (compressed as a whole when attributes say so)
//! ```
//!
//! [`BatchHeader::parse`] reads the fixed part; [`validate_batch`] checks a
//! whole batch (length, magic, CRC and, when uncompressed, every record);
//! [`Records`] walks the records of an uncompressed batch without allocating,
//! [`record_section`] opens compressed ones; [`RecordBatchBuilder`] writes
//! new batches, compressed or not.
//!
//! One job per file, each using only the ones before it: `error`, `header`
//! (parsing and in-place rewrites), `records` (iteration), `validate`,
//! `builder`, `control` (transaction markers). The codecs live in [`crate::compression`]; [`Compression`] is
//! re-exported here.

mod builder;
mod control;
mod error;
mod header;
mod records;
mod validate;

pub use crate::compression::Compression;
pub use builder::{rebuild_with_delete_horizon, rebuild_with_records, RecordBatchBuilder};
pub use control::{ControlRecordType, EndTransactionMarker};
pub use error::BatchError;
pub use header::{
    compute_crc, set_base_offset, set_log_append_time, set_partition_leader_epoch, BatchHeader, TimestampType,
    BATCH_HEADER_SIZE, LOG_OVERHEAD, MAGIC_V2, STAMPED_PREFIX_LEN,
};
pub use records::{for_each_record, record_section, BatchIter, Record, Records};
pub use validate::{validate_batch, validate_batch_integrity};

#[cfg(test)]
mod tests;
