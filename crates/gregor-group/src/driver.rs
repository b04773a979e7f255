//! The driver: [`GroupCoordinator`] runs the [`GroupStateMachine`] for a
//! broker. It keeps the machine behind a lock, the senders of requests
//! still waiting (by request id), the member id generator and the
//! [`OffsetStore`]; it appends the records the machine asks for outside
//! the lock and feeds each outcome back. The machine hands out one write
//! per group at a time, so a group's records reach the log in the order
//! they were decided, whichever thread appends them.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};

use gregor_log::{Clock, Ticker};
use parking_lot::Mutex;
use tokio::sync::oneshot;

use crate::consumer::{
    ConsumerGroupDescription, ConsumerGroupState, ConsumerHeartbeat, ConsumerHeartbeatAnswer, TopicLookup,
};
use crate::machine::GroupStateMachine;
use crate::outputs::OffsetDeletion;
use crate::outputs::{MemberIdGenerator, Output, Persist, RequestId, Response};
use crate::protocol::CommittedOffset;
use crate::protocol::{
    GroupConfig, GroupDescription, GroupError, GroupState, JoinRequest, JoinResponse, LoadedRecord, MemberOf,
    StableOffset, StoreError, StoredRecord, SyncRequest, SyncResponse, TxnProducer,
};

/// Where committed offsets are kept: `__consumer_offsets` in a broker.
pub trait OffsetStore: Send + Sync {
    /// Appends `records` (never none) to the group's partition of the
    /// offsets topic in one batch — transactional, of `producer`'s id and
    /// epoch, when given — durably as the topic is configured; returns
    /// the offset of the first record.
    fn append(&self, group: &str, records: &[StoredRecord], producer: Option<TxnProducer>) -> Result<u64, StoreError>;
    /// Everything stored so far, one list per partition in log order:
    /// records with their offsets and transactional producers, and
    /// transaction markers (to rebuild the offsets).
    fn load(&self) -> Result<Vec<Vec<LoadedRecord>>, String>;
}

/// Kafka's member ids: `{prefix}-{random uuid}`.
#[derive(Debug, Default, Clone, Copy)]
pub struct UuidMemberIds;

impl MemberIdGenerator for UuidMemberIds {
    fn member_id(&mut self, prefix: &str) -> String {
        format!("{prefix}-{}", uuid::Uuid::new_v4())
    }
}

/// A request waiting for its answer.
enum Waiter {
    Join(oneshot::Sender<JoinResponse>),
    Sync(oneshot::Sender<SyncResponse>),
    /// OffsetCommit and DeleteGroups: a handler thread blocks on it.
    Done(mpsc::SyncSender<Result<(), GroupError>>),
    /// OffsetDelete: a handler thread blocks on it.
    Deleted(mpsc::SyncSender<OffsetDeletion>),
    /// ConsumerGroupHeartbeat: a handler thread blocks on it.
    Consumer(mpsc::SyncSender<Result<ConsumerHeartbeatAnswer, GroupError>>),
}

/// What the lock guards.
struct Inner {
    machine: GroupStateMachine,
    member_ids: Box<dyn MemberIdGenerator + Send>,
    waiters: HashMap<RequestId, Waiter>,
    /// The latest time a caller gave, for writes completing on calls
    /// that carry none (OffsetCommit, DeleteGroups).
    now_ms: i64,
}

impl Inner {
    /// Hands answers to their waiters; returns the answers nobody waits
    /// on (the caller's own immediate one) and the writes to perform.
    fn dispatch(&mut self, outputs: Vec<Output>, answers: &mut Vec<(RequestId, Response)>) -> Vec<Persist> {
        let mut persists = Vec::new();
        for output in outputs {
            match output {
                Output::Persist(p) => persists.push(p),
                Output::Respond { request, response } => match (self.waiters.remove(&request), response) {
                    (Some(Waiter::Join(tx)), Response::Join(r)) => drop(tx.send(r)),
                    (Some(Waiter::Sync(tx)), Response::Sync(r)) => drop(tx.send(r)),
                    (Some(Waiter::Done(tx)), Response::Commit(r) | Response::Delete(r)) => drop(tx.send(r)),
                    (Some(Waiter::Deleted(tx)), Response::DeleteOffsets(r)) => drop(tx.send(r)),
                    (Some(Waiter::Consumer(tx)), Response::ConsumerHeartbeat(r)) => drop(tx.send(r)),
                    (Some(_), response) => unreachable!("answer of another kind for {request:?}: {response:?}"),
                    (None, response) => answers.push((request, response)),
                },
            }
        }
        persists
    }
}

