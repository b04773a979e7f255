//! # gregor-log
//!
//! gregor's storage engine: a segmented, crash-safe commit log whose bytes
//! on disk are Kafka RecordBatch v2 batches exactly as they travel on the
//! wire. It is complete on its own — an embedded log for any program — and
//! the layer every other gregor crate stands on.
//!
//! - [`Log`]: one partition. `append` validates batches and assigns offsets;
//!   `read` returns whole batches as a [`FileRegion`] to `sendfile` (or as
//!   bytes); `offset_for_timestamp` uses the time index. Segments roll by
//!   size, age or full index; retention deletes whole old segments; opening
//!   after a crash validates every batch after the recovery point and cuts
//!   the log at the first invalid byte.
//! - [`LogManager`]: all partitions of a broker over several directories,
//!   with Kafka's checkpoint files and clean-shutdown marker.
//! - [`batch`]: the RecordBatch v2 format — header parsing, validation,
//!   record iteration, and a builder; [`compression`]: its codecs.
//! - [`config`]: [`LogConfig`], every topic-level property of Kafka 3.9 in
//!   one table — parsed, checked and described by name.
//!
//! ```
//! use gregor_log::{batch::RecordBatchBuilder, Log, LogConfig};
//!
//! let dir = tempfile::tempdir()?;
//! let log = Log::open(dir.path(), LogConfig::default())?;
//! let mut batch = RecordBatchBuilder::new(1_700_000_000_000);
//! batch.append(Some(b"user-1"), Some(b"hello"), &[], 1_700_000_000_000);
//! let written = log.append(&mut batch.build(), 0)?;
//! let read = log.read(written.first_offset, 1 << 20)?;
//! assert_eq!(read.region.unwrap().len() as usize, batch.size());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! What it is not: it knows nothing of topics' replication, the network or
//! compaction; those are gregor-replication, gregor-routing and
//! gregor-compactor, built on top of this crate.

#![deny(missing_docs)]

pub mod batch;
mod checkpoint;
mod clock;
pub mod compression;
pub mod config;
pub mod coordinator_key;
#[cfg(test)]
mod dir_failure_tests;
pub mod disk_io;
mod epoch_cache;
mod error;
mod file_names;
pub mod index;
mod log;
mod log_dir;
mod manager;
pub mod producer_state;
mod region;
mod segment;
mod segment_end;
mod ticker;
mod topic_partition;
pub mod txn_index;
mod varint;
pub mod wire;

pub use checkpoint::OffsetCheckpointFile;
pub use clock::{Clock, ManualClock, SystemClock};
pub use config::{
    CleanupPolicy, ConfigEntry, ConfigError, ConfigType, FlushPolicy, LogConfig, MessageTimestampType,
    TopicCompression, DEFAULT_MAX_MESSAGE_BYTES,
};
pub use coordinator_key::{coordinator_partition, java_string_hash};
pub use epoch_cache::{EpochEntry, LeaderEpochCache};
pub use error::{LogError, RecordErrors, Result};
pub use log::{AppendInfo, AppendOrigin, Log, LogOpenOptions, LogRead, RetentionOutcome, SegmentInfo, SegmentRewrite};
pub use log_dir::volume_space;
pub use manager::{DirLogs, LogManager, LogManagerConfig};
pub use producer_state::{TxnVerification, VerificationGuard};
pub use region::FileRegion;
pub use ticker::Ticker;
pub use topic_partition::TopicPartition;
pub use txn_index::AbortedTxn;
