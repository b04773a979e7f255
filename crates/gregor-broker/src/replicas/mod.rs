//! The replica manager: this broker's role for each partition (leader,
//! follower, offline) as the controller assigned it, and the IO around
//! gregor-replication's state machines — the log appends, high watermarks,
//! produce requests waiting for `acks=all`, ISR changes on their way to
//! coordination, the cluster view Metadata answers from.
//!
//! - `leader.rs`: appends, follower progress, acks, ISR changes;
//! - `follower.rs`: what the replica fetcher asks and appends;
//! - `follower_reads.rs`: consumers fetching from followers (KIP-392);
//! - `view.rs`: the cluster view.

mod follower;
mod follower_reads;
mod leader;
mod view;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use gregor_log::{Clock, Log, TopicPartition};
use gregor_replication::{
    AckOutcome, AckPurgatory, BrokerId, ControllerFence, LocalLog, LocalPosition, PartitionRecord, ReplicaRole,
    ReplicaSelector, ReplicaSettings, ReplicationError, RoleChange,
};
use parking_lot::{Mutex, RwLock};
use prometheus_client::metrics::counter::Counter;
use tokio::sync::oneshot;

pub use follower::FollowedPartition;
pub use leader::{IsrUpdate, LeaderAppend, ReplicaAppendError};
pub use view::{BrokerEndpoint, ClusterView, TopicView};

/// Answers produce requests waiting for `acks=all`.
type AckSender = oneshot::Sender<Vec<(TopicPartition, AckOutcome)>>;

/// One partition replica: its role and its log.
struct Replica {
    role: ReplicaRole,
    log: Arc<Log>,
}

/// A local log as the follower state machine sees it.
struct LogView<'a>(&'a Log);

impl LocalLog for LogView<'_> {
    fn log_end(&self) -> u64 {
        self.0.end_offset()
    }
    fn high_watermark(&self) -> u64 {
        self.0.high_watermark()
    }
    fn latest_epoch(&self) -> Option<i32> {
        self.0.latest_epoch()
    }
    fn end_offset_for_epoch(&self, epoch: i32) -> Option<(i32, u64)> {
        self.0.end_offset_for_epoch(epoch)
    }
}

/// This broker's replicas and the cluster view.
pub struct ReplicaManager {
    local: BrokerId,
    settings: ReplicaSettings,
    /// Looked up per partition on every fetch and produce: foldhash, not
    /// SipHash (a follower's session walks thousands each round).
    replicas: RwLock<HashMap<TopicPartition, Arc<Mutex<Replica>>, foldhash::fast::RandomState>>,
    /// Partitions whose log directory went offline: no longer replicated
    /// here, answered KAFKA_STORAGE_ERROR until the broker restarts.
    offline: RwLock<HashSet<TopicPartition>>,
    purgatory: Mutex<AckPurgatory<TopicPartition, AckSender>>,
    fence: Mutex<ControllerFence>,
    /// The cluster view as a shared snapshot: Metadata takes it without
    /// copying 10,000 partitions, and an update copies it only while a
    /// request still holds the previous one (as Kafka's metadata cache
    /// swaps snapshots).
    view: RwLock<Arc<ClusterView>>,
    followers_changed: tokio::sync::Notify,
    /// Bumped after a replica is added or removed or its role, epoch or
    /// log changes (see [`ReplicaManager::generation`]).
    generation: AtomicU64,
    /// [`ReplicaManager::followed`] as of a generation.
    followed: Mutex<Option<(u64, Arc<Vec<FollowedPartition>>)>>,
    progress: Arc<tokio::sync::Notify>,
    isr_updates: Mutex<Vec<IsrUpdate>>,
    isr_updates_queued: tokio::sync::Notify,
    clock: Arc<dyn Clock>,
    isr_shrinks: Counter,
    isr_expands: Counter,
    broker_epoch: std::sync::atomic::AtomicI64,
    /// `min.insync.replicas` set as a dynamic broker config (0: none, the
    /// static setting applies).
    dynamic_min_insync: std::sync::atomic::AtomicUsize,
    /// `replica.selector.class` (KIP-392; `None`: consumers read from
    /// leaders).
    replica_selector: RwLock<Option<ReplicaSelector>>,
}

impl ReplicaManager {
    /// A replica manager for broker `local` with the broker-wide settings
    /// (`replica.lag.time.max.ms`, `min.insync.replicas`), on `clock`
    /// (follower lag and produce deadlines, in its milliseconds).
    pub fn new(local: BrokerId, settings: ReplicaSettings, clock: Arc<dyn Clock>) -> Self {
        Self {
            local,
            settings,
            replicas: RwLock::new(HashMap::default()),
            offline: RwLock::new(HashSet::new()),
            purgatory: Mutex::new(AckPurgatory::new()),
            fence: Mutex::new(ControllerFence::default()),
            view: RwLock::new(Arc::new(ClusterView {
                controller: -1,
                ..ClusterView::default()
            })),
            followers_changed: tokio::sync::Notify::new(),
            generation: AtomicU64::new(0),
            followed: Mutex::new(None),
            progress: Arc::new(tokio::sync::Notify::new()),
            isr_updates: Mutex::new(Vec::new()),
            isr_updates_queued: tokio::sync::Notify::new(),
            clock,
            isr_shrinks: Counter::default(),
            isr_expands: Counter::default(),
            broker_epoch: std::sync::atomic::AtomicI64::new(-1),
            dynamic_min_insync: std::sync::atomic::AtomicUsize::new(0),
            replica_selector: RwLock::new(None),
        }
    }

