//! Property test of transactions in the log against a model: random
//! interleavings of several producers' transactional batches, commits,
//! aborts, plain batches, high watermark moves, rolls, truncations and
//! reopens (clean or after a crash) leave the log with the model's ongoing
//! transactions, last stable offset, aborted transactions over any range,
//! and read_committed view (what a consumer filtering with
//! `aborted_transactions` sees below the last stable offset).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use gregor_log::batch::{BatchIter, ControlRecordType, EndTransactionMarker, RecordBatchBuilder};
use gregor_log::*;
use proptest::prelude::*;

const PRODUCERS: i64 = 3;

#[derive(Debug, Clone)]
enum Op {
    Data(i64, usize),
    Plain(usize),
    End(i64, bool),
    Hw(prop::sample::Index),
    Roll,
    Truncate(prop::sample::Index),
    Reopen { clean: bool },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..PRODUCERS, 1usize..4).prop_map(|(p, n)| Op::Data(p, n)),
        2 => (1usize..4).prop_map(Op::Plain),
        3 => (0..PRODUCERS, any::<bool>()).prop_map(|(p, abort)| Op::End(p, abort)),
        3 => any::<prop::sample::Index>().prop_map(Op::Hw),
        1 => Just(Op::Roll),
        1 => any::<prop::sample::Index>().prop_map(Op::Truncate),
        1 => any::<bool>().prop_map(|clean| Op::Reopen { clean }),
    ]
}

/// A batch the model remembers.
#[derive(Debug, Clone, Copy)]
struct ModelBatch {
    base: u64,
    last: u64,
    producer: i64,
    /// `None`: data (transactional when `producer` ≥ 0); `Some(abort)`: a marker.
    marker: Option<bool>,
}

#[derive(Debug, Default)]
struct Model {
    batches: Vec<ModelBatch>,
    hw: u64,
}

/// What the model derives from its batches.
struct Derived {
    ongoing: Vec<(u64, i64)>,
    lso: u64,
    /// Aborted transactions in marker order.
    aborted: Vec<AbortedTxn>,
    /// (first offset, producer) of each aborted transaction, with its marker.
    aborted_ranges: Vec<(i64, u64, u64)>,
}

impl Model {
    fn end(&self) -> u64 {
        self.batches.last().map_or(0, |b| b.last + 1)
    }

    fn derive(&self) -> Derived {
        let mut open: BTreeMap<i64, u64> = BTreeMap::new();
        let mut unstable: BTreeSet<u64> = BTreeSet::new();
        let mut aborted = Vec::new();
        let mut aborted_ranges = Vec::new();
        for b in &self.batches {
            match b.marker {
                None if b.producer >= 0 => {
                    open.entry(b.producer).or_insert(b.base);
                }
                None => {}
                Some(abort) => {
                    let Some(first) = open.get(&b.producer).copied() else {
                        continue;
                    };
                    let lso = open
                        .iter()
                        .filter(|(p, _)| **p != b.producer)
                        .map(|(_, f)| *f)
                        .min()
                        .unwrap_or(b.base + 1);
                    open.remove(&b.producer);
                    if b.base >= self.hw {
                        unstable.insert(first);
                    }
                    if abort {
                        aborted.push(AbortedTxn {
                            producer_id: b.producer,
                            first_offset: first,
                            last_offset: b.base,
                            last_stable_offset: lso,
                        });
                        aborted_ranges.push((b.producer, first, b.base));
                    }
                }
            }
        }
        unstable.extend(open.values().copied());
        let mut ongoing: Vec<(u64, i64)> = open.iter().map(|(p, f)| (*f, *p)).collect();
        ongoing.sort_unstable();
        let lso = unstable.first().copied().unwrap_or(u64::MAX).min(self.hw);
        Derived {
            ongoing,
            lso,
            aborted,
            aborted_ranges,
        }
    }

    /// Kafka's collectAbortedTransactions over the model's entries, given
    /// the base offset of the segment holding `start`.
    fn collect(&self, d: &Derived, segment_base: u64, start: u64, upper: u64) -> Vec<AbortedTxn> {
        let mut out = Vec::new();
        for e in d.aborted.iter().filter(|e| e.last_offset >= segment_base) {
            if e.last_offset >= start && e.first_offset < upper {
                out.push(*e);
            }
            if e.last_stable_offset >= upper {
                break;
            }
        }
        out
    }

    /// Offsets a read_committed consumer sees: data records of whole
    /// batches below the last stable offset, minus aborted transactions'.
    fn committed_view(&self, d: &Derived) -> Vec<u64> {
        let mut out = Vec::new();
        for b in self.batches.iter().filter(|b| b.last < d.lso && b.marker.is_none()) {
            let aborted = b.producer >= 0
                && d.aborted_ranges
                    .iter()
                    .any(|(p, first, marker)| *p == b.producer && (*first..*marker).contains(&b.base));
            if !aborted {
                out.extend(b.base..=b.last);
            }
        }
        out
    }
}

