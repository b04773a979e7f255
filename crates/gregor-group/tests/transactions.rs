//! Transactional offset commits through the coordinator: pending until
//! the transaction's marker, committed or dropped then, unstable to a
//! fetch requiring stable offsets, checked against the group as Kafka
//! checks them, and rebuilt from the log (records, transactional batches
//! and markers) the same way.

mod common;

use common::{coordinator, coordinator_with, offset, restarted, MemoryStore};
use gregor_group::*;
use tokio::sync::oneshot::Receiver;

impl MemoryStore {
    /// The transaction coordinator's marker for `producer_id`.
    fn marker(&self, producer_id: i64, commit: bool) {
        self.log.lock().push(LoadedRecord::Marker { producer_id, commit });
    }
}

const PID: i64 = 42;

/// A producer's commit of `o` for partition t-0 of `g`, naming no member
/// (TxnOffsetCommit v0–v2).
fn txn(c: &GroupCoordinator, pid: i64, o: i64) -> Result<(), GroupError> {
    c.txn_commit(
        TxnProducer::new(pid, 0),
        MemberOf::new("g", -1, "", None),
        &[("t".into(), 0, offset(o))],
    )
}

fn plain(c: &GroupCoordinator, o: i64) -> Result<(), GroupError> {
    c.commit("g", -1, "", None, &[("t".into(), 0, offset(o))])
}

fn visible(c: &GroupCoordinator) -> Option<i64> {
    c.committed("g", Some(&[("t".into(), 0)]))[0]
        .1
        .as_ref()
        .map(|o| o.offset)
}

fn stable(c: &GroupCoordinator) -> Result<Option<i64>, GroupError> {
    c.committed_stable("g", Some(&[("t".into(), 0)]))[0]
        .1
        .clone()
        .map(|o| o.map(|o| o.offset))
}

/// The broker's part: the marker appended, then the coordinator told.
fn end(c: &GroupCoordinator, store: &MemoryStore, pid: i64, commit: bool) {
    store.marker(pid, commit);
    c.complete_transaction(|_| true, pid, commit);
}

#[test]
fn offsets_of_a_transaction_are_invisible_until_it_commits() {
    let (c, store) = coordinator();
    plain(&c, 5).unwrap();
    txn(&c, PID, 10).unwrap();
    assert_eq!(
        *store.producers.lock(),
        vec![None, Some(TxnProducer::new(PID, 0))],
        "one transactional batch of the producer"
    );
    assert_eq!(visible(&c), Some(5), "the last committed offset meanwhile");
    assert_eq!(stable(&c), Err(GroupError::UnstableOffsetCommit));
    assert_eq!(
        c.committed_stable("g", Some(&[("t".into(), 1)]))[0].1,
        Ok(None),
        "other partitions are stable"
    );
    // Another partition's marker for the producer changes nothing here.
    c.complete_transaction(|_| false, PID, true);
    assert_eq!(stable(&c), Err(GroupError::UnstableOffsetCommit));
    end(&c, &store, PID, true);
    assert_eq!(visible(&c), Some(10));
    assert_eq!(stable(&c), Ok(Some(10)));
    assert_eq!(visible(&restarted(&store)), Some(10), "the log says the same");
}

#[test]
fn an_aborted_transaction_leaves_no_offset() {
    let (c, store) = coordinator();
    plain(&c, 5).unwrap();
    txn(&c, PID, 10).unwrap();
    end(&c, &store, PID, false);
    assert_eq!(stable(&c), Ok(Some(5)));
    assert_eq!(stable(&restarted(&store)), Ok(Some(5)));
}

#[test]
fn the_later_record_wins_between_plain_and_transactional_commits() {
    let (c, store) = coordinator();
    txn(&c, PID, 10).unwrap();
    plain(&c, 20).unwrap();
    end(&c, &store, PID, true);
    assert_eq!(visible(&c), Some(20), "written after the transaction's offset");
    txn(&c, PID, 30).unwrap();
    end(&c, &store, PID, true);
    assert_eq!(visible(&c), Some(30), "written after the plain commit");
    assert_eq!(visible(&restarted(&store)), Some(30));
}

