//! Deterministic simulation: transactional producers (two pairs sharing a
//! transactional id, so each fences the other and zombies keep talking)
//! run transactions against the real [`TransactionStateMachine`] — init,
//! add partitions, write data, commit or abort, retrying retriable errors
//! — while `__transaction_state` is a simulated replicated log whose
//! writes fail, or land without their acknowledgement; the coordinator
//! fails over (unloaded on one, loaded on another at coordinator epoch + 1)
//! with marker requests in flight; markers reach simulated data
//! partitions late, twice or not at all (the sender retries); time
//! advances so transactions time out. After every step:
//!
//! - every request is answered at most once, and only requests asked;
//! - a transaction ends with one result on every partition it wrote to;
//! - EndTxn(commit) is answered OK only once its PrepareCommit is in the
//!   log, and such a transaction never aborts anywhere; one answered
//!   EndTxn(abort) OK never commits anywhere;
//! - EndTxn naming the producer id and epoch the coordinator holds is
//!   never answered PRODUCER_FENCED (a producer never fences itself, e.g.
//!   by ending its next transaction while the markers of the previous
//!   version 2 end are in flight);
//! - when InitProducerId hands out an epoch, every earlier transaction of
//!   the id is closed everywhere (a fenced transaction cannot commit
//!   later: its partitions have moved on to the new epoch);
//! - per transactional id, at most one producer epoch has markers out.
//!
//! Each seed picks which producers use transactions version 2 (KIP-890
//! part 2: their ends bump the epoch, answered with the producer to
//! continue with; they sometimes abort a transaction the coordinator
//! never saw) and the coordinator's `transaction.version` level (at 2 its
//! own aborts bump twice).
//!
//! Then faults stop and, after enough time, every transaction must be
//! complete on every partition, nothing left in Prepare*.
//!
//! `GREGOR_SIM_SCHEDULES` sets how many seeds run (default 200);
//! `GREGOR_SIM_SEED` replays one. A failure prints its seed and trace.

use std::collections::{BTreeMap, BTreeSet};

use gregor_log::TopicPartition;
use gregor_sim::Rng;
use gregor_transaction::records::{parse_key, parse_value};
use gregor_transaction::{
    MarkerId, MarkerRequest, Output, ProducerIdAndEpoch, RequestId, Response, StoredRecord, TransactionError,
    TransactionResult, TransactionSettings, TransactionState, TransactionStateMachine, TransactionVersion, Write,
};

const TIDS: [&str; 3] = ["tx-a", "tx-b", "tx-c"];
/// Producer i uses `TIDS[PRODUCER_TID[i]]`: two pairs share an id.
const PRODUCER_TID: [usize; 5] = [0, 1, 2, 0, 1];
const DATA_PARTITIONS: u32 = 4;
const TIMEOUT_MS: i32 = 3_000;
const STEPS: usize = 300;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    NeedInit,
    Ready,
    /// AddPartitions asked for the open transaction.
    Adding,
    /// Partitions added and data written: may end.
    Writing,
    Ending(TransactionResult),
    /// Waiting for an answer.
    Waiting,
}

struct Producer {
    tid: usize,
    /// The transaction version of its AddPartitionsToTxn and EndTxn.
    version: TransactionVersion,
    session: Option<ProducerIdAndEpoch>,
    phase: Phase,
    /// The sim's number of its open transaction.
    txn: Option<u64>,
    /// Bumped on every new session: answers to older ones are stale.
    incarnation: u32,
}

#[derive(Debug, Clone)]
enum Asked {
    Init {
        producer: usize,
        incarnation: u32,
    },
    Add {
        producer: usize,
        incarnation: u32,
        partitions: Vec<u32>,
    },
    End {
        producer: usize,
        incarnation: u32,
        result: TransactionResult,
        /// Whether it named the producer id and epoch the coordinator
        /// held when it was asked (such an end is never fenced).
        current: bool,
    },
}

/// A data partition: per producer id, its epoch and open transactions.
#[derive(Default)]
struct DataPartition {
    epoch: BTreeMap<i64, i16>,
    coordinator_epoch: BTreeMap<i64, i32>,
    open: BTreeMap<i64, BTreeSet<u64>>,
}

/// A marker request being delivered.
struct MarkerJob {
    life: u32,
    request: MarkerRequest,
    remaining: BTreeSet<u32>,
}

