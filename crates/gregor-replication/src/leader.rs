//! A partition this broker leads: follower progress, ISR and high watermark.

use std::collections::BTreeMap;

use crate::read_replica::ReplicaView;
use crate::types::{BrokerId, LocalPosition, PartitionRecord, ReplicaSettings, ReplicationError};

/// What the leader knows of one follower.
#[derive(Debug, Clone, Copy)]
struct FollowerProgress {
    /// Its log end offset (the offset of its last fetch), once it fetched
    /// in this leader epoch.
    log_end: Option<u64>,
    /// The last time it had everything the leader had.
    last_caught_up_ms: u64,
    /// The leader's log end at its previous fetch.
    leader_end_at_last_fetch: u64,
    /// When it last fetched.
    last_fetch_ms: u64,
    /// Its log start offset, as its last fetch said (Fetch v5+).
    log_start: Option<u64>,
}

/// An ISR the leader wants recorded in coordination (compare-and-set on
/// `expected_version`); report back with [`LeaderPartition::isr_committed`]
/// or [`LeaderPartition::isr_rejected`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IsrChange {
    /// The proposed ISR.
    pub isr: Vec<BrokerId>,
    /// The leader epoch it belongs to (unchanged by ISR changes).
    pub leader_epoch: i32,
    /// The version of the partition state it replaces.
    pub expected_version: i32,
}

/// What a follower fetch changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeaderProgress {
    /// The high watermark, when it advanced.
    pub high_watermark: Option<u64>,
    /// An ISR expansion to record.
    pub isr_change: Option<IsrChange>,
}

/// The leader side of a partition: followers' log end offsets, the ISR and
/// the high watermark.
///
/// The high watermark is the smallest log end offset over the *maximal*
/// ISR — the recorded ISR plus any member being added — so a record counts
/// as committed only once every replica an election could pick has it.
/// A shrink is proposed, not applied, until coordination records it.
#[derive(Debug, Clone)]
pub struct LeaderPartition {
    local: BrokerId,
    leader_epoch: i32,
    state_version: i32,
    replicas: Vec<BrokerId>,
    isr: Vec<BrokerId>,
    pending_isr: Option<Vec<BrokerId>>,
    epoch_start_offset: u64,
    log_end: u64,
    high_watermark: u64,
    followers: BTreeMap<BrokerId, FollowerProgress>,
    settings: ReplicaSettings,
}

impl LeaderPartition {
    /// Takes leadership as `record` says (its state at its coordination
    /// version), over a local log at `at`. Followers are given
    /// `replica.lag.time.max.ms` from `now_ms` to fetch before they leave
    /// the ISR.
    pub fn new(
        local: BrokerId,
        record: &PartitionRecord,
        at: LocalPosition,
        settings: ReplicaSettings,
        now_ms: u64,
    ) -> Self {
        let (
            state,
            LocalPosition {
                log_end,
                high_watermark,
            },
        ) = (&record.state, at);
        let followers = record
            .replicas
            .iter()
            .filter(|&&r| r != local)
            .map(|&r| {
                (
                    r,
                    FollowerProgress {
                        log_end: None,
                        last_caught_up_ms: now_ms,
                        leader_end_at_last_fetch: 0,
                        last_fetch_ms: now_ms,
                        log_start: None,
                    },
                )
            })
            .collect();
        let mut isr = state.isr.clone();
        if !isr.contains(&local) {
            isr.push(local);
        }
        let mut leader = Self {
            local,
            leader_epoch: state.leader_epoch,
            state_version: record.version,
            replicas: record.replicas.clone(),
            isr,
            pending_isr: None,
            epoch_start_offset: log_end,
            log_end,
            high_watermark: high_watermark.min(log_end),
            followers,
            settings,
        };
        leader.advance_high_watermark();
        leader
    }

    /// The leader epoch.
    pub fn leader_epoch(&self) -> i32 {
        self.leader_epoch
    }

    /// The log end offset when this leader epoch began: followers must
    /// reach it to join the ISR.
    pub fn epoch_start_offset(&self) -> u64 {
        self.epoch_start_offset
    }

    /// The assigned replicas.
    pub fn replicas(&self) -> &[BrokerId] {
        &self.replicas
    }

