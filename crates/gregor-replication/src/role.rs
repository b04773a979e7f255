//! A partition's role on this broker, switched by LeaderAndIsr.

use crate::follower::FollowerPartition;
use crate::leader::LeaderPartition;
use crate::types::{BrokerId, LocalPosition, PartitionRecord, ReplicaSettings, ReplicationError, NO_LEADER};

/// Refuses controller requests from a controller older than one already
/// heard from (`/controller_epoch` fencing).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ControllerFence {
    highest: i32,
}

impl ControllerFence {
    /// Accepts `controller_epoch` if it is not older than any seen so far.
    pub fn check(&mut self, controller_epoch: i32) -> Result<(), ReplicationError> {
        if controller_epoch < self.highest {
            return Err(ReplicationError::StaleControllerEpoch);
        }
        self.highest = controller_epoch;
        Ok(())
    }

    /// The newest controller epoch seen.
    pub fn highest(&self) -> i32 {
        self.highest
    }
}

/// What a LeaderAndIsr did to the partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoleChange {
    /// This broker now leads it: serve produce and fetch.
    BecameLeader,
    /// This broker now follows `leader`: fail waiting produces, start
    /// fetching (after truncation).
    BecameFollower {
        /// The new leader.
        leader: BrokerId,
    },
    /// No leader is available (the partition is offline).
    BecameOffline,
    /// The same epoch: nothing changed.
    Unchanged,
}

#[derive(Debug, Clone)]
enum Role {
    Leader(LeaderPartition),
    Follower(FollowerPartition),
    Offline,
}

/// One partition's replica on this broker: leader, follower or offline, at
/// the newest leader epoch it was told of.
#[derive(Debug, Clone)]
pub struct ReplicaRole {
    local: BrokerId,
    leader_epoch: Option<i32>,
    role: Role,
}

impl ReplicaRole {
    /// A replica on broker `local` that has not heard from a controller.
    pub fn new(local: BrokerId) -> Self {
        Self {
            local,
            leader_epoch: None,
            role: Role::Offline,
        }
    }

    /// Applies the controller's `record` (leadership, replicas, and the
    /// coordination version of its state) over a local log at `at`. An
    /// older leader epoch is refused; the same epoch changes nothing but a
    /// newer ISR.
    pub fn apply(
        &mut self,
        record: &PartitionRecord,
        at: LocalPosition,
        settings: ReplicaSettings,
        now_ms: u64,
    ) -> Result<RoleChange, ReplicationError> {
        let (state, version) = (&record.state, record.version);
        match self.leader_epoch {
            Some(current) if state.leader_epoch < current => return Err(ReplicationError::StaleLeaderEpoch),
            Some(current) if state.leader_epoch == current => {
                if let Role::Leader(leader) = &mut self.role {
                    if version > leader.state_version() {
                        // The controller changed the ISR within this epoch
                        // (a pending change of the leader's own lost the
                        // race to it: its write fails).
                        leader.isr_committed(state.isr.clone(), version);
                    }
                }
                return Ok(RoleChange::Unchanged);
            }
            _ => {}
        }
        self.leader_epoch = Some(state.leader_epoch);
        let (role, change) = if state.leader == self.local {
            let leader = LeaderPartition::new(self.local, record, at, settings, now_ms);
            (Role::Leader(leader), RoleChange::BecameLeader)
        } else if state.leader == NO_LEADER {
            (Role::Offline, RoleChange::BecameOffline)
        } else {
            (
                Role::Follower(FollowerPartition::new(state.leader, state.leader_epoch)),
                RoleChange::BecameFollower { leader: state.leader },
            )
        };
        self.role = role;
        Ok(change)
    }

    /// The newest leader epoch applied.
    pub fn leader_epoch(&self) -> Option<i32> {
        self.leader_epoch
    }

    /// The leader state, if this broker leads.
    pub fn leader(&self) -> Option<&LeaderPartition> {
        match &self.role {
            Role::Leader(l) => Some(l),
            _ => None,
        }
    }

