//! # gregor-compactor
//!
//! Log compaction, as Kafka's log cleaner does it: for logs with
//! `cleanup.policy=compact` (or `compact,delete`), keep the latest record
//! per key and drop tombstones once they have been clean for
//! `delete.retention.ms`.
//!
//! - [`cleanable`] finds the dirty section of a log (from its
//!   `cleaner-offset-checkpoint` to the active segment, the high watermark,
//!   and `min.compaction.lag.ms`) and its dirty ratio.
//! - [`clean_log`] builds an [`OffsetMap`] (key digest → latest offset) over
//!   the dirty section within a memory budget, then rewrites the log's
//!   non-active segments through gregor-log's crash-safe segment swap,
//!   keeping every offset.
//! - [`LogCleaner`] runs that on `log.cleaner.threads` threads over a
//!   `LogManager`, picking the dirtiest log above
//!   `min.cleanable.dirty.ratio`, throttled by
//!   `log.cleaner.io.max.bytes.per.second`.
//!
//! Transactions follow Kafka's rules: nothing from the first unstable
//! offset on is cleaned, records of aborted transactions are dropped, a
//! COMMIT or ABORT marker goes once its transaction has no batch left and
//! `delete.retention.ms` has passed, and each producer's last batch stays
//! (empty if need be) so that its state can be rebuilt from the log.
//!
//! Compressed batches are decompressed, filtered and compressed again with
//! their own codec (a batch left empty is written uncompressed, as Kafka
//! does). It never touches the active segment and never changes an offset.

#![deny(missing_docs)]

mod cleaner;
mod error;
mod manager;
mod offset_map;
mod throttle;
mod transactions;

pub use cleaner::{clean_log, cleanable, CleanStats, Cleanable};
pub use error::{CompactorError, Result};
pub use manager::{CleanerConfig, LogCleaner, CLEANER_CHECKPOINT};
pub use offset_map::OffsetMap;
pub use throttle::Throttler;
