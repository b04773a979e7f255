//! The consumer group protocol (KIP-848) step by step on the state
//! machine: a static member's return, the epochs offset commits must
//! carry, and an empty group's retirement.

use std::collections::BTreeMap;

use gregor_group::consumer::{ConsumerHeartbeat, ConsumerHeartbeatAnswer, JOIN_EPOCH, STATIC_LEAVE_EPOCH};
use gregor_group::{
    CommittedOffset, GroupConfig, GroupError, GroupStateMachine, MemberOf, Output, RequestId, Response,
};
use uuid::Uuid;

struct Coordinator {
    machine: GroupStateMachine,
    topics: BTreeMap<String, (Uuid, i32)>,
    next: u64,
}

impl Coordinator {
    fn new() -> Self {
        let config = GroupConfig {
            offsets_retention_check_interval_ms: 1_000,
            ..GroupConfig::default()
        };
        Self {
            machine: GroupStateMachine::new(config),
            topics: BTreeMap::from([("t".to_string(), (Uuid::from_u128(1), 4))]),
            next: 0,
        }
    }

    /// Runs outputs, every write landing; the answers.
    fn settle(&mut self, outputs: Vec<Output>, now_ms: i64) -> Vec<(RequestId, Response)> {
        self.settle_logged(outputs, now_ms, &mut Vec::new())
    }

    /// [`Self::settle`], the records written appended to `log`.
    fn settle_logged(
        &mut self,
        mut outputs: Vec<Output>,
        now_ms: i64,
        log: &mut Vec<(Vec<u8>, Option<Vec<u8>>)>,
    ) -> Vec<(RequestId, Response)> {
        let mut answers = Vec::new();
        while let Some(output) = (!outputs.is_empty()).then(|| outputs.remove(0)) {
            match output {
                Output::Respond { request, response } => answers.push((request, response)),
                Output::Persist(p) => {
                    let first = log.len() as u64;
                    log.extend(p.records);
                    outputs.extend(self.machine.persisted(p.id, Ok(first), now_ms));
                }
            }
        }
        answers
    }

    fn heartbeat(&mut self, hb: ConsumerHeartbeat, now_ms: i64) -> Result<ConsumerHeartbeatAnswer, GroupError> {
        self.next += 1;
        let mut ids = |_: &str| unreachable!();
        let outputs = self
            .machine
            .consumer_heartbeat(RequestId(self.next), hb, &self.topics, now_ms, &mut ids);
        match self.settle(outputs, now_ms).pop() {
            Some((_, Response::ConsumerHeartbeat(r))) => r,
            other => panic!("{other:?}"),
        }
    }

    fn commit(&mut self, member: &str, epoch: i32) -> Result<(), GroupError> {
        self.next += 1;
        let offsets = [(
            "t".to_string(),
            0,
            CommittedOffset {
                offset: 5,
                leader_epoch: -1,
                metadata: String::new(),
                commit_timestamp: 0,
            },
        )];
        let outputs = self
            .machine
            .commit(RequestId(self.next), MemberOf::new("g", epoch, member, None), &offsets);
        match self.settle(outputs, 0).pop() {
            Some((_, Response::Commit(r))) => r,
            other => panic!("{other:?}"),
        }
    }
}

fn join(member: &str, instance: Option<&str>) -> ConsumerHeartbeat {
    ConsumerHeartbeat {
        group_id: "g".into(),
        member_id: member.into(),
        member_epoch: JOIN_EPOCH,
        instance_id: instance.map(str::to_string),
        rebalance_timeout_ms: 30_000,
        subscribed_topic_names: Some(vec!["t".into()]),
        owned: Some(Default::default()),
        ..ConsumerHeartbeat::default()
    }
}

#[test]
fn a_static_member_comes_back_under_a_new_id_to_its_partitions() {
    let mut c = Coordinator::new();
    let first = c.heartbeat(join("a", Some("i1")), 0).unwrap();
    let held = first.assignment.clone().unwrap();
    assert_eq!(held.values().map(|p| p.len()).sum::<usize>(), 4);
    let mut leave = join("a", Some("i1"));
    leave.member_epoch = STATIC_LEAVE_EPOCH;
    assert_eq!(c.heartbeat(leave, 10).unwrap().member_epoch, STATIC_LEAVE_EPOCH);
    // Another instance may not take the id while "a" is not gone, but
    // the instance itself comes back under a new member id.
    let epoch = c.machine.describe_consumer("g").unwrap().epoch;
    let back = c.heartbeat(join("a2", Some("i1")), 20).unwrap();
    assert_eq!(back.assignment, Some(held));
    let group = c.machine.describe_consumer("g").unwrap();
    assert_eq!(
        group.epoch, epoch,
        "a returning static member does not move the group epoch"
    );
    assert_eq!(
        group.members.iter().map(|m| m.member_id.as_str()).collect::<Vec<_>>(),
        ["a2"]
    );
    assert_eq!(
        c.heartbeat(join("b", Some("i1")), 30).unwrap_err(),
        GroupError::UnreleasedInstanceId
    );
}

