//! Deterministic simulation of the consumer group protocol (KIP-848):
//! simulated consumers (one of them static, leaving with epoch -2 and
//! coming back under a new member id) drive the real [`GroupStateMachine`] with
//! ConsumerGroupHeartbeats — joining, heartbeating (reporting what they
//! hold, or not), changing their subscription (one subscribes by pattern,
//! and a topic it matches appears), leaving, crashing,
//! rejoining after being fenced — while time advances, topics grow, writes
//! complete late (a group's next writes queue behind) or are refused,
//! answers are lost, and the coordinator fails over (a new one
//! reloads the records stored so far). After every step:
//!
//! - members in good standing (the coordinator has them at the epoch they
//!   believe in) never hold the same partition at once;
//! - a client holds only what the coordinator assigned it;
//! - after a failover whose writes all landed, the reloaded group is the
//!   group before (epochs, members, assignments, targets): Kafka's records
//!   say everything.
//!
//! At the end faults stop and the group must settle: every live member
//! stable at the target epoch, together holding every partition of the
//! topics they subscribe to, each exactly once.
//!
//! `GREGOR_SIM_SCHEDULES` sets how many seeds run (default 300);
//! `GREGOR_SIM_SEED` replays one.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use gregor_group::consumer::{
    partitions, Assignment, ConsumerHeartbeat, ConsumerHeartbeatAnswer, JOIN_EPOCH, LEAVE_EPOCH, STATIC_LEAVE_EPOCH,
};
use gregor_group::{
    GroupConfig, GroupError, GroupStateMachine, LoadedRecord, Output, Persist, RequestId, Response, StoreError,
};
use gregor_sim::{run_schedules, run_traced, Rng};
use uuid::Uuid;

const GROUP: &str = "g";
const CLIENTS: usize = 5;
const STEPS: usize = 500;
const SESSION_MS: i32 = 3_000;
const REBALANCE_MS: i32 = 2_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Has to (re)join.
    Out,
    /// A member, as far as it knows.
    In,
    /// Crashed: silent until it restarts.
    Dead,
}

struct Client {
    member_id: String,
    epoch: i32,
    owned: Assignment,
    subscription: Vec<String>,
    /// A heartbeat of it is unanswered.
    pending: bool,
    /// `group.instance.id` (the first client is a static member).
    instance: Option<String>,
    /// A subscription pattern (the last client subscribes by one).
    pattern: Option<String>,
    /// The subscription changed since the coordinator last took it.
    resubscribe: bool,
    /// An answer was lost: the next heartbeat gives every field, as
    /// Kafka's client does after an error.
    full_next: bool,
    phase: Phase,
}

struct Sim {
    rng: Rng,
    machine: GroupStateMachine,
    now: i64,
    /// Every record stored, in log order.
    log: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    /// Writes handed out and not yet completed (they land, or are
    /// refused, a few steps later: a group's next writes queue behind).
    in_flight: VecDeque<Persist>,
    /// Heartbeats not answered yet: client, whether its answer will be
    /// lost, whether the client stopped waiting (left, crashed).
    waiting: BTreeMap<RequestId, (usize, bool, bool)>,
    topics: BTreeMap<String, (Uuid, i32)>,
    clients: Vec<Client>,
    next_request: u64,
    trace: Vec<String>,
    faults: bool,
}

fn config() -> GroupConfig {
    GroupConfig {
        consumer_session_timeout_ms: SESSION_MS,
        consumer_heartbeat_interval_ms: 500,
        ..GroupConfig::default()
    }
}

impl Sim {
    fn new(seed: u64) -> Self {
        let topics = BTreeMap::from([
            ("a".to_string(), (Uuid::from_u128(1), 4)),
            ("b".to_string(), (Uuid::from_u128(2), 3)),
        ]);
        let clients = (0..CLIENTS)
            .map(|i| Client {
                member_id: format!("c{i}-0"),
                epoch: 0,
                owned: Assignment::new(),
                subscription: if i + 1 == CLIENTS {
                    Vec::new()
                } else {
                    vec!["a".into(), "b".into()]
                },
                pattern: (i + 1 == CLIENTS).then(|| "[a-c]".to_string()),
                pending: false,
                instance: (i == 0).then(|| "i0".to_string()),
                resubscribe: false,
                full_next: false,
                phase: Phase::Out,
            })
            .collect();
        Self {
            rng: Rng::seeded(seed),
            machine: GroupStateMachine::new(config()),
            now: 1_000,
            log: Vec::new(),
            in_flight: VecDeque::new(),
            waiting: BTreeMap::new(),
            topics,
            clients,
            next_request: 0,
            trace: Vec::new(),
            faults: true,
        }
    }

