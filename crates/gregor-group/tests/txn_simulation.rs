//! Deterministic simulation of transactional offset commits: producers
//! commit offsets in transactions (TxnOffsetCommit) to two groups, each in
//! its own `__consumer_offsets` partition, while plain commits and group
//! deletions go on; transactions end with COMMIT or ABORT markers
//! appended to each partition they touched and reported to the
//! coordinator — sometimes late, after a coordinator failover reloaded
//! the log; writes succeed, fail, or land with their acknowledgment lost.
//!
//! The simulation keeps its own model of each partition's log and, after
//! every input, checks the real [`GroupStateMachine`] against it: the
//! visible offset of a partition is that of the latest record (in log
//! order) that counts — a plain commit or tombstone once acknowledged, a
//! transaction's offset once its COMMIT is known — where "known" means
//! reported, or in the log when the coordinator last loaded it. So:
//!
//! - an aborted transaction's offsets are never visible;
//! - a committed one's are visible after its completion unless a later
//!   record of the partition superseded them;
//! - a reload in any state gives the visible offsets the log holds (the
//!   same as before it, when every write that landed was acknowledged and
//!   every marker reported);
//! - a partition with offsets of an open transaction is unstable to
//!   OffsetFetch requiring stable offsets.
//!
//! `GREGOR_SIM_SCHEDULES` sets how many seeds run (default 200);
//! `GREGOR_SIM_SEED` replays one seed. A failure prints its seed and the
//! step trace.

use std::collections::{BTreeMap, BTreeSet};

use gregor_group::records::{parse, OffsetsRecord};
use gregor_group::{
    CommittedOffset, GroupConfig, GroupError, GroupStateMachine, LoadedRecord, MemberOf, Output, Persist, PersistId,
    RequestId, Response, StoreError, TxnProducer,
};
use gregor_sim::Rng;

const GROUPS: [&str; 2] = ["g0", "g1"];
const TOPIC: &str = "t";
const PARTITIONS: i32 = 3;
const PRODUCERS: i64 = 3;
const STEPS: usize = 300;

/// Each group lives in the partition of its index.
fn partition_of(group: &str) -> usize {
    GROUPS.iter().position(|g| *g == group).expect("a simulated group")
}

/// A transaction, by its global number.
#[derive(Default)]
struct Txn {
    producer: i64,
    /// Groups it committed offsets to.
    groups: BTreeSet<usize>,
    /// A TxnOffsetCommit failed or its answer was lost: it must abort.
    failed: bool,
    /// TxnOffsetCommits not answered yet.
    outstanding: usize,
    /// Per offsets partition: its marker.
    markers: BTreeMap<usize, Marker>,
}

/// A transaction's marker in one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Marker {
    commit: bool,
    /// The coordinator knows it: reported, or loaded from the log.
    known: bool,
    /// Reported to the coordinator (a loaded one may be reported later).
    reported: bool,
}

/// One offset record in the model of a partition's log.
struct Entry {
    position: u64,
    value: Option<i64>,
    /// The transaction that wrote it, if any.
    txn: Option<usize>,
    /// Its write was acknowledged, or the coordinator loaded it since.
    known: bool,
}

struct Sim {
    rng: Rng,
    machine: GroupStateMachine,
    logs: [Vec<LoadedRecord>; 2],
    /// (group, partition) → its offset records, in log order.
    model: BTreeMap<(usize, i32), Vec<Entry>>,
    txns: Vec<Txn>,
    /// Producer → its open transaction.
    open: BTreeMap<i64, usize>,
    in_flight: Vec<(Persist, Option<usize>)>,
    /// TxnOffsetCommits waiting, by request → transaction.
    asked: BTreeMap<RequestId, Option<usize>>,
    /// Each write out's entries once it landed: (group, partition, index).
    landed: BTreeMap<PersistId, Vec<(usize, i32, usize)>>,
    next_request: u64,
    next_value: i64,
    trace: Vec<String>,
    seen: BTreeMap<&'static str, usize>,
}

impl Sim {
    fn new(seed: u64) -> Self {
        let config = GroupConfig {
            offsets_retention_ms: i64::MAX / 2,
            offsets_retention_check_interval_ms: 0,
            ..GroupConfig::default()
        };
        Self {
            rng: Rng::seeded(seed),
            machine: GroupStateMachine::new(config),
            logs: [Vec::new(), Vec::new()],
            model: BTreeMap::new(),
            txns: Vec::new(),
            open: BTreeMap::new(),
            in_flight: Vec::new(),
            asked: BTreeMap::new(),
            landed: BTreeMap::new(),
            next_request: 0,
            next_value: 0,
            trace: Vec::new(),
            seen: BTreeMap::new(),
        }
    }

