//! Deterministic simulation: simulated brokers running the real state
//! machines over a simulated network (delay, loss, reordering, cuts
//! between brokers) with crashes and restarts, driven by a seed. After
//! every step the replication invariants are checked; at the end the
//! faults stop and every replica must converge. Partitions are reassigned
//! (replicas added, moved, removed; reassignments replaced and cancelled)
//! along the way, and leaders rebalanced to preferred replicas.
//!
//! `GREGOR_SIM_SCHEDULES` sets how many seeds run (default 200);
//! `GREGOR_SIM_SEED` replays one seed. A failure prints its seed.

use std::collections::{BTreeMap, BTreeSet, BinaryHeap};

use gregor_replication::{
    assign_replicas, follower_high_watermark, AckPurgatory, BrokerId, BrokerInfo, Completed, Controller,
    ControllerCommand, ControllerFence, EpochEnd, FollowerRequest, LeaderAndIsr, LocalLog, LocalPosition,
    PartitionRecord, Reassignment, ReplicaRole, ReplicaSettings, ReplicationError, RoleChange, NO_LEADER,
};
use gregor_sim::Rng;

const BROKERS: i32 = 5;
const PARTITIONS: u32 = 2;
const REPLICATION: u16 = 3;
const CLIENT: BrokerId = 100;
const SESSION_TIMEOUT_MS: u64 = 300;
const REQUEST_TIMEOUT_MS: u64 = 100;
const PRODUCE_TIMEOUT_MS: u64 = 1_000;
const MAX_FETCH: usize = 4;
/// Random steps in a schedule, before the faults stop.
const STEPS: usize = 3_000;
const SETTINGS: ReplicaSettings = ReplicaSettings {
    replica_lag_time_max_ms: 200,
    min_insync_replicas: 2,
};

fn tracing() -> bool {
    std::env::var_os("GREGOR_SIM_TRACE").is_some()
}

macro_rules! trace {
    ($($arg:tt)*) => {
        if tracing() {
            eprintln!($($arg)*);
        }
    };
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    epoch: i32,
    value: u64,
}

/// One replica's log on a simulated disk (durable: a crash keeps it).
#[derive(Debug, Clone, Default)]
struct SimLog {
    entries: Vec<Entry>,
    hw: u64,
}

impl SimLog {
    /// Epoch start offsets, as gregor-log's epoch cache keeps them.
    fn epochs(&self) -> Vec<(i32, u64)> {
        let mut out: Vec<(i32, u64)> = Vec::new();
        for (i, e) in self.entries.iter().enumerate() {
            if out.last().is_none_or(|l| l.0 != e.epoch) {
                out.push((e.epoch, i as u64));
            }
        }
        out
    }
    fn truncate(&mut self, offset: u64) {
        assert!(
            offset >= self.hw.min(self.log_end()),
            "truncating committed records: to {offset} below hw {}",
            self.hw
        );
        self.entries.truncate(offset as usize);
        self.hw = self.hw.min(offset);
    }
}

impl LocalLog for SimLog {
    fn log_end(&self) -> u64 {
        self.entries.len() as u64
    }
    fn high_watermark(&self) -> u64 {
        self.hw
    }
    fn latest_epoch(&self) -> Option<i32> {
        self.entries.last().map(|e| e.epoch)
    }
    fn end_offset_for_epoch(&self, epoch: i32) -> Option<(i32, u64)> {
        let epochs = self.epochs();
        let i = epochs.iter().rposition(|e| e.0 <= epoch)?;
        let end = epochs.get(i + 1).map_or(self.log_end(), |e| e.1);
        Some((epochs[i].0, end))
    }
}

#[derive(Debug, Clone)]
enum Msg {
    LeaderAndIsr {
        controller_epoch: i32,
        partitions: Vec<(u32, PartitionRecord)>,
    },
    StopReplica {
        controller_epoch: i32,
        partitions: Vec<u32>,
        delete: bool,
    },
    Fetch {
        partition: u32,
        offset: u64,
        leader_epoch: i32,
    },
    FetchResponse {
        partition: u32,
        offset: u64,
        leader_epoch: i32,
        result: Result<(Vec<Entry>, u64), ReplicationError>,
    },
    EpochQuery {
        partition: u32,
        epoch: i32,
        leader_epoch: i32,
    },
    EpochAnswer {
        partition: u32,
        leader_epoch: i32,
        requested: i32,
        result: Result<EpochEnd, ReplicationError>,
    },
    Produce {
        id: u64,
        partition: u32,
        values: Vec<u64>,
    },
    ProduceAnswer {
        id: u64,
        result: Result<u64, ReplicationError>,
    },
    /// Coordination's watch on a partition's state fired (its node changed,
    /// also by the controller's own write): the controller reads it again.
    StateWatch {
        partition: u32,
    },
    /// The controller's write of a partition's assignment is done (it
    /// landed in coordination when asked; the answer comes later).
    AssignmentWritten {
        partition: u32,
        controller_epoch: i32,
    },
}

#[derive(Debug)]
struct InFlight {
    at: u64,
    seq: u64,
    from: BrokerId,
    to: BrokerId,
    /// The receiver's incarnation when sent: a restarted broker has new
    /// connections and never sees what was sent to its previous life.
    incarnation: u32,
    msg: Msg,
}

