//! Deterministic simulation: simulated consumers (dynamic and static)
//! drive the real [`GroupStateMachine`] directly — joining, syncing with
//! a range assignment computed by the leader, heartbeating, committing,
//! leaving, crashing, restarting (static ones fence their old selves,
//! which keep talking as zombies) — while time advances, writes succeed,
//! fail, or land but fail to be acknowledged, and the coordinator fails
//! over: its state is dropped and a new one reloads the records written
//! so far. After every input the invariants are checked:
//!
//! - answers go only to requests that wait for them, each at most once,
//!   of the kind asked (and, once settled, every request is answered);
//! - a group's generation never goes back within a coordinator's life,
//!   moves by at most one per input, and is never below the generation
//!   of its last stored metadata (also right after a failover);
//! - in a generation every join answer (of one life) names the same leader;
//!   the assignments handed out (across failovers too) are disjoint, each
//!   member getting one; a stable group's assignments partition the topic;
//! - a commit is acknowledged only after its write succeeded, and an
//!   acknowledged offset is never lost or moved back: the cache holds it
//!   or a value written after it (a later commit, a reset, a deletion or
//!   an expiry, the last only past retention in a group without members);
//! - a member whose static instance id another member holds is refused
//!   with FENCED_INSTANCE_ID, whatever it sends.
//!
//! At the end the faults stop and every group must settle: stable, with
//! exactly its live members, each with its share of the partitions.
//!
//! `GREGOR_SIM_SCHEDULES` sets how many seeds run (default 300);
//! `GREGOR_SIM_SEED` replays one seed. A failure prints its seed and the
//! step trace.

use std::collections::{BTreeMap, BTreeSet};

use gregor_group::records::{parse, OffsetsRecord};
use gregor_group::{
    CommittedOffset, GroupConfig, GroupError, GroupState, GroupStateMachine, JoinRequest, JoinResponse, LoadedRecord,
    MemberOf, Output, Persist, PersistId, RequestId, Response, StoreError, SyncRequest, SyncResponse,
};
use gregor_sim::Rng;

const GROUPS: [&str; 2] = ["g0", "g1"];
const TOPIC: &str = "t";
const PARTITIONS: i32 = 6;
const CLIENTS_PER_GROUP: usize = 4;
const STEPS: usize = 400;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Has to (re)join.
    Out,
    Joining,
    /// Joined a generation; has to sync.
    Joined,
    Syncing,
    Stable,
    /// Crashed: silent until restarted.
    Dead,
    /// Told it is fenced: gives up.
    Fenced,
}

struct Client {
    group: usize,
    instance: Option<String>,
    member_id: String,
    generation: i32,
    /// The member list of its generation, if it leads.
    leading: Option<Vec<String>>,
    assignment: Vec<i32>,
    phase: Phase,
    /// Bumped at each restart: answers to an earlier life are ignored.
    incarnation: u32,
    /// The join or sync it waits on (answers to others are stale).
    awaiting: Option<RequestId>,
}

/// A static member's earlier self, still talking after its restart.
#[derive(Debug, Clone)]
struct Zombie {
    group: usize,
    instance: String,
    member_id: String,
    generation: i32,
}

#[derive(Debug, Clone)]
enum Asked {
    Join {
        client: usize,
        incarnation: u32,
    },
    Sync {
        client: usize,
        incarnation: u32,
        generation: i32,
    },
    Heartbeat {
        client: usize,
        incarnation: u32,
    },
    Leave {
        client: usize,
        incarnation: u32,
    },
    Commit {
        offsets: Vec<(i32, i64)>,
        group: usize,
    },
    Delete,
    Zombie,
}

/// One write of an offset (or its tombstone) as the sim saw it go out.
#[derive(Debug, Clone)]
struct OffsetWrite {
    value: Option<i64>,
    timestamp: i64,
    /// The coordinator life and write that carried it.
    persist: (u32, PersistId),
    /// In the log (`Some(true)`), not (`Some(false)`), or not known yet.
    landed: Option<bool>,
    /// The machine was told the write succeeded.
    reported_ok: bool,
    /// A client was told its commit succeeded.
    acked: bool,
}

