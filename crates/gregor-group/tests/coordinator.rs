//! The group state machine, driven with explicit time.

mod common;

use common::{coordinator, coordinator_with, offset, restarted};
use gregor_group::*;
use tokio::sync::oneshot::Receiver;

fn join(member_id: &str, protocols: &[&str]) -> JoinRequest {
    JoinRequest {
        group_id: "g".into(),
        member_id: member_id.into(),
        client_id: "client".into(),
        client_host: "/127.0.0.1".into(),
        protocol_type: "consumer".into(),
        protocols: protocols
            .iter()
            .map(|p| (p.to_string(), p.as_bytes().to_vec()))
            .collect(),
        session_timeout_ms: 10_000,
        rebalance_timeout_ms: 30_000,
        ..JoinRequest::default()
    }
}

fn ready<T>(rx: &mut Receiver<T>) -> Option<T> {
    rx.try_recv().ok()
}

fn sync(member_id: &str, generation_id: i32, assignments: &[(&str, &[u8])]) -> SyncRequest {
    SyncRequest {
        group_id: "g".into(),
        generation_id,
        member_id: member_id.into(),
        group_instance_id: None,
        assignments: assignments.iter().map(|(m, a)| (m.to_string(), a.to_vec())).collect(),
    }
}

/// Joins a first member and completes its sync: returns its id.
fn lone_member(c: &GroupCoordinator) -> String {
    let first = ready(&mut c.join(join("", &["range"]), 0)).unwrap();
    assert_eq!((first.error, first.generation_id), (None, 1));
    assert_eq!(first.leader, first.member_id);
    assert_eq!(first.members.len(), 1);
    let id = first.member_id;
    let done = ready(&mut c.sync(sync(&id, 1, &[(&id, b"all")]), 0)).unwrap();
    assert_eq!(done.assignment, b"all");
    id
}

#[test]
fn a_second_member_rebalances_the_group_and_gets_its_assignment_from_the_leader() {
    let (c, _) = coordinator();
    let a = lone_member(&c);
    let mut b_join = c.join(join("", &["range"]), 100);
    assert!(ready(&mut b_join).is_none(), "waits for the leader to rejoin");
    assert_eq!(c.heartbeat("g", 1, &a, None, 200), Err(GroupError::RebalanceInProgress));
    let a_join = ready(&mut c.join(join(&a, &["range"]), 300)).unwrap();
    let b_join = ready(&mut b_join).unwrap();
    assert_eq!((a_join.generation_id, b_join.generation_id), (2, 2));
    assert_eq!(a_join.leader, a);
    assert_eq!(a_join.members.len(), 2, "the leader sees everyone");
    assert!(b_join.members.is_empty());
    let b = b_join.member_id;
    // Between the join and the assignment commits wait (as Kafka answers).
    assert_eq!(c.commit("g", 2, &a, None, &[]), Err(GroupError::RebalanceInProgress));
    let mut b_sync = c.sync(sync(&b, 2, &[]), 400);
    assert!(
        ready(&mut b_sync).is_none(),
        "a follower waits for the leader's assignment"
    );
    let a_sync = ready(&mut c.sync(sync(&a, 2, &[(&a, b"p0"), (&b, b"p1")]), 500)).unwrap();
    assert_eq!(a_sync.assignment, b"p0");
    assert_eq!(ready(&mut b_sync).unwrap().assignment, b"p1");
    assert_eq!(c.heartbeat("g", 2, &b, None, 600), Ok(()));
    assert_eq!(c.heartbeat("g", 1, &b, None, 600), Err(GroupError::IllegalGeneration));
    assert_eq!(c.describe("g").unwrap().state, GroupState::Stable);
}

#[test]
fn silent_members_expire_and_the_rest_rebalance() {
    let (c, _) = coordinator();
    let a = lone_member(&c);
    let mut b_join = c.join(join("", &["range"]), 0);
    let a_join = ready(&mut c.join(join(&a, &["range"]), 0)).unwrap();
    let b = ready(&mut b_join).unwrap().member_id;
    ready(&mut c.sync(sync(&b, 2, &[]), 0));
    ready(&mut c.sync(sync(&a, a_join.generation_id, &[]), 0)).unwrap();
    // a keeps beating, b falls silent past its 10 s session.
    for t in (1_000..=12_000).step_by(1_000) {
        let _ = c.heartbeat("g", 2, &a, None, t);
        c.tick(t);
    }
    assert_eq!(c.heartbeat("g", 2, &b, None, 12_000), Err(GroupError::UnknownMemberId));
    assert_eq!(
        c.heartbeat("g", 2, &a, None, 12_000),
        Err(GroupError::RebalanceInProgress)
    );
    let rejoined = ready(&mut c.join(join(&a, &["range"]), 12_100)).unwrap();
    assert_eq!((rejoined.generation_id, rejoined.members.len()), (3, 1));
}