    /// The ISR as recorded in coordination.
    pub fn isr(&self) -> &[BrokerId] {
        &self.isr
    }

    /// The recorded ISR plus members being added: whom `acks=all` and the
    /// high watermark wait for.
    pub fn maximal_isr(&self) -> Vec<BrokerId> {
        let mut all = self.isr.clone();
        for &r in self.pending_isr.iter().flatten() {
            if !all.contains(&r) {
                all.push(r);
            }
        }
        all
    }

    /// The high watermark: records below it are on every ISR member.
    pub fn high_watermark(&self) -> u64 {
        self.high_watermark
    }

    /// The local log end offset.
    pub fn log_end(&self) -> u64 {
        self.log_end
    }

    /// The version of the partition state in coordination this leader
    /// last saw.
    pub fn state_version(&self) -> i32 {
        self.state_version
    }

    /// Checks a fetch's `current_leader_epoch` (`None`: an old client that
    /// sends none) against this leader's.
    pub fn check_epoch(&self, current_leader_epoch: Option<i32>) -> Result<(), ReplicationError> {
        match current_leader_epoch {
            Some(e) if e < self.leader_epoch => Err(ReplicationError::FencedLeaderEpoch),
            Some(e) if e > self.leader_epoch => Err(ReplicationError::UnknownLeaderEpoch),
            _ => Ok(()),
        }
    }

    /// `min.insync.replicas`, capped at the replica count as Kafka caps it
    /// (a 1-replica topic with min.insync.replicas=2 takes acks=all).
    fn effective_min_isr(&self) -> usize {
        self.settings.min_insync_replicas.min(self.replicas.len().max(1))
    }

    /// Whether an append with `acks=all` may go ahead: the ISR has at
    /// least `min.insync.replicas` members (no more than there are
    /// replicas).
    pub fn check_enough_replicas(&self) -> Result<(), ReplicationError> {
        if self.isr.len() < self.effective_min_isr() {
            Err(ReplicationError::NotEnoughReplicas)
        } else {
            Ok(())
        }
    }

    /// Where an `acks=all` append whose last record is below
    /// `required_offset` stands: `None` while some ISR member lacks it.
    pub fn ack_status(&self, required_offset: u64) -> Option<Result<(), ReplicationError>> {
        if self.high_watermark < required_offset {
            return None;
        }
        if self.maximal_isr().len() < self.effective_min_isr() {
            Some(Err(ReplicationError::NotEnoughReplicasAfterAppend))
        } else {
            Some(Ok(()))
        }
    }

    /// The local log grew to `log_end`; returns the high watermark if it
    /// advanced (a leader alone in its ISR commits at once).
    pub fn on_append(&mut self, log_end: u64) -> Option<u64> {
        self.log_end = self.log_end.max(log_end);
        self.advance_high_watermark()
    }

    /// A follower fetched from `fetch_offset` (so it has everything
    /// before it) at `now_ms`.
    pub fn on_follower_fetch(
        &mut self,
        replica: BrokerId,
        fetch_offset: u64,
        now_ms: u64,
    ) -> Result<LeaderProgress, ReplicationError> {
        let log_end = self.log_end;
        let progress = self
            .followers
            .get_mut(&replica)
            .ok_or(ReplicationError::UnknownReplica)?;
        let fetch_offset = fetch_offset.min(log_end);
        if fetch_offset >= log_end {
            progress.last_caught_up_ms = now_ms;
        } else if fetch_offset >= progress.leader_end_at_last_fetch {
            progress.last_caught_up_ms = progress.last_caught_up_ms.max(progress.last_fetch_ms);
        }
        progress.leader_end_at_last_fetch = log_end;
        progress.last_fetch_ms = now_ms;
        progress.log_end = Some(fetch_offset);
        let isr_change = self.maybe_expand(replica, fetch_offset);
        Ok(LeaderProgress {
            high_watermark: self.advance_high_watermark(),
            isr_change,
        })
    }

    /// A follower's fetch named its log start offset (Fetch v5+): the
    /// offsets before it cannot be read there.
    pub fn on_follower_log_start(&mut self, replica: BrokerId, log_start: u64) {
        if let Some(progress) = self.followers.get_mut(&replica) {
            progress.log_start = Some(log_start);
        }
    }