/// What a read_committed consumer sees, filtering as Kafka's fetcher does.
fn committed_view(log: &Log) -> Vec<u64> {
    let lso = log.last_stable_offset();
    let mut aborted = log.aborted_transactions(0, lso).unwrap();
    aborted.sort_by_key(|a| a.first_offset);
    let mut aborted = aborted.into_iter().peekable();
    let mut aborted_producers = BTreeSet::new();
    let mut out = Vec::new();
    let mut offset = log.log_start_offset();
    while offset < lso {
        let read = log.read_bounded(offset, 1 << 20, lso, true).unwrap();
        let Some(region) = read.region else { break };
        let bytes = region.read_to_vec().unwrap();
        for item in BatchIter::new(&bytes) {
            let (at, h) = item.unwrap();
            offset = h.next_offset();
            while let Some(a) = aborted.next_if(|a| a.first_offset <= h.last_offset()) {
                aborted_producers.insert(a.producer_id);
            }
            if h.is_control() {
                let marker = EndTransactionMarker::of_batch(&bytes[at..at + h.total_size()], &h).unwrap();
                if marker.is_some_and(|m| m.kind == ControlRecordType::Abort) {
                    aborted_producers.remove(&h.producer_id);
                }
                continue;
            }
            if h.is_transactional() && aborted_producers.contains(&h.producer_id) {
                continue;
            }
            out.extend(h.base_offset..=h.last_offset());
        }
    }
    out
}

fn txn_batch(producer: i64, n: usize) -> Vec<u8> {
    let mut b = RecordBatchBuilder::new(1_000).producer(producer, 0, -1).transactional();
    for i in 0..n {
        b.append(Some(format!("k{i}").as_bytes()), Some(b"v"), &[], 1_000);
    }
    b.build()
}

fn open(dir: &Path, clock: &Arc<ManualClock>, clean: bool, recovery_point: u64, hw: u64) -> Log {
    let options = LogOpenOptions {
        clock: clock.clone(),
        clean_shutdown: clean,
        recovery_point: Some(recovery_point),
        high_watermark: Some(hw),
        high_watermark_follows_end: false,
        ..LogOpenOptions::default()
    };
    Log::open_with(dir, common::small_segments(700), options).unwrap()
}

fn check(log: &Log, model: &Model, probe: (u64, u64)) -> Result<(), TestCaseError> {
    let d = model.derive();
    prop_assert_eq!(log.end_offset(), model.end());
    prop_assert_eq!(log.high_watermark(), model.hw);
    prop_assert_eq!(log.ongoing_transactions(), d.ongoing.clone());
    prop_assert_eq!(log.last_stable_offset(), d.lso);
    let end = model.end() + 1;
    let (a, b) = (probe.0 % end, probe.1 % end);
    let (start, upper) = (a.min(b), a.max(b));
    for (start, upper) in [(0, end), (start, upper)] {
        let base = log
            .segments()
            .iter()
            .rev()
            .find(|s| s.base_offset <= start)
            .map_or(0, |s| s.base_offset);
        prop_assert_eq!(
            log.aborted_transactions(start, upper).unwrap(),
            model.collect(&d, base, start, upper),
            "aborted transactions in [{}, {})",
            start,
            upper
        );
    }
    prop_assert_eq!(committed_view(log), model.committed_view(&d));
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn transactions_match_the_model(ops in proptest::collection::vec((op(), any::<(u64, u64)>()), 1..60)) {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::new(1_000));
        let mut log = open(dir.path(), &clock, false, 0, 0);
        let mut model = Model::default();
        for (op, probe) in ops {
            match op {
                Op::Data(p, n) => {
                    let info = log.append(&mut txn_batch(p, n), 0).unwrap();
                    model.batches.push(ModelBatch { base: info.first_offset, last: info.last_offset, producer: p, marker: None });
                }
                Op::Plain(n) => {
                    let info = log.append(&mut common::batch("plain", n, 1_000), 0).unwrap();
                    model.batches.push(ModelBatch { base: info.first_offset, last: info.last_offset, producer: -1, marker: None });
                }
                Op::End(p, abort) => {
                    let kind = if abort { ControlRecordType::Abort } else { ControlRecordType::Commit };
                    let info = log.append_marker(p, 0, EndTransactionMarker { kind, coordinator_epoch: 0 }, 0).unwrap();
                    model.batches.push(ModelBatch { base: info.first_offset, last: info.last_offset, producer: p, marker: Some(abort) });
                }
                Op::Hw(i) => {
                    let span = model.end() - model.hw + 1;
                    model.hw += i.index(span as usize) as u64;
                    log.set_high_watermark(model.hw);
                }
                Op::Roll => log.roll().unwrap(),
                Op::Truncate(i) => {
                    let to = i.index(model.end() as usize + 1) as u64;
                    log.truncate_to(to).unwrap();
                    model.batches.retain(|b| b.last < to);
                    model.hw = model.hw.min(model.end());
                }
                Op::Reopen { clean } => {
                    let recovery_point = log.recovery_point();
                    if clean {
                        log.close().unwrap();
                    } else {
                        // A crash can leave the active segment's index long.
                        let active = log.segments().last().unwrap().base_offset;
                        let path = dir.path().join(format!("{active:020}.txnindex"));
                        let mut bytes = std::fs::read(&path).unwrap_or_default();
                        bytes.extend_from_slice(&[0, 0, 0, 7, 1]);
                        std::fs::write(&path, bytes).unwrap();
                    }
                    drop(log);
                    log = open(dir.path(), &clock, clean, recovery_point, model.hw);
                }
            }
            check(&log, &model, probe)?;
        }
    }
}