struct Sim {
    rng: Rng,
    now: i64,
    config: GroupConfig,
    machine: GroupStateMachine,
    life: u32,
    next_member: u64,
    next_request: u64,
    next_offset: i64,
    log: Vec<LoadedRecord>,
    in_flight: Vec<Persist>,
    asked: BTreeMap<RequestId, Asked>,
    clients: Vec<Client>,
    zombies: Vec<Zombie>,
    /// (group, partition) → every write of it, in the order they went out.
    offsets: BTreeMap<(String, i32), Vec<OffsetWrite>>,
    /// The latest group metadata record in the log: its generation, or
    /// `None` for a tombstone.
    stored_generation: BTreeMap<String, Option<i32>>,
    /// Per group, the generation seen last in this coordinator's life.
    seen_generation: BTreeMap<String, i32>,
    /// Per group, how often it was forgotten (a new group starts over).
    epoch: BTreeMap<String, u32>,
    /// (group, epoch, generation) → member → assignment handed out.
    handed_out: BTreeMap<(String, u32, i32), BTreeMap<String, Vec<i32>>>,
    /// (group, epoch, generation) → leader named in the join answers.
    leaders: BTreeMap<(String, u32, u32, i32), String>,
    /// The coordinator was just rebuilt: generations may restart from
    /// the stored ones.
    reloaded: bool,
    faults: bool,
    trace: Vec<String>,
    acked_commits: usize,
    stable_syncs: usize,
    failovers: usize,
    /// How often each notable thing happened (what a schedule covered).
    seen: BTreeMap<&'static str, usize>,
}

macro_rules! trace {
    ($sim:expr, $($arg:tt)*) => {{
        let line = format!("t={} life={} {}", $sim.now, $sim.life, format!($($arg)*));
        $sim.trace.push(line);
    }};
}

fn encode(partitions: &[i32]) -> Vec<u8> {
    partitions.iter().map(|p| *p as u8).collect()
}

fn decode(bytes: &[u8]) -> Vec<i32> {
    bytes.iter().map(|b| i32::from(*b)).collect()
}

/// Kafka's range assignor over one topic: contiguous ranges by sorted id.
fn range_assignment(members: &[String]) -> Vec<(String, Vec<i32>)> {
    let mut sorted = members.to_vec();
    sorted.sort();
    let n = sorted.len() as i32;
    let (each, extra) = (PARTITIONS / n, PARTITIONS % n);
    let mut next = 0;
    sorted
        .into_iter()
        .enumerate()
        .map(|(i, id)| {
            let count = each + i32::from((i as i32) < extra);
            let range = (next..next + count).collect();
            next += count;
            (id, range)
        })
        .collect()
}

impl Sim {
    fn new(seed: u64) -> Self {
        let mut rng = Rng::seeded(seed);
        let config = GroupConfig {
            min_session_timeout_ms: 1_000,
            max_session_timeout_ms: 60_000,
            initial_rebalance_delay_ms: rng.pick(&[0, 0, 3_000]),
            offsets_retention_ms: rng.pick(&[30_000, 120_000, 10_000_000]),
            offsets_retention_check_interval_ms: 0,
            ..GroupConfig::default()
        };
        let clients = (0..GROUPS.len() * CLIENTS_PER_GROUP)
            .map(|i| Client {
                group: i % GROUPS.len(),
                instance: (i % 3 == 0).then(|| format!("host-{i}")),
                member_id: String::new(),
                generation: -1,
                leading: None,
                assignment: Vec::new(),
                phase: Phase::Out,
                incarnation: 0,
                awaiting: None,
            })
            .collect();
        Self {
            rng,
            now: 1_000,
            machine: GroupStateMachine::new(config.clone()),
            config,
            life: 0,
            next_member: 0,
            next_request: 0,
            next_offset: 0,
            log: Vec::new(),
            in_flight: Vec::new(),
            asked: BTreeMap::new(),
            clients,
            zombies: Vec::new(),
            offsets: BTreeMap::new(),
            stored_generation: BTreeMap::new(),
            seen_generation: BTreeMap::new(),
            epoch: BTreeMap::new(),
            handed_out: BTreeMap::new(),
            leaders: BTreeMap::new(),
            reloaded: false,
            faults: true,
            trace: Vec::new(),
            acked_commits: 0,
            stable_syncs: 0,
            failovers: 0,
            seen: BTreeMap::new(),
        }
    }

    fn request(&mut self, asked: Asked) -> RequestId {
        self.next_request += 1;
        let id = RequestId(self.next_request);
        self.asked.insert(id, asked);
        id
    }

    fn epoch_of(&self, group: &str) -> u32 {
        self.epoch.get(group).copied().unwrap_or(0)
    }

    // ---- the clients' side ------------------------------------------------

    fn join(&mut self, c: usize) {
        let client = &self.clients[c];
        let group = GROUPS[client.group];
        let request = JoinRequest {
            group_id: group.into(),
            member_id: client.member_id.clone(),
            group_instance_id: client.instance.clone(),
            client_id: format!("client-{c}"),
            client_host: "/10.0.0.1".into(),
            protocol_type: "consumer".into(),
            protocols: vec![("range".into(), TOPIC.as_bytes().to_vec())],
            session_timeout_ms: 6_000 + 1_000 * (c as i32 % 5),
            rebalance_timeout_ms: 10_000 + 2_000 * (c as i32 % 3),
            require_known_member_id: client.instance.is_none() && c % 2 == 1,
        };
        trace!(self, "c{c} joins {group} as {:?}", request.member_id);
        self.clients[c].phase = Phase::Joining;
        let incarnation = self.clients[c].incarnation;
        let id = self.request(Asked::Join { client: c, incarnation });
        self.clients[c].awaiting = Some(id);
        let next_member = &mut self.next_member;
        let mut ids = |prefix: &str| {
            *next_member += 1;
            format!("{prefix}-m{next_member}")
        };
        let out = self.machine.join(id, request, self.now, &mut ids);
        self.handle(out);
    }

