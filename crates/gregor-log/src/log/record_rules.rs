//! What each record of a producer's batch must satisfy before the log
//! takes the batch (Kafka's `LogValidator.validateRecord`): a key on a
//! compacted log; with `CreateTime`, a timestamp within
//! `message.timestamp.before.max.ms` / `after.max.ms` of the broker's
//! clock; no `LogAppendTime` set by the producer. Every refused record is
//! named by its index in the batch (KIP-467), and one refusal refuses the
//! whole batch.
//!
//! Most topics need no look at the records at all (delete policy, no
//! timestamp bounds): [`RecordRules::applies_to`] says so from the batch
//! header, so the common append walks nothing and allocates nothing.

use std::path::Path;

use crate::batch::{record_section, BatchHeader, Records, TimestampType};
use crate::config::{LogConfig, MessageTimestampType};
use crate::error::{LogError, RecordErrors, Result};

/// Kafka's `RecordBatch.NO_TIMESTAMP`.
const NO_TIMESTAMP: i64 = -1;

/// The record checks of one append.
pub(super) struct RecordRules<'a> {
    /// Every record needs a key (a compacted log).
    keys: bool,
    /// The log keeps the producers' timestamps (`CreateTime`).
    create_time: bool,
    /// How far back and ahead of `now` a timestamp may be.
    before_max_ms: i64,
    after_max_ms: i64,
    /// The broker's clock at the append.
    now: i64,
    /// The log's directory, named `<topic>-<partition>` (for messages).
    dir: &'a Path,
}

impl<'a> RecordRules<'a> {
    /// The checks `config` asks for, at `now`, for the log in `dir`.
    pub(super) fn new(config: &LogConfig, now: i64, dir: &'a Path) -> Self {
        // Kafka 3.9's LogConfig: the deprecated difference.max.ms applies
        // to whichever bound is left at its default.
        let bound = |ms: i64| {
            if ms == i64::MAX {
                config.message_timestamp_difference_max_ms
            } else {
                ms
            }
        };
        Self {
            keys: config.cleanup_policy.compacts(),
            create_time: config.message_timestamp_type == MessageTimestampType::CreateTime,
            before_max_ms: bound(config.message_timestamp_before_max_ms),
            after_max_ms: bound(config.message_timestamp_after_max_ms),
            now,
            dir,
        }
    }

    /// Whether any record of the batch with `header` can be refused, so
    /// its records must be read. With no key required and unbounded
    /// timestamps no `CreateTime` record can fail (Kafka's check,
    /// `now - ts > before || ts - now > after`, never holds for
    /// `i64::MAX` bounds, wrapping as Java's longs do).
    fn applies_to(&self, header: &BatchHeader) -> bool {
        self.keys
            || (self.create_time && (self.before_max_ms != i64::MAX || self.after_max_ms != i64::MAX))
            || header.timestamp_type() == TimestampType::LogAppendTime
    }

    /// Checks every record of `batch` (at byte `at` of the append),
    /// decompressing it if it must: all refusals of the batch in one
    /// [`LogError::InvalidRecords`]. A record that cannot be read makes
    /// the batch corrupt.
    pub(super) fn check(&self, batch: &[u8], header: &BatchHeader, at: usize) -> Result<()> {
        if !self.applies_to(header) {
            return Ok(());
        }
        let corrupt = |source| LogError::CorruptBatch { position: at, source };
        let section = record_section(batch, header).map_err(corrupt)?;
        let log_append_time = header.timestamp_type() == TimestampType::LogAppendTime;
        let mut refused: Option<RecordErrors> = None;
        for (index, record) in Records::from_section(&section, header.record_count).enumerate() {
            let record = record.map_err(corrupt)?;
            let offset = header.base_offset.wrapping_add(record.offset_delta as u64) as i64;
            // A LogAppendTime batch's records all read its max timestamp.
            let timestamp = if log_append_time {
                header.max_timestamp
            } else {
                header.base_timestamp.wrapping_add(record.timestamp_delta)
            };
            let key_refusal = (self.keys && record.key.is_none()).then(|| {
                format!(
                    "Compacted topic cannot accept message without key in topic partition {}",
                    self.partition()
                )
            });
            let refusal = match key_refusal {
                Some(message) => Some((false, message)),
                None => self.timestamp_refusal(log_append_time, timestamp, offset, &record),
            };
            if let Some((is_timestamp, message)) = refusal {
                let errors = refused.get_or_insert_with(|| RecordErrors {
                    invalid_timestamp: false,
                    records: Vec::new(),
                });
                errors.invalid_timestamp |= is_timestamp;
                errors.records.push((i32::try_from(index).unwrap_or(i32::MAX), message));
            }
        }
        match refused {
            Some(errors) => Err(LogError::InvalidRecords(errors)),
            None => Ok(()),
        }
    }

    /// Kafka's `validateTimestamp`: `Some((true, message))` when the
    /// record's timestamp is refused.
    fn timestamp_refusal(
        &self,
        log_append_time: bool,
        timestamp: i64,
        offset: i64,
        record: &crate::batch::Record<'_>,
    ) -> Option<(bool, String)> {
        if self.create_time && timestamp != NO_TIMESTAMP {
            let diff = self.now.wrapping_sub(timestamp);
            if diff > self.before_max_ms || diff.wrapping_neg() > self.after_max_ms {
                return Some((
                    true,
                    format!(
                        "Timestamp {timestamp} of message with offset {offset} is out of range. The timestamp should \
                         be within [{}, {}]",
                        self.now.wrapping_sub(self.before_max_ms),
                        self.now.wrapping_add(self.after_max_ms)
                    ),
                ));
            }
        } else if log_append_time {
            return Some((
                true,
                format!(
                    "Invalid timestamp type in message DefaultRecord(offset={offset}, timestamp={timestamp}, key={} \
                     bytes, value={} bytes). Producer should not set timestamp type to LogAppendTime.",
                    record.key.map_or(0, <[u8]>::len),
                    record.value.map_or(0, <[u8]>::len)
                ),
            ));
        }
        None
    }

    /// The log's partition as Kafka names it (`<topic>-<partition>`, its
    /// directory's name).
    fn partition(&self) -> String {
        self.dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }
}