impl PartialEq for InFlight {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for InFlight {}
impl PartialOrd for InFlight {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for InFlight {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

/// A produce waiting for acks=all on its leader.
#[derive(Debug)]
struct Waiter {
    id: u64,
    base: u64,
}

struct Broker {
    up: bool,
    logs: BTreeMap<u32, SimLog>,
    hw_checkpoint: BTreeMap<u32, u64>,
    roles: BTreeMap<u32, ReplicaRole>,
    fence: ControllerFence,
    purgatory: AckPurgatory<u32, Waiter>,
    /// Partition → when its follower request was sent.
    pending: BTreeMap<u32, u64>,
    /// When its session expires after a crash.
    expires_at: Option<u64>,
    /// Restarts so far.
    incarnation: u32,
    /// When it stops after a controlled shutdown.
    stops_at: Option<u64>,
}

impl Broker {
    fn new() -> Self {
        Self {
            up: true,
            logs: BTreeMap::new(),
            hw_checkpoint: BTreeMap::new(),
            roles: BTreeMap::new(),
            fence: ControllerFence::default(),
            purgatory: AckPurgatory::new(),
            pending: BTreeMap::new(),
            expires_at: None,
            incarnation: 0,
            stops_at: None,
        }
    }
}

struct Sim {
    rng: Rng,
    now: u64,
    seq: u64,
    net: BinaryHeap<InFlight>,
    cuts: BTreeMap<(BrokerId, BrokerId), u64>,
    brokers: BTreeMap<BrokerId, Broker>,
    /// Coordination: partition state and version; registered brokers.
    store: BTreeMap<u32, (LeaderAndIsr, i32)>,
    registered: BTreeSet<BrokerId>,
    replicas: BTreeMap<u32, Vec<BrokerId>>,
    /// Coordination: reassignments in progress (as in the topic's node).
    reassigning: BTreeMap<u32, Reassignment>,
    /// Replicas whose log a reassignment deleted (perhaps created again,
    /// empty): a stale leader's ISR may still name them.
    wiped: BTreeSet<(BrokerId, u32)>,
    controller: Option<(BrokerId, Controller<u32>)>,
    controller_epoch: i32,
    /// The version of each partition's state the current controller
    /// wrote last (its watch notification is then no news to it).
    controller_wrote: BTreeMap<u32, i32>,
    next_value: u64,
    next_request: u64,
    produced: BTreeMap<u64, (u32, Vec<u64>)>,
    acked: BTreeMap<(u32, u64), u64>,
    leaders_by_epoch: BTreeMap<(u32, i32), BrokerId>,
    consumed: BTreeMap<u32, Vec<u64>>,
    leader_hw: BTreeMap<(u32, i32), u64>,
    faults: bool,
    /// When the last controller request to each broker arrives.
    controller_sent: BTreeMap<BrokerId, u64>,
}

impl Sim {
    fn new(seed: u64) -> Self {
        let mut rng = Rng::splitmix64(seed);
        let infos: Vec<BrokerInfo> = (0..BROKERS).map(|id| BrokerInfo { id, rack: None }).collect();
        let start = rng.below(BROKERS as u64) as usize;
        let shift = rng.below(BROKERS as u64) as usize;
        let assignment = assign_replicas(&infos, PARTITIONS, REPLICATION, start, shift).expect("placement");
        let mut sim = Sim {
            rng,
            now: 0,
            seq: 0,
            net: BinaryHeap::new(),
            cuts: BTreeMap::new(),
            brokers: (0..BROKERS).map(|id| (id, Broker::new())).collect(),
            store: BTreeMap::new(),
            registered: (0..BROKERS).collect(),
            replicas: assignment.into_iter().enumerate().map(|(p, r)| (p as u32, r)).collect(),
            reassigning: BTreeMap::new(),
            wiped: BTreeSet::new(),
            controller: None,
            controller_epoch: 0,
            controller_wrote: BTreeMap::new(),
            next_value: 1,
            next_request: 1,
            produced: BTreeMap::new(),
            acked: BTreeMap::new(),
            leaders_by_epoch: BTreeMap::new(),
            consumed: BTreeMap::new(),
            leader_hw: BTreeMap::new(),
            faults: true,
            controller_sent: BTreeMap::new(),
        };
        for (p, replicas) in sim.replicas.clone() {
            for r in &replicas {
                if let Some(b) = sim.brokers.get_mut(r) {
                    b.logs.insert(p, SimLog::default());
                }
            }
        }
        sim.elect_controller();
        let parts = sim.replicas.clone();
        for (p, replicas) in parts {
            let cmds = match &mut sim.controller {
                Some((_, c)) => c.partition_added(p, replicas),
                None => Vec::new(),
            };
            sim.run_controller(cmds);
        }
        sim
    }

    /// Sends over the simulated network. Controller requests are never
    /// lost (the controller's channel retries them until the broker
    /// answers or dies); everything else may be.
    fn send(&mut self, from: BrokerId, to: BrokerId, msg: Msg) {
        let retried = matches!(msg, Msg::LeaderAndIsr { .. } | Msg::StopReplica { .. });
        if self.faults && !retried && self.rng.chance(3) {
            return; // lost
        }
        let delay = 1 + self.rng.below(if self.faults { 20 } else { 5 });
        let mut at = self.now + delay;
        if retried {
            // The controller's channel to a broker is ordered.
            let last = self.controller_sent.entry(to).or_insert(0);
            at = at.max(*last + 1);
            *last = at;
        }
        self.seq += 1;
        let incarnation = self.brokers.get(&to).map_or(0, |b| b.incarnation);
        self.net.push(InFlight {
            at,
            seq: self.seq,
            from,
            to,
            incarnation,
            msg,
        });
    }

