//! The records of a producer's batch checked as Kafka's `LogValidator`
//! checks them: a key on a compacted log, a `CreateTime` timestamp within
//! `message.timestamp.before.max.ms` / `after.max.ms` of the broker's
//! clock, no `LogAppendTime` from a producer. Every refused record is
//! named by its index in the batch (KIP-467), with Kafka's messages, and
//! the batch is refused whole.

use std::sync::Arc;

use gregor_log::batch::{set_log_append_time, Compression, RecordBatchBuilder};
use gregor_log::config::{CleanupPolicy, MessageTimestampType};
use gregor_log::{Log, LogConfig, LogError, LogOpenOptions, ManualClock, RecordErrors};

const NOW: i64 = 1_700_000_000_000;
const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;

/// A log in `<tmp>/t-0` (named as a partition's directory) with `config`,
/// its clock at `NOW`.
fn open(dir: &tempfile::TempDir, config: LogConfig) -> Log {
    let options = LogOpenOptions {
        clock: Arc::new(ManualClock::new(NOW)),
        ..Default::default()
    };
    Log::open_with(dir.path().join("t-0"), config, options).unwrap()
}

/// One batch of (key, timestamp) records.
fn batch(records: &[(Option<&[u8]>, i64)]) -> Vec<u8> {
    let mut b = RecordBatchBuilder::new(records[0].1);
    for (key, timestamp) in records {
        b.append(*key, Some(b"v"), &[], *timestamp);
    }
    b.build()
}

fn refused(log: &Log, mut bytes: Vec<u8>) -> RecordErrors {
    match log.append(&mut bytes, 0) {
        Err(LogError::InvalidRecords(errors)) => errors,
        other => panic!("expected refused records, got {other:?}"),
    }
}

fn within_an_hour() -> LogConfig {
    LogConfig {
        message_timestamp_before_max_ms: HOUR,
        message_timestamp_after_max_ms: HOUR,
        ..LogConfig::default()
    }
}

fn out_of_range(timestamp: i64, offset: i64) -> String {
    format!(
        "Timestamp {timestamp} of message with offset {offset} is out of range. The timestamp should be within [{}, {}]",
        NOW - HOUR,
        NOW + HOUR
    )
}

#[test]
fn timestamps_out_of_bounds_are_named_by_their_index_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(&dir, within_an_hour());
    let k: Option<&[u8]> = Some(b"k");
    let errors = refused(
        &log,
        batch(&[(k, NOW), (k, NOW - DAY), (k, NOW + HOUR), (k, NOW + DAY)]),
    );
    assert!(errors.invalid_timestamp);
    assert_eq!(
        errors.records,
        vec![(1, out_of_range(NOW - DAY, 1)), (3, out_of_range(NOW + DAY, 3))]
    );
    assert_eq!(
        errors.to_string(),
        "One or more records have been rejected due to invalid timestamp"
    );
    assert_eq!(log.end_offset(), 0);
    // At the bounds exactly, and without a timestamp (-1): taken.
    log.append(&mut batch(&[(k, NOW - HOUR), (k, NOW + HOUR), (k, -1)]), 0)
        .unwrap();
    assert_eq!(log.end_offset(), 3);
}

#[test]
fn the_deprecated_difference_bounds_both_sides_left_at_their_default() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        message_timestamp_difference_max_ms: HOUR,
        message_timestamp_after_max_ms: DAY * 2,
        ..LogConfig::default()
    };
    let log = open(&dir, config);
    let k: Option<&[u8]> = Some(b"k");
    let errors = refused(&log, batch(&[(k, NOW - DAY), (k, NOW + DAY)]));
    let indexes: Vec<i32> = errors.records.iter().map(|(i, _)| *i).collect();
    assert_eq!(indexes, vec![0], "before: difference.max.ms; after: its own bound");
}

#[test]
fn log_append_time_logs_ignore_the_producers_timestamps_but_not_their_type() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        message_timestamp_type: MessageTimestampType::LogAppendTime,
        ..within_an_hour()
    };
    let log = open(&dir, config);
    let k: Option<&[u8]> = Some(b"k");
    log.append(&mut batch(&[(k, NOW - DAY)]), 0).unwrap();
    // A producer may not stamp LogAppendTime itself.
    let mut stamped = batch(&[(k, NOW), (None, NOW)]);
    set_log_append_time(&mut stamped, NOW);
    let errors = refused(&log, stamped);
    assert!(errors.invalid_timestamp);
    assert_eq!(
        errors.records[1],
        (
            1,
            format!(
                "Invalid timestamp type in message DefaultRecord(offset=1, timestamp={NOW}, key=0 bytes, value=1 \
                 bytes). Producer should not set timestamp type to LogAppendTime."
            )
        )
    );
}

#[test]
fn keyless_records_of_a_compacted_log_are_each_named_with_the_first_three_in_the_message() {
    for codec in [Compression::None, Compression::Gzip] {
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig {
            cleanup_policy: CleanupPolicy::Compact,
            ..LogConfig::default()
        };
        let log = open(&dir, config);
        let mut b = RecordBatchBuilder::new(NOW);
        for i in 0..6 {
            let key = (i == 2).then_some(&b"k"[..]);
            b.append(key, Some(b"v"), &[], NOW);
        }
        let bytes = match codec {
            Compression::None => b.build(),
            codec => b.build_compressed(codec).unwrap(),
        };
        let errors = refused(&log, bytes);
        assert!(!errors.invalid_timestamp, "{codec:?}");
        let message = "Compacted topic cannot accept message without key in topic partition t-0";
        let expected: Vec<(i32, String)> = [0, 1, 3, 4, 5].into_iter().map(|i| (i, message.to_string())).collect();
        assert_eq!(errors.records, expected, "{codec:?}");
        assert_eq!(
            errors.to_string(),
            format!(
                "One or more records have been rejected due to 5 record errors in total, and only showing the first \
                 three errors at most: [RecordError(batchIndex=0, message='{message}'), RecordError(batchIndex=1, \
                 message='{message}'), RecordError(batchIndex=3, message='{message}')]"
            )
        );
    }
}

#[test]
fn a_missing_key_is_named_before_a_bad_timestamp_and_the_batch_is_an_invalid_timestamp() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        cleanup_policy: CleanupPolicy::Compact,
        ..within_an_hour()
    };
    let log = open(&dir, config);
    let errors = refused(&log, batch(&[(None, NOW - DAY), (Some(b"k"), NOW - DAY)]));
    assert!(errors.invalid_timestamp);
    assert_eq!(
        errors.records,
        vec![
            (
                0,
                "Compacted topic cannot accept message without key in topic partition t-0".to_string()
            ),
            (1, out_of_range(NOW - DAY, 1)),
        ]
    );
}
