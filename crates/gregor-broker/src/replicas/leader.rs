//! The leader side of the replica manager: appends from producers,
//! follower progress moving the high watermark, produces waiting for
//! `acks=all`, and ISR changes — queued for the ISR writer, which records
//! them in coordination off the request path and reports back.

use std::sync::Arc;

use gregor_log::{AppendOrigin, Log, LogError, TopicPartition, TxnVerification, VerificationGuard};
use gregor_replication::{AckOutcome, BrokerId, IsrChange, LeaderAndIsr, ReplicationError};
use parking_lot::Mutex;
use tokio::sync::oneshot;

use super::{answer, Replica, ReplicaManager};

/// An ISR change a leader wants recorded in coordination.
#[derive(Debug, Clone)]
pub struct IsrUpdate {
    /// The partition.
    pub partition: TopicPartition,
    /// The leadership with the new ISR, to record.
    pub state: LeaderAndIsr,
    /// The partition state's version the change is based on (a
    /// conditional write: refused if the state moved on).
    pub expected_version: i32,
    change: IsrChange,
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

impl ReplicaManager {
    /// The log to read for a consumer with its high watermark, if this
    /// broker leads the partition (checking `current_leader_epoch`).
    pub fn leader_log(
        &self,
        tp: &TopicPartition,
        current_leader_epoch: Option<i32>,
    ) -> Result<(Arc<Log>, u64), ReplicationError> {
        let replica = self.hosted(tp)?;
        let replica = replica.lock();
        let leader = replica.role.leader().ok_or(ReplicationError::NotLeaderOrFollower)?;
        leader.check_epoch(current_leader_epoch)?;
        Ok((replica.log.clone(), leader.high_watermark()))
    }

    /// The leader epoch of `tp`, if this broker leads it.
    pub fn leader_epoch(&self, tp: &TopicPartition) -> Option<i32> {
        let replica = self.replica(tp)?;
        let replica = replica.lock();
        replica.role.leader().map(|l| l.leader_epoch())
    }

    /// Appends a producer's batches as leader, stamping offsets and the
    /// leader epoch into what is written (`batches` is left as it is: see
    /// [`Log::append_shared`]). With `acks_all`, refuses when the ISR is
    /// below `min.insync.replicas` and says what to wait for.
    pub fn append_as_leader(
        &self,
        tp: &TopicPartition,
        batches: &[u8],
        acks_all: bool,
    ) -> Result<LeaderAppend, ReplicaAppendError> {
        self.append_as_leader_from(tp, batches, acks_all, AppendOrigin::Client)
    }

    /// [`ReplicaManager::append_as_leader`] for a producer or a
    /// coordinator (transaction markers, transactional offset commits).
    pub fn append_as_leader_from(
        &self,
        tp: &TopicPartition,
        batches: &[u8],
        acks_all: bool,
        origin: AppendOrigin,
    ) -> Result<LeaderAppend, ReplicaAppendError> {
        self.append_as_leader_verified(tp, batches, acks_all, origin, TxnVerification::Skip)
    }

