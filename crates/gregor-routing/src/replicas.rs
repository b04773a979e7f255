//! The replica manager: this broker's role for each partition (leader,
//! follower, offline) as the controller assigned it, and the IO around
//! gregor-replication's state machines — the log appends, high watermarks,
//! produce requests waiting for `acks=all`, the cluster view Metadata
//! answers from.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Instant;

use gregor_log::{Log, LogError, TopicPartition};
use gregor_replication::{
    AckOutcome, AckPurgatory, BrokerId, ControllerFence, EpochEnd, FollowerPartition, FollowerRequest, IsrChange,
    LeaderAndIsr, LocalLog, PartitionRecord, ReplicaRole, ReplicaSettings, ReplicationError, RoleChange,
};
use parking_lot::{Mutex, RwLock};
use prometheus_client::metrics::counter::Counter;
use tokio::sync::oneshot;

/// A broker as the cluster view knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerEndpoint {
    /// Host clients connect to.
    pub host: String,
    /// Port clients connect to.
    pub port: u16,
    /// `broker.rack`.
    pub rack: Option<String>,
}

/// What the controller last told this broker about the cluster
/// (UpdateMetadata): live brokers and every partition's leadership.
#[derive(Debug, Clone, Default)]
pub struct ClusterView {
    /// The controller's id (-1: unknown).
    pub controller: BrokerId,
    /// Live brokers.
    pub brokers: BTreeMap<BrokerId, BrokerEndpoint>,
    /// Partition → replicas, leader, epoch, ISR.
    pub partitions: HashMap<TopicPartition, PartitionRecord>,
}

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

/// A partition this broker follows, for the replica fetcher.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FollowedPartition {
    /// The partition.
    pub partition: TopicPartition,
    /// Its leader.
    pub leader: BrokerId,
    /// The leader epoch (sent as `current_leader_epoch`).
    pub leader_epoch: i32,
}

/// Where an append as leader stands.
#[derive(Debug)]
pub struct LeaderAppend {
    /// What the log wrote.
    pub info: gregor_log::AppendInfo,
    /// The offset the high watermark must pass for `acks=all` (`None`:
    /// already acknowledged, or acks ≠ all).
    pub waiting_for: Option<u64>,
    /// The outcome known at once for `acks=all`.
    pub acked: Option<AckOutcome>,
}

