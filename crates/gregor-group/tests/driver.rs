//! The driver's own work: writes performed outside the lock, in order per
//! group across threads, and failed writes answered as errors.

use std::collections::BTreeSet;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use gregor_log::SystemClock;

use gregor_group::*;
use parking_lot::{Condvar, Mutex};

/// A store whose appends for a held group wait until it is released, and
/// whose appends fail while `failing` is set.
#[derive(Default)]
struct GateStore {
    records: Mutex<Vec<(String, StoredRecord)>>,
    held: Mutex<BTreeSet<String>>,
    released: Condvar,
    entered: Mutex<Option<mpsc::Sender<String>>>,
    failing: Mutex<bool>,
}

impl GateStore {
    fn hold(&self, group: &str) -> mpsc::Receiver<String> {
        self.held.lock().insert(group.to_string());
        let (tx, rx) = mpsc::channel();
        *self.entered.lock() = Some(tx);
        rx
    }
    fn release(&self, group: &str) {
        self.held.lock().remove(group);
        self.released.notify_all();
    }
}

impl OffsetStore for GateStore {
    fn append(&self, group: &str, records: &[StoredRecord], _: Option<TxnProducer>) -> Result<u64, StoreError> {
        if let Some(tx) = self.entered.lock().as_ref() {
            let _ = tx.send(group.to_string());
        }
        let mut held = self.held.lock();
        while held.contains(group) {
            self.released.wait(&mut held);
        }
        drop(held);
        if *self.failing.lock() {
            return Err(StoreError::Unavailable("not enough replicas".into()));
        }
        let mut stored = self.records.lock();
        let first = stored.len() as u64;
        stored.extend(records.iter().map(|r| (group.to_string(), r.clone())));
        Ok(first)
    }
    fn load(&self) -> Result<Vec<Vec<LoadedRecord>>, String> {
        let stored = self.records.lock();
        Ok(vec![(0..)
            .zip(stored.iter())
            .map(|(offset, (_, (key, value)))| LoadedRecord::Record {
                key: key.clone(),
                value: value.clone(),
                offset,
                producer: None,
            })
            .collect()])
    }
}

fn offset(o: i64) -> CommittedOffset {
    CommittedOffset {
        offset: o,
        leader_epoch: -1,
        metadata: String::new(),
        commit_timestamp: 1_000,
    }
}

fn commit(c: &GroupCoordinator, group: &str, o: i64) -> Result<(), GroupError> {
    c.commit(group, -1, "", None, &[("t".into(), 0, offset(o))])
}

fn committed(c: &GroupCoordinator, group: &str) -> Option<i64> {
    c.committed(group, Some(&[("t".into(), 0)]))[0]
        .1
        .as_ref()
        .map(|o| o.offset)
}

#[test]
fn a_groups_writes_go_out_one_at_a_time_in_order_and_others_are_not_held_up() {
    let store = Arc::new(GateStore::default());
    let c = Arc::new(GroupCoordinator::new(GroupConfig::default(), store.clone(), Arc::new(SystemClock)).unwrap());
    let entered = store.hold("g");
    let first = {
        let c = c.clone();
        std::thread::spawn(move || commit(&c, "g", 1))
    };
    assert_eq!(entered.recv().unwrap(), "g", "the first write is out");
    // The lock is free while it is out: reads and other groups go on.
    assert_eq!(committed(&c, "g"), None, "not cached before it is stored");
    assert_eq!(commit(&c, "h", 7), Ok(()));
    assert_eq!(entered.recv().unwrap(), "h");
    // A second write of "g" waits in line behind the first.
    let second = {
        let c = c.clone();
        std::thread::spawn(move || commit(&c, "g", 2))
    };
    assert!(
        entered.recv_timeout(Duration::from_millis(200)).is_err(),
        "the second write of g went out while the first was"
    );
    store.release("g");
    assert_eq!(first.join().unwrap(), Ok(()));
    assert_eq!(second.join().unwrap(), Ok(()));
    assert_eq!(committed(&c, "g"), Some(2));
    let order: Vec<String> = store.records.lock().iter().map(|(g, _)| g.clone()).collect();
    assert_eq!(order, ["h", "g", "g"]);
}

#[test]
fn failed_writes_answer_errors_and_change_nothing() {
    let store = Arc::new(GateStore::default());
    let c = GroupCoordinator::new(GroupConfig::default(), store.clone(), Arc::new(SystemClock)).unwrap();
    assert_eq!(commit(&c, "g", 1), Ok(()));
    *store.failing.lock() = true;
    assert_eq!(commit(&c, "g", 2), Err(GroupError::CoordinatorNotAvailable));
    assert_eq!(committed(&c, "g"), Some(1), "a refused commit is not cached");
    // A lone member joins; the leader's assignment cannot be stored.
    let joined = c.join(join_g(""), 0).try_recv().unwrap();
    let sync = SyncRequest {
        group_id: "g".into(),
        generation_id: joined.generation_id,
        member_id: joined.member_id.clone(),
        group_instance_id: None,
        assignments: vec![(joined.member_id.clone(), b"all".to_vec())],
    };
    let synced = c.sync(sync, 10).try_recv().unwrap();
    assert_eq!(synced.error, Some(GroupError::CoordinatorNotAvailable));
    assert_eq!(c.describe("g").unwrap().state, GroupState::PreparingRebalance);
    assert_eq!(
        c.heartbeat("g", joined.generation_id, &joined.member_id, None, 20),
        Err(GroupError::RebalanceInProgress)
    );
}

#[test]
fn unloading_answers_waiting_joins() {
    let c = GroupCoordinator::new(
        GroupConfig::default(),
        Arc::new(GateStore::default()),
        Arc::new(SystemClock),
    )
    .unwrap();
    let join = join_g;
    let a = c.join(join(""), 0).try_recv().unwrap();
    let mut waiting = c.join(join(""), 10);
    assert!(waiting.try_recv().is_err(), "waits for the leader to rejoin");
    c.unload(|g| g == "g");
    let answer = waiting.try_recv().unwrap();
    assert_eq!(answer.error, Some(GroupError::RebalanceInProgress));
    assert!(c.describe("g").is_none());
    assert_eq!(
        c.heartbeat("g", a.generation_id, &a.member_id, None, 20),
        Err(GroupError::UnknownMemberId)
    );
}

/// A JoinGroup for group "g" (consumer protocol, range) as `member_id`.
fn join_g(member_id: &str) -> JoinRequest {
    JoinRequest {
        group_id: "g".into(),
        member_id: member_id.into(),
        client_id: "client".into(),
        protocol_type: "consumer".into(),
        protocols: vec![("range".into(), Vec::new())],
        session_timeout_ms: 10_000,
        rebalance_timeout_ms: 10_000,
        ..JoinRequest::default()
    }
}