    fn count(&mut self, what: &'static str) {
        *self.seen.entry(what).or_default() += 1;
    }

    fn request(&mut self, txn: Option<usize>) -> RequestId {
        self.next_request += 1;
        let id = RequestId(self.next_request);
        self.asked.insert(id, txn);
        id
    }

    fn offsets(&mut self) -> Vec<(String, i32, CommittedOffset)> {
        let mut offsets = Vec::new();
        for p in 0..PARTITIONS {
            if offsets.is_empty() || self.rng.chance(40) {
                self.next_value += 1;
                let value = CommittedOffset {
                    offset: self.next_value,
                    leader_epoch: -1,
                    metadata: String::new(),
                    commit_timestamp: 0,
                };
                offsets.push((TOPIC.to_string(), p, value));
            }
        }
        offsets
    }

    fn handle(&mut self, outputs: Vec<Output>) {
        for output in outputs {
            match output {
                Output::Persist(p) => {
                    let txn = p.producer.map(|producer| self.open[&producer.id]);
                    self.in_flight.push((p, txn));
                }
                Output::Respond { request, response } => {
                    let txn = self.asked.remove(&request).expect("answers go to requests asked");
                    if let (Some(t), Response::Commit(result)) = (txn, response) {
                        self.txns[t].outstanding -= 1;
                        if result.is_err() {
                            self.txns[t].failed = true;
                        }
                    }
                }
            }
        }
    }

    // ---- inputs --------------------------------------------------------

    fn plain_commit(&mut self, g: usize) {
        let offsets = self.offsets();
        self.trace.push(format!("plain commit {} {offsets:?}", GROUPS[g]));
        let id = self.request(None);
        let out = self
            .machine
            .commit(id, MemberOf::new(GROUPS[g], -1, "", None), &offsets);
        self.handle(out);
    }

    fn txn_commit(&mut self, producer: i64, g: usize) {
        let t = match self.open.get(&producer) {
            Some(t) => *t,
            None => {
                // The transaction coordinator starts the producer's next
                // transaction only once the last one's markers are
                // written (WriteTxnMarkers answered: reported).
                self.report_all(producer);
                self.txns.push(Txn {
                    producer,
                    ..Txn::default()
                });
                self.open.insert(producer, self.txns.len() - 1);
                self.txns.len() - 1
            }
        };
        let offsets = self.offsets();
        self.trace.push(format!(
            "txn {t} (producer {producer}) commits {} {offsets:?}",
            GROUPS[g]
        ));
        self.txns[t].groups.insert(g);
        self.txns[t].outstanding += 1;
        let id = self.request(Some(t));
        let out = self.machine.txn_commit(
            id,
            TxnProducer::new(producer, 0),
            MemberOf::new(GROUPS[g], -1, "", None),
            &offsets,
        );
        self.handle(out);
    }

    /// The producer's transaction ends once its commits are answered:
    /// markers go to every partition it touched; each is reported at
    /// once, or later.
    fn end(&mut self, producer: i64) {
        let Some(&t) = self.open.get(&producer) else { return };
        if self.txns[t].outstanding > 0 {
            return;
        }
        self.open.remove(&producer);
        let commit = !self.txns[t].failed && self.rng.chance(60);
        self.trace.push(format!("txn {t} ends: commit {commit}"));
        self.count(if commit {
            "transactions committed"
        } else {
            "transactions aborted"
        });
        for g in self.txns[t].groups.clone() {
            self.logs[g].push(LoadedRecord::Marker {
                producer_id: producer,
                commit,
            });
            let marker = Marker {
                commit,
                known: false,
                reported: false,
            };
            self.txns[t].markers.insert(g, marker);
            if self.rng.chance(80) {
                self.report(t, g);
            } else {
                self.count("markers reported late");
            }
        }
    }

    fn report(&mut self, t: usize, g: usize) {
        let marker = self.txns[t].markers.get_mut(&g).expect("appended");
        let (commit, loaded) = (marker.commit, marker.known);
        marker.known = true;
        marker.reported = true;
        if loaded {
            self.count("markers reported after a reload loaded them");
        }
        self.trace.push(format!("txn {t}'s marker in {} reported", GROUPS[g]));
        let producer = self.txns[t].producer;
        self.machine
            .complete_transaction(|group| partition_of(group) == g, producer, commit);
    }