struct Sim {
    rng: Rng,
    /// The coordinator's `transaction.version` level.
    level: u8,
    now: i64,
    life: u32,
    leader_epoch: i32,
    machine: TransactionStateMachine,
    log: Vec<StoredRecord>,
    writes: Vec<(u32, Write)>,
    jobs: BTreeMap<(u32, MarkerId), MarkerJob>,
    /// Deliveries in the network: (job, partition, marker), arriving
    /// later — but, as a request gets its answer or its connection fails
    /// before the sender moves on, never after the sender reports its job
    /// done (a stray marker of a completed transaction could close the
    /// producer's next one; Kafka 3.9 relies on this ordering too).
    deliveries: Vec<((u32, MarkerId), u32, MarkerRequest)>,
    partitions: Vec<DataPartition>,
    producers: Vec<Producer>,
    asked: BTreeMap<RequestId, Asked>,
    next_request: u64,
    next_pid: i64,
    next_txn: u64,
    /// txn → (tid, producer id, epoch, partitions written).
    txns: BTreeMap<u64, (usize, i64, i16, BTreeSet<u32>)>,
    /// txn → result per partition closed.
    closed: BTreeMap<u64, BTreeMap<u32, TransactionResult>>,
    commit_acked: BTreeSet<u64>,
    abort_acked: BTreeSet<u64>,
    /// Produce requests in flight: (producer, incarnation, partition,
    /// session, txn); a fenced producer's may land after the fence.
    data: Vec<(usize, u32, u32, ProducerIdAndEpoch, u64)>,
    faults: bool,
    trace: Vec<String>,
    seen: BTreeMap<&'static str, usize>,
}

macro_rules! trace {
    ($sim:expr, $($arg:tt)*) => {{
        let line = format!("t={} life={} {}", $sim.now, $sim.life, format!($($arg)*));
        $sim.trace.push(line);
    }};
}

fn settings(level: u8) -> TransactionSettings {
    TransactionSettings {
        state_log_partitions: 1,
        transaction_version: level,
        abort_timed_out_interval_ms: 500,
        remove_expired_interval_ms: 5_000,
        transactional_id_expiration_ms: 20_000,
        ..Default::default()
    }
}

impl Sim {
    fn new(seed: u64) -> Self {
        let mut rng = Rng::seeded(seed);
        let level = if rng.chance(50) { 2 } else { 0 };
        let mut machine = TransactionStateMachine::new(settings(level));
        machine.begin_load(0, 0);
        machine.load(0, 0, &[], 0);
        let producers = PRODUCER_TID
            .iter()
            .map(|&tid| Producer {
                tid,
                version: if rng.chance(50) {
                    TransactionVersion::V2
                } else {
                    TransactionVersion::V0
                },
                session: None,
                phase: Phase::NeedInit,
                txn: None,
                incarnation: 0,
            })
            .collect();
        Self {
            rng,
            level,
            now: 0,
            life: 0,
            leader_epoch: 0,
            machine,
            log: Vec::new(),
            writes: Vec::new(),
            jobs: BTreeMap::new(),
            deliveries: Vec::new(),
            partitions: (0..DATA_PARTITIONS).map(|_| DataPartition::default()).collect(),
            producers,
            asked: BTreeMap::new(),
            next_request: 0,
            next_pid: 1000,
            next_txn: 0,
            txns: BTreeMap::new(),
            closed: BTreeMap::new(),
            commit_acked: BTreeSet::new(),
            abort_acked: BTreeSet::new(),
            data: Vec::new(),
            faults: true,
            trace: Vec::new(),
            seen: BTreeMap::new(),
        }
    }

    fn saw(&mut self, what: &'static str) {
        *self.seen.entry(what).or_default() += 1;
    }

    fn handle(&mut self, out: Vec<Output>) {
        for o in out {
            match o {
                Output::Respond { request, response } => self.answered(request, response),
                Output::Write(w) => self.writes.push((self.life, w)),
                Output::SendMarkers(m) => {
                    trace!(
                        self,
                        "markers {:?} pid {} epoch {} {:?} {:?}",
                        m.id,
                        m.producer_id,
                        m.producer_epoch,
                        m.result,
                        m.partitions
                    );
                    let remaining = m.partitions.iter().map(|p| p.partition).collect();
                    self.jobs.insert(
                        (self.life, m.id),
                        MarkerJob {
                            life: self.life,
                            request: m,
                            remaining,
                        },
                    );
                }
            }
        }
    }