    /// This broker's epoch (KIP-380), once registered; -1 before.
    pub fn broker_epoch(&self) -> i64 {
        self.broker_epoch.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Records the epoch this broker registered with.
    pub fn set_broker_epoch(&self, epoch: i64) {
        self.broker_epoch.store(epoch, std::sync::atomic::Ordering::Release);
    }

    /// Whether a controller request addressed to `request_epoch` was meant
    /// for an earlier run of this broker (Kafka's STALE_BROKER_EPOCH; -1:
    /// the controller did not say, as older controllers do).
    pub fn is_broker_epoch_stale(&self, request_epoch: i64) -> bool {
        request_epoch >= 0 && request_epoch < self.broker_epoch()
    }

    /// Counters of ISR shrinks and expansions recorded by this broker's
    /// leaders (for the metrics).
    pub fn isr_change_counters(&self) -> (Counter, Counter) {
        (self.isr_shrinks.clone(), self.isr_expands.clone())
    }

    /// Partitions led here whose ISR lacks some assigned replica.
    pub fn under_replicated(&self) -> usize {
        self.replicas
            .read()
            .values()
            .filter(|r| {
                let r = r.lock();
                r.role.leader().is_some_and(|l| l.isr().len() < l.replicas().len())
            })
            .count()
    }

    /// This broker's id.
    pub fn local(&self) -> BrokerId {
        self.local
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.clock.now_ms()).unwrap_or(0)
    }

    fn replica(&self, tp: &TopicPartition) -> Option<Arc<Mutex<Replica>>> {
        self.replicas.read().get(tp).cloned()
    }

    /// The replica of `tp`, or why there is none: KAFKA_STORAGE_ERROR for
    /// a partition in an offline log directory (as Kafka answers clients).
    fn hosted(&self, tp: &TopicPartition) -> Result<Arc<Mutex<Replica>>, ReplicationError> {
        match self.replica(tp) {
            Some(replica) => Ok(replica),
            None if self.offline.read().contains(tp) => Err(ReplicationError::KafkaStorageError),
            None => Err(ReplicationError::NotLeaderOrFollower),
        }
    }

    /// Takes partitions whose log directory failed offline (Kafka's
    /// `ReplicaManager.handleLogDirFailure`): this broker stops leading and
    /// following them — produces waiting for their acks are answered
    /// KAFKA_STORAGE_ERROR, the fetcher drops them — and answers
    /// KAFKA_STORAGE_ERROR for them until it restarts. The controller,
    /// told separately, moves their leadership.
    pub fn take_offline(&self, partitions: &[TopicPartition]) {
        {
            let mut replicas = self.replicas.write();
            let mut offline = self.offline.write();
            for tp in partitions {
                replicas.remove(tp);
                offline.insert(tp.clone());
            }
        }
        for tp in partitions {
            self.fail_waiting(tp, ReplicationError::KafkaStorageError);
        }
        self.replicas_changed();
        self.followers_changed.notify_waiters();
        self.progress.notify_waiters();
    }

    /// Whether `tp` was taken offline with its log directory.
    pub fn is_offline(&self, tp: &TopicPartition) -> bool {
        self.offline.read().contains(tp)
    }

    /// Checks a controller request's epoch (`STALE_CONTROLLER_EPOCH`).
    pub fn check_controller_epoch(&self, controller_epoch: i32) -> Result<(), ReplicationError> {
        self.fence.lock().check(controller_epoch)
    }