    fn report_all(&mut self, producer: i64) {
        for t in 0..self.txns.len() {
            if self.txns[t].producer != producer {
                continue;
            }
            let late: Vec<usize> = self.txns[t]
                .markers
                .iter()
                .filter(|(_, m)| !m.reported)
                .map(|(g, _)| *g)
                .collect();
            for g in late {
                self.report(t, g);
            }
        }
    }

    fn report_late(&mut self) {
        let late: Vec<(usize, usize)> = (0..self.txns.len())
            .flat_map(|t| self.txns[t].markers.iter().map(move |(g, m)| (t, *g, m.reported)))
            .filter(|(_, _, reported)| !reported)
            .map(|(t, g, _)| (t, g))
            .collect();
        if !late.is_empty() {
            let (t, g) = late[self.rng.below(late.len() as u64) as usize];
            self.report(t, g);
        }
    }

    fn delete(&mut self, g: usize) {
        self.trace.push(format!("delete {}", GROUPS[g]));
        let id = self.request(None);
        let out = self.machine.delete(id, GROUPS[g]);
        self.handle(out);
    }

    /// A write lands (or not) in its group's partition.
    fn land(&mut self, p: &Persist, txn: Option<usize>) -> u64 {
        let g = partition_of(&p.group);
        let first = self.logs[g].len() as u64;
        let mut entries = Vec::new();
        for (position, (key, value)) in (first..).zip(&p.records) {
            if let Some(OffsetsRecord::Offset(k, v)) = parse(key, value.as_deref()) {
                let list = self.model.entry((partition_of(&k.group), k.partition)).or_default();
                list.push(Entry {
                    position,
                    value: v.map(|v| v.offset),
                    txn,
                    known: false,
                });
                entries.push((partition_of(&k.group), k.partition, list.len() - 1));
            }
            self.logs[g].push(LoadedRecord::Record {
                key: key.clone(),
                value: value.clone(),
                offset: position,
                producer: p.producer.map(|p| p.id),
            });
        }
        self.landed.insert(p.id, entries);
        first
    }

    fn complete_write(&mut self, i: usize) {
        let (p, txn) = self.in_flight.remove(i);
        let roll = self.rng.below(100);
        let (landed, ok) = match roll {
            0..=79 => (true, true),
            80..=91 => (false, false),
            _ => (true, false),
        };
        self.trace.push(format!(
            "write {:?} for {} (txn {txn:?}): landed {landed}, ok {ok}",
            p.id, p.group
        ));
        let first = if landed { self.land(&p, txn) } else { 0 };
        if ok {
            for (g, partition, i) in self.landed.remove(&p.id).unwrap_or_default() {
                self.model.get_mut(&(g, partition)).expect("landed")[i].known = true;
            }
        }
        let result = if ok {
            Ok(first)
        } else {
            Err(StoreError::Unavailable("not enough replicas".into()))
        };
        let out = self.machine.persisted(p.id, result, 0);
        self.handle(out);
    }

    /// The coordinator fails over: writes out land or not, their answers
    /// are lost, and a new one loads each partition's log.
    fn failover(&mut self) {
        for (p, txn) in std::mem::take(&mut self.in_flight) {
            if self.rng.chance(50) {
                self.land(&p, txn);
            }
        }
        for (_, txn) in std::mem::take(&mut self.asked) {
            if let Some(t) = txn {
                self.txns[t].outstanding -= 1;
                self.txns[t].failed = true;
            }
        }
        self.landed.clear();
        // Everything in the logs is known to the new coordinator.
        for entry in self.model.values_mut().flatten() {
            entry.known = true;
        }
        for txn in &mut self.txns {
            for marker in txn.markers.values_mut() {
                marker.known = true;
            }
        }
        self.trace.push("coordinator fails over".into());
        self.count("failovers");
        self.machine = GroupStateMachine::new(GroupConfig {
            offsets_retention_ms: i64::MAX / 2,
            offsets_retention_check_interval_ms: 0,
            ..GroupConfig::default()
        });
        for g in 0..GROUPS.len() {
            let out = self.machine.reload(|group| partition_of(group) == g, &self.logs[g], 0);
            self.handle(out);
        }
    }