#[test]
fn members_that_do_not_rejoin_in_the_rebalance_timeout_are_dropped() {
    let (c, _) = coordinator();
    let a = lone_member(&c);
    let mut b_join = c.join(join("", &["range"]), 1_000);
    // a stays alive (heartbeats) but never rejoins.
    for t in (5_000..=30_000).step_by(5_000) {
        assert_eq!(c.heartbeat("g", 1, &a, None, t), Err(GroupError::RebalanceInProgress));
        c.tick(t);
        assert!(ready(&mut b_join).is_none());
    }
    c.tick(31_001); // a's 30 s rebalance timeout passed without a rejoin
    let b = ready(&mut b_join).unwrap();
    assert_eq!(
        (b.generation_id, b.members.len(), b.leader == b.member_id),
        (2, 1, true)
    );
}

#[test]
fn a_first_join_at_v4_gets_a_member_id_to_rejoin_with() {
    let (c, _) = coordinator();
    let mut first = join("", &["range"]);
    first.require_known_member_id = true;
    let answer = ready(&mut c.join(first, 0)).unwrap();
    assert_eq!(answer.error, Some(GroupError::MemberIdRequired));
    assert!(!answer.member_id.is_empty());
    let joined = ready(&mut c.join(join(&answer.member_id, &["range"]), 10)).unwrap();
    assert_eq!((joined.error, joined.member_id), (None, answer.member_id));
    assert_eq!(
        ready(&mut c.join(join("made-up", &["range"]), 20)).unwrap().error,
        Some(GroupError::UnknownMemberId)
    );
}

#[test]
fn a_static_member_coming_back_fences_its_old_id() {
    let (c, _) = coordinator();
    let mut first = join("", &["range"]);
    first.group_instance_id = Some("host-1".into());
    let old = ready(&mut c.join(first.clone(), 0)).unwrap().member_id;
    assert!(old.starts_with("host-1-"));
    ready(&mut c.sync(sync(&old, 1, &[(&old, b"x")]), 0)).unwrap();
    let new = ready(&mut c.join(first, 100)).unwrap();
    assert_ne!(new.member_id, old);
    assert_eq!(new.leader, new.member_id);
    assert_eq!(
        c.heartbeat("g", new.generation_id, &old, Some("host-1"), 200),
        Err(GroupError::FencedInstanceId)
    );
}

#[test]
fn the_protocol_is_the_common_one_with_most_votes() {
    let (c, _) = coordinator();
    let mut a = c.join(join("", &["cooperative-sticky", "range"]), 0);
    let a = ready(&mut a).unwrap();
    assert_eq!(a.protocol_name.as_deref(), Some("cooperative-sticky"));
    let mut b = c.join(join("", &["range"]), 10);
    let a2 = ready(&mut c.join(join(&a.member_id, &["cooperative-sticky", "range"]), 20)).unwrap();
    assert_eq!(a2.protocol_name.as_deref(), Some("range"));
    assert_eq!(a2.members[0].metadata, b"range");
    assert!(ready(&mut b).is_some());
    let odd = ready(&mut c.join(join("", &["roundrobin"]), 30)).unwrap();
    assert_eq!(odd.error, Some(GroupError::InconsistentGroupProtocol));
}

#[test]
fn a_group_left_empty_without_offsets_can_still_be_deleted() {
    // Kafka keeps an Empty group until its next offsets-retention check,
    // so DeleteGroups right after the last member left succeeds — also
    // once a tick has moved the group aside for its metadata tombstone.
    for tick in [false, true] {
        let (c, _) = coordinator();
        let a = lone_member(&c);
        c.leave("g", &[(a, None)], 10);
        if tick {
            c.tick(20);
        }
        assert_eq!(c.delete("g"), Ok(()), "after a tick: {tick}");
        assert_eq!(c.delete("g"), Err(GroupError::GroupIdNotFound));
    }
}

#[test]
fn leaving_rebalances_and_the_last_one_out_empties_the_group() {
    let (c, _) = coordinator();
    let a = lone_member(&c);
    assert_eq!(c.leave("g", &[(a.clone(), None)], 10), vec![Ok(())]);
    assert_eq!(c.describe("g").unwrap().state, GroupState::Empty);
    assert_eq!(c.leave("g", &[(a, None)], 20), vec![Err(GroupError::UnknownMemberId)]);
}