/// Why an append as leader failed.
#[derive(Debug, thiserror::Error)]
pub enum ReplicaAppendError {
    /// Replication refused it (not leader, not enough replicas).
    #[error(transparent)]
    Replication(#[from] ReplicationError),
    /// The log refused it.
    #[error(transparent)]
    Log(#[from] LogError),
}

/// Writes ISR changes to coordination; the broker backs it with its
/// catalog. May block.
pub trait IsrWriter: Send + Sync {
    /// Records `isr` for `partition` (keeping leader and epoch) if the
    /// state is still at `expected_version`; returns the new version, or
    /// `None` when it changed under us.
    fn write_isr(&self, partition: &TopicPartition, state: &LeaderAndIsr, expected_version: i32) -> Option<i32>;
}

/// This broker's replicas and the cluster view.
pub struct ReplicaManager {
    local: BrokerId,
    settings: ReplicaSettings,
    replicas: RwLock<HashMap<TopicPartition, Arc<Mutex<Replica>>>>,
    purgatory: Mutex<AckPurgatory<TopicPartition, AckSender>>,
    fence: Mutex<ControllerFence>,
    view: RwLock<ClusterView>,
    followers_changed: tokio::sync::Notify,
    progress: Arc<tokio::sync::Notify>,
    started: Instant,
    isr_shrinks: Counter,
    isr_expands: Counter,
}

impl ReplicaManager {
    /// A replica manager for broker `local` with the broker-wide settings
    /// (`replica.lag.time.max.ms`, `min.insync.replicas`).
    pub fn new(local: BrokerId, settings: ReplicaSettings) -> Self {
        Self {
            local,
            settings,
            replicas: RwLock::new(HashMap::new()),
            purgatory: Mutex::new(AckPurgatory::new()),
            fence: Mutex::new(ControllerFence::default()),
            view: RwLock::new(ClusterView {
                controller: -1,
                ..ClusterView::default()
            }),
            followers_changed: tokio::sync::Notify::new(),
            progress: Arc::new(tokio::sync::Notify::new()),
            started: Instant::now(),
            isr_shrinks: Counter::default(),
            isr_expands: Counter::default(),
        }
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
        self.started.elapsed().as_millis() as u64
    }

    fn replica(&self, tp: &TopicPartition) -> Option<Arc<Mutex<Replica>>> {
        self.replicas.read().get(tp).cloned()
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
        let isr_before = self.view.read().partitions.get(tp).map(|r| r.state.isr.len());
        let mut replica = replica.lock();
        replica.log = log;
        let settings = ReplicaSettings {
            min_insync_replicas: min_insync.unwrap_or(self.settings.min_insync_replicas),
            ..self.settings
        };
        let (end, hw) = (replica.log.end_offset(), replica.log.high_watermark());
        let change = replica.role.apply(
            &record.state,
            record.version,
            &record.replicas,
            end,
            hw,
            settings,
            self.now_ms(),
        )?;
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
            RoleChange::Unchanged => {}
        }
        drop(replica);
        if !matches!(change, RoleChange::BecameLeader | RoleChange::Unchanged) {
            self.fail_waiting(tp, ReplicationError::NotLeaderOrFollower);
        }
        if change != RoleChange::Unchanged {
            self.followers_changed.notify_waiters();
            self.progress.notify_waiters();
        }
        Ok(change)
    }

    /// A topic's `min.insync.replicas` changed (`None`: back to the
    /// broker's default): the partitions it leads here use it from now on.
    pub fn set_min_insync_replicas(&self, topic: &str, n: Option<usize>) {
        let n = n.unwrap_or(self.settings.min_insync_replicas);
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
        self.fail_waiting(tp, ReplicationError::NotLeaderOrFollower);
        self.followers_changed.notify_waiters();
    }

    fn fail_waiting(&self, tp: &TopicPartition, error: ReplicationError) {
        let done = self.purgatory.lock().check(tp, |_| Some(Err(error)));
        answer(done);
    }

    /// Replaces the cluster view (UpdateMetadata): `brokers` are the live
    /// ones; `partitions` are merged in.
    pub fn update_view(
        &self,
        controller: BrokerId,
        brokers: BTreeMap<BrokerId, BrokerEndpoint>,
        partitions: impl IntoIterator<Item = (TopicPartition, PartitionRecord)>,
    ) {
        let mut view = self.view.write();
        view.controller = controller;
        view.brokers = brokers;
        for (tp, record) in partitions {
            view.partitions.insert(tp, record);
        }
    }

    /// Learns a broker's endpoint (LeaderAndIsr names the leaders) unless
    /// the view has it.
    pub fn learn_endpoint(&self, id: BrokerId, endpoint: BrokerEndpoint) {
        self.view.write().brokers.entry(id).or_insert(endpoint);
    }

    /// Forgets a deleted topic's partitions in the view.
    pub fn forget_topic(&self, topic: &str) {
        self.view.write().partitions.retain(|tp, _| tp.topic != topic);
    }

    /// The cluster view.
    pub fn view(&self) -> ClusterView {
        self.view.read().clone()
    }

    /// A partition's leadership as the view has it.
    pub fn partition_record(&self, tp: &TopicPartition) -> Option<PartitionRecord> {
        self.view.read().partitions.get(tp).cloned()
    }

    /// A live broker's endpoint.
    pub fn endpoint(&self, id: BrokerId) -> Option<BrokerEndpoint> {
        self.view.read().brokers.get(&id).cloned()
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

    // ---- leader side ----

    /// The log to read for a consumer with its high watermark, if this
    /// broker leads the partition (checking `current_leader_epoch`).
    pub fn leader_log(
        &self,
        tp: &TopicPartition,
        current_leader_epoch: Option<i32>,
    ) -> Result<(Arc<Log>, u64), ReplicationError> {
        let replica = self.replica(tp).ok_or(ReplicationError::NotLeaderOrFollower)?;
        let replica = replica.lock();
        let leader = replica.role.leader().ok_or(ReplicationError::NotLeaderOrFollower)?;
        leader.check_epoch(current_leader_epoch)?;
        Ok((replica.log.clone(), leader.high_watermark()))
    }

    /// Appends a producer's batches as leader, stamping the leader epoch.
    /// With `acks_all`, refuses when the ISR is below
    /// `min.insync.replicas` and says what to wait for.
    pub fn append_as_leader(
        &self,
        tp: &TopicPartition,
        batches: &mut [u8],
        acks_all: bool,
    ) -> Result<LeaderAppend, ReplicaAppendError> {
        let replica = self.replica(tp).ok_or(ReplicationError::NotLeaderOrFollower)?;
        let mut guard = replica.lock();
        let replica = &mut *guard;
        let leader = replica.role.leader_mut().ok_or(ReplicationError::NotLeaderOrFollower)?;
        if acks_all {
            leader.check_enough_replicas()?;
        }
        let info = replica.log.append(batches, leader.leader_epoch())?;
        if let Some(hw) = leader.on_append(replica.log.end_offset()) {
            replica.log.set_high_watermark(hw);
        }
        let required = info.last_offset + 1;
        let acked = if acks_all { leader.ack_status(required) } else { None };
        drop(guard);
        self.progress.notify_waiters();
        Ok(LeaderAppend {
            info,
            waiting_for: (acks_all && acked.is_none()).then_some(required),
            acked,
        })
    }

    /// Parks an `acks=all` produce until its partitions are replicated;
    /// resolves with each waiting partition's outcome (the caller applies
    /// its own timeout).
    pub fn wait_for_acks(
        &self,
        waiting: Vec<(TopicPartition, u64)>,
        timeout_ms: u64,
    ) -> oneshot::Receiver<Vec<(TopicPartition, AckOutcome)>> {
        let (tx, rx) = oneshot::channel();
        let partitions: Vec<TopicPartition> = waiting.iter().map(|(tp, _)| tp.clone()).collect();
        let deadline = self.now_ms() + timeout_ms;
        if let Some(done) = self.purgatory.lock().watch(tx, deadline, waiting, []) {
            answer(vec![done]);
        }
        // Progress between the append and the watch would have been missed.
        for tp in partitions {
            self.check_acks(&tp);
        }
        rx
    }

    fn check_acks(&self, tp: &TopicPartition) {
        let Some(replica) = self.replica(tp) else {
            return self.fail_waiting(tp, ReplicationError::NotLeaderOrFollower);
        };
        let replica = replica.lock();
        let done = match replica.role.leader() {
            Some(leader) => self.purgatory.lock().check(tp, |required| leader.ack_status(required)),
            None => self
                .purgatory
                .lock()
                .check(tp, |_| Some(Err(ReplicationError::NotLeaderOrFollower))),
        };
        drop(replica);
        answer(done);
    }

    /// A follower fetched `tp` from `fetch_offset`: records its progress,
    /// moves the high watermark, completes waiting produces, and records
    /// an ISR expansion through `isr`. Returns the log to read (to its
    /// end) and the high watermark to report.
    pub fn on_follower_fetch(
        &self,
        tp: &TopicPartition,
        follower: BrokerId,
        fetch_offset: u64,
        current_leader_epoch: Option<i32>,
        isr: &dyn IsrWriter,
    ) -> Result<(Arc<Log>, u64), ReplicationError> {
        let replica = self.replica(tp).ok_or(ReplicationError::NotLeaderOrFollower)?;
        let mut guard = replica.lock();
        let r = &mut *guard;
        let leader = r.role.leader_mut().ok_or(ReplicationError::NotLeaderOrFollower)?;
        leader.check_epoch(current_leader_epoch)?;
        let progress = leader.on_follower_fetch(follower, fetch_offset, self.now_ms())?;
        if let Some(hw) = progress.high_watermark {
            r.log.set_high_watermark(hw);
        }
        let log = r.log.clone();
        let hw = leader.high_watermark();
        drop(guard);
        if let Some(change) = progress.isr_change {
            self.record_isr(tp, change, isr);
        }
        if progress.high_watermark.is_some() {
            self.check_acks(tp);
            self.progress.notify_waiters();
        }
        Ok((log, hw))
    }

    fn record_isr(&self, tp: &TopicPartition, change: IsrChange, isr: &dyn IsrWriter) {
        let state = LeaderAndIsr {
            leader: self.local,
            leader_epoch: change.leader_epoch,
            isr: change.isr.clone(),
            controller_epoch: self.fence.lock().highest(),
        };
        let written = isr.write_isr(tp, &state, change.expected_version);
        let Some(replica) = self.replica(tp) else { return };
        let mut guard = replica.lock();
        let r = &mut *guard;
        let Some(leader) = r.role.leader_mut().filter(|l| l.leader_epoch() == change.leader_epoch) else {
            return;
        };
        match written {
            Some(version) => {
                tracing::info!(partition = %tp, isr = ?change.isr, "ISR changed");
                if change.isr.len() < leader.isr().len() {
                    self.isr_shrinks.inc();
                } else {
                    self.isr_expands.inc();
                }
                if let Some(hw) = leader.isr_committed(change.isr, version) {
                    r.log.set_high_watermark(hw);
                }
            }
            None => {
                tracing::info!(partition = %tp, "ISR change refused: the partition state moved on");
                leader.isr_rejected();
            }
        }
        drop(guard);
        self.check_acks(tp);
        self.progress.notify_waiters();
    }

    /// Clock work: shrinks the ISR of partitions whose followers lag,
    /// fails produces past their deadline. Blocks on coordination.
    pub fn tick(&self, isr: &dyn IsrWriter) {
        let now = self.now_ms();
        let replicas: Vec<(TopicPartition, Arc<Mutex<Replica>>)> = self
            .replicas
            .read()
            .iter()
            .map(|(tp, r)| (tp.clone(), r.clone()))
            .collect();
        for (tp, replica) in replicas {
            let change = replica.lock().role.leader_mut().and_then(|l| l.tick(now));
            if let Some(change) = change {
                tracing::info!(partition = %tp, isr = ?change.isr, "followers lag: shrinking the ISR");
                self.record_isr(&tp, change, isr);
            }
        }
        let expired = self.purgatory.lock().expire(now);
        answer(expired);
    }

    // ---- follower side (the replica fetcher) ----

    /// The partitions this broker follows.
    pub fn followed(&self) -> Vec<FollowedPartition> {
        self.replicas
            .read()
            .iter()
            .filter_map(|(tp, r)| {
                let r = r.lock();
                let f = r.role.follower()?;
                Some(FollowedPartition {
                    partition: tp.clone(),
                    leader: f.leader(),
                    leader_epoch: f.leader_epoch(),
                })
            })
            .collect()
    }

    /// Runs `f` on the follower state and log of `tp` if this broker
    /// still follows it in `leader_epoch` (answers from an older epoch are
    /// dropped).
    fn with_follower<T>(
        &self,
        tp: &TopicPartition,
        leader_epoch: i32,
        f: impl FnOnce(&mut FollowerPartition, &Log) -> T,
    ) -> Option<T> {
        let replica = self.replica(tp)?;
        let mut guard = replica.lock();
        let r = &mut *guard;
        let follower = r.role.follower_mut().filter(|f| f.leader_epoch() == leader_epoch)?;
        Some(f(follower, &r.log))
    }

    /// What to ask the leader of `tp` next, if this broker still follows
    /// it in `leader_epoch` (truncating first when the log has no epochs).
    pub fn next_follower_request(&self, tp: &TopicPartition, leader_epoch: i32) -> Option<FollowerRequest> {
        self.with_follower(tp, leader_epoch, |follower, log| {
            let (request, cut) = follower.next_request(&LogView(log));
            match cut.map(|cut| log.truncate_to(cut.offset)) {
                Some(Err(e)) => {
                    tracing::error!(partition = %tp, "truncation failed: {e}");
                    None
                }
                _ => Some(request),
            }
        })
        .flatten()
    }

    /// The leader answered OffsetsForLeaderEpoch for `requested`: truncate
    /// the diverging tail.
    pub fn on_epoch_end(
        &self,
        tp: &TopicPartition,
        leader_epoch: i32,
        requested: i32,
        answer: Result<EpochEnd, ReplicationError>,
    ) -> Result<(), LogError> {
        self.with_follower(tp, leader_epoch, |follower, log| {
            let Some(cut) = follower.on_epoch_end(requested, answer, &LogView(log)) else {
                return Ok(());
            };
            if cut.offset < log.end_offset() {
                tracing::info!(partition = %tp, from = log.end_offset(), to = cut.offset, "truncating the diverging tail");
            }
            log.truncate_to(cut.offset)
        })
        .unwrap_or(Ok(()))
    }

    /// Batches fetched from the leader, read from `fetch_offset`: appended
    /// as they are; the high watermark follows the leader's.
    pub fn on_fetched(
        &self,
        tp: &TopicPartition,
        leader_epoch: i32,
        fetch_offset: u64,
        records: &[u8],
        leader_high_watermark: u64,
    ) -> Result<(), LogError> {
        self.with_follower(tp, leader_epoch, |_, log| {
            if log.end_offset() != fetch_offset {
                return Ok(()); // a stale answer
            }
            if !records.is_empty() {
                log.append_replicated(records)?;
            }
            let hw = gregor_replication::follower_high_watermark(leader_high_watermark, log.end_offset());
            if hw > log.high_watermark() {
                log.set_high_watermark(hw);
            }
            Ok(())
        })
        .unwrap_or(Ok(()))
    }

    /// The leader refused a fetch: start over with truncation (or, when
    /// out of range, restart at the leader's log start).
    pub fn on_fetch_error(
        &self,
        tp: &TopicPartition,
        leader_epoch: i32,
        error: ReplicationError,
        out_of_range: Option<(u64, u64)>,
    ) -> Result<(), LogError> {
        self.with_follower(tp, leader_epoch, |follower, log| {
            let Some((leader_start, leader_end)) = out_of_range else {
                tracing::debug!(partition = %tp, "fetch refused: {error}; truncating again");
                *follower = FollowerPartition::new(follower.leader(), leader_epoch);
                return Ok(());
            };
            let cut = follower.on_offset_out_of_range(&LogView(log), leader_start, leader_end);
            if cut.offset < log.end_offset() {
                log.truncate_to(cut.offset)
            } else {
                log.truncate_fully_and_start_at(cut.offset)
            }
        })
        .unwrap_or(Ok(()))
    }
}

fn answer(done: Vec<gregor_replication::Completed<TopicPartition, AckSender>>) {
    for (tx, outcomes) in done {
        let _ = tx.send(outcomes);
    }
}