    fn sync(&mut self, c: usize) {
        let client = &self.clients[c];
        let group = GROUPS[client.group];
        let assignments = client
            .leading
            .as_ref()
            .map(|members| {
                range_assignment(members)
                    .into_iter()
                    .map(|(m, p)| (m, encode(&p)))
                    .collect()
            })
            .unwrap_or_default();
        let request = SyncRequest {
            group_id: group.into(),
            generation_id: client.generation,
            member_id: client.member_id.clone(),
            group_instance_id: client.instance.clone(),
            assignments,
        };
        trace!(
            self,
            "c{c} syncs {group} gen {} as {}{}",
            client.generation,
            client.member_id,
            if client.leading.is_some() { " (leader)" } else { "" }
        );
        let asked = Asked::Sync {
            client: c,
            incarnation: client.incarnation,
            generation: client.generation,
        };
        self.clients[c].phase = Phase::Syncing;
        let id = self.request(asked);
        self.clients[c].awaiting = Some(id);
        let out = self.machine.sync(id, request, self.now);
        self.handle(out);
    }

    fn heartbeat(&mut self, c: usize) {
        let client = &self.clients[c];
        let (group, generation, member) = (GROUPS[client.group], client.generation, client.member_id.clone());
        let instance = client.instance.clone();
        trace!(self, "c{c} heartbeats {group} gen {generation} as {member}");
        let asked = Asked::Heartbeat {
            client: c,
            incarnation: client.incarnation,
        };
        let id = self.request(asked);
        let out = self.machine.heartbeat(
            id,
            MemberOf::new(group, generation, &member, instance.as_deref()),
            self.now,
        );
        self.handle(out);
    }

    fn commit(&mut self, c: usize) {
        let client = &self.clients[c];
        let (group, generation, member) = (client.group, client.generation, client.member_id.clone());
        let instance = client.instance.clone();
        let partitions = client.assignment.clone();
        self.commit_as(group, generation, &member, instance.as_deref(), &partitions);
    }

    /// Commits the next offsets of `partitions` (fresh values, so every
    /// write of a partition is told apart).
    fn commit_as(&mut self, group: usize, generation: i32, member: &str, instance: Option<&str>, partitions: &[i32]) {
        if partitions.is_empty() {
            return;
        }
        let mut offsets = Vec::new();
        let mut values = Vec::new();
        for p in partitions {
            self.next_offset += 1;
            values.push((*p, self.next_offset));
            let value = CommittedOffset {
                offset: self.next_offset,
                leader_epoch: -1,
                metadata: String::new(),
                commit_timestamp: self.now,
            };
            offsets.push((TOPIC.to_string(), *p, value));
        }
        trace!(
            self,
            "commit {} gen {generation} by {member:?}: {values:?}",
            GROUPS[group]
        );
        let id = self.request(Asked::Commit { offsets: values, group });
        let out = self
            .machine
            .commit(id, MemberOf::new(GROUPS[group], generation, member, instance), &offsets);
        self.handle(out);
    }

    fn leave(&mut self, c: usize) {
        let client = &self.clients[c];
        let group = GROUPS[client.group];
        let leaving = vec![(client.member_id.clone(), client.instance.clone())];
        trace!(self, "c{c} leaves {group} as {}", client.member_id);
        let asked = Asked::Leave {
            client: c,
            incarnation: client.incarnation,
        };
        let id = self.request(asked);
        let out = self.machine.leave(id, group, &leaving, self.now);
        self.handle(out);
    }

    /// A crash: silent from now on (its session will expire).
    fn crash(&mut self, c: usize) {
        trace!(self, "c{c} crashes");
        self.clients[c].phase = Phase::Dead;
    }

    /// A restart: dynamic members come back as new members; static ones
    /// with their instance id, fencing their old selves, which may keep
    /// talking.
    fn restart(&mut self, c: usize) {
        let client = &mut self.clients[c];
        if let Some(instance) = &client.instance {
            if !client.member_id.is_empty() {
                self.zombies.push(Zombie {
                    group: client.group,
                    instance: instance.clone(),
                    member_id: client.member_id.clone(),
                    generation: client.generation,
                });
            }
        }
        client.incarnation += 1;
        client.member_id.clear();
        client.generation = -1;
        client.leading = None;
        client.assignment.clear();
        client.phase = Phase::Out;
        trace!(self, "c{c} restarts");
        self.join(c);
    }

