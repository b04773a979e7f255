//! Property test of the cleaner's transaction rules against a model:
//! random transactional (committed, aborted, left open), idempotent and
//! plain keyed writes with tombstones, cleaned at random points (with
//! offset maps small enough to fill) while time moves on, and reopened
//! cleanly or as after a crash. After every step:
//!
//! - the read_committed key → value view (records below the last stable
//!   offset, minus the aborted transactions the log reports) and the last
//!   stable offset are the model's;
//! - a marker disappears only in a cleaning pass that comes more than
//!   `delete.retention.ms` after a pass that had left its transaction with
//!   no batch, and never otherwise;
//! - every `.txnindex` entry still has its ABORT marker;
//! - reopening gives back the producer state the log had.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use common::txn::*;
use common::{compacted, open};
use gregor_log::batch::ControlRecordType;
use gregor_log::{Clock, Log, ManualClock};
use proptest::prelude::*;

const TXN_PRODUCERS: usize = 3;
const RETENTION: i64 = 1000;

type Records = Vec<(u32, Option<String>)>;

#[derive(Debug, Clone)]
enum Op {
    Txn(usize, Records),
    End {
        producer: usize,
        abort: bool,
        new_coordinator: bool,
    },
    Idempotent(Records),
    Plain(Records),
    Roll,
    Advance(i64),
    Clean {
        small_map: bool,
    },
    Force,
    Reopen {
        crash: bool,
    },
}

fn records() -> impl Strategy<Value = Records> {
    proptest::collection::vec((0u32..16, proptest::option::weighted(0.8, "[a-z]{1,8}")), 1..4)
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..TXN_PRODUCERS, records()).prop_map(|(p, r)| Op::Txn(p, r)),
        4 => (0..TXN_PRODUCERS, any::<bool>(), prop::bool::weighted(0.2))
            .prop_map(|(producer, abort, new_coordinator)| Op::End { producer, abort, new_coordinator }),
        2 => records().prop_map(Op::Idempotent),
        2 => records().prop_map(Op::Plain),
        2 => Just(Op::Roll),
        3 => (0i64..1500).prop_map(Op::Advance),
        3 => any::<bool>().prop_map(|small_map| Op::Clean { small_map }),
        1 => Just(Op::Force),
        1 => any::<bool>().prop_map(|crash| Op::Reopen { crash }),
    ]
}

#[derive(Debug)]
struct Txn {
    /// Base offsets of its batches.
    batches: Vec<u64>,
    /// Offset of its marker, and whether it aborted.
    end: Option<(u64, bool)>,
    /// Time of the first pass after which none of its batches was left.
    gone_at: Option<i64>,
    marker_removed: bool,
}

#[derive(Debug, Default)]
struct Model {
    /// (offset, key, value, transaction) of every data record.
    records: Vec<(u64, u32, Option<String>, Option<usize>)>,
    txns: Vec<Txn>,
    open: [Option<usize>; TXN_PRODUCERS],
}

impl Model {
    fn last_stable_offset(&self, end: u64) -> u64 {
        self.open
            .iter()
            .flatten()
            .map(|t| self.txns[*t].batches[0])
            .min()
            .unwrap_or(end)
    }

    fn committed_view(&self, lso: u64) -> BTreeMap<Vec<u8>, Vec<u8>> {
        let mut view = BTreeMap::new();
        for (offset, key, value, txn) in &self.records {
            let aborted = txn.is_some_and(|t| self.txns[t].end.is_some_and(|(_, abort)| abort));
            if *offset >= lso || aborted {
                continue;
            }
            match value {
                Some(v) => view.insert(key_bytes(*key), v.clone().into_bytes()),
                None => view.remove(&key_bytes(*key)),
            };
        }
        view
    }

    fn record(&mut self, info: &gregor_log::AppendInfo, records: &Records, txn: Option<usize>) {
        for (i, (k, v)) in records.iter().enumerate() {
            self.records.push((info.first_offset + i as u64, *k, v.clone(), txn));
        }
    }