    fn request(&mut self, asked: Asked) -> RequestId {
        self.next_request += 1;
        let id = RequestId(self.next_request);
        self.asked.insert(id, asked);
        id
    }

    /// The states the log holds for `tid`, oldest first, as (pid, epoch,
    /// state).
    fn logged(&self, tid: &str) -> Vec<(i64, i16, TransactionState)> {
        self.log
            .iter()
            .filter(|(k, _)| parse_key(k) == Ok(Some(tid.to_string())))
            .filter_map(|(_, v)| v.as_ref())
            .filter_map(|v| parse_value(v).ok())
            .filter_map(|v| Some((v.producer_id, v.producer_epoch, TransactionState::from_id(v.status)?)))
            .collect()
    }

    fn answered(&mut self, request: RequestId, response: Response) {
        let asked = self
            .asked
            .remove(&request)
            .unwrap_or_else(|| panic!("{request:?} answered but not waiting: {response:?}"));
        trace!(self, "answer {request:?} {asked:?}: {response:?}");
        let (producer, incarnation) = match asked {
            Asked::Init { producer, incarnation }
            | Asked::Add {
                producer, incarnation, ..
            }
            | Asked::End {
                producer, incarnation, ..
            } => (producer, incarnation),
        };
        let tid = self.producers[producer].tid;
        match (&asked, &response) {
            (Asked::Init { .. }, Response::InitProducerId(Ok(p))) => {
                self.saw("init ok");
                // Every earlier transaction of the id is closed everywhere.
                for (txn, (t, pid, epoch, written)) in &self.txns {
                    if *t != tid {
                        continue;
                    }
                    let closed = self.closed.get(txn).map(|c| c.len()).unwrap_or(0);
                    assert_eq!(
                        closed,
                        written.len(),
                        "InitProducerId handed out {p:?} while txn {txn} (pid {pid} epoch {epoch}) is open on some partition"
                    );
                }
            }
            (
                Asked::End {
                    result: TransactionResult::Commit,
                    ..
                },
                Response::EndTxn(Ok(answer)),
            ) => {
                let session = self.producers[producer].session.expect("ending without a session");
                // Answered right as its write is acknowledged (the id's
                // latest record is that PrepareCommit), or a retry once
                // it completed. Under version 2 that record carries the
                // bumped epoch the answer names.
                let p = if *answer == ProducerIdAndEpoch::NONE {
                    session
                } else {
                    *answer
                };
                let logged = self.logged(TIDS[tid]);
                assert!(
                    matches!(logged.last(), Some(&(pid, epoch, TransactionState::PrepareCommit | TransactionState::CompleteCommit))
                        if pid == p.producer_id && epoch == p.producer_epoch),
                    "EndTxn(commit) answered OK before PrepareCommit was stored: {:?}",
                    logged.last()
                );
            }
            (Asked::End { current: true, .. }, Response::EndTxn(Err(e))) => {
                // The producer the coordinator holds waits (a pending
                // transition is checked first), it is never fenced.
                assert_ne!(
                    *e,
                    TransactionError::ProducerFenced,
                    "EndTxn at the coordinator's own producer id and epoch answered PRODUCER_FENCED"
                );
                if *e == TransactionError::ConcurrentTransactions {
                    self.saw("end at the current epoch waits");
                }
            }
            _ => {}
        }
        if self.producers[producer].incarnation != incarnation {
            return;
        }
        let pr = &mut self.producers[producer];
        use TransactionError::*;
        let retriable = |e: &TransactionError| {
            matches!(
                e,
                ConcurrentTransactions | NotCoordinator | CoordinatorLoadInProgress | CoordinatorNotAvailable
            )
        };
        match (asked, response) {
            (Asked::Init { .. }, Response::InitProducerId(Ok(p))) => {
                pr.session = Some(p);
                pr.phase = Phase::Ready;
            }
            (Asked::Init { .. }, Response::InitProducerId(Err(_))) => pr.phase = Phase::NeedInit,
            (Asked::Add { partitions, .. }, Response::AddPartitions(results)) => match results[0].1 {
                Ok(()) => {
                    let p = pr.session.expect("session");
                    let txn = pr.txn.expect("open txn");
                    pr.phase = Phase::Writing;
                    for part in partitions {
                        self.data.push((producer, incarnation, part, p, txn));
                    }
                }
                Err(e) if retriable(&e) => pr.phase = Phase::Adding,
                Err(_) => self.restart(producer),
            },
            (Asked::End { result, .. }, Response::EndTxn(r)) => match r {
                Ok(answer) => {
                    let txn = pr.txn.take().expect("open txn");
                    pr.phase = Phase::Ready;
                    if pr.version == TransactionVersion::V2 {
                        // The client adopts the producer answered.
                        assert_ne!(answer, ProducerIdAndEpoch::NONE, "version 2 answers a producer");
                        pr.session = Some(answer);
                        self.saw("version 2 end acked");
                    } else {
                        assert_eq!(answer, ProducerIdAndEpoch::NONE);
                    }
                    if result == TransactionResult::Commit {
                        self.saw("commit acked");
                        self.commit_acked.insert(txn);
                    } else {
                        self.abort_acked.insert(txn);
                    }
                }
                Err(e) if retriable(&e) => pr.phase = Phase::Ending(result),
                Err(_) => self.restart(producer),
            },
            (asked, response) => panic!("{asked:?} answered with {response:?}"),
        }
    }

