//! The follower side of the replica manager, driven by the replica
//! fetcher: what to ask each leader next, truncation of a diverging tail,
//! and appending what the leader sent.

use std::sync::Arc;

use gregor_log::{Log, LogError, TopicPartition};
use gregor_replication::{BrokerId, EpochEnd, FollowerPartition, FollowerRequest, ReplicationError};

use super::{LogView, ReplicaManager};

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

impl ReplicaManager {
    /// The partitions this broker follows — built again only after a
    /// role change (see [`ReplicaManager::generation`]): the replica
    /// fetchers ask on every round.
    pub fn followed(&self) -> Arc<Vec<FollowedPartition>> {
        let generation = self.generation();
        if let Some((built, followed)) = &*self.followed.lock() {
            if *built == generation {
                return followed.clone();
            }
        }
        let followed: Arc<Vec<FollowedPartition>> = Arc::new(
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
                .collect(),
        );
        *self.followed.lock() = Some((generation, followed.clone()));
        followed
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

    /// The log start offset of a partition this broker hosts (a follower
    /// tells its leader in each fetch, Fetch v5+: a consumer is not sent
    /// here for offsets before it).
    pub fn local_log_start(&self, tp: &TopicPartition) -> Option<u64> {
        let replica = self.replica(tp)?;
        let start = replica.lock().log.log_start_offset();
        Some(start)
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
    /// as they are; the high watermark follows the leader's (a move wakes
    /// the consumers' fetches waiting here).
    pub fn on_fetched(
        &self,
        tp: &TopicPartition,
        leader_epoch: i32,
        fetch_offset: u64,
        records: &[u8],
        leader_high_watermark: u64,
    ) -> Result<(), LogError> {
        let moved = self.with_follower(tp, leader_epoch, |_, log| {
            if log.end_offset() != fetch_offset {
                return Ok(false); // a stale answer
            }
            if !records.is_empty() {
                log.append_replicated(records)?;
            }
            let hw = gregor_replication::follower_high_watermark(leader_high_watermark, log.end_offset());
            if hw > log.high_watermark() {
                log.set_high_watermark(hw);
                return Ok(true);
            }
            Ok(false)
        });
        // Consumers reading from this follower (KIP-392) wait for its high
        // watermark, as Kafka's fetcher completes their delayed fetches.
        if let Some(Ok(true)) = moved {
            self.progress.notify_waiters();
        }
        moved.map_or(Ok(()), |r| r.map(|_| ()))
    }

    /// The leader's log start offset, from a fetch answer: what the leader
    /// no longer has (retention, DeleteRecords) goes here too, up to this
    /// replica's high watermark, as Kafka's followers do.
    pub fn on_leader_log_start(
        &self,
        tp: &TopicPartition,
        leader_epoch: i32,
        leader_log_start: u64,
    ) -> Result<(), LogError> {
        self.with_follower(tp, leader_epoch, |_, log| {
            let start = leader_log_start.min(log.high_watermark());
            if start > log.log_start_offset() {
                log.delete_records(start)?;
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