    /// An answer or notification from coordination to the controller on
    /// `host`, after a delay: never lost, in no particular order.
    fn coordination_answers(&mut self, host: BrokerId, msg: Msg) {
        let delay = 1 + self.rng.below(if self.faults { 20 } else { 5 });
        self.seq += 1;
        let incarnation = self.brokers.get(&host).map_or(0, |b| b.incarnation);
        self.net.push(InFlight {
            at: self.now + delay,
            seq: self.seq,
            from: host,
            to: host,
            incarnation,
            msg,
        });
    }

    /// A partition's state changed in coordination: the controller's watch
    /// fires.
    fn watch_fires(&mut self, host: BrokerId, partition: u32) {
        self.coordination_answers(host, Msg::StateWatch { partition });
    }

    fn cut(&self, a: BrokerId, b: BrokerId) -> bool {
        let key = (a.min(b), a.max(b));
        self.cuts.get(&key).is_some_and(|&until| until > self.now)
    }

    // ---- coordination and the controller ----

    fn elect_controller(&mut self) {
        let Some(&host) = self.registered.iter().find(|b| self.brokers[b].up) else {
            self.controller = None;
            return;
        };
        self.controller_epoch += 1;
        let partitions = self
            .store
            .iter()
            .map(|(&p, (state, version))| {
                (
                    p,
                    PartitionRecord {
                        replicas: self.replicas[&p].clone(),
                        state: state.clone(),
                        version: *version,
                    },
                )
            })
            .collect();
        let mut controller = Controller::new(self.controller_epoch, self.registered.clone(), partitions, false);
        for (&p, r) in &self.reassigning {
            controller.resume_reassignment(p, r.clone());
        }
        let cmds = controller.start();
        self.controller = Some((host, controller));
        self.controller_wrote.clear();
        self.run_controller(cmds);
    }

    fn run_controller(&mut self, cmds: Vec<ControllerCommand<u32>>) {
        let mut queue: std::collections::VecDeque<_> = cmds.into();
        while let Some(cmd) = queue.pop_front() {
            let Some((host, _)) = &self.controller else { return };
            let host = *host;
            match cmd {
                ControllerCommand::WriteState {
                    partition,
                    state,
                    expected_version,
                } => {
                    let current = self.store.get(&partition).map_or(-1, |s| s.1);
                    trace!(
                        "t={} controller writes p{partition} {state:?} over v{expected_version} (store v{current})",
                        self.now
                    );
                    let more = if current == expected_version {
                        let version = current + 1;
                        self.store.insert(partition, (state.clone(), version));
                        self.controller_wrote.insert(partition, version);
                        self.watch_fires(host, partition);
                        self.controller_mut().state_written(&partition, state, version)
                    } else {
                        let (state, version) = self.store[&partition].clone();
                        self.controller_mut().state_write_refused(&partition, state, version)
                    };
                    queue.extend(more);
                }
                ControllerCommand::LeaderAndIsr {
                    broker,
                    controller_epoch,
                    partitions,
                } => self.send(
                    host,
                    broker,
                    Msg::LeaderAndIsr {
                        controller_epoch,
                        partitions,
                    },
                ),
                ControllerCommand::StopReplica {
                    broker,
                    controller_epoch,
                    partitions,
                    delete,
                } => self.send(
                    host,
                    broker,
                    Msg::StopReplica {
                        controller_epoch,
                        partitions: partitions.into_iter().map(|(p, _)| p).collect(),
                        delete,
                    },
                ),
                ControllerCommand::WriteAssignment {
                    partition,
                    replicas,
                    adding,
                    removing,
                } => {
                    trace!(
                        "t={} controller assigns p{partition} to {replicas:?} (+{adding:?} -{removing:?})",
                        self.now
                    );
                    self.replicas.insert(partition, replicas);
                    let reassignment = Reassignment { adding, removing };
                    if reassignment.is_empty() {
                        self.reassigning.remove(&partition);
                    } else {
                        self.reassigning.insert(partition, reassignment);
                    }
                    let controller_epoch = self.controller_mut().epoch();
                    self.coordination_answers(
                        host,
                        Msg::AssignmentWritten {
                            partition,
                            controller_epoch,
                        },
                    );
                }
                ControllerCommand::UpdateMetadata { .. } | ControllerCommand::ReassignmentCompleted { .. } => {}
            }
        }
    }

    fn controller_mut(&mut self) -> &mut Controller<u32> {
        &mut self.controller.as_mut().expect("a controller").1
    }

    // ---- faults ----

    /// A controlled shutdown: the controller moves the broker's
    /// leaderships and takes it out of ISRs; it stops a little later (as a
    /// crash: nothing it did not fsync is lost, the same as a real stop).
    fn controlled_shutdown(&mut self, id: BrokerId) {
        trace!("t={} b{id} asks for a controlled shutdown", self.now);
        if self.controller.is_some() {
            let cmds = self.controller_mut().broker_shutting_down(id);
            self.run_controller(cmds);
        }
        let stop = self.now + self.rng.below(300);
        self.brokers.get_mut(&id).expect("broker").stops_at = Some(stop);
    }