    /// A fenced static member's old self talks; whenever another member
    /// holds its instance id it must be told FENCED_INSTANCE_ID.
    fn zombie_speaks(&mut self, z: usize) {
        let zombie = self.zombies[z].clone();
        let group = GROUPS[zombie.group];
        let holder = self.machine.describe(group).and_then(|d| {
            d.members
                .into_iter()
                .find(|m| m.group_instance_id.as_deref() == Some(zombie.instance.as_str()))
                .map(|m| m.member_id)
        });
        let fenced = holder.is_some_and(|h| h != zombie.member_id);
        if !fenced {
            // Its instance is free (or its again, after a failover
            // restored the old membership): not a zombie now.
            return;
        }
        let id = self.request(Asked::Zombie);
        let instance = Some(zombie.instance.clone());
        let what = self.rng.below(4);
        trace!(
            self,
            "zombie {} ({}) speaks ({what}), fenced: {fenced}",
            zombie.member_id,
            zombie.instance
        );
        let out = match what {
            0 => self.machine.heartbeat(
                id,
                MemberOf::new(group, zombie.generation, &zombie.member_id, instance.as_deref()),
                self.now,
            ),
            1 => {
                let offset = CommittedOffset {
                    offset: -1,
                    leader_epoch: -1,
                    metadata: String::new(),
                    commit_timestamp: self.now,
                };
                let offsets = [(TOPIC.to_string(), 0, offset)];
                let member = MemberOf::new(group, zombie.generation, &zombie.member_id, instance.as_deref());
                self.machine.commit(id, member, &offsets)
            }
            2 => {
                let request = SyncRequest {
                    group_id: group.into(),
                    generation_id: zombie.generation,
                    member_id: zombie.member_id.clone(),
                    group_instance_id: instance,
                    assignments: Vec::new(),
                };
                self.machine.sync(id, request, self.now)
            }
            _ => {
                let request = JoinRequest {
                    group_id: group.into(),
                    member_id: zombie.member_id.clone(),
                    group_instance_id: instance,
                    protocol_type: "consumer".into(),
                    protocols: vec![("range".into(), TOPIC.as_bytes().to_vec())],
                    session_timeout_ms: 6_000,
                    rebalance_timeout_ms: 10_000,
                    ..JoinRequest::default()
                };
                self.machine.join(id, request, self.now, &mut |_: &str| -> String {
                    panic!("a join with a member id makes no new id")
                })
            }
        };
        let answer = out.iter().find_map(|o| match o {
            Output::Respond { request, response } if *request == id => Some(response.clone()),
            _ => None,
        });
        let error = match &answer {
            Some(Response::Heartbeat(r) | Response::Commit(r)) => r.err(),
            Some(Response::Sync(s)) => s.error,
            Some(Response::Join(j)) => j.error,
            other => panic!("a fenced member's request answered {other:?}"),
        };
        assert_eq!(
            error,
            Some(GroupError::FencedInstanceId),
            "fenced member {} not refused",
            zombie.member_id
        );
        self.handle(out);
    }

    // ---- the coordinator's side -------------------------------------------

    /// Takes the machine's outputs: answers go to the requests they name
    /// (which must be waiting, once), writes go out.
    fn handle(&mut self, outputs: Vec<Output>) {
        for output in outputs {
            match output {
                Output::Persist(p) => self.persist_out(p),
                Output::Respond { request, response } => {
                    let asked = self
                        .asked
                        .remove(&request)
                        .unwrap_or_else(|| panic!("answer to {request:?}, which nobody waits for: {response:?}"));
                    self.answered(request, asked, response);
                }
            }
        }
    }