    /// The followers a consumer fetching `fetch_offset` may be sent to
    /// (KIP-392), as Kafka's `findPreferredReadReplica` lists them: in the
    /// recorded ISR (one out of it may lag without end), with the offset
    /// in their log as far as their fetches said. Racks are the caller's;
    /// the views come with `rack: None`.
    pub fn read_replica_candidates(&self, fetch_offset: u64, now_ms: u64) -> Vec<ReplicaView> {
        self.followers
            .iter()
            .filter(|(id, _)| self.isr.contains(id))
            .filter_map(|(&id, f)| {
                let log_end = f.log_end?;
                let holds = log_end >= fetch_offset && f.log_start.unwrap_or(0) <= fetch_offset;
                holds.then(|| ReplicaView {
                    id,
                    rack: None,
                    log_end,
                    time_since_caught_up_ms: now_ms.saturating_sub(f.last_caught_up_ms),
                })
            })
            .collect()
    }

    fn maybe_expand(&mut self, replica: BrokerId, fetch_offset: u64) -> Option<IsrChange> {
        if self.pending_isr.is_some()
            || self.isr.contains(&replica)
            || fetch_offset < self.high_watermark
            || fetch_offset < self.epoch_start_offset
        {
            return None;
        }
        let isr: Vec<BrokerId> = self
            .replicas
            .iter()
            .copied()
            .filter(|r| self.isr.contains(r) || *r == replica)
            .collect();
        Some(self.propose(isr))
    }

    /// Checks for followers that have not caught up for
    /// `replica.lag.time.max.ms`; returns the shrunk ISR to record.
    pub fn tick(&mut self, now_ms: u64) -> Option<IsrChange> {
        if self.pending_isr.is_some() {
            return None;
        }
        let lag = self.settings.replica_lag_time_max_ms;
        let lagging: Vec<BrokerId> = self
            .isr
            .iter()
            .copied()
            .filter(|r| *r != self.local)
            .filter(|r| {
                self.followers
                    .get(r)
                    .is_none_or(|f| now_ms.saturating_sub(f.last_caught_up_ms) > lag)
            })
            .collect();
        if lagging.is_empty() {
            return None;
        }
        let isr = self.isr.iter().copied().filter(|r| !lagging.contains(r)).collect();
        Some(self.propose(isr))
    }

    fn propose(&mut self, isr: Vec<BrokerId>) -> IsrChange {
        self.pending_isr = Some(isr.clone());
        IsrChange {
            isr,
            leader_epoch: self.leader_epoch,
            expected_version: self.state_version,
        }
    }

    /// Coordination recorded the proposed ISR as `isr` at `version`;
    /// returns the high watermark if it advanced (a shrink can let it).
    pub fn isr_committed(&mut self, isr: Vec<BrokerId>, version: i32) -> Option<u64> {
        self.pending_isr = None;
        self.isr = isr;
        self.state_version = version;
        self.advance_high_watermark()
    }

    /// Coordination refused the proposed ISR (the state changed under it:
    /// the controller will send the new one).
    pub fn isr_rejected(&mut self) {
        self.pending_isr = None;
    }

    /// Whether an ISR change is waiting for coordination.
    pub fn isr_change_pending(&self) -> bool {
        self.pending_isr.is_some()
    }

    /// Takes a changed `min.insync.replicas` (a topic config change).
    pub fn set_min_insync_replicas(&mut self, n: usize) {
        self.settings.min_insync_replicas = n.max(1);
    }