    fn crash(&mut self, id: BrokerId) {
        trace!("t={} b{id} crashes", self.now);
        let b = self.brokers.get_mut(&id).expect("broker");
        b.up = false;
        b.stops_at = None;
        b.roles.clear();
        b.purgatory = AckPurgatory::new();
        b.pending.clear();
        b.fence = ControllerFence::default();
        b.expires_at = Some(self.now + SESSION_TIMEOUT_MS);
    }

    fn expire_sessions(&mut self) {
        let expired: Vec<BrokerId> = self
            .brokers
            .iter()
            .filter(|(_, b)| b.expires_at.is_some_and(|t| t <= self.now))
            .map(|(&id, _)| id)
            .collect();
        for id in expired {
            if let Some(b) = self.brokers.get_mut(&id) {
                b.expires_at = None;
            }
            self.registered.remove(&id);
            match &self.controller {
                Some((host, _)) if *host == id => self.elect_controller(),
                Some(_) => {
                    let cmds = self.controller_mut().broker_down(id);
                    self.run_controller(cmds);
                }
                None => self.elect_controller(),
            }
        }
    }

    fn restart(&mut self, id: BrokerId) {
        trace!("t={} b{id} restarts", self.now);
        let b = self.brokers.get_mut(&id).expect("broker");
        b.up = true;
        b.incarnation += 1;
        for (p, log) in b.logs.iter_mut() {
            log.hw = b.hw_checkpoint.get(p).copied().unwrap_or(0).min(log.log_end());
        }
        self.registered.insert(id);
        if self.controller.is_none() {
            self.elect_controller();
        } else {
            let cmds = self.controller_mut().broker_up(id);
            self.run_controller(cmds);
        }
    }

    // ---- broker behaviour ----

    fn deliver(&mut self, m: InFlight) {
        let to_up = m.to == CLIENT
            || self
                .brokers
                .get(&m.to)
                .is_some_and(|b| b.up && b.incarnation == m.incarnation);
        let retried = matches!(m.msg, Msg::LeaderAndIsr { .. } | Msg::StopReplica { .. });
        if !to_up || (!retried && m.to != CLIENT && m.from != CLIENT && self.cut(m.from, m.to)) {
            return;
        }
        let (from, to) = (m.from, m.to);
        match m.msg {
            Msg::LeaderAndIsr {
                controller_epoch,
                partitions,
            } => self.on_leader_and_isr(to, controller_epoch, partitions),
            Msg::StopReplica {
                controller_epoch,
                partitions,
                delete,
            } => self.on_stop_replica(to, controller_epoch, partitions, delete),
            Msg::Fetch {
                partition,
                offset,
                leader_epoch,
            } => self.on_fetch(to, from, partition, offset, leader_epoch),
            Msg::FetchResponse {
                partition,
                offset,
                leader_epoch,
                result,
            } => self.on_fetch_response(to, partition, offset, leader_epoch, result),
            Msg::EpochQuery {
                partition,
                epoch,
                leader_epoch,
            } => {
                let b = &self.brokers[&to];
                let result = match b.roles.get(&partition).and_then(|r| r.leader()) {
                    None => Err(ReplicationError::NotLeaderOrFollower),
                    Some(l) => l.check_epoch(Some(leader_epoch)).map(|()| {
                        let log = &b.logs[&partition];
                        match log.end_offset_for_epoch(epoch) {
                            Some((e, end)) => EpochEnd {
                                epoch: Some(e),
                                end_offset: Some(end),
                            },
                            None => EpochEnd {
                                epoch: None,
                                end_offset: None,
                            },
                        }
                    }),
                };
                self.send(
                    to,
                    from,
                    Msg::EpochAnswer {
                        partition,
                        leader_epoch,
                        requested: epoch,
                        result,
                    },
                );
            }
            Msg::EpochAnswer {
                partition,
                leader_epoch,
                requested,
                result,
            } => {
                let b = self.brokers.get_mut(&to).expect("broker");
                let Some(role) = b.roles.get_mut(&partition) else {
                    return;
                };
                let Some(f) = role.follower_mut() else { return };
                if f.leader_epoch() != leader_epoch {
                    return;
                }
                b.pending.remove(&partition);
                let log = b.logs.get_mut(&partition).expect("log");
                trace!(
                    "t={} b{to} epoch answer p{partition} {result:?}, log epochs {:?} end {} hw {}",
                    self.now,
                    log.epochs(),
                    log.log_end(),
                    log.hw
                );
                if let Some(cut) = f.on_epoch_end(requested, result, log) {
                    log.truncate(cut.offset);
                }
            }
            Msg::StateWatch { partition } => {
                if self.controller.as_ref().is_some_and(|(host, _)| *host == to) {
                    let (state, version) = self.store[&partition].clone();
                    let own_echo = self.controller_wrote.get(&partition) == Some(&version);
                    let cmds = self.controller_mut().state_observed(&partition, state, version);
                    // The notification of the controller's own latest write
                    // tells it nothing new: it must not make it write again
                    // (that was a livelock: a new leader epoch per echo).
                    let writes = cmds.iter().any(|c| {
                        matches!(
                            c,
                            ControllerCommand::WriteState { .. } | ControllerCommand::WriteAssignment { .. }
                        )
                    });
                    assert!(
                        !(own_echo && writes),
                        "t={}: the echo of the controller's own write of p{partition} v{version} made it write: {cmds:?}",
                        self.now
                    );
                    self.run_controller(cmds);
                }
            }
            Msg::AssignmentWritten {
                partition,
                controller_epoch,
            } => {
                if self
                    .controller
                    .as_ref()
                    .is_some_and(|(host, c)| *host == to && c.epoch() == controller_epoch)
                {
                    let cmds = self.controller_mut().assignment_written(&partition);
                    self.run_controller(cmds);
                }
            }
            Msg::Produce { id, partition, values } => self.on_produce(to, id, partition, values),
            Msg::ProduceAnswer { id, result } => {
                if let (Ok(base), Some((p, values))) = (result, self.produced.remove(&id)) {
                    for (i, v) in values.into_iter().enumerate() {
                        let previous = self.acked.insert((p, base + i as u64), v);
                        assert!(previous.is_none(), "offset {p}/{} acknowledged twice", base + i as u64);
                    }
                }
            }
        }
    }