    fn persist_out(&mut self, p: Persist) {
        let tombstoned_group = p
            .records
            .iter()
            .any(|(k, v)| v.is_none() && matches!(parse(k, None), Some(OffsetsRecord::Group(..))));
        let kind = match parse(&p.records[0].0, p.records[0].1.as_deref()) {
            Some(OffsetsRecord::Offset(_, Some(_))) => "offset commit written",
            Some(OffsetsRecord::Offset(_, None)) if tombstoned_group => "group deletion written",
            Some(OffsetsRecord::Offset(_, None)) => "offset expiry written",
            Some(OffsetsRecord::Group(_, Some(m))) if m.members.is_empty() => "empty group written",
            Some(OffsetsRecord::Group(_, Some(_))) => "assignment written",
            Some(OffsetsRecord::Group(_, None)) => "group tombstone written",
            // The classic simulation makes no consumer-protocol group.
            Some(OffsetsRecord::Consumer(_)) => "consumer group records written",
            None => "unreadable write",
        };
        *self.seen.entry(kind).or_default() += 1;
        for (key, value) in &p.records {
            if let Some(OffsetsRecord::Offset(k, v)) = parse(key, value.as_deref()) {
                let writes = self.offsets.entry((k.group.clone(), k.partition)).or_default();
                if v.is_none() && !tombstoned_group {
                    // Expiry: only in a group without members, past
                    // retention of the latest acknowledged commit.
                    let latest = writes.iter().rev().find(|w| w.acked).map(|w| w.timestamp);
                    assert!(
                        latest.is_none_or(|ts| self.now - ts > self.config.offsets_retention_ms),
                        "offsets of {}/{} expired before retention",
                        k.group,
                        k.partition
                    );
                    let members = self.machine.describe(&k.group).map_or(0, |d| d.members.len());
                    assert_eq!(members, 0, "offsets of {} expired while it has members", k.group);
                }
                writes.push(OffsetWrite {
                    value: v.as_ref().map(|o| o.offset),
                    timestamp: v.as_ref().map_or(self.now, |o| o.commit_timestamp),
                    persist: (self.life, p.id),
                    landed: None,
                    reported_ok: false,
                    acked: false,
                });
            }
        }
        trace!(
            self,
            "write {:?} out for {}: {} records",
            p.id,
            p.group,
            p.records.len()
        );
        self.in_flight.push(p);
    }

    /// The write lands in the log (or not); returns where it would start.
    fn land(&mut self, p: &Persist, landed: bool) -> u64 {
        let first = self.log.len() as u64;
        if landed {
            for (key, value) in &p.records {
                if let Some(OffsetsRecord::Group(group, meta)) = parse(key, value.as_deref()) {
                    self.stored_generation.insert(group, meta.map(|m| m.generation));
                }
            }
            self.log.extend(
                (first..)
                    .zip(&p.records)
                    .map(|(offset, (key, value))| LoadedRecord::Record {
                        key: key.clone(),
                        value: value.clone(),
                        offset,
                        producer: None,
                    }),
            );
        }
        for writes in self.offsets.values_mut() {
            for w in writes.iter_mut().filter(|w| w.persist == (self.life, p.id)) {
                w.landed = Some(landed);
            }
        }
        first
    }

    /// Completes one write: it succeeds, fails, or lands but its
    /// acknowledgment fails.
    fn complete_write(&mut self, i: usize) {
        let p = self.in_flight.remove(i);
        let roll = if self.faults { self.rng.below(100) } else { 0 };
        let (landed, ok) = match roll {
            0..=79 => (true, true),
            80..=91 => (false, false),
            _ => (true, false),
        };
        trace!(self, "write {:?} for {}: landed {landed}, ok {ok}", p.id, p.group);
        let first = self.land(&p, landed);
        if ok {
            for writes in self.offsets.values_mut() {
                for w in writes.iter_mut().filter(|w| w.persist == (self.life, p.id)) {
                    w.reported_ok = true;
                }
            }
        }
        let result = if ok {
            Ok(first)
        } else {
            Err(StoreError::Unavailable("not enough replicas".to_string()))
        };
        let out = self.machine.persisted(p.id, result, self.now);
        self.handle(out);
    }

    /// The coordinator fails over: writes out land or not, unanswered
    /// requests are lost with their connections, and a new coordinator
    /// loads the log.
    fn failover(&mut self) {
        for p in std::mem::take(&mut self.in_flight) {
            let landed = self.rng.chance(50);
            trace!(
                self,
                "write {:?} for {} in flight at the failover: landed {landed}",
                p.id,
                p.group
            );
            self.land(&p, landed);
        }
        self.asked.clear();
        for client in &mut self.clients {
            if matches!(client.phase, Phase::Joining | Phase::Syncing) {
                client.phase = Phase::Out;
            }
        }
        self.life += 1;
        self.failovers += 1;
        self.reloaded = true;
        trace!(self, "coordinator fails over: reloads {} records", self.log.len());
        self.machine = GroupStateMachine::new(self.config.clone());
        let out = self.machine.reload(|_| true, &self.log, self.now);
        self.handle(out);
    }