/// The group coordinator of a broker: every group and committed offset.
pub struct GroupCoordinator {
    inner: Mutex<Inner>,
    store: Arc<dyn OffsetStore>,
    next_request: AtomicU64,
    clock: Arc<dyn Clock>,
}

impl GroupCoordinator {
    /// A coordinator whose offsets live in `store`, loaded from it now by
    /// `clock` (restored members' sessions start then; the ticker reads
    /// the same clock).
    pub fn new(config: GroupConfig, store: Arc<dyn OffsetStore>, clock: Arc<dyn Clock>) -> Result<Self, String> {
        Self::with_member_ids(config, store, Box::new(UuidMemberIds), clock)
    }

    /// A coordinator making member ids with `member_ids`, loaded from
    /// `store` at `clock`'s now.
    pub fn with_member_ids(
        config: GroupConfig,
        store: Arc<dyn OffsetStore>,
        member_ids: Box<dyn MemberIdGenerator + Send>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, String> {
        let now_ms = clock.now_ms();
        let mut machine = GroupStateMachine::new(config);
        for partition in store.load()? {
            machine.load(&|_| true, &partition, now_ms);
        }
        Ok(Self {
            inner: Mutex::new(Inner {
                machine,
                member_ids,
                waiters: HashMap::new(),
                now_ms,
            }),
            store,
            next_request: AtomicU64::new(0),
            clock,
        })
    }

    fn request_id(&self) -> RequestId {
        RequestId(self.next_request.fetch_add(1, Ordering::Relaxed))
    }

    /// Runs `input` on the machine under the lock (after registering
    /// `waiter` for `request`), then performs the writes it asks for
    /// outside the lock, feeding each outcome back, until none is left.
    /// Returns the answers nobody was registered for.
    fn drive(
        &self,
        now_ms: Option<i64>,
        waiter: Option<(RequestId, Waiter)>,
        input: impl FnOnce(&mut Inner) -> Vec<Output>,
    ) -> Vec<(RequestId, Response)> {
        let mut answers = Vec::new();
        let mut persists: VecDeque<Persist> = {
            let mut inner = self.inner.lock();
            if let Some(now_ms) = now_ms {
                inner.now_ms = now_ms;
            }
            if let Some((request, waiter)) = waiter {
                inner.waiters.insert(request, waiter);
            }
            let outputs = input(&mut inner);
            inner.dispatch(outputs, &mut answers).into()
        };
        let mut panicked = None;
        while let Some(persist) = persists.pop_front() {
            // A store that panics fails its write, so that the group's
            // writes waiting in line go on; the panic carries on after.
            let append = || self.store.append(&persist.group, &persist.records, persist.producer);
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(append)).unwrap_or_else(|panic| {
                panicked = Some(panic);
                Err(StoreError::Unavailable("the offset store panicked".to_string()))
            });
            let mut inner = self.inner.lock();
            let now_ms = now_ms.unwrap_or(inner.now_ms);
            let outputs = inner.machine.persisted(persist.id, result, now_ms);
            persists.extend(inner.dispatch(outputs, &mut answers));
        }
        if let Some(panic) = panicked {
            std::panic::resume_unwind(panic);
        }
        answers
    }

    /// Replaces the state of the groups `owned` picks (those of one
    /// `__consumer_offsets` partition, when this broker becomes its
    /// leader) with what `records` — that partition's records and
    /// markers, in log order — say: committed offsets, those of
    /// transactions still open, and stable groups' membership, whose
    /// members get a session from `now_ms`.
    pub fn reload(&self, owned: impl Fn(&str) -> bool, records: &[LoadedRecord], now_ms: i64) {
        self.drive(Some(now_ms), None, |inner| inner.machine.reload(owned, records, now_ms));
    }

    /// Forgets the groups `owned` picks (this broker no longer leads their
    /// `__consumer_offsets` partition); their members' waiting joins and
    /// syncs end, and they find the new coordinator.
    pub fn unload(&self, owned: impl Fn(&str) -> bool) {
        self.drive(None, None, |inner| inner.machine.unload(owned));
    }

    /// JoinGroup: the answer arrives when the join phase completes.
    pub fn join(&self, request: JoinRequest, now_ms: i64) -> oneshot::Receiver<JoinResponse> {
        let (tx, rx) = oneshot::channel();
        let id = self.request_id();
        self.drive(Some(now_ms), Some((id, Waiter::Join(tx))), |inner| {
            inner.machine.join(id, request, now_ms, &mut *inner.member_ids)
        });
        rx
    }