    /// Applies one partition of a LeaderAndIsr request over its local log
    /// (created by the caller). `min_insync` is the topic's
    /// `min.insync.replicas`.
    pub fn become_leader_or_follower(
        &self,
        tp: &TopicPartition,
        record: &PartitionRecord,
        log: Arc<Log>,
        min_insync: Option<usize>,
    ) -> Result<RoleChange, ReplicationError> {
        let replica = self
            .replicas
            .write()
            .entry(tp.clone())
            .or_insert_with(|| {
                Arc::new(Mutex::new(Replica {
                    role: ReplicaRole::new(self.local),
                    log: log.clone(),
                }))
            })
            .clone();
        // The ISR as this broker last knew it (UpdateMetadata follows
        // LeaderAndIsr), to count the controller's shrinks too.
        let isr_before = self.view.read().partition(tp).map(|r| r.state.isr.len());
        let mut replica = replica.lock();
        replica.log = log;
        let settings = ReplicaSettings {
            min_insync_replicas: min_insync.unwrap_or_else(|| self.default_min_insync_replicas()),
            ..self.settings
        };
        let at = LocalPosition {
            log_end: replica.log.end_offset(),
            high_watermark: replica.log.high_watermark(),
        };
        let change = match replica.role.apply(record, at, settings, self.now_ms()) {
            Ok(change) => change,
            Err(e) => {
                // The replica may be new, its log replaced: still a change.
                drop(replica);
                self.replicas_changed();
                return Err(e);
            }
        };
        let leads = record.state.leader == self.local && change != RoleChange::Unchanged
            || (change == RoleChange::Unchanged && replica.role.leader().is_some());
        if leads && isr_before.is_some_and(|n| record.state.isr.len() < n) {
            self.isr_shrinks.inc();
        }
        match change {
            RoleChange::BecameLeader => {
                if let Some(l) = replica.role.leader() {
                    replica.log.set_high_watermark(l.high_watermark());
                }
                tracing::info!(partition = %tp, epoch = record.state.leader_epoch, isr = ?record.state.isr, "leading");
            }
            RoleChange::BecameFollower { leader } => {
                tracing::info!(partition = %tp, leader, epoch = record.state.leader_epoch, "following");
            }
            RoleChange::BecameOffline => tracing::warn!(partition = %tp, "no leader: offline"),
            RoleChange::Unchanged => {
                // A leader whose ISR the controller shrank within the
                // epoch: its high watermark may move on.
                if let Some(l) = replica.role.leader() {
                    replica.log.set_high_watermark(l.high_watermark());
                }
            }
        }
        let still_leads = change == RoleChange::Unchanged && replica.role.leader().is_some();
        drop(replica);
        // Also for an unchanged role: the log may have been replaced.
        self.replicas_changed();
        if !matches!(change, RoleChange::BecameLeader | RoleChange::Unchanged) {
            self.fail_waiting(tp, ReplicationError::NotLeaderOrFollower);
        }
        if still_leads {
            self.check_acks(tp);
            self.progress.notify_waiters();
        }
        if change != RoleChange::Unchanged {
            self.followers_changed.notify_waiters();
            self.progress.notify_waiters();
        }
        Ok(change)
    }

    /// The broker-wide `min.insync.replicas`: the dynamic broker config's
    /// if one is set, else the static setting.
    pub fn default_min_insync_replicas(&self) -> usize {
        match self.dynamic_min_insync.load(std::sync::atomic::Ordering::Acquire) {
            0 => self.settings.min_insync_replicas,
            n => n,
        }
    }

    /// Sets (`None`: removes) the broker-wide `min.insync.replicas` given
    /// as a dynamic broker config; the caller re-applies each topic's
    /// value with [`ReplicaManager::set_min_insync_replicas`].
    pub fn set_dynamic_min_insync_replicas(&self, n: Option<usize>) {
        let n = n.map_or(0, |n| n.max(1));
        self.dynamic_min_insync.store(n, std::sync::atomic::Ordering::Release);
    }

    /// A topic's `min.insync.replicas` changed (`None`: back to the
    /// broker's default): the partitions it leads here use it from now on.
    pub fn set_min_insync_replicas(&self, topic: &str, n: Option<usize>) {
        let n = n.unwrap_or_else(|| self.default_min_insync_replicas());
        for (tp, replica) in self.replicas.read().iter() {
            if tp.topic == topic {
                if let Some(l) = replica.lock().role.leader_mut() {
                    l.set_min_insync_replicas(n);
                }
            }
        }
    }

    /// Stops replicating a partition (StopReplica, topic deleted).
    pub fn stop_replica(&self, tp: &TopicPartition) {
        self.replicas.write().remove(tp);
        self.replicas_changed();
        self.fail_waiting(tp, ReplicationError::NotLeaderOrFollower);
        self.followers_changed.notify_waiters();
        // Fetches waiting on it answer now (Kafka completes them too).
        self.progress.notify_waiters();
    }

    fn fail_waiting(&self, tp: &TopicPartition, error: ReplicationError) {
        let done = self.purgatory.lock().check(tp, |_| Some(Err(error)));
        answer(done);
    }

    /// Moves [`ReplicaManager::generation`] on: called after a replica's
    /// change is visible (map, role, log), so that whoever reads the new
    /// generation also sees the change.
    fn replicas_changed(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// A number that changes after any replica is added or removed or
    /// changes role, leader epoch or log: logs and roles read under one
    /// generation still hold while it stays the same.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Resolves when a follower role changes (the fetcher re-plans).
    pub fn followers_changed(&self) -> tokio::sync::futures::Notified<'_> {
        self.followers_changed.notified()
    }

    /// Notified at every append and high watermark move (waiting fetches
    /// listen to it).
    pub fn progress(&self) -> Arc<tokio::sync::Notify> {
        self.progress.clone()
    }
}

fn answer(done: Vec<gregor_replication::Completed<TopicPartition, AckSender>>) {
    for (tx, outcomes) in done {
        let _ = tx.send(outcomes);
    }
}