    /// A producer fenced (or confused) starts a new session.
    fn restart(&mut self, producer: usize) {
        let pr = &mut self.producers[producer];
        pr.incarnation += 1;
        pr.phase = Phase::NeedInit;
        pr.txn = None;
        pr.session = None;
        self.saw("producer restarted");
    }

    /// One produce request in flight lands.
    fn land_data(&mut self, at: usize) {
        let (producer, incarnation, partition, p, txn) = self.data.remove(at);
        let current = self.producers[producer].incarnation == incarnation;
        if !current {
            self.saw("zombie data landing");
        }
        if !self.write_data(partition, p, txn) && current {
            self.restart(producer);
        }
    }

    /// Whether the partition took the data (refused from a fenced epoch).
    fn write_data(&mut self, partition: u32, p: ProducerIdAndEpoch, txn: u64) -> bool {
        let dp = &mut self.partitions[partition as usize];
        let known = dp.epoch.get(&p.producer_id).copied().unwrap_or(i16::MIN);
        if p.producer_epoch < known {
            trace!(
                self,
                "data of txn {txn} to p{partition} refused: epoch {} < {known}",
                p.producer_epoch
            );
            self.saw("zombie data refused");
            return false;
        }
        dp.epoch.insert(p.producer_id, p.producer_epoch);
        dp.open.entry(p.producer_id).or_default().insert(txn);
        self.txns.get_mut(&txn).expect("txn").3.insert(partition);
        true
    }

    fn producer_acts(&mut self, i: usize) {
        let pr = &self.producers[i];
        let (incarnation, tid) = (pr.incarnation, TIDS[pr.tid]);
        match pr.phase {
            Phase::NeedInit => {
                // Sometimes KIP-360 style: naming its last session.
                let expected = if self.rng.chance(30) { pr.session } else { None };
                let r = self.request(Asked::Init {
                    producer: i,
                    incarnation,
                });
                self.producers[i].phase = Phase::Waiting;
                let mut next = self.next_pid;
                let fail = self.faults && self.rng.chance(3);
                let mut ids = || {
                    if fail {
                        return Err(TransactionError::CoordinatorLoadInProgress);
                    }
                    next += 1;
                    Ok(next)
                };
                let out = self
                    .machine
                    .init_producer_id(r, Some(tid), TIMEOUT_MS, expected, self.now, &mut ids);
                self.next_pid = next;
                self.handle(out);
            }
            Phase::Ready => {
                if !self.faults || self.rng.chance(50) {
                    self.next_txn += 1;
                    let txn = self.next_txn;
                    let p = pr.session.expect("session");
                    self.txns
                        .insert(txn, (pr.tid, p.producer_id, p.producer_epoch, BTreeSet::new()));
                    self.producers[i].txn = Some(txn);
                    if self.producers[i].version == TransactionVersion::V2 && self.rng.chance(10) {
                        // Added only locally: the coordinator never saw it.
                        self.saw("empty abort");
                        self.end(i, TransactionResult::Abort);
                    } else {
                        self.producers[i].phase = Phase::Adding;
                        self.add(i);
                    }
                }
            }
            Phase::Adding => self.add(i),
            Phase::Writing if self.data.iter().any(|d| d.0 == i && d.1 == incarnation) => {}
            Phase::Writing => {
                // Sometimes more partitions, else end it.
                if self.faults && self.rng.chance(30) {
                    self.add(i);
                } else if !self.faults || self.rng.chance(60) {
                    let result = if self.rng.chance(60) {
                        TransactionResult::Commit
                    } else {
                        TransactionResult::Abort
                    };
                    self.end(i, result);
                }
            }
            Phase::Ending(result) => self.end(i, result),
            Phase::Waiting => {}
        }
    }