    fn on_leader_and_isr(&mut self, to: BrokerId, controller_epoch: i32, partitions: Vec<(u32, PartitionRecord)>) {
        let now = self.now;
        let b = self.brokers.get_mut(&to).expect("broker");
        if b.fence.check(controller_epoch).is_err() {
            return;
        }
        let mut refused = Vec::new();
        for (p, record) in partitions {
            // A replica new here (a reassignment added it) starts empty.
            let log = b.logs.entry(p).or_default();
            let role = b.roles.entry(p).or_insert_with(|| ReplicaRole::new(to));
            trace!(
                "t={now} b{to} LeaderAndIsr p{p} {:?} v{} (log end {}, hw {})",
                record.state,
                record.version,
                log.log_end(),
                log.hw
            );
            let at = LocalPosition {
                log_end: log.log_end(),
                high_watermark: log.hw,
            };
            let change = role.apply(&record, at, SETTINGS, now);
            match change {
                Ok(RoleChange::BecameLeader) => {
                    let previous = self.leaders_by_epoch.insert((p, record.state.leader_epoch), to);
                    assert!(
                        previous.is_none_or(|b| b == to),
                        "two leaders in epoch {} of {p}",
                        record.state.leader_epoch
                    );
                    b.pending.remove(&p);
                    // As the broker does: the log takes the new leader's HW
                    // (a lone in-sync leader's is its log end at once).
                    if let (Some(l), Some(log)) = (role.leader(), b.logs.get_mut(&p)) {
                        log.hw = l.high_watermark();
                    }
                }
                Ok(RoleChange::BecameFollower { .. } | RoleChange::BecameOffline) => {
                    b.pending.remove(&p);
                    refused.extend(
                        b.purgatory
                            .check(&p, |_| Some(Err(ReplicationError::NotLeaderOrFollower))),
                    );
                }
                _ => {}
            }
        }
        self.answer(to, refused);
    }

    fn on_stop_replica(&mut self, to: BrokerId, controller_epoch: i32, partitions: Vec<u32>, delete: bool) {
        let b = self.brokers.get_mut(&to).expect("broker");
        if b.fence.check(controller_epoch).is_err() {
            return;
        }
        let mut refused = Vec::new();
        for p in partitions {
            trace!("t={} b{to} StopReplica p{p} delete={delete}", self.now);
            b.roles.remove(&p);
            if delete {
                b.logs.remove(&p);
                b.hw_checkpoint.remove(&p);
                self.wiped.insert((to, p));
            }
            b.pending.remove(&p);
            refused.extend(
                b.purgatory
                    .check(&p, |_| Some(Err(ReplicationError::NotLeaderOrFollower))),
            );
        }
        self.answer(to, refused);
    }

    fn on_fetch(&mut self, leader: BrokerId, follower: BrokerId, p: u32, offset: u64, leader_epoch: i32) {
        let now = self.now;
        let b = self.brokers.get_mut(&leader).expect("broker");
        let log = &b.logs.get(&p).cloned().unwrap_or_default();
        let outcome = match b.roles.get_mut(&p).and_then(|r| r.leader_mut()) {
            None => Err(ReplicationError::NotLeaderOrFollower),
            Some(l) => l
                .check_epoch(Some(leader_epoch))
                .and_then(|()| {
                    if offset > log.log_end() {
                        Err(ReplicationError::UnknownLeaderEpoch)
                    } else {
                        l.on_follower_fetch(follower, offset, now)
                    }
                })
                .map(|progress| (progress, l.high_watermark())),
        };
        let result = match outcome {
            Err(e) => Err(e),
            Ok((progress, hw)) => {
                if let Some(change) = progress.isr_change {
                    self.write_isr(leader, p, change.isr, change.expected_version);
                }
                self.complete_acks(leader, p);
                let end = (offset as usize + MAX_FETCH).min(log.entries.len());
                Ok((log.entries[offset as usize..end].to_vec(), hw))
            }
        };
        let hw = self.brokers[&leader]
            .roles
            .get(&p)
            .and_then(|r| r.leader())
            .map(|l| l.high_watermark());
        if let Some(hw) = hw {
            if let Some(log) = self.brokers.get_mut(&leader).and_then(|b| b.logs.get_mut(&p)) {
                log.hw = hw;
            }
        }
        self.send(
            leader,
            follower,
            Msg::FetchResponse {
                partition: p,
                offset,
                leader_epoch,
                result: result.map(|(entries, _)| (entries, hw.unwrap_or(0))),
            },
        );
    }