    /// SyncGroup: followers' answers arrive with the leader's assignment.
    pub fn sync(&self, request: SyncRequest, now_ms: i64) -> oneshot::Receiver<SyncResponse> {
        let (tx, rx) = oneshot::channel();
        let id = self.request_id();
        self.drive(Some(now_ms), Some((id, Waiter::Sync(tx))), |inner| {
            inner.machine.sync(id, request, now_ms)
        });
        rx
    }

    /// Heartbeat: keeps the member alive; says when to rejoin.
    pub fn heartbeat(
        &self,
        group_id: &str,
        generation_id: i32,
        member_id: &str,
        instance_id: Option<&str>,
        now_ms: i64,
    ) -> Result<(), GroupError> {
        let id = self.request_id();
        let answers = self.drive(Some(now_ms), None, |inner| {
            inner.machine.heartbeat(
                id,
                MemberOf::new(group_id, generation_id, member_id, instance_id),
                now_ms,
            )
        });
        match take_answer(answers, id) {
            Some(Response::Heartbeat(result)) => result,
            other => unreachable!("heartbeat answered with {other:?}"),
        }
    }

    /// LeaveGroup: each (member id, instance id) leaves; the rest rebalance.
    pub fn leave(
        &self,
        group_id: &str,
        members: &[(String, Option<String>)],
        now_ms: i64,
    ) -> Vec<Result<(), GroupError>> {
        let id = self.request_id();
        let answers = self.drive(Some(now_ms), None, |inner| {
            inner.machine.leave(id, group_id, members, now_ms)
        });
        match take_answer(answers, id) {
            Some(Response::Leave(results)) => results,
            other => unreachable!("leave answered with {other:?}"),
        }
    }

    /// Expires silent members (and handed-out ids never used), completes
    /// rebalances whose timeout passed, and removes offsets of groups
    /// without members that are older than `offsets.retention.minutes`.
    pub fn tick(&self, now_ms: i64) {
        self.drive(Some(now_ms), None, |inner| inner.machine.tick(now_ms));
    }

    /// OffsetCommit: checks the member and generation (a generation of −1
    /// with no member commits for a group without live members), then
    /// stores every offset in one append; answers once it is stored
    /// (blocking: handler threads only).
    pub fn commit(
        &self,
        group_id: &str,
        generation_id: i32,
        member_id: &str,
        instance_id: Option<&str>,
        offsets: &[(String, i32, CommittedOffset)],
    ) -> Result<(), GroupError> {
        self.until_done(|inner, id| {
            inner.machine.commit(
                id,
                MemberOf::new(group_id, generation_id, member_id, instance_id),
                offsets,
            )
        })
    }

    /// TxnOffsetCommit of `producer`: checks the member as Kafka does for
    /// transactional commits (none named — v0–v2 — is fine), then stores
    /// every offset in one transactional batch; answers once it is stored
    /// (blocking: handler threads only). The offsets stay pending until
    /// [`Self::complete_transaction`].
    pub fn txn_commit(
        &self,
        producer: TxnProducer,
        member: MemberOf<'_>,
        offsets: &[(String, i32, CommittedOffset)],
    ) -> Result<(), GroupError> {
        self.until_done(|inner, id| inner.machine.txn_commit(id, producer, member, offsets))
    }

    /// `producer_id`'s transaction ended: its COMMIT (`commit`) or ABORT
    /// marker was appended to the `__consumer_offsets` partition of the
    /// groups `owned` picks. Its pending offsets there become committed
    /// or are dropped.
    pub fn complete_transaction(&self, owned: impl Fn(&str) -> bool, producer_id: i64, commit: bool) {
        self.inner
            .lock()
            .machine
            .complete_transaction(owned, producer_id, commit);
    }

    /// DeleteGroups: a group without members loses its offsets (blocking
    /// until the tombstones are stored).
    pub fn delete(&self, group_id: &str) -> Result<(), GroupError> {
        self.until_done(|inner, id| inner.machine.delete(id, group_id))
    }

    /// OffsetDelete: the offsets of `partitions` of a group go (unless its
    /// live consumers subscribe to their topics), blocking until the
    /// tombstones are stored.
    pub fn delete_offsets(&self, group_id: &str, partitions: &[(String, i32)]) -> OffsetDeletion {
        let (tx, rx) = mpsc::sync_channel(1);
        let id = self.request_id();
        self.drive(None, Some((id, Waiter::Deleted(tx))), |inner| {
            inner.machine.delete_offsets(id, group_id, partitions)
        });
        rx.recv().unwrap_or(Err(GroupError::CoordinatorNotAvailable))
    }