    fn advance_high_watermark(&mut self) -> Option<u64> {
        let mut candidate = self.log_end;
        for r in self.maximal_isr() {
            if r == self.local {
                continue;
            }
            match self.followers.get(&r).and_then(|f| f.log_end) {
                Some(end) => candidate = candidate.min(end),
                None => return None,
            }
        }
        if candidate > self.high_watermark {
            self.high_watermark = candidate;
            Some(candidate)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::LeaderAndIsr;

    fn leader(isr: &[BrokerId], min_isr: usize) -> LeaderPartition {
        let state = LeaderAndIsr {
            leader: 1,
            leader_epoch: 3,
            isr: isr.to_vec(),
            controller_epoch: 1,
        };
        let settings = ReplicaSettings {
            replica_lag_time_max_ms: 100,
            min_insync_replicas: min_isr,
        };
        let record = PartitionRecord {
            replicas: vec![1, 2, 3],
            state,
            version: 7,
        };
        let at = LocalPosition {
            log_end: 10,
            high_watermark: 4,
        };
        LeaderPartition::new(1, &record, at, settings, 0)
    }

    #[test]
    fn high_watermark_is_the_smallest_end_over_the_isr() {
        let mut l = leader(&[1, 2, 3], 2);
        assert_eq!(l.high_watermark(), 4);
        assert_eq!(l.on_append(20), None);
        assert_eq!(l.on_follower_fetch(2, 15, 1).unwrap().high_watermark, None);
        assert_eq!(l.on_follower_fetch(3, 12, 1).unwrap().high_watermark, Some(12));
        assert_eq!(l.on_follower_fetch(3, 20, 2).unwrap().high_watermark, Some(15));
        assert_eq!(l.ack_status(16), None);
        assert_eq!(l.on_follower_fetch(2, 20, 3).unwrap().high_watermark, Some(20));
        assert_eq!(l.ack_status(16), Some(Ok(())));
    }

    #[test]
    fn a_lagging_follower_is_proposed_out_and_the_watermark_waits_for_the_record() {
        let mut l = leader(&[1, 2, 3], 2);
        l.on_append(20);
        l.on_follower_fetch(2, 20, 50).unwrap();
        assert_eq!(l.tick(100), None);
        let change = l.tick(101).expect("broker 3 lags");
        assert_eq!(change.isr, vec![1, 2]);
        assert_eq!(change.expected_version, 7);
        // Until recorded, broker 3 still counts.
        assert_eq!(l.high_watermark(), 4);
        assert_eq!(l.tick(500), None, "one change at a time");
        assert_eq!(l.isr_committed(change.isr, 8), Some(20));
        assert_eq!(l.isr(), &[1, 2]);
    }

    #[test]
    fn a_caught_up_follower_rejoins_only_past_the_epoch_start() {
        let mut l = leader(&[1, 2], 1);
        l.on_follower_fetch(2, 10, 1).unwrap();
        assert_eq!(l.high_watermark(), 10);
        // Broker 3 is behind the start of this epoch: not yet.
        assert_eq!(l.on_follower_fetch(3, 9, 2).unwrap().isr_change, None);
        let change = l.on_follower_fetch(3, 10, 3).unwrap().isr_change.expect("joins");
        assert_eq!(change.isr, vec![1, 2, 3]);
        assert_eq!(l.maximal_isr(), vec![1, 2, 3]);
        l.isr_rejected();
        assert_eq!(l.maximal_isr(), vec![1, 2]);
    }

    #[test]
    fn follower_that_keeps_fetching_behind_a_busy_leader_stays_caught_up() {
        let mut l = leader(&[1, 2, 3], 1);
        l.on_follower_fetch(3, 10, 0).unwrap();
        // Each fetch reaches what the leader had at the previous fetch.
        for t in 1..50u64 {
            l.on_append(10 + t * 5);
            l.on_follower_fetch(2, 10 + (t - 1) * 5, t * 40).unwrap();
            l.on_follower_fetch(3, 10 + (t - 1) * 5, t * 40).unwrap();
            assert_eq!(l.tick(t * 40), None, "at {t}");
        }
    }

    #[test]
    fn acks_all_needs_min_insync_replicas() {
        let l = leader(&[1], 2);
        assert_eq!(l.check_enough_replicas(), Err(ReplicationError::NotEnoughReplicas));
        assert_eq!(
            l.ack_status(4),
            Some(Err(ReplicationError::NotEnoughReplicasAfterAppend))
        );
        assert!(leader(&[1, 2], 2).check_enough_replicas().is_ok());
    }

    #[test]
    fn fetch_epochs_are_checked() {
        let l = leader(&[1, 2, 3], 1);
        assert_eq!(l.check_epoch(Some(2)), Err(ReplicationError::FencedLeaderEpoch));
        assert_eq!(l.check_epoch(Some(4)), Err(ReplicationError::UnknownLeaderEpoch));
        assert!(l.check_epoch(Some(3)).is_ok() && l.check_epoch(None).is_ok());
        let mut l = l;
        assert_eq!(l.on_follower_fetch(9, 1, 1), Err(ReplicationError::UnknownReplica));
    }
}