    fn on_fetch_response(
        &mut self,
        to: BrokerId,
        p: u32,
        offset: u64,
        leader_epoch: i32,
        result: Result<(Vec<Entry>, u64), ReplicationError>,
    ) {
        let b = self.brokers.get_mut(&to).expect("broker");
        let Some(f) = b.roles.get_mut(&p).and_then(|r| r.follower_mut()) else {
            return;
        };
        if f.leader_epoch() != leader_epoch {
            return;
        }
        b.pending.remove(&p);
        let log = b.logs.get_mut(&p).expect("log");
        if log.log_end() != offset {
            return; // stale
        }
        match result {
            Ok((entries, leader_hw)) => {
                trace!(
                    "t={} b{to} fetched p{p} from {offset}: {} entries, leader hw {leader_hw}",
                    self.now,
                    entries.len()
                );
                log.entries.extend(entries);
                log.hw = log.hw.max(follower_high_watermark(leader_hw, log.log_end()));
            }
            Err(_) => {
                // The leader moved on or refused: start over with truncation.
                let leader = f.leader();
                *f = gregor_replication::FollowerPartition::new(leader, leader_epoch);
            }
        }
    }

    fn on_produce(&mut self, to: BrokerId, id: u64, p: u32, values: Vec<u64>) {
        let now = self.now;
        let b = self.brokers.get_mut(&to).expect("broker");
        let Some(l) = b.roles.get_mut(&p).and_then(|r| r.leader_mut()) else {
            return self.send(
                to,
                CLIENT,
                Msg::ProduceAnswer {
                    id,
                    result: Err(ReplicationError::NotLeaderOrFollower),
                },
            );
        };
        if let Err(e) = l.check_enough_replicas() {
            return self.send(to, CLIENT, Msg::ProduceAnswer { id, result: Err(e) });
        }
        let log = b.logs.get_mut(&p).expect("log");
        let base = log.log_end();
        let epoch = l.leader_epoch();
        log.entries.extend(values.iter().map(|&value| Entry { epoch, value }));
        l.on_append(log.log_end());
        let required = log.log_end();
        log.hw = l.high_watermark();
        let done = b
            .purgatory
            .watch(Waiter { id, base }, now + PRODUCE_TIMEOUT_MS, [(p, required)], []);
        assert!(done.is_none());
        self.complete_acks(to, p);
    }

    fn complete_acks(&mut self, broker: BrokerId, p: u32) {
        let b = self.brokers.get_mut(&broker).expect("broker");
        let Some(l) = b.roles.get(&p).and_then(|r| r.leader()) else {
            return;
        };
        let done = b.purgatory.check(&p, |required| l.ack_status(required));
        self.answer(broker, done);
    }

    fn answer(&mut self, broker: BrokerId, done: Vec<Completed<u32, Waiter>>) {
        for (w, outcomes) in done {
            let result = outcomes.into_iter().try_for_each(|(_, o)| o).map(|()| w.base);
            self.send(broker, CLIENT, Msg::ProduceAnswer { id: w.id, result });
        }
    }

    fn write_isr(&mut self, leader: BrokerId, p: u32, isr: Vec<BrokerId>, expected_version: i32) {
        let (state, version) = self.store[&p].clone();
        let b = self.brokers.get_mut(&leader).expect("broker");
        let Some(l) = b.roles.get_mut(&p).and_then(|r| r.leader_mut()) else {
            return;
        };
        if version != expected_version {
            l.isr_rejected();
            return;
        }
        let new_state = LeaderAndIsr {
            isr: isr.clone(),
            ..state
        };
        trace!("t={} b{leader} writes ISR of p{p}: {isr:?}", self.now);
        self.store.insert(p, (new_state.clone(), version + 1));
        l.isr_committed(isr, version + 1);
        self.complete_acks(leader, p);
        if self.controller.is_some() {
            let cmds = self.controller_mut().state_observed(&p, new_state, version + 1);
            self.run_controller(cmds);
        }
    }