    /// Takes the machine's outputs: answers go to the clients waiting for
    /// them; writes go in flight (and, once faults stop, complete at once).
    fn drive(&mut self, outputs: Vec<Output>) {
        for output in outputs {
            match output {
                Output::Respond { request, response } => {
                    let (i, lost, dropped) = self
                        .waiting
                        .remove(&request)
                        .unwrap_or_else(|| panic!("an answer to {request:?}, which nobody waits for"));
                    let Response::ConsumerHeartbeat(answer) = response else {
                        panic!("c{i}: answer {response:?}")
                    };
                    if !dropped {
                        self.clients[i].pending = false;
                        self.apply(i, answer, lost);
                    }
                }
                Output::Persist(p) => self.in_flight.push_back(p),
            }
        }
        if !self.faults {
            while !self.in_flight.is_empty() {
                self.complete_write();
            }
        }
    }

    /// The oldest write in flight lands, or (with faults) is refused.
    fn complete_write(&mut self) {
        let Some(p) = self.in_flight.pop_front() else { return };
        let result = if self.faults && self.rng.chance(5) {
            self.trace.push(format!("write of {} records refused", p.records.len()));
            Err(StoreError::Unavailable("injected".into()))
        } else {
            let first = self.log.len() as u64;
            self.log.extend(p.records.iter().cloned());
            Ok(first)
        };
        let outputs = self.machine.persisted(p.id, result, self.now);
        self.drive(outputs);
    }

    /// Client `i` sends `hb`; its answer (maybe lost) comes when its
    /// records are stored. `wait`: the client waits for it.
    fn heartbeat(&mut self, i: usize, hb: ConsumerHeartbeat, lost: bool, wait: bool) {
        self.next_request += 1;
        let request = RequestId(self.next_request);
        self.waiting.insert(request, (i, lost, !wait));
        self.clients[i].pending = wait;
        let mut ids = |_: &str| unreachable!("clients make their member ids");
        let outputs = self
            .machine
            .consumer_heartbeat(request, hb, &self.topics, self.now, &mut ids);
        self.drive(outputs);
    }

    fn request(&self, i: usize, full: bool, report: bool) -> ConsumerHeartbeat {
        let c = &self.clients[i];
        ConsumerHeartbeat {
            group_id: GROUP.into(),
            member_id: c.member_id.clone(),
            member_epoch: c.epoch,
            rebalance_timeout_ms: if full { REBALANCE_MS } else { -1 },
            subscribed_topic_names: (full || c.resubscribe).then(|| c.subscription.clone()),
            subscribed_topic_regex: (full || c.resubscribe).then(|| c.pattern.clone()).flatten(),
            owned: (full || report).then(|| c.owned.clone()),
            instance_id: c.instance.clone(),
            client_id: format!("client-{i}"),
            client_host: "/127.0.0.1".into(),
            ..ConsumerHeartbeat::default()
        }
    }

    /// Client `i` acts on an answer (unless it is lost).
    fn apply(&mut self, i: usize, answer: Result<ConsumerHeartbeatAnswer, GroupError>, lost: bool) {
        let c = &mut self.clients[i];
        if lost {
            c.full_next = true;
            self.trace.push(format!("c{i}: answer lost"));
            return;
        }
        c.full_next = false;
        match answer {
            Ok(a) => {
                c.resubscribe = false;
                c.epoch = a.member_epoch;
                if let Some(assignment) = a.assignment {
                    c.owned = assignment;
                }
                c.phase = Phase::In;
                self.trace
                    .push(format!("c{i}: epoch {} owns {:?}", c.epoch, flat(&c.owned)));
            }
            Err(GroupError::UnknownMemberId | GroupError::FencedMemberEpoch) => {
                // Partitions lost; rejoin with the same member id.
                c.owned.clear();
                c.epoch = JOIN_EPOCH;
                c.phase = Phase::Out;
                self.trace.push(format!("c{i}: fenced, rejoins"));
            }
            Err(e) => self.trace.push(format!("c{i}: {e}, retries")),
        }
    }