    fn add(&mut self, i: usize) {
        let pr = &self.producers[i];
        let (incarnation, tid, p) = (pr.incarnation, TIDS[pr.tid], pr.session.expect("session"));
        let version = pr.version;
        let count = 1 + self.rng.below(2);
        let partitions: Vec<u32> = (0..count)
            .map(|_| self.rng.below(u64::from(DATA_PARTITIONS)) as u32)
            .collect();
        let r = self.request(Asked::Add {
            producer: i,
            incarnation,
            partitions: partitions.clone(),
        });
        self.producers[i].phase = Phase::Waiting;
        let tps = partitions.iter().map(|p| TopicPartition::new("data", *p)).collect();
        let out = self
            .machine
            .add_partitions(r, tid, p.producer_id, p.producer_epoch, tps, version, self.now);
        self.handle(out);
    }

    fn end(&mut self, i: usize, result: TransactionResult) {
        let pr = &self.producers[i];
        let (incarnation, tid, p) = (pr.incarnation, TIDS[pr.tid], pr.session.expect("session"));
        let version = pr.version;
        let current = self
            .machine
            .describe(&[tid.to_string()])
            .pop()
            .and_then(|(_, d)| d.ok())
            .is_some_and(|d| (d.producer_id, d.producer_epoch) == (p.producer_id, p.producer_epoch));
        let r = self.request(Asked::End {
            producer: i,
            incarnation,
            result,
            current,
        });
        self.producers[i].phase = Phase::Waiting;
        let mut next = self.next_pid;
        let mut ids = || {
            next += 1;
            Ok(next)
        };
        let out = self.machine.end_txn(
            r,
            tid,
            p.producer_id,
            p.producer_epoch,
            result,
            version,
            self.now,
            &mut ids,
        );
        self.next_pid = next;
        self.handle(out);
    }

    /// One write of the current life reaches the log (or not).
    fn complete_write(&mut self, at: usize) {
        let (life, w) = self.writes.remove(at);
        assert_eq!(life, self.life, "a write of an old life is still out");
        assert_eq!(w.coordinator_epoch, self.leader_epoch);
        let roll = if self.faults { self.rng.below(100) } else { 99 };
        let result = if roll < 10 {
            self.saw("write failed");
            Err(TransactionError::CoordinatorNotAvailable)
        } else if roll < 18 {
            self.saw("write landed unacknowledged");
            self.log.extend(w.records.iter().cloned());
            Err(TransactionError::CoordinatorNotAvailable)
        } else {
            self.log.extend(w.records.iter().cloned());
            Ok(())
        };
        trace!(self, "write {:?} -> {result:?}", w.id);
        let out = self.machine.persisted(w.id, result, self.now);
        self.handle(out);
    }

    /// A marker reaches a data partition.
    fn deliver(&mut self, partition: u32, m: &MarkerRequest) -> bool {
        let dp = &mut self.partitions[partition as usize];
        let epoch = dp.epoch.get(&m.producer_id).copied().unwrap_or(i16::MIN);
        let coordinator_epoch = dp.coordinator_epoch.get(&m.producer_id).copied().unwrap_or(i32::MIN);
        if m.producer_epoch < epoch || m.coordinator_epoch < coordinator_epoch {
            // Kafka refuses it (INVALID_PRODUCER_EPOCH,
            // TRANSACTION_COORDINATOR_FENCED); the sender gives up on it.
            self.saw("stale marker refused");
            return true;
        }
        dp.epoch.insert(m.producer_id, m.producer_epoch);
        dp.coordinator_epoch.insert(m.producer_id, m.coordinator_epoch);
        let open = dp.open.remove(&m.producer_id).unwrap_or_default();
        for txn in open {
            trace!(self, "p{partition}: txn {txn} {:?}", m.result);
            self.closed.entry(txn).or_default().insert(partition, m.result);
        }
        true
    }