    /// Clock work on every live broker: ISR shrinks, expired produces,
    /// follower requests (resent when one seems lost), HW checkpoints.
    fn tick(&mut self) {
        let now = self.now;
        let stopping: Vec<BrokerId> = self
            .brokers
            .iter()
            .filter(|(_, b)| b.up && b.stops_at.is_some_and(|t| t <= now))
            .map(|(&id, _)| id)
            .collect();
        for id in stopping {
            self.crash(id);
        }
        let ids: Vec<BrokerId> = self.brokers.keys().copied().collect();
        for id in ids {
            if !self.brokers[&id].up {
                continue;
            }
            let parts: Vec<u32> = self.brokers[&id].roles.keys().copied().collect();
            for p in parts {
                let b = self.brokers.get_mut(&id).expect("broker");
                let role = b.roles.get_mut(&p).expect("role");
                if let Some(l) = role.leader_mut() {
                    if let Some(change) = l.tick(now) {
                        self.write_isr(id, p, change.isr, change.expected_version);
                    }
                    continue;
                }
                let Some(f) = role.follower_mut() else { continue };
                if b.pending.get(&p).is_some_and(|&sent| now < sent + REQUEST_TIMEOUT_MS) {
                    continue;
                }
                let log = b.logs.get_mut(&p).expect("log");
                let (request, cut) = f.next_request(log);
                if let Some(cut) = cut {
                    log.truncate(cut.offset);
                }
                let (leader, leader_epoch) = (f.leader(), f.leader_epoch());
                b.pending.insert(p, now);
                let msg = match request {
                    FollowerRequest::EpochEndOffset { epoch } => Msg::EpochQuery {
                        partition: p,
                        epoch,
                        leader_epoch,
                    },
                    FollowerRequest::Fetch { offset } => Msg::Fetch {
                        partition: p,
                        offset,
                        leader_epoch,
                    },
                };
                self.send(id, leader, msg);
            }
            let b = self.brokers.get_mut(&id).expect("broker");
            let expired = b.purgatory.expire(now);
            self.answer(id, expired);
            let b = self.brokers.get_mut(&id).expect("broker");
            if self.rng.chance(30) {
                let hws: Vec<(u32, u64)> = b.logs.iter().map(|(&p, l)| (p, l.hw)).collect();
                b.hw_checkpoint.extend(hws);
            }
        }
        self.expire_sessions();
    }

    fn produce(&mut self) {
        let p = self.rng.below(PARTITIONS as u64) as u32;
        let Some((state, _)) = self.store.get(&p) else { return };
        if state.leader == NO_LEADER {
            return;
        }
        let leader = state.leader;
        let values: Vec<u64> = (0..1 + self.rng.below(3)).map(|i| self.next_value + i).collect();
        self.next_value += values.len() as u64;
        let id = self.next_request;
        self.next_request += 1;
        self.produced.insert(id, (p, values.clone()));
        self.send(
            CLIENT,
            leader,
            Msg::Produce {
                id,
                partition: p,
                values,
            },
        );
    }

    /// An administrator reassigns a random partition to 1–4 random
    /// brokers, or cancels its reassignment.
    fn reassign(&mut self) {
        if self.controller.is_none() {
            return;
        }
        let p = self.rng.below(PARTITIONS as u64) as u32;
        let target = if self.rng.chance(20) {
            None
        } else {
            let mut pool: Vec<BrokerId> = (0..BROKERS).collect();
            let n = 1 + self.rng.below(4) as usize;
            let mut target = Vec::new();
            for _ in 0..n {
                target.push(pool.remove(self.rng.below(pool.len() as u64) as usize));
            }
            Some(target)
        };
        trace!("t={} reassign p{p} to {target:?}", self.now);
        if let Ok(cmds) = self.controller_mut().reassign(&p, target) {
            self.run_controller(cmds);
        }
    }

    /// Delivers the next message in flight, or lets time pass when there
    /// is none.
    fn deliver_next(&mut self) {
        if let Some(m) = self.net.pop() {
            self.now = self.now.max(m.at);
            self.deliver(m);
        } else {
            self.now += 5;
            self.tick();
        }
    }

    fn step(&mut self) {
        let roll = self.rng.below(100);
        match roll {
            0..=54 => self.deliver_next(),
            55..=79 => {
                self.now += 1 + self.rng.below(30);
                self.tick();
            }
            80..=91 => self.produce(),
            92 => {
                // Kafka's periodic auto leader rebalance.
                if self.controller.is_some() {
                    let cmds = self.controller_mut().rebalance_leaders(10);
                    self.run_controller(cmds);
                }
            }
            93 => self.reassign(),
            _ if !self.faults => {}
            94..=95 => {
                let down = self.brokers.values().filter(|b| !b.up || b.stops_at.is_some()).count();
                let id = self.rng.below(BROKERS as u64) as BrokerId;
                if down < 2 && self.brokers[&id].up && self.brokers[&id].stops_at.is_none() {
                    if self.rng.chance(50) {
                        self.controlled_shutdown(id);
                    } else {
                        self.crash(id);
                    }
                }
            }
            96..=97 => {
                let id = self.rng.below(BROKERS as u64) as BrokerId;
                let b = &self.brokers[&id];
                if !b.up && b.expires_at.is_none() {
                    self.restart(id);
                }
            }
            _ => {
                let a = self.rng.below(BROKERS as u64) as BrokerId;
                let b = self.rng.below(BROKERS as u64) as BrokerId;
                if a != b {
                    let until = self.now + 50 + self.rng.below(400);
                    self.cuts.insert((a.min(b), a.max(b)), until);
                }
            }
        }
        self.check();
    }

    // ---- invariants ----