    fn step(&mut self) {
        let producer = 1 + self.rng.below(PRODUCERS as u64) as i64;
        let g = self.rng.below(GROUPS.len() as u64) as usize;
        match self.rng.below(100) {
            0..=14 => self.plain_commit(g),
            15..=39 => self.txn_commit(producer, g),
            40..=54 => self.end(producer),
            55..=59 => self.report_late(),
            60..=62 => self.delete(g),
            63..=65 => self.failover(),
            _ => {
                if !self.in_flight.is_empty() {
                    let i = self.rng.below(self.in_flight.len() as u64) as usize;
                    self.complete_write(i);
                }
            }
        }
    }

    // ---- the model and the checks -------------------------------------

    /// Whether an entry counts: a plain record once known, a transaction's
    /// once its COMMIT in this partition is known.
    fn counts(&self, g: usize, entry: &Entry) -> bool {
        match entry.txn {
            None => entry.known,
            Some(t) => self.txns[t].markers.get(&g).is_some_and(|m| m.commit && m.known),
        }
    }

    fn expected(&self, g: usize, partition: i32) -> Option<i64> {
        let entries = self.model.get(&(g, partition))?;
        entries
            .iter()
            .filter(|e| self.counts(g, e))
            .max_by_key(|e| e.position)
            .and_then(|e| e.value)
    }

    /// An open transaction's offset the coordinator holds, not removed by
    /// a later known tombstone.
    fn pending(&self, g: usize, partition: i32) -> bool {
        let Some(entries) = self.model.get(&(g, partition)) else {
            return false;
        };
        entries.iter().any(|e| {
            e.txn
                .is_some_and(|t| !self.txns[t].markers.get(&g).is_some_and(|m| m.known))
                && e.known
                && !entries.iter().any(|later| {
                    later.txn.is_none() && later.known && later.value.is_none() && later.position > e.position
                })
        })
    }

    fn check(&mut self) -> Result<(), String> {
        for (g, group) in GROUPS.iter().enumerate() {
            let wanted: Vec<(String, i32)> = (0..PARTITIONS).map(|p| (TOPIC.to_string(), p)).collect();
            let got = self.machine.committed(group, Some(&wanted));
            let stable = self.machine.committed_stable(group, Some(&wanted));
            let writing = self.in_flight.iter().any(|(p, _)| p.group == *group);
            for partition in 0..PARTITIONS {
                let visible = got[partition as usize].1.as_ref().map(|o| o.offset);
                let expected = self.expected(g, partition);
                if visible != expected {
                    return Err(format!(
                        "{group}/{partition}: visible {visible:?}, the log says {expected:?}"
                    ));
                }
                let aborted = self.model.get(&(g, partition)).into_iter().flatten().any(|e| {
                    e.value == visible
                        && e.txn
                            .is_some_and(|t| self.txns[t].markers.get(&g).is_some_and(|m| !m.commit))
                });
                if visible.is_some() && aborted {
                    return Err(format!(
                        "{group}/{partition}: {visible:?} of an aborted transaction is visible"
                    ));
                }
                let pending = self.pending(g, partition);
                match &stable[partition as usize].1 {
                    Err(GroupError::UnstableOffsetCommit) if pending || writing => {}
                    Err(e) => return Err(format!("{group}/{partition}: unstable ({e:?}) with nothing pending")),
                    Ok(_) if pending => return Err(format!("{group}/{partition}: stable with a transaction open")),
                    Ok(o) if o.as_ref().map(|o| o.offset) != visible => {
                        return Err(format!(
                            "{group}/{partition}: stable {o:?} is not the committed {visible:?}"
                        ))
                    }
                    Ok(_) => {}
                }
                if pending {
                    self.count("partitions pending");
                }
            }
        }
        Ok(())
    }
}

/// Runs one seed; on a failure prints the step trace.
fn run(seed: u64) -> Result<BTreeMap<&'static str, usize>, String> {
    let mut sim = Sim::new(seed);
    for _ in 0..STEPS {
        sim.step();
        if let Err(e) = sim.check() {
            gregor_sim::print_trace(seed, &sim.trace, 80);
            return Err(e);
        }
    }
    Ok(sim.seen)
}

#[test]
fn random_transactions_keep_offsets_as_the_log_says() {
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    gregor_sim::run_schedules(200, |seed| {
        for (what, count) in run(seed)? {
            *seen.entry(what).or_default() += count;
        }
        Ok(())
    });
    eprintln!("covered: {seen:?}");
    for what in [
        "transactions committed",
        "transactions aborted",
        "markers reported late",
        "markers reported after a reload loaded them",
        "failovers",
        "partitions pending",
    ] {
        assert!(seen.get(what).copied().unwrap_or(0) > 0, "never covered: {what}");
    }
}