    /// After a pass at `now` that cleaned below `cleaned`: no aborted record
    /// is left there, markers that went must have been due, and
    /// transactions left without a batch are noted.
    fn after_pass(&mut self, log: &Log, now: i64, cleaned: u64) -> Result<(), TestCaseError> {
        let all = batches(log);
        let present: BTreeSet<u64> = all.iter().map(|(h, _)| h.base_offset).collect();
        for txn in self.txns.iter().filter(|t| t.end.is_some_and(|(_, abort)| abort)) {
            for (h, _) in all.iter().filter(|(h, _)| txn.batches.contains(&h.base_offset)) {
                prop_assert!(
                    h.base_offset >= cleaned || h.record_count == 0,
                    "aborted records kept: {:?}",
                    h
                );
            }
        }
        let markers: BTreeSet<u64> = marker_offsets(log).into_iter().collect();
        for (i, txn) in self.txns.iter_mut().enumerate() {
            let Some((marker, _)) = txn.end else { continue };
            if !txn.marker_removed && !markers.contains(&marker) {
                txn.marker_removed = true;
                let due = txn.gone_at.is_some_and(|gone| now - gone > RETENTION);
                prop_assert!(
                    due,
                    "marker {} of transaction {} removed at {}: {:?}",
                    marker,
                    i,
                    now,
                    txn
                );
            }
            if txn.gone_at.is_none() && txn.batches.iter().all(|b| !present.contains(b)) {
                txn.gone_at = Some(now);
            }
        }
        Ok(())
    }

    fn check(&self, log: &Log) -> Result<(), TestCaseError> {
        let lso = self.last_stable_offset(log.end_offset());
        prop_assert_eq!(log.last_stable_offset(), lso);
        prop_assert_eq!(committed_view(log), self.committed_view(lso));
        let markers: BTreeSet<u64> = marker_offsets(log).into_iter().collect();
        for txn in &self.txns {
            if let Some((marker, _)) = txn.end {
                prop_assert_eq!(markers.contains(&marker), !txn.marker_removed, "marker {}", marker);
            }
        }
        for entry in log.aborted_transactions(0, log.end_offset()).unwrap() {
            prop_assert!(markers.contains(&entry.last_offset), "{:?} without its marker", entry);
        }
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn cleaning_keeps_transactions_right(
        ops in proptest::collection::vec(op(), 1..80),
        segment_bytes in 400u32..1500,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::new(1_000_000));
        let config = compacted(segment_bytes);
        let mut log = open(dir.path(), config.clone(), &clock);
        let mut producers: Vec<Producer> = (1..=TXN_PRODUCERS as i64).map(Producer::new).collect();
        let mut idempotent = Producer::new(10);
        let mut passes = Passes::new(1 << 20);
        let mut model = Model::default();
        for op in ops {
            match op {
                Op::Txn(p, records) => {
                    let info = producers[p].send(&log, true, &records, 1_000);
                    let txn = *model.open[p].get_or_insert_with(|| {
                        model.txns.push(Txn { batches: Vec::new(), end: None, gone_at: None, marker_removed: false });
                        model.txns.len() - 1
                    });
                    model.txns[txn].batches.push(info.first_offset);
                    model.record(&info, &records, Some(txn));
                }
                Op::End { producer, abort, new_coordinator } => {
                    let Some(txn) = model.open[producer].take() else { continue };
                    let p = &mut producers[producer];
                    p.coordinator_epoch += i32::from(new_coordinator);
                    let kind = if abort { ControlRecordType::Abort } else { ControlRecordType::Commit };
                    let info = p.end(&log, kind);
                    model.txns[txn].end = Some((info.first_offset, abort));
                }
                Op::Idempotent(records) => {
                    let info = idempotent.send(&log, false, &records, 1_000);
                    model.record(&info, &records, None);
                }
                Op::Plain(records) => {
                    let mut b = gregor_log::batch::RecordBatchBuilder::new(1_000);
                    for (k, v) in &records {
                        b.append(Some(&key_bytes(*k)), v.as_deref().map(str::as_bytes), &[], 1_000);
                    }
                    let info = log.append(&mut b.build(), 0).unwrap();
                    model.record(&info, &records, None);
                }
                Op::Roll => log.roll().unwrap(),
                Op::Advance(ms) => clock.advance(ms),
                Op::Clean { small_map } => {
                    passes.memory = if small_map { 24 * 16 } else { 1 << 20 };
                    if let Some(stats) = passes.clean(&log, clock.now_ms()) {
                        model.after_pass(&log, clock.now_ms(), stats.cleaned_up_to)?;
                    }
                }
                Op::Force => {
                    passes.memory = 1 << 20;
                    let stats = passes.force(&log, clock.now_ms());
                    model.after_pass(&log, clock.now_ms(), stats.cleaned_up_to)?;
                }
                Op::Reopen { crash } => {
                    let before = producer_view(&log);
                    log = reopen(log, dir.path(), config.clone(), &clock, crash);
                    prop_assert_eq!(producer_view(&log), before, "crash: {}", crash);
                }
            }
            model.check(&log)?;
        }
        // Whatever is left, a final reopen after a crash rebuilds the same state.
        let before = producer_view(&log);
        let log = reopen(log, dir.path(), config, &clock, true);
        prop_assert_eq!(producer_view(&log), before);
        model.check(&log)?;
    }
}
