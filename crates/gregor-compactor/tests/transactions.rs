//! Compaction of logs with transactions: markers are kept, aborted records
//! never supersede committed ones (and are dropped), the transaction index
//! follows the rewritten segments, and nothing from the first unstable
//! offset on is cleaned.

mod common;

use std::sync::Arc;

use common::*;
use gregor_compactor::*;
use gregor_log::batch::{ControlRecordType, EndTransactionMarker, RecordBatchBuilder};
use gregor_log::*;

fn clean(log: &Log, now: i64) -> Option<CleanStats> {
    let target = cleanable(log, 0, now).unwrap()?;
    let mut map = OffsetMap::with_memory(1 << 20);
    Some(clean_log(log, target, &mut map, &Throttler::new(f64::INFINITY), now).unwrap())
}

fn txn_write(log: &Log, producer_id: i64, key: u32, value: &str, ts: i64) {
    let mut b = RecordBatchBuilder::new(ts).producer(producer_id, 0, -1).transactional();
    b.append(Some(format!("key-{key}").as_bytes()), Some(value.as_bytes()), &[], ts);
    log.append(&mut b.build(), 0).unwrap();
}

fn end(log: &Log, producer_id: i64, kind: ControlRecordType) {
    let marker = EndTransactionMarker {
        kind,
        coordinator_epoch: 0,
    };
    log.append_marker(producer_id, 0, marker, 0).unwrap();
}

fn values_of(log: &Log, key: u32) -> Vec<String> {
    let key = format!("key-{key}").into_bytes();
    scan(log)
        .into_iter()
        .filter(|(_, k, _)| *k == key)
        .map(|(_, _, v)| String::from_utf8(v.unwrap()).unwrap())
        .collect()
}

fn markers(log: &Log) -> usize {
    scan(log).iter().filter(|(_, k, _)| k.len() == 4).count()
}

#[test]
fn markers_stay_and_aborted_records_never_supersede_committed_ones() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(1_000_000));
    let log = open(dir.path(), compacted(1024), &clock);
    let now = clock.now_ms();
    txn_write(&log, 1, 1, "committed", now);
    end(&log, 1, ControlRecordType::Commit);
    txn_write(&log, 1, 2, "committed-too", now);
    end(&log, 1, ControlRecordType::Commit);
    txn_write(&log, 2, 1, "aborted", now);
    end(&log, 2, ControlRecordType::Abort);
    let filler: Vec<_> = (100..160).map(|k| (k, Some("filler".to_string()))).collect();
    write(&log, &filler, 4, now);
    log.roll().unwrap();
    let aborted = log.aborted_transactions(0, log.end_offset()).unwrap();
    assert_eq!(aborted.len(), 1);
    let stats = clean(&log, now).unwrap();
    assert!(stats.segments_replaced > 0);
    assert_eq!(values_of(&log, 1), vec!["committed"]);
    assert_eq!(values_of(&log, 2), vec!["committed-too"]);
    assert_eq!(markers(&log), 3, "every marker is kept");
    assert_eq!(log.aborted_transactions(0, log.end_offset()).unwrap(), aborted);
    // Reopened after a crash (indexes rebuilt from the cleaned log).
    drop(log);
    let options = LogOpenOptions {
        clock: clock.clone(),
        recovery_point: Some(0),
        ..LogOpenOptions::default()
    };
    let log = Log::open_with(dir.path(), compacted(1024), options).unwrap();
    assert_eq!(values_of(&log, 1), vec!["committed"]);
    assert!(log.ongoing_transactions().is_empty());
}

#[test]
fn nothing_from_the_first_unstable_offset_on_is_cleaned() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(1_000_000));
    let log = open(dir.path(), compacted(1024), &clock);
    let now = clock.now_ms();
    let updates: Vec<_> = (0..40).map(|k| (k % 5, Some(format!("v{k}")))).collect();
    write(&log, &updates, 4, now);
    log.roll().unwrap();
    let unstable_from = log.end_offset();
    txn_write(&log, 1, 1, "undecided", now);
    write(&log, &updates, 4, now);
    log.roll().unwrap();
    write(&log, &updates, 4, now);
    log.roll().unwrap();
    assert_eq!(log.first_unstable_offset(), Some(unstable_from));
    let target = cleanable(&log, 0, now).unwrap().unwrap();
    assert!(target.first_uncleanable <= unstable_from, "{target:?}");
    let before: Vec<_> = scan(&log).into_iter().filter(|(o, _, _)| *o >= unstable_from).collect();
    clean(&log, now).unwrap();
    let after: Vec<_> = scan(&log).into_iter().filter(|(o, _, _)| *o >= unstable_from).collect();
    assert_eq!(before, after);
    assert_eq!(log.ongoing_transactions(), vec![(unstable_from, 1)]);
}