    fn answered(&mut self, id: RequestId, asked: Asked, response: Response) {
        let error = match &response {
            Response::Join(r) => r.error,
            Response::Sync(r) => r.error,
            Response::Heartbeat(r) | Response::Commit(r) | Response::Delete(r) => r.err(),
            Response::Leave(r) => r.iter().find_map(|r| r.err()),
            // The simulation sends no OffsetDelete.
            Response::DeleteOffsets(r) => r.as_ref().err().copied(),
            // Nor ConsumerGroupHeartbeat (tests/consumer_simulation.rs).
            Response::ConsumerHeartbeat(r) => r.as_ref().err().copied(),
        };
        let what = match (&response, error) {
            (Response::Delete(_), None) => "group deleted",
            (Response::Join(_), Some(GroupError::MemberIdRequired)) => "MEMBER_ID_REQUIRED",
            (_, Some(GroupError::FencedInstanceId)) => "FENCED_INSTANCE_ID",
            (Response::Sync(_), Some(GroupError::CoordinatorNotAvailable)) => "sync failed: assignment not stored",
            (Response::Commit(_), Some(GroupError::CoordinatorNotAvailable)) => "commit failed: not stored",
            (Response::Commit(_), Some(GroupError::RebalanceInProgress)) => "commit refused: completing rebalance",
            _ => "",
        };
        if !what.is_empty() {
            *self.seen.entry(what).or_default() += 1;
        }
        match (asked, response) {
            (Asked::Join { client, incarnation }, Response::Join(r)) => self.joined(id, client, incarnation, r),
            (
                Asked::Sync {
                    client,
                    incarnation,
                    generation,
                },
                Response::Sync(r),
            ) => self.synced(id, client, incarnation, generation, r),
            (Asked::Heartbeat { client, incarnation }, Response::Heartbeat(r)) => {
                trace!(self, "c{client} heartbeat: {r:?}");
                if let Err(e) = r {
                    self.told(client, incarnation, e);
                }
            }
            (Asked::Leave { client, incarnation }, Response::Leave(r)) => {
                trace!(self, "c{client} left: {r:?}");
                let c = &mut self.clients[client];
                if c.incarnation == incarnation && c.phase != Phase::Dead {
                    c.member_id.clear();
                    c.phase = Phase::Out;
                }
            }
            (Asked::Commit { offsets, group }, Response::Commit(r)) => {
                trace!(self, "commit {offsets:?}: {r:?}");
                if r.is_ok() {
                    for (p, value) in offsets {
                        let writes = self.offsets.get_mut(&(GROUPS[group].to_string(), p));
                        let write = writes.and_then(|ws| ws.iter_mut().find(|w| w.value == Some(value)));
                        let write =
                            write.unwrap_or_else(|| panic!("commit of {p}={value} acknowledged, never written"));
                        assert!(
                            write.reported_ok,
                            "commit of {p}={value} acknowledged before its write succeeded"
                        );
                        write.acked = true;
                        self.acked_commits += 1;
                    }
                }
            }
            (Asked::Delete, Response::Delete(r)) => trace!(self, "delete: {r:?}"),
            (Asked::Zombie, r) => trace!(self, "zombie answered {r:?}"),
            (asked, response) => panic!("{asked:?} answered with {response:?}"),
        }
    }

    fn joined(&mut self, id: RequestId, c: usize, incarnation: u32, r: JoinResponse) {
        trace!(
            self,
            "c{c} join answer: {:?} gen {} id {} leader {} members {}",
            r.error,
            r.generation_id,
            r.member_id,
            r.leader,
            r.members.len()
        );
        let group = GROUPS[self.clients[c].group].to_string();
        if r.error.is_none() {
            let key = (group.clone(), self.life, self.epoch_of(&group), r.generation_id);
            let leader = self.leaders.entry(key).or_insert_with(|| r.leader.clone());
            assert_eq!(
                *leader, r.leader,
                "two leaders in generation {} of {group}",
                r.generation_id
            );
        }
        let client = &mut self.clients[c];
        if client.incarnation != incarnation || client.awaiting != Some(id) {
            return;
        }
        client.awaiting = None;
        if matches!(client.phase, Phase::Dead | Phase::Fenced) {
            return;
        }
        match r.error {
            None => {
                client.member_id = r.member_id.clone();
                client.generation = r.generation_id;
                client.leading =
                    (r.leader == r.member_id).then(|| r.members.iter().map(|m| m.member_id.clone()).collect());
                client.phase = Phase::Joined;
            }
            Some(GroupError::MemberIdRequired) => {
                client.member_id = r.member_id;
                client.phase = Phase::Out;
            }
            Some(e) => self.told(c, incarnation, e),
        }
    }

    fn synced(&mut self, id: RequestId, c: usize, incarnation: u32, generation: i32, r: SyncResponse) {
        trace!(self, "c{c} sync answer: {:?} {:?}", r.error, decode(&r.assignment));
        let group = GROUPS[self.clients[c].group].to_string();
        let member = self.clients[c].member_id.clone();
        if r.error.is_none() {
            // Handed out: disjoint from every other member's in this generation.
            let assignment = decode(&r.assignment);
            let key = (group.clone(), self.epoch_of(&group), generation);
            let given = self.handed_out.entry(key).or_default();
            if let Some(before) = given.get(&member) {
                assert_eq!(
                    *before, assignment,
                    "{member} got two assignments in generation {generation}"
                );
            }
            for (other, theirs) in given.iter() {
                if *other != member {
                    assert!(
                        theirs.iter().all(|p| !assignment.contains(p)),
                        "{member} and {other} share partitions in generation {generation} of {group}: {assignment:?} {theirs:?}"
                    );
                }
            }
            given.insert(member, assignment.clone());
            self.stable_syncs += 1;
            let client = &mut self.clients[c];
            if client.incarnation == incarnation && client.awaiting == Some(id) {
                client.awaiting = None;
                if client.phase == Phase::Syncing {
                    client.assignment = assignment;
                    client.phase = Phase::Stable;
                }
            }
        } else if let Some(e) = r.error {
            let client = &mut self.clients[c];
            if client.incarnation == incarnation && client.awaiting == Some(id) {
                client.awaiting = None;
                self.told(c, incarnation, e);
            }
        }
    }