    /// [`ReplicaManager::append_as_leader_from`] checking, as
    /// `verification` says, that a transaction the append opens was
    /// verified with its coordinator (see [`Log::append_verified`]).
    pub fn append_as_leader_verified(
        &self,
        tp: &TopicPartition,
        batches: &[u8],
        acks_all: bool,
        origin: AppendOrigin,
        verification: TxnVerification,
    ) -> Result<LeaderAppend, ReplicaAppendError> {
        let replica = self.hosted(tp)?;
        let mut guard = replica.lock();
        let replica = &mut *guard;
        let leader = replica.role.leader_mut().ok_or(ReplicationError::NotLeaderOrFollower)?;
        if acks_all {
            leader.check_enough_replicas()?;
        }
        let info = replica
            .log
            .append_shared(batches, leader.leader_epoch(), origin, verification)?;
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

    /// Starts verifying the transaction `producer_id` would open in `tp`,
    /// which this broker leads (see [`Log::start_txn_verification`]): the
    /// guard to append with, `None` when no verification is needed.
    pub fn start_txn_verification(
        &self,
        tp: &TopicPartition,
        producer_id: i64,
        producer_epoch: i16,
        sequence: i32,
    ) -> Result<Option<VerificationGuard>, ReplicationError> {
        let replica = self.replica(tp).ok_or(ReplicationError::NotLeaderOrFollower)?;
        let log = {
            let replica = replica.lock();
            replica.role.leader().ok_or(ReplicationError::NotLeaderOrFollower)?;
            replica.log.clone()
        };
        Ok(log.start_txn_verification(producer_id, producer_epoch, sequence))
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

    pub(super) fn check_acks(&self, tp: &TopicPartition) {
        let replica = match self.hosted(tp) {
            Ok(replica) => replica,
            Err(e) => return self.fail_waiting(tp, e),
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

    /// A follower fetched `tp` from `fetch_offset` (its log starting at
    /// `follower_log_start`, -1: not said): records its progress,
    /// moves the high watermark, completes waiting produces, and queues an
    /// ISR expansion for the ISR writer. Returns the log to read (to its
    /// end) and the high watermark to report.
    ///
    /// An offset outside the log (negative, before its start or past its
    /// end) records nothing: as Kafka, whose leader records a follower's
    /// progress only from a read that succeeded, the read answers it
    /// OFFSET_OUT_OF_RANGE. (Taken as the nearest offset in the log, a
    /// follower whose log diverged past the leader's end would count as
    /// caught up and join the ISR.)
    pub fn on_follower_fetch(
        &self,
        tp: &TopicPartition,
        follower: BrokerId,
        fetch_offset: i64,
        follower_log_start: i64,
        current_leader_epoch: Option<i32>,
    ) -> Result<(Arc<Log>, u64), ReplicationError> {
        let replica = self.replica(tp).ok_or(ReplicationError::NotLeaderOrFollower)?;
        let mut guard = replica.lock();
        let r = &mut *guard;
        let leader = r.role.leader_mut().ok_or(ReplicationError::NotLeaderOrFollower)?;
        leader.check_epoch(current_leader_epoch)?;
        if let Ok(log_start) = u64::try_from(follower_log_start) {
            leader.on_follower_log_start(follower, log_start);
        }
        let in_log = u64::try_from(fetch_offset)
            .ok()
            .filter(|o| (r.log.log_start_offset()..=r.log.end_offset()).contains(o));
        let Some(fetch_offset) = in_log else {
            if follower == self.local || !leader.replicas().contains(&follower) {
                return Err(ReplicationError::UnknownReplica);
            }
            return Ok((r.log.clone(), leader.high_watermark()));
        };
        let mut progress = leader.on_follower_fetch(follower, fetch_offset, self.now_ms())?;
        if progress.isr_change.is_some() && !self.isr_eligible(follower) {
            // Caught up, but not a live broker as the controller last said
            // (Kafka's `isReplicaIsrEligible`, KIP-841; in ZooKeeper mode
            // its metadata cache's live brokers): a broker whose
            // coordination session expired fetches still, and adding it
            // would only have the controller take it out again.
            leader.isr_rejected();
            progress.isr_change = None;
        }
        if let Some(hw) = progress.high_watermark {
            r.log.set_high_watermark(hw);
        }
        let log = r.log.clone();
        let hw = leader.high_watermark();
        drop(guard);
        if let Some(change) = progress.isr_change {
            self.queue_isr_update(tp, change);
        }
        if progress.high_watermark.is_some() {
            self.check_acks(tp);
            self.progress.notify_waiters();
        }
        Ok((log, hw))
    }

    /// Queues a leader's ISR change for the ISR writer.
    fn queue_isr_update(&self, tp: &TopicPartition, change: IsrChange) {
        let state = LeaderAndIsr {
            leader: self.local,
            leader_epoch: change.leader_epoch,
            isr: change.isr.clone(),
            controller_epoch: self.fence.lock().highest(),
        };
        self.isr_updates.lock().push(IsrUpdate {
            partition: tp.clone(),
            state,
            expected_version: change.expected_version,
            change,
        });
        self.isr_updates_queued.notify_one();
    }

    /// Resolves when ISR changes are queued (the ISR writer then takes
    /// them); a change queued before the call is not missed.
    pub async fn isr_updates_queued(&self) {
        self.isr_updates_queued.notified().await
    }

    /// The ISR changes queued since the last call, oldest first.
    pub fn take_isr_updates(&self) -> Vec<IsrUpdate> {
        std::mem::take(&mut *self.isr_updates.lock())
    }

    /// The ISR writer's answer for `update`: the partition state's new
    /// version when coordination recorded it, `None` when the state had
    /// moved on (or could not be written). The leader then commits or
    /// drops its pending ISR; an answer for an older leader epoch is
    /// ignored.
    pub fn isr_update_done(&self, update: IsrUpdate, written: Option<i32>) {
        let (tp, change) = (&update.partition, update.change);
        let Some(replica) = self.replica(tp) else { return };
        let mut guard = replica.lock();
        let r = &mut *guard;
        let Some(leader) = r.role.leader_mut().filter(|l| l.leader_epoch() == change.leader_epoch) else {
            return;
        };
        match written {
            // The controller changed the state since (within the epoch):
            // its ISR stands.
            Some(version) if version <= leader.state_version() => leader.isr_rejected(),
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

    /// Clock work: shrinks the ISR of partitions whose followers lag
    /// (queued for the ISR writer), fails produces past their deadline.
    pub fn tick(&self) {
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
                self.queue_isr_update(&tp, change);
            }
        }
        let expired = self.purgatory.lock().expire(now);
        answer(expired);
    }
}