#[test]
fn offset_commits_carry_the_member_epoch() {
    let mut c = Coordinator::new();
    let epoch = c.heartbeat(join("a", None), 0).unwrap().member_epoch;
    assert_eq!(c.commit("a", epoch), Ok(()));
    assert_eq!(c.commit("a", epoch - 1), Err(GroupError::StaleMemberEpoch));
    assert_eq!(c.commit("a", epoch + 1), Err(GroupError::StaleMemberEpoch));
    assert_eq!(c.commit("ghost", epoch), Err(GroupError::UnknownMemberId));
    // An admin tool's commit (no member, epoch -1) only to an empty group.
    assert_eq!(c.commit("", -1), Err(GroupError::UnknownMemberId));
}

#[test]
fn an_empty_group_without_offsets_is_deleted_after_the_retention_check_interval() {
    let mut c = Coordinator::new();
    c.heartbeat(join("a", None), 0).unwrap();
    let mut leave = join("a", None);
    leave.member_epoch = -1;
    c.heartbeat(leave, 100).unwrap();
    let outputs = c.machine.tick(600);
    c.settle(outputs, 600);
    assert!(
        c.machine.is_consumer_group("g"),
        "kept for the retention check interval"
    );
    let outputs = c.machine.tick(1_200);
    c.settle(outputs, 1_200);
    assert!(!c.machine.is_consumer_group("g"));
    assert_eq!(
        c.machine.describe_consumer("g").unwrap_err(),
        GroupError::GroupIdNotFound
    );
    // A join starts it over.
    assert_eq!(c.heartbeat(join("b", None), 1_300).unwrap().member_epoch, 1);
}

#[test]
fn a_member_leaving_moves_the_epoch_once() {
    let mut c = Coordinator::new();
    c.topics.insert("u".into(), (Uuid::from_u128(2), 2));
    c.heartbeat(join("a", None), 0).unwrap();
    let mut only_u = join("b", None);
    only_u.subscribed_topic_names = Some(vec!["u".into()]);
    c.heartbeat(only_u, 10).unwrap();
    let before = c.machine.describe_consumer("g").unwrap().epoch;
    let mut leave = join("b", None);
    leave.member_epoch = -1;
    c.heartbeat(leave, 20).unwrap();
    assert_eq!(c.machine.describe_consumer("g").unwrap().epoch, before + 1);
    let mut again = join("a", None);
    let epoch = c.machine.describe_consumer("g").unwrap().members[0].member_epoch;
    again.member_epoch = epoch;
    again.owned = None;
    c.heartbeat(again, 30).unwrap();
    assert_eq!(
        c.machine.describe_consumer("g").unwrap().epoch,
        before + 1,
        "no second bump"
    );
}

#[test]
fn an_empty_classic_group_becomes_a_consumer_group_and_only_that_reloads() {
    use gregor_group::{JoinRequest, LoadedRecord};
    let mut c = Coordinator::new();
    // A classic member joins and leaves: an empty classic group remains.
    let join_classic = JoinRequest {
        group_id: "g".into(),
        client_id: "c".into(),
        session_timeout_ms: 10_000,
        rebalance_timeout_ms: 10_000,
        protocol_type: "consumer".into(),
        protocols: vec![("range".into(), Vec::new())],
        ..JoinRequest::default()
    };
    let mut log = Vec::new();
    let mut ids = |_: &str| "c-1".to_string();
    let outputs = c.machine.join(RequestId(100), join_classic, 0, &mut ids);
    c.settle_logged(outputs, 0, &mut log);
    let outputs = c.machine.leave(RequestId(101), "g", &[("c-1".to_string(), None)], 5);
    c.settle_logged(outputs, 5, &mut log);
    assert!(c.machine.generation("g").is_some(), "an empty classic group");
    // A consumer-protocol member takes the id.
    c.next += 1;
    let topics = c.topics.clone();
    let mut no_ids = |_: &str| unreachable!();
    let outputs = c
        .machine
        .consumer_heartbeat(RequestId(c.next), join("a", None), &topics, 10, &mut no_ids);
    c.settle_logged(outputs, 10, &mut log);
    let records: Vec<LoadedRecord> = log
        .into_iter()
        .enumerate()
        .map(|(offset, (key, value))| LoadedRecord::Record {
            key,
            value,
            offset: offset as u64,
            producer: None,
        })
        .collect();
    let mut reloaded = GroupStateMachine::new(GroupConfig::default());
    reloaded.reload(|_| true, &records, 20);
    assert!(reloaded.is_consumer_group("g"));
    assert_eq!(reloaded.generation("g"), None, "the classic group was tombstoned");
    assert_eq!(reloaded.list(), Vec::new());
}
