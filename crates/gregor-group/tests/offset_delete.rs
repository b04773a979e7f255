//! OffsetDelete: which offsets go, which are refused, and that the
//! deletion is in the log (a coordinator reloading it agrees).

mod common;

use common::{coordinator, offset, restarted};
use gregor_group::*;

/// ConsumerProtocol Subscription v1 of `topics` (no user data, no owned
/// partitions).
fn subscription(topics: &[&str]) -> Vec<u8> {
    let mut out = 1i16.to_be_bytes().to_vec();
    out.extend((topics.len() as i32).to_be_bytes());
    for t in topics {
        out.extend((t.len() as i16).to_be_bytes());
        out.extend(t.as_bytes());
    }
    out.extend((-1i32).to_be_bytes());
    out.extend(0i32.to_be_bytes());
    out
}

/// A lone member of group `g` with `protocol_type`, protocol `range`
/// carrying `metadata`, through join and sync.
fn live_member(c: &GroupCoordinator, protocol_type: &str, metadata: Vec<u8>) -> String {
    let request = JoinRequest {
        group_id: "g".into(),
        client_id: "client".into(),
        protocol_type: protocol_type.into(),
        protocols: vec![("range".into(), metadata)],
        session_timeout_ms: 10_000,
        rebalance_timeout_ms: 30_000,
        ..JoinRequest::default()
    };
    let joined = c.join(request, 0).try_recv().unwrap();
    let id = joined.member_id;
    let sync = SyncRequest {
        group_id: "g".into(),
        generation_id: joined.generation_id,
        member_id: id.clone(),
        group_instance_id: None,
        assignments: vec![(id.clone(), Vec::new())],
    };
    c.sync(sync, 0).try_recv().unwrap();
    id
}

fn commit(c: &GroupCoordinator, generation: i32, member: &str, partitions: &[(&str, i32)]) {
    let offsets: Vec<_> = partitions.iter().map(|(t, p)| (t.to_string(), *p, offset(3))).collect();
    c.commit("g", generation, member, None, &offsets).unwrap();
}

fn committed(c: &GroupCoordinator) -> Vec<(String, i32)> {
    c.committed("g", None).into_iter().map(|(p, _)| p).collect()
}

fn p(topic: &str, partition: i32) -> (String, i32) {
    (topic.to_string(), partition)
}

#[test]
fn a_group_without_members_loses_the_offsets_asked_for_also_after_a_reload() {
    let (c, store) = coordinator();
    commit(&c, -1, "", &[("t", 0), ("t", 1), ("u", 0)]);
    let answer = c.delete_offsets("g", &[p("t", 0), p("never", 0)]).unwrap();
    assert_eq!(answer, vec![(p("t", 0), Ok(())), (p("never", 0), Ok(()))]);
    assert_eq!(committed(&c), vec![p("t", 1), p("u", 0)]);
    assert_eq!(
        committed(&restarted(&store)),
        vec![p("t", 1), p("u", 0)],
        "tombstones in the log"
    );
    assert_eq!(
        c.delete_offsets("nobody", &[p("t", 1)]),
        Err(GroupError::GroupIdNotFound)
    );
    assert_eq!(c.delete_offsets("", &[p("t", 1)]), Err(GroupError::InvalidGroupId));
}

#[test]
fn a_live_consumer_group_keeps_the_offsets_of_topics_it_subscribes_to() {
    let (c, store) = coordinator();
    let member = live_member(&c, "consumer", subscription(&["t"]));
    commit(&c, 1, &member, &[("t", 0), ("u", 0)]);
    let answer = c.delete_offsets("g", &[p("t", 0), p("u", 0)]).unwrap();
    assert_eq!(
        answer,
        vec![
            (p("t", 0), Err(GroupError::GroupSubscribedToTopic)),
            (p("u", 0), Ok(()))
        ]
    );
    assert_eq!(committed(&c), vec![p("t", 0)]);
    assert_eq!(committed(&restarted(&store)), vec![p("t", 0)]);
}

#[test]
fn an_unreadable_subscription_counts_as_every_topic_and_other_protocols_are_non_empty() {
    let (c, _) = coordinator();
    let member = live_member(&c, "consumer", b"garbage".to_vec());
    commit(&c, 1, &member, &[("t", 0)]);
    let answer = c.delete_offsets("g", &[p("t", 0)]).unwrap();
    assert_eq!(answer, vec![(p("t", 0), Err(GroupError::GroupSubscribedToTopic))]);
    assert_eq!(committed(&c), vec![p("t", 0)]);

    let (c, _) = coordinator();
    live_member(&c, "connect", subscription(&["t"]));
    assert_eq!(c.delete_offsets("g", &[p("t", 0)]), Err(GroupError::NonEmptyGroup));
}