    fn step(&mut self) {
        self.now += self.rng.below(200) as i64;
        while !self.in_flight.is_empty() && self.rng.chance(50) {
            self.complete_write();
        }
        let i = self.rng.below(CLIENTS as u64) as usize;
        let faults = self.faults;
        let lost = faults && self.rng.chance(5);
        let pending = self.clients[i].pending;
        match self.clients[i].phase {
            Phase::Dead if self.rng.chance(10) => {
                let c = &mut self.clients[i];
                let n: u32 = c.member_id.rsplit('-').next().unwrap().parse().unwrap();
                c.member_id = format!("c{i}-{}", n + 1);
                c.phase = Phase::Out;
                self.trace.push(format!("c{i}: restarts as {}", c.member_id));
            }
            Phase::Dead => {}
            Phase::In if faults && self.rng.chance(2) => {
                self.clients[i].phase = Phase::Dead;
                self.clients[i].owned.clear();
                self.clients[i].pending = false;
                for (client, _, dropped) in self.waiting.values_mut() {
                    *dropped |= *client == i;
                }
                self.trace.push(format!("c{i}: crashes"));
            }
            // One heartbeat at a time.
            _ if pending => {}
            Phase::Out => {
                let hb = self.request(i, true, true);
                self.trace.push(format!("c{i}: joins as {}", hb.member_id));
                self.heartbeat(i, hb, lost, true);
            }
            Phase::In if faults && self.rng.chance(3) => {
                let mut hb = self.request(i, false, false);
                // A static member leaves for now: its partitions wait for
                // its return.
                hb.member_epoch = if self.clients[i].instance.is_some() {
                    STATIC_LEAVE_EPOCH
                } else {
                    LEAVE_EPOCH
                };
                self.trace.push(format!("c{i}: leaves"));
                self.heartbeat(i, hb, false, false);
                let c = &mut self.clients[i];
                c.owned.clear();
                c.epoch = JOIN_EPOCH;
                c.phase = Phase::Out;
            }
            Phase::In => {
                if faults && self.rng.chance(4) {
                    let c = &mut self.clients[i];
                    if let Some(p) = &mut c.pattern {
                        *p = if p == "a" { "[a-c]".into() } else { "a".into() };
                    } else if c.subscription.len() == 2 {
                        c.subscription = vec!["a".into()];
                    } else {
                        c.subscription = vec!["a".into(), "b".into()];
                    }
                    c.resubscribe = true;
                    self.trace
                        .push(format!("c{i}: subscribes to {:?} {:?}", c.subscription, c.pattern));
                }
                let full = self.rng.chance(10) || self.clients[i].full_next;
                let report = self.rng.chance(60);
                let hb = self.request(i, full, report);
                self.heartbeat(i, hb, lost, true);
            }
        }
        if faults && self.rng.chance(1) && !self.topics.contains_key("c") {
            self.topics.insert("c".into(), (Uuid::from_u128(3), 2));
            self.trace.push("topic c created".into());
        }
        if faults && self.rng.chance(1) {
            let (id, n) = self.topics["a"];
            self.topics.insert("a".into(), (id, n + 1));
            self.trace.push(format!("topic a grows to {}", n + 1));
        }
        if self.rng.chance(20) {
            let outputs = self.machine.tick(self.now);
            self.drive(outputs);
        }
        if faults && self.rng.chance(2) {
            self.failover();
        }
        self.check();
    }