#[test]
fn offsets_are_checked_stored_reloaded_and_deleted() {
    let (c, store) = coordinator();
    // A group without members takes commits with generation -1.
    c.commit(
        "g",
        -1,
        "",
        None,
        &[("t".into(), 0, offset(5)), ("t".into(), 1, offset(7))],
    )
    .unwrap();
    let a = lone_member(&c);
    // Once it has a member, only members commit (Kafka: UNKNOWN_MEMBER_ID).
    assert_eq!(
        c.commit("g", -1, "", None, &[("t".into(), 0, offset(1))]),
        Err(GroupError::UnknownMemberId)
    );
    assert_eq!(
        c.commit("g", 9, &a, None, &[("t".into(), 0, offset(6))]),
        Err(GroupError::IllegalGeneration)
    );
    assert_eq!(c.commit("g", 1, "nobody", None, &[]), Err(GroupError::UnknownMemberId));
    c.commit("g", 1, &a, None, &[("t".into(), 0, offset(6))]).unwrap();
    let mut b_join = c.join(join("", &["range"]), 10);
    // A rebalance is being prepared: members still commit (before rejoining).
    assert_eq!(c.commit("g", 1, &a, None, &[]), Ok(()));
    let got = c.committed("g", Some(&[("t".into(), 0), ("t".into(), 9)]));
    assert_eq!(got[0].1.as_ref().unwrap().offset, 6);
    assert!(got[1].1.is_none());
    // A new coordinator over the same store sees the same offsets.
    let reloaded = restarted(&store);
    assert_eq!(reloaded.committed("g", None), c.committed("g", None));
    assert_eq!(c.delete("g"), Err(GroupError::NonEmptyGroup));
    drop(b_join.try_recv());
    c.leave("g", &[(a, None)], 20);
    c.tick(40_000);
    c.delete("g").unwrap();
    assert!(c.committed("g", None).is_empty());
    let reloaded = restarted(&store);
    assert!(
        reloaded.committed("g", None).is_empty(),
        "tombstones delete on reload too"
    );
    assert_eq!(c.delete("g"), Err(GroupError::GroupIdNotFound));
}

#[test]
fn offsets_of_groups_without_members_expire_after_retention() {
    let (c, _) = coordinator_with(GroupConfig {
        offsets_retention_ms: 60_000,
        offsets_retention_check_interval_ms: 0,
        ..GroupConfig::default()
    });
    c.commit("idle", -1, "", None, &[("t".into(), 0, offset(1))]).unwrap();
    c.tick(50_000);
    assert_eq!(c.committed("idle", None).len(), 1);
    // Known by its offsets only: Empty, as Kafka describes it (not Dead).
    assert_eq!(c.describe("idle").map(|d| d.state), Some(GroupState::Empty));
    c.tick(70_000);
    assert!(c.committed("idle", None).is_empty());
    assert!(c.list().is_empty());
    assert!(c.describe("idle").is_none());
}

#[test]
fn a_stable_group_comes_back_after_a_coordinator_restart() {
    let (c, store) = coordinator();
    let a = lone_member(&c);
    let restarted = restarted(&store);
    let described = restarted.describe("g").unwrap();
    assert_eq!(described.state, GroupState::Stable);
    assert_eq!(described.members[0].assignment, b"all");
    // Its member carries on with the same id and generation, no rejoin.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    assert_eq!(restarted.heartbeat("g", 1, &a, None, now), Ok(()));
    // Once it has left, a restart finds no group.
    restarted.leave("g", &[(a, None)], now);
    let again = common::restarted(&store);
    assert!(again.describe("g").is_none());
}

#[test]
fn groups_of_a_partition_are_unloaded_and_reloaded_with_its_leadership() {
    let (c, store) = coordinator();
    c.commit("mine", -1, "", None, &[("t".into(), 0, offset(5))]).unwrap();
    c.commit("theirs", -1, "", None, &[("t".into(), 0, offset(9))]).unwrap();
    // Another coordinator, reloading only "mine"'s partition, sees only it.
    let (other, _) = coordinator();
    other.reload(|g| g == "mine", &store.log.lock(), 0);
    assert_eq!(other.committed("mine", None), c.committed("mine", None));
    assert!(other.committed("theirs", None).is_empty());
    // Leadership lost: forgotten; regained: back from the records.
    c.unload(|g| g == "mine");
    assert!(c.committed("mine", None).is_empty());
    assert_eq!(c.committed("theirs", None)[0].1.as_ref().unwrap().offset, 9);
    c.reload(|g| g == "mine", &store.log.lock(), 0);
    assert_eq!(c.committed("mine", None)[0].1.as_ref().unwrap().offset, 5);
}