    /// Runs a request whose answer may be produced by another thread's
    /// write (queued behind it), and waits for it.
    fn until_done(&self, input: impl FnOnce(&mut Inner, RequestId) -> Vec<Output>) -> Result<(), GroupError> {
        let (tx, rx) = mpsc::sync_channel(1);
        let id = self.request_id();
        self.drive(None, Some((id, Waiter::Done(tx))), |inner| input(inner, id));
        rx.recv().unwrap_or(Err(GroupError::CoordinatorNotAvailable))
    }

    /// OffsetFetch: the committed offsets of `partitions` (`None`: all).
    pub fn committed(
        &self,
        group_id: &str,
        partitions: Option<&[(String, i32)]>,
    ) -> Vec<((String, i32), Option<CommittedOffset>)> {
        self.inner.lock().machine.committed(group_id, partitions)
    }

    /// OffsetFetch requiring stable offsets (v7+): as [`Self::committed`],
    /// but a partition with offsets not committed yet (an open
    /// transaction's, or a commit being written) is
    /// [`GroupError::UnstableOffsetCommit`].
    pub fn committed_stable(
        &self,
        group_id: &str,
        partitions: Option<&[(String, i32)]>,
    ) -> Vec<((String, i32), StableOffset)> {
        self.inner.lock().machine.committed_stable(group_id, partitions)
    }

    /// ConsumerGroupHeartbeat (KIP-848), with the subscribed topics as
    /// `topics` knows them: answers once the group's records are stored
    /// (blocking: handler threads only).
    pub fn consumer_heartbeat(
        &self,
        heartbeat: ConsumerHeartbeat,
        topics: &dyn TopicLookup,
        now_ms: i64,
    ) -> Result<ConsumerHeartbeatAnswer, GroupError> {
        let (tx, rx) = mpsc::sync_channel(1);
        let id = self.request_id();
        self.drive(Some(now_ms), Some((id, Waiter::Consumer(tx))), |inner| {
            let Inner {
                machine, member_ids, ..
            } = inner;
            machine.consumer_heartbeat(id, heartbeat, topics, now_ms, &mut **member_ids)
        });
        rx.recv().unwrap_or(Err(GroupError::CoordinatorNotAvailable))
    }

    /// ConsumerGroupDescribe of one group (GROUP_ID_NOT_FOUND when it is
    /// not a consumer group).
    pub fn describe_consumer(&self, group_id: &str) -> Result<ConsumerGroupDescription, GroupError> {
        self.inner.lock().machine.describe_consumer(group_id)
    }

    /// Every consumer group with its state, for ListGroups.
    pub fn list_consumer(&self) -> Vec<(String, ConsumerGroupState)> {
        self.inner.lock().machine.list_consumer()
    }

    /// Whether OffsetFetch v9+ from `member_id` at `member_epoch` may read
    /// a consumer group's offsets (anyone may read a classic group's).
    pub fn fetch_check(&self, group_id: &str, member_id: Option<&str>, member_epoch: i32) -> Result<(), GroupError> {
        self.inner.lock().machine.fetch_check(group_id, member_id, member_epoch)
    }

    /// Whether `group_id` is a consumer group (KIP-848) here.
    pub fn is_consumer_group(&self, group_id: &str) -> bool {
        self.inner.lock().machine.is_consumer_group(group_id)
    }

    /// DescribeGroups for one group (an unknown group describes as Dead
    /// with no members, as Kafka answers; `None` here).
    pub fn describe(&self, group_id: &str) -> Option<GroupDescription> {
        self.inner.lock().machine.describe(group_id)
    }

    /// ListGroups: every group with members or committed offsets, with
    /// its protocol type and state.
    pub fn list(&self) -> Vec<(String, String, GroupState)> {
        self.inner.lock().machine.list()
    }
}

/// The answer to `id` among `answers`.
fn take_answer(answers: Vec<(RequestId, Response)>, id: RequestId) -> Option<Response> {
    answers
        .into_iter()
        .find(|(r, _)| *r == id)
        .map(|(_, response)| response)
}

impl GroupCoordinator {
    /// Ticks `coordinator` every `every` at its clock's now, on a thread
    /// of its own (ticks may append offset tombstones: blocking work).
    pub fn spawn_ticker(coordinator: Arc<Self>, every: std::time::Duration) -> std::io::Result<Ticker> {
        Ticker::spawn("gregor-group-ticker", every, move || {
            coordinator.tick(coordinator.clock.now_ms());
        })
    }
}