#[test]
fn a_transaction_open_at_a_reload_stays_pending_for_its_marker() {
    let (c, store) = coordinator();
    txn(&c, PID, 10).unwrap();
    txn(&c, 7, 70).unwrap();
    store.marker(7, false);
    let again = restarted(&store);
    assert_eq!(stable(&again), Err(GroupError::UnstableOffsetCommit));
    assert_eq!(visible(&again), None);
    end(&again, &store, PID, true);
    assert_eq!(stable(&again), Ok(Some(10)));
    // A marker the reload replayed, reported once more, changes nothing.
    again.complete_transaction(|_| true, 7, true);
    assert_eq!(stable(&again), Ok(Some(10)));
    // Markers are replayed in log order, in their own partition only.
    again.reload(|g| g == "g", &store.log.lock(), 0);
    assert_eq!(stable(&again), Ok(Some(10)));
}

#[test]
fn a_fenced_producer_is_refused_and_leaves_nothing_pending() {
    let (c, store) = coordinator();
    *store.fenced_below.lock() = 1;
    assert_eq!(txn(&c, PID, 10), Err(GroupError::InvalidProducerEpoch));
    assert_eq!(stable(&c), Ok(None));
}

fn join(member_id: &str, instance: Option<&str>) -> JoinRequest {
    JoinRequest {
        group_id: "g".into(),
        member_id: member_id.into(),
        group_instance_id: instance.map(String::from),
        client_id: "client".into(),
        client_host: "/127.0.0.1".into(),
        protocol_type: "consumer".into(),
        protocols: vec![("range".into(), Vec::new())],
        session_timeout_ms: 10_000,
        rebalance_timeout_ms: 30_000,
        ..JoinRequest::default()
    }
}

fn ready<T>(rx: &mut Receiver<T>) -> T {
    rx.try_recv().expect("answered at once")
}

#[test]
fn v3_commits_are_checked_against_the_group_v0_ones_are_not() {
    let (c, _) = coordinator();
    let commit = |generation, member: &str, instance| {
        c.txn_commit(
            TxnProducer::new(PID, 0),
            MemberOf::new("g", generation, member, instance),
            &[("t".into(), 0, offset(1))],
        )
    };
    // No group yet: a member or generation named is unknown.
    assert_eq!(commit(0, "m", None), Err(GroupError::UnknownMemberId));
    assert_eq!(
        commit(-1, "m", None),
        Ok(()),
        "an empty group takes any commit without generation"
    );
    let joined = ready(&mut c.join(join("", Some("host-1")), 0));
    let member = joined.member_id.clone();
    let generation = joined.generation_id;
    // A rebalance is under way (no sync yet): unlike OffsetCommit, taken.
    assert_eq!(commit(generation, &member, Some("host-1")), Ok(()));
    assert_eq!(
        commit(generation + 1, &member, None),
        Err(GroupError::IllegalGeneration)
    );
    assert_eq!(commit(generation, "someone", None), Err(GroupError::UnknownMemberId));
    assert_eq!(
        commit(generation, "someone", Some("host-1")),
        Err(GroupError::FencedInstanceId)
    );
    assert_eq!(commit(-1, "", None), Ok(()), "v0–v2 name no member");
    assert_eq!(
        c.txn_commit(TxnProducer::new(PID, 0), MemberOf::new("", -1, "", None), &[]),
        Err(GroupError::InvalidGroupId)
    );
}

#[test]
fn pending_offsets_keep_a_group_from_expiring_and_go_with_its_deletion() {
    let config = GroupConfig {
        offsets_retention_ms: 60_000,
        offsets_retention_check_interval_ms: 0,
        ..GroupConfig::default()
    };
    let (c, store) = coordinator_with(config);
    plain(&c, 5).unwrap();
    txn(&c, PID, 10).unwrap();
    c.tick(1_000_000);
    assert_eq!(
        visible(&c),
        Some(5),
        "an offset a transaction is rewriting is not expired"
    );
    assert!(c.describe("g").is_some());
    // A group known only by an open transaction's offsets.
    c.txn_commit(
        TxnProducer::new(PID, 0),
        MemberOf::new("h", -1, "", None),
        &[("t".into(), 0, offset(1))],
    )
    .unwrap();
    c.tick(2_000_000);
    assert!(
        c.list().iter().any(|(g, _, _)| g == "h"),
        "not forgotten: {:?}",
        c.list()
    );
    end(&c, &store, PID, true);
    assert_eq!(visible(&c), Some(10));
    c.tick(3_000_000);
    assert_eq!(visible(&c), None, "expired once the transaction is over");
    assert!(c.list().is_empty(), "{:?}", c.list());
    // DeleteGroups tombstones pending offsets too: the commit finds none.
    txn(&c, PID, 20).unwrap();
    c.delete("g").unwrap();
    end(&c, &store, PID, true);
    assert_eq!(stable(&c), Ok(None));
    assert_eq!(stable(&restarted(&store)), Ok(None));
}