    fn failover(&mut self) {
        let quiet = self.in_flight.is_empty() && self.machine.consumer_group_stored(GROUP);
        let before = self.machine.describe_consumer(GROUP).ok();
        // Writes in flight landed, or not; their heartbeats are never
        // answered: the clients time out and retry with every field.
        while let Some(p) = self.in_flight.pop_front() {
            if self.rng.chance(50) {
                self.log.extend(p.records);
            }
        }
        for (i, _, dropped) in std::mem::take(&mut self.waiting).into_values() {
            if !dropped {
                self.clients[i].pending = false;
                self.clients[i].full_next = true;
            }
        }
        let records: Vec<LoadedRecord> = self
            .log
            .iter()
            .enumerate()
            .map(|(offset, (key, value))| LoadedRecord::Record {
                key: key.clone(),
                value: value.clone(),
                offset: offset as u64,
                producer: None,
            })
            .collect();
        self.machine = GroupStateMachine::new(config());
        self.machine.reload(|_| true, &records, self.now);
        let after = self.machine.describe_consumer(GROUP).ok();
        self.trace.push("coordinator fails over".into());
        if quiet {
            assert_eq!(after, before, "the reloaded group differs from the one stored");
        }
    }

    /// Members in good standing hold disjoint partitions, each assigned.
    fn check(&self) {
        let Ok(group) = self.machine.describe_consumer(GROUP) else {
            return;
        };
        let mut holder: BTreeMap<(Uuid, i32), usize> = BTreeMap::new();
        for (i, c) in self.clients.iter().enumerate() {
            let Some(m) = group.members.iter().find(|m| m.member_id == c.member_id) else {
                continue;
            };
            if c.phase != Phase::In || m.member_epoch != c.epoch {
                continue;
            }
            for tp in flat(&c.owned) {
                if let Some(other) = holder.insert(tp, i) {
                    panic!("c{other} and c{i} both hold {tp:?}");
                }
            }
        }
    }

    /// Faults stop; every live client heartbeats until the group settles.
    fn settle(&mut self) {
        self.faults = false;
        while !self.in_flight.is_empty() {
            self.complete_write();
        }
        for c in self.clients.iter_mut().filter(|c| c.phase == Phase::Dead) {
            c.phase = Phase::Out;
            c.member_id.push_str("-back");
        }
        for _ in 0..60 {
            self.now += 250;
            let outputs = self.machine.tick(self.now);
            self.drive(outputs);
            for i in 0..CLIENTS {
                let hb = self.request(i, self.clients[i].phase == Phase::Out, true);
                self.heartbeat(i, hb, false, true);
            }
            self.check();
        }
        let group = self.machine.describe_consumer(GROUP).expect("the group exists");
        assert_eq!(group.state.name(), "Stable", "{group:?}");
        let mut held = BTreeSet::new();
        for c in &self.clients {
            for tp in flat(&c.owned) {
                assert!(held.insert(tp), "{tp:?} held twice after settling");
            }
        }
        let mut subscribed: BTreeSet<&String> = self.clients.iter().flat_map(|c| c.subscription.iter()).collect();
        for pattern in self.clients.iter().filter_map(|c| c.pattern.as_deref()) {
            let re = regex::Regex::new(&format!("^(?:{pattern})$")).unwrap();
            subscribed.extend(self.topics.keys().filter(|t| re.is_match(t)));
        }
        let all: BTreeSet<(Uuid, i32)> = subscribed
            .iter()
            .flat_map(|t| {
                let (id, n) = self.topics[*t];
                (0..n).map(move |p| (id, p))
            })
            .collect();
        let members: Vec<String> = group
            .members
            .iter()
            .map(|m| {
                format!(
                    "{} e{} {:?} {:?} has {:?} target {:?}",
                    m.member_id,
                    m.member_epoch,
                    m.subscribed_topic_names,
                    m.subscribed_topic_regex,
                    flat(&m.assignment),
                    flat(&m.target_assignment)
                )
            })
            .collect();
        assert_eq!(
            held, all,
            "after settling the members do not hold every partition: {members:#?}"
        );
    }
}

fn flat(a: &Assignment) -> Vec<(Uuid, i32)> {
    partitions(a).collect()
}

#[test]
fn consumer_groups_keep_partitions_single_held_and_settle() {
    run_schedules(300, |seed| {
        let mut sim = Sim::new(seed);
        run_traced(
            seed,
            &mut sim,
            60,
            |s| &s.trace,
            |sim| {
                for _ in 0..STEPS {
                    sim.step();
                }
                sim.settle();
            },
        );
        Ok(())
    });
}