    /// The leader state to update, if this broker leads.
    pub fn leader_mut(&mut self) -> Option<&mut LeaderPartition> {
        match &mut self.role {
            Role::Leader(l) => Some(l),
            _ => None,
        }
    }

    /// The follower state, if this broker follows.
    pub fn follower(&self) -> Option<&FollowerPartition> {
        match &self.role {
            Role::Follower(f) => Some(f),
            _ => None,
        }
    }

    /// The follower state to update, if this broker follows.
    pub fn follower_mut(&mut self) -> Option<&mut FollowerPartition> {
        match &mut self.role {
            Role::Follower(f) => Some(f),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::LeaderAndIsr;

    /// Leadership of a partition on brokers 1 and 2, at coordination
    /// version `version`.
    fn record(leader: BrokerId, epoch: i32, version: i32) -> PartitionRecord {
        let isr = vec![1, 2];
        let state = LeaderAndIsr {
            leader,
            leader_epoch: epoch,
            controller_epoch: 1,
            isr: isr.clone(),
        };
        PartitionRecord {
            replicas: isr,
            state,
            version,
        }
    }

    fn at(log_end: u64, high_watermark: u64) -> LocalPosition {
        LocalPosition {
            log_end,
            high_watermark,
        }
    }

    #[test]
    fn epochs_order_role_changes() {
        let s = ReplicaSettings::default();
        let mut r = ReplicaRole::new(1);
        assert_eq!(
            r.apply(&record(2, 1, 0), at(0, 0), s, 0),
            Ok(RoleChange::BecameFollower { leader: 2 })
        );
        assert_eq!(r.follower().map(|f| f.leader()), Some(2));
        assert_eq!(r.apply(&record(1, 1, 1), at(0, 0), s, 0), Ok(RoleChange::Unchanged));
        assert_eq!(
            r.apply(&record(1, 0, 1), at(0, 0), s, 0),
            Err(ReplicationError::StaleLeaderEpoch)
        );
        assert_eq!(r.apply(&record(1, 2, 2), at(5, 5), s, 0), Ok(RoleChange::BecameLeader));
        assert_eq!(r.leader().map(|l| l.high_watermark()), Some(5));
        assert_eq!(
            r.apply(&record(NO_LEADER, 3, 3), at(5, 5), s, 0),
            Ok(RoleChange::BecameOffline)
        );
        assert!(r.leader().is_none() && r.follower().is_none());
    }

    #[test]
    fn the_controllers_isr_within_the_epoch_wins_over_a_pending_change() {
        let s = ReplicaSettings {
            replica_lag_time_max_ms: 10,
            ..ReplicaSettings::default()
        };
        let mut r = ReplicaRole::new(1);
        assert_eq!(r.apply(&record(1, 4, 7), at(5, 5), s, 0), Ok(RoleChange::BecameLeader));
        // Follower 2 lags: the leader proposes ISR [1] (pending).
        let proposed = r.leader_mut().and_then(|l| l.tick(100));
        assert!(proposed.is_some() && r.leader().is_some_and(|l| l.isr_change_pending()));
        // The controller wrote its own ISR first (same epoch, version 8).
        let mut shrunk = record(1, 4, 8);
        shrunk.state.isr = vec![1];
        assert_eq!(r.apply(&shrunk, at(5, 5), s, 0), Ok(RoleChange::Unchanged));
        let l = r.leader().expect("leads");
        assert_eq!(
            (l.isr(), l.state_version(), l.isr_change_pending()),
            (&[1][..], 8, false)
        );
    }

    #[test]
    fn controllers_are_fenced_by_epoch() {
        let mut fence = ControllerFence::default();
        assert!(fence.check(2).is_ok());
        assert!(fence.check(2).is_ok());
        assert_eq!(fence.check(1), Err(ReplicationError::StaleControllerEpoch));
        assert_eq!(fence.highest(), 2);
    }
}