    fn check(&mut self) {
        for p in 0..PARTITIONS {
            let replicas = self.replicas[&p].clone();
            let (state, _) = self.store[&p].clone();
            // No acknowledged record lost or changed: every ISR member
            // (and the leader) has it at its offset.
            for (&(ap, offset), &value) in self.acked.range((p, 0)..(p + 1, 0)) {
                let _ = ap;
                // (An ISR member a reassignment dropped can no longer lead:
                // it is deleted before the ISR write that drops it lands.)
                for member in state.isr.iter().chain(std::iter::once(&state.leader)) {
                    if *member == NO_LEADER || !replicas.contains(member) {
                        continue;
                    }
                    let log = &self.brokers[member].logs[&p];
                    let got = log.entries.get(offset as usize).map(|e| e.value);
                    assert_eq!(
                        got,
                        Some(value),
                        "acked {p}/{offset} missing or changed on ISR member {member}"
                    );
                }
            }
            // Committed prefixes agree pairwise.
            for (i, a) in replicas.iter().enumerate() {
                for b in &replicas[i + 1..] {
                    let (Some(la), Some(lb)) = (self.brokers[a].logs.get(&p), self.brokers[b].logs.get(&p)) else {
                        continue; // not created yet
                    };
                    let n = la.hw.min(lb.hw) as usize;
                    assert_eq!(
                        la.entries[..n],
                        lb.entries[..n],
                        "committed prefixes of {p} differ on {a} and {b}"
                    );
                }
            }
            // The leader's HW is covered by every maximal-ISR member, and
            // moves only forward within its epoch; what a consumer read
            // stays readable and unchanged.
            for (&id, b) in &self.brokers {
                let Some(l) = b.roles.get(&p).and_then(|r| r.leader()).filter(|_| b.up) else {
                    continue;
                };
                let kept = |m: &BrokerId| replicas.contains(m) && !self.wiped.contains(&(*m, p));
                for member in l.maximal_isr().into_iter().filter(kept) {
                    let end = self.brokers[&member].logs[&p].log_end();
                    assert!(
                        l.high_watermark() <= end,
                        "HW {} of {p} beyond ISR member {member}'s end {end}",
                        l.high_watermark()
                    );
                }
                let seen = self.leader_hw.entry((p, l.leader_epoch())).or_insert(0);
                assert!(
                    l.high_watermark() >= *seen,
                    "HW of {p} went backwards in epoch {}",
                    l.leader_epoch()
                );
                *seen = l.high_watermark();
                if state.leader == id {
                    let log = &b.logs[&p];
                    let consumed = self.consumed.entry(p).or_default();
                    assert!(
                        log.log_end() as usize >= consumed.len(),
                        "records a consumer read vanished from {p}"
                    );
                    for (i, v) in consumed.iter().enumerate() {
                        assert_eq!(log.entries[i].value, *v, "record {p}/{i} a consumer read changed");
                    }
                    let hw = l.high_watermark() as usize;
                    if hw > consumed.len() {
                        let more: Vec<u64> = log.entries[consumed.len()..hw].iter().map(|e| e.value).collect();
                        consumed.extend(more);
                    }
                }
            }
        }
    }

    /// Stops the faults, restarts everyone and runs until every replica
    /// holds the same log with every acknowledged record.
    fn converge(&mut self) {
        self.faults = false;
        self.cuts.clear();
        // Brokers in a controlled shutdown finish stopping first.
        let stopping: Vec<BrokerId> = self
            .brokers
            .iter()
            .filter(|(_, b)| b.up && b.stops_at.is_some())
            .map(|(&id, _)| id)
            .collect();
        for id in stopping {
            self.crash(id);
        }
        let down: Vec<BrokerId> = self.brokers.iter().filter(|(_, b)| !b.up).map(|(&id, _)| id).collect();
        for id in down {
            while self.brokers[&id].expires_at.is_some() {
                self.now += 10;
                self.tick();
            }
            self.restart(id);
        }
        for _ in 0..20_000 {
            if self.converged() {
                return;
            }
            self.deliver_next();
            self.check();
        }
        panic!("replicas did not converge: store {:?}", self.store);
    }

    fn converged(&self) -> bool {
        // The controller too has finished every reassignment (not only
        // coordination): one that never ends keeps writing leader epochs.
        let controller_done = self
            .controller
            .as_ref()
            .is_none_or(|(_, c)| c.reassignments().is_empty());
        controller_done
            && (0..PARTITIONS).all(|p| {
                let (state, _) = &self.store[&p];
                if state.leader == NO_LEADER
                    || state.isr.len() != self.replicas[&p].len()
                    || !self.reassigning.is_empty()
                {
                    return false;
                }
                let leader_log = &self.brokers[&state.leader].logs[&p];
                let acked_here = self
                    .acked
                    .range((p, 0)..(p + 1, 0))
                    .all(|(&(_, o), &v)| leader_log.entries.get(o as usize).map(|e| e.value) == Some(v));
                acked_here
                    && self.replicas[&p].iter().all(|r| {
                        self.brokers[r]
                            .logs
                            .get(&p)
                            .is_some_and(|log| log.entries == leader_log.entries && log.hw == leader_log.log_end())
                    })
            })
    }
}

/// Runs one seed: `steps` random steps, then convergence; returns how
/// many records were acknowledged.
fn run(seed: u64, steps: usize) -> usize {
    let mut sim = Sim::new(seed);
    for _ in 0..steps {
        sim.step();
    }
    sim.converge();
    sim.acked.len()
}

#[test]
fn random_schedules_keep_acknowledged_records() {
    let mut acked_total = 0usize;
    gregor_sim::run_schedules(200, |seed| {
        acked_total += run(seed, STEPS);
        Ok(())
    });
    assert!(
        acked_total > 0,
        "no record was ever acknowledged: the simulation tests nothing"
    );
}

#[test]
fn one_seed_replays_exactly() {
    let trace = |seed| {
        let mut sim = Sim::new(seed);
        for _ in 0..1_000 {
            sim.step();
        }
        (sim.now, sim.acked.clone(), sim.store.clone())
    };
    assert_eq!(trace(7), trace(7));
}