    /// What a client does with an error.
    fn told(&mut self, c: usize, incarnation: u32, error: GroupError) {
        let client = &mut self.clients[c];
        if client.incarnation != incarnation || matches!(client.phase, Phase::Dead | Phase::Fenced) {
            return;
        }
        match error {
            GroupError::FencedInstanceId => client.phase = Phase::Fenced,
            GroupError::UnknownMemberId => {
                client.member_id.clear();
                client.phase = Phase::Out;
            }
            _ => client.phase = Phase::Out,
        }
        client.assignment.clear();
    }

    // ---- the schedule ------------------------------------------------------

    fn step(&mut self) {
        let roll = self.rng.below(100);
        let c = self.rng.below(self.clients.len() as u64) as usize;
        match roll {
            0..=29 => self.client_acts(c),
            30..=39 => {
                let ms = if self.rng.chance(10) {
                    self.rng.below(15_000) as i64
                } else {
                    self.rng.below(1_500) as i64
                };
                self.now += ms;
                trace!(self, "tick after {ms} ms");
                let out = self.machine.tick(self.now);
                self.handle(out);
            }
            40..=64 if !self.in_flight.is_empty() => {
                let i = self.rng.below(self.in_flight.len() as u64) as usize;
                self.complete_write(i);
            }
            65..=67 => match self.clients[c].phase {
                Phase::Dead | Phase::Fenced => self.restart(c),
                _ if self.rng.chance(50) => self.crash(c),
                _ => self.restart(c),
            },
            68..=70 if !self.zombies.is_empty() => {
                let z = self.rng.below(self.zombies.len() as u64) as usize;
                self.zombie_speaks(z);
            }
            71 => {
                // An admin resets offsets (accepted while the group is empty).
                let group = self.rng.below(GROUPS.len() as u64) as usize;
                self.commit_as(group, -1, "", None, &[0, 1]);
            }
            72 => {
                let group = GROUPS[self.rng.below(GROUPS.len() as u64) as usize];
                trace!(self, "delete {group}");
                let id = self.request(Asked::Delete);
                let out = self.machine.delete(id, group);
                self.handle(out);
            }
            73 if self.rng.chance(40) => self.failover(),
            _ => self.client_acts(c),
        }
        self.check();
    }

    /// A client does what its phase calls for (or, now and then, what
    /// it should not: heartbeats while syncing, joins twice).
    fn client_acts(&mut self, c: usize) {
        match self.clients[c].phase {
            Phase::Out => self.join(c),
            Phase::Joining if self.rng.chance(5) => self.join(c),
            // Between join and sync an eager consumer may still commit
            // what it had (refused while the rebalance completes).
            Phase::Joined | Phase::Syncing if self.rng.chance(10) => self.commit(c),
            Phase::Joined => self.sync(c),
            Phase::Syncing if self.rng.chance(20) => self.heartbeat(c),
            Phase::Stable => match self.rng.below(10) {
                0..=4 => self.heartbeat(c),
                5..=8 => self.commit(c),
                _ if self.rng.chance(30) => self.leave(c),
                _ => self.heartbeat(c),
            },
            _ => {}
        }
    }

    // ---- the invariants ----------------------------------------------------