    /// The marker sender: a delivery attempt for one job, or one arrival.
    fn marker_progress(&mut self) {
        if !self.deliveries.is_empty() && self.rng.chance(50) {
            let at = self.rng.below(self.deliveries.len() as u64) as usize;
            let (_, partition, m) = self.deliveries.remove(at);
            self.deliver(partition, &m);
            return;
        }
        let keys: Vec<(u32, MarkerId)> = self.jobs.keys().copied().collect();
        if keys.is_empty() {
            return;
        }
        let key = keys[self.rng.below(keys.len() as u64) as usize];
        let job = self.jobs.get(&key).expect("job");
        if job.life != self.life || !self.machine.marker_pending(job.request.id) {
            // No longer wanted: the sender drops it.
            self.jobs.remove(&key);
            return;
        }
        let Some(&partition) = job
            .remaining
            .iter()
            .nth(self.rng.below(job.remaining.len() as u64) as usize)
        else {
            let id = job.request.id;
            self.jobs.remove(&key);
            // The sender's attempts still out are answered (or failed)
            // before it reports.
            let (attempts, rest) = std::mem::take(&mut self.deliveries)
                .into_iter()
                .partition::<Vec<_>, _>(|(k, ..)| *k == key);
            self.deliveries = rest;
            for (_, partition, m) in attempts {
                if self.rng.chance(50) {
                    self.deliver(partition, &m);
                }
            }
            let out = self.machine.markers_written(id);
            self.handle(out);
            return;
        };
        let request = job.request.clone();
        let roll = if self.faults { self.rng.below(100) } else { 99 };
        if roll < 15 {
            self.saw("marker lost");
            return;
        }
        if roll < 30 {
            // Delayed: in the network, and the sender will retry anyway.
            self.deliveries.push((key, partition, request));
            self.saw("marker delayed");
            return;
        }
        if roll < 40 {
            self.deliveries.push((key, partition, request.clone()));
            self.saw("marker duplicated");
        }
        if self.deliver(partition, &request) {
            if let Some(job) = self.jobs.get_mut(&key) {
                job.remaining.remove(&partition);
            }
        }
    }

    /// The coordinator moves: unloaded here, loaded by another at the next
    /// leader epoch from what the log holds. Writes out may have landed.
    fn failover(&mut self) {
        self.saw("failover");
        let out = self.machine.unload(0);
        self.handle(out);
        for (_, w) in std::mem::take(&mut self.writes) {
            if self.rng.chance(50) {
                self.saw("write landed before failover");
                self.log.extend(w.records.iter().cloned());
            }
        }
        // Some of the old life's markers are still in the network.
        for (key, job) in &self.jobs {
            if let Some(&p) = job.remaining.iter().next() {
                self.deliveries.push((*key, p, job.request.clone()));
            }
        }
        self.life += 1;
        self.leader_epoch += 1;
        trace!(self, "failover to leader epoch {}", self.leader_epoch);
        self.machine = TransactionStateMachine::new(settings(self.level));
        let out = self.machine.begin_load(0, self.leader_epoch);
        self.handle(out);
        let out = self.machine.load(0, self.leader_epoch, &self.log.clone(), self.now);
        self.handle(out);
    }

    fn step(&mut self) {
        self.now += self.rng.below(200) as i64;
        match self.rng.below(100) {
            0..=29 => {
                let i = self.rng.below(self.producers.len() as u64) as usize;
                self.producer_acts(i);
            }
            30..=39 => {
                if !self.data.is_empty() {
                    let at = self.rng.below(self.data.len() as u64) as usize;
                    self.land_data(at);
                }
            }
            40..=64 => {
                if !self.writes.is_empty() {
                    let at = self.rng.below(self.writes.len() as u64) as usize;
                    self.complete_write(at);
                }
            }
            65..=89 => self.marker_progress(),
            90..=97 => {
                let out = self.machine.tick(self.now);
                self.handle(out);
            }
            _ => {
                if self.rng.chance(50) {
                    self.failover();
                }
            }
        }
        self.check();
    }