    fn check(&mut self) {
        for group in GROUPS {
            // One generation at a time: never back within a life, never
            // below the stored one.
            let generation = self.machine.generation(group);
            if let Some(Some(stored)) = self.stored_generation.get(group) {
                assert!(
                    generation.is_some_and(|g| g >= *stored),
                    "{group} is in generation {generation:?}, below the stored {stored}"
                );
            }
            match generation {
                Some(g) => {
                    if let Some(seen) = self.seen_generation.insert(group.to_string(), g) {
                        assert!(
                            g >= seen || self.reloaded,
                            "{group} went back from generation {seen} to {g}"
                        );
                        // One input completes at most one join phase.
                        assert!(
                            g <= seen + 1 || self.reloaded,
                            "{group} skipped from generation {seen} to {g}"
                        );
                    }
                }
                None => {
                    if self.seen_generation.remove(group).is_some() {
                        *self.epoch.entry(group.to_string()).or_default() += 1;
                    }
                }
            }
            // A stable group's assignment covers every partition once.
            if let Some(d) = self.machine.describe(group) {
                if d.state == GroupState::Stable {
                    let mut all: Vec<i32> = d.members.iter().flat_map(|m| decode(&m.assignment)).collect();
                    all.sort();
                    assert_eq!(
                        all,
                        (0..PARTITIONS).collect::<Vec<_>>(),
                        "stable {group}'s assignment is not a partition of the topic"
                    );
                }
            }
        }
        self.reloaded = false;
        // No acknowledged commit lost or moved back: the cache holds the
        // latest acknowledged value or something written after it.
        for ((group, p), writes) in &self.offsets {
            let Some(a) = writes.iter().rposition(|w| w.acked) else {
                continue;
            };
            let got = self.machine.committed(group, Some(&[(TOPIC.to_string(), *p)]))[0]
                .1
                .as_ref()
                .map(|o| o.offset);
            let allowed = std::iter::once(writes[a].value)
                .chain(
                    writes[a + 1..]
                        .iter()
                        .filter(|w| w.landed == Some(true))
                        .map(|w| w.value),
                )
                .collect::<BTreeSet<_>>();
            assert!(
                allowed.contains(&got),
                "{group}/{p}: committed {got:?}, but {:?} was acknowledged (allowed: {allowed:?})",
                writes[a].value
            );
        }
    }

    /// Faults stop; live clients play by the rules until every group has
    /// settled with exactly them, each with its share of the partitions.
    fn converge(&mut self) {
        self.faults = false;
        trace!(self, "faults stop");
        for _ in 0..400 {
            while !self.in_flight.is_empty() {
                self.complete_write(0);
                self.check();
            }
            if self.settled() {
                return;
            }
            self.now += 500;
            let out = self.machine.tick(self.now);
            self.handle(out);
            self.check();
            for c in 0..self.clients.len() {
                match self.clients[c].phase {
                    // Fenced is fatal to a consumer: its operator restarts
                    // it (after a failover restored an older holder of
                    // its instance id, say).
                    Phase::Fenced => self.restart(c),
                    Phase::Out | Phase::Joined => self.client_acts(c),
                    Phase::Stable | Phase::Syncing => self.heartbeat(c),
                    _ => {}
                }
                self.check();
            }
        }
        let phases: Vec<(Phase, &str)> = self.clients.iter().map(|c| (c.phase, c.member_id.as_str())).collect();
        let described: Vec<_> = GROUPS.iter().map(|g| self.machine.describe(g)).collect();
        panic!(
            "the groups did not settle: unanswered {:?}, clients {phases:?}, groups {described:?}",
            self.asked
        );
    }

    fn settled(&self) -> bool {
        // Every request has been answered, and every group holds exactly
        // its live members, stable.
        self.asked.is_empty()
            && GROUPS.iter().enumerate().all(|(g, group)| {
                let live: BTreeSet<&str> = self
                    .clients
                    .iter()
                    .filter(|c| c.group == g && c.phase != Phase::Dead)
                    .map(|c| c.member_id.as_str())
                    .collect();
                let all_stable = self
                    .clients
                    .iter()
                    .filter(|c| c.group == g && c.phase != Phase::Dead)
                    .all(|c| c.phase == Phase::Stable);
                match self.machine.describe(group) {
                    None => live.is_empty(),
                    Some(d) => {
                        let members: BTreeSet<&str> = d.members.iter().map(|m| m.member_id.as_str()).collect();
                        (d.state == GroupState::Stable || (live.is_empty() && d.state == GroupState::Empty))
                            && all_stable
                            && members == live
                    }
                }
            })
    }
}

/// Runs one seed; on a failure prints the step trace.
fn run(seed: u64, steps: usize) -> (usize, usize, usize, BTreeMap<&'static str, usize>) {
    let mut sim = Sim::new(seed);
    gregor_sim::run_traced(
        seed,
        &mut sim,
        120,
        |sim| &sim.trace,
        |sim| {
            for _ in 0..steps {
                sim.step();
            }
            sim.converge();
        },
    );
    (sim.acked_commits, sim.stable_syncs, sim.failovers, sim.seen)
}

#[test]
fn random_schedules_keep_the_group_invariants() {
    let (mut acked, mut synced, mut failovers) = (0, 0, 0);
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    gregor_sim::run_schedules(300, |seed| {
        let (a, s, f, n) = run(seed, STEPS);
        acked += a;
        synced += s;
        failovers += f;
        for (what, count) in n {
            *seen.entry(what).or_default() += count;
        }
        Ok(())
    });
    eprintln!("acknowledged commits: {acked}, assignments handed out: {synced}, failovers: {failovers}");
    eprintln!("covered: {seen:?}");
    assert!(
        acked > 0,
        "no commit was ever acknowledged: the simulation tests nothing"
    );
    assert!(synced > 0, "no assignment was ever handed out");
    assert!(failovers > 0, "the coordinator never failed over");
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