    fn check(&self) {
        for (txn, results) in &self.closed {
            let distinct: BTreeSet<_> = results.values().collect();
            assert!(
                distinct.len() <= 1,
                "txn {txn} ended differently on its partitions: {results:?}"
            );
            if self.commit_acked.contains(txn) {
                assert!(
                    results.values().all(|r| *r == TransactionResult::Commit),
                    "txn {txn} was acknowledged committed but aborted: {results:?}"
                );
            }
            if self.abort_acked.contains(txn) {
                assert!(
                    results.values().all(|r| *r == TransactionResult::Abort),
                    "txn {txn} was acknowledged aborted but committed: {results:?}"
                );
            }
        }
        let mut out_per_tid: BTreeMap<&str, BTreeSet<(i64, i16)>> = BTreeMap::new();
        for job in self.jobs.values() {
            if job.life == self.life && self.machine.marker_pending(job.request.id) {
                out_per_tid
                    .entry(job.request.transactional_id.as_str())
                    .or_default()
                    .insert((job.request.producer_id, job.request.producer_epoch));
            }
        }
        for (tid, epochs) in out_per_tid {
            assert!(
                epochs.len() <= 1,
                "{tid} has markers out for several producer epochs: {epochs:?}"
            );
        }
    }

    fn settled(&self) -> bool {
        let all_closed = self
            .txns
            .iter()
            .all(|(txn, (.., written))| self.closed.get(txn).map(|c| c.len()).unwrap_or(0) == written.len());
        let none_preparing = self.machine.describe(&TIDS.map(String::from)).iter().all(|(_, d)| {
            !matches!(d, Ok(d) if matches!(d.state, TransactionState::PrepareCommit | TransactionState::PrepareAbort))
        });
        let producers_idle = self
            .producers
            .iter()
            .all(|p| matches!(p.phase, Phase::Ready | Phase::NeedInit));
        all_closed
            && none_preparing
            && producers_idle
            && self.asked.is_empty()
            && self.writes.is_empty()
            && self.data.is_empty()
    }

    /// Faults stop; producers finish what they have open; time passes.
    fn converge(&mut self) {
        self.faults = false;
        trace!(self, "faults stop");
        for _ in 0..300 {
            while !self.writes.is_empty() {
                self.complete_write(0);
                self.check();
            }
            while !self.data.is_empty() {
                self.land_data(0);
                self.check();
            }
            while !self.jobs.is_empty() || !self.deliveries.is_empty() {
                self.marker_progress();
                self.check();
            }
            if self.settled() {
                return;
            }
            self.now += 500;
            let out = self.machine.tick(self.now);
            self.handle(out);
            for i in 0..self.producers.len() {
                if !matches!(self.producers[i].phase, Phase::Ready) {
                    self.producer_acts(i);
                }
                self.check();
            }
        }
        let open: Vec<_> = self
            .txns
            .iter()
            .filter(|(txn, (.., w))| self.closed.get(*txn).map(|c| c.len()).unwrap_or(0) != w.len())
            .collect();
        panic!(
            "did not settle: open txns {open:?}, asked {:?}, phases {:?}, states {:?}",
            self.asked,
            self.producers.iter().map(|p| p.phase).collect::<Vec<_>>(),
            self.machine.describe(&TIDS.map(String::from))
        );
    }
}

/// Runs one seed; on a failure prints the trace.
fn run(seed: u64) -> BTreeMap<&'static str, usize> {
    let mut sim = Sim::new(seed);
    gregor_sim::run_traced(
        seed,
        &mut sim,
        80,
        |sim| &sim.trace,
        |sim| {
            for _ in 0..STEPS {
                sim.step();
            }
            sim.converge();
        },
    );
    sim.seen
}

#[test]
fn random_schedules_keep_the_transaction_invariants() {
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    gregor_sim::run_schedules(200, |seed| {
        for (what, count) in run(seed) {
            *seen.entry(what).or_default() += count;
        }
        Ok(())
    });
    eprintln!("covered: {seen:?}");
    if !gregor_sim::replaying() {
        for what in [
            "commit acked",
            "failover",
            "zombie data refused",
            "write landed unacknowledged",
            "producer restarted",
            "empty abort",
            "version 2 end acked",
            "end at the current epoch waits",
        ] {
            assert!(
                seen.get(what).copied().unwrap_or(0) > 0,
                "no schedule covered {what:?}: {seen:?}"
            );
        }
    }
}

#[test]
fn one_seed_replays_exactly() {
    let trace = |seed| {
        let mut sim = Sim::new(seed);
        for _ in 0..STEPS {
            sim.step();
        }
        sim.trace
    };
    assert_eq!(trace(7), trace(7));
}
