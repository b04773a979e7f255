//! Partition reassignment, as Kafka's ZooKeeper-era controller does it
//! (KIP-455): the assignment is written first with the replicas being
//! added and removed, so a new controller resumes; every replica learns
//! the full set (targets first, then the rest of the origin) in a new
//! leader epoch; once every target is in the ISR, the leader and ISR move
//! within the targets, the removed replicas are stopped and deleted, and
//! the assignment is written with the targets alone.

use super::{Controller, ControllerCommand};
use crate::types::{BrokerId, LeaderAndIsr, PartitionRecord};

/// A reassignment in progress: the replicas being added and removed
/// (Kafka's `adding_replicas` / `removing_replicas` of a topic's node).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reassignment {
    /// Replicas the reassignment adds.
    pub adding: Vec<BrokerId>,
    /// Replicas the reassignment removes.
    pub removing: Vec<BrokerId>,
}

impl Reassignment {
    /// The reassignment of `origin` to `target` and the full replica set
    /// while it runs: the targets first, then the origin's others.
    pub fn between(origin: &[BrokerId], target: &[BrokerId]) -> (Vec<BrokerId>, Reassignment) {
        let mut replicas = target.to_vec();
        replicas.extend(origin.iter().filter(|r| !target.contains(r)));
        let reassignment = Reassignment {
            adding: replicas.iter().copied().filter(|r| !origin.contains(r)).collect(),
            removing: replicas.iter().copied().filter(|r| !target.contains(r)).collect(),
        };
        (replicas, reassignment)
    }

    /// The replicas before it, out of the full set `replicas`.
    pub fn origin(&self, replicas: &[BrokerId]) -> Vec<BrokerId> {
        replicas.iter().copied().filter(|r| !self.adding.contains(r)).collect()
    }

    /// The replicas after it, out of the full set `replicas`.
    pub fn target(&self, replicas: &[BrokerId]) -> Vec<BrokerId> {
        replicas
            .iter()
            .copied()
            .filter(|r| !self.removing.contains(r))
            .collect()
    }

    /// Whether it adds and removes nothing (a reordering or a cancel).
    pub fn is_empty(&self) -> bool {
        self.adding.is_empty() && self.removing.is_empty()
    }
}

/// Why a reassignment was refused (Kafka's errors).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReassignmentError {
    /// No such partition (`UNKNOWN_TOPIC_OR_PARTITION`).
    UnknownPartition,
    /// A cancel where none is in progress (`NO_REASSIGNMENT_IN_PROGRESS`).
    NoReassignmentInProgress,
    /// Bad target replicas (`INVALID_REPLICA_ASSIGNMENT`), and why.
    InvalidReplicas(String),
    /// The partition has a write in flight; ask again.
    Busy,
}

/// A reassignment the controller is carrying out.
#[derive(Debug, Clone)]
pub(super) struct Ongoing {
    pub(super) reassignment: Reassignment,
    pub(super) step: Step,
}

/// Where a reassignment stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Step {
    /// Its assignment (`replicas`) is being written; `dropped` replicas (of
    /// a reassignment it replaced) are stopped and deleted after.
    Recording {
        replicas: Vec<BrokerId>,
        dropped: Vec<BrokerId>,
    },
    /// Written: every replica learns the full set in a new leader epoch.
    Announcing,
    /// Waiting for every target to join the ISR.
    CatchingUp,
    /// The final leader and ISR (within the targets) are being written.
    Completing,
    /// The final assignment (the targets alone) is being written.
    Finishing,
}

impl<P: Ord + Clone> Controller<P> {
    /// Reassigns a partition to `target` replicas (`None`: cancels the
    /// reassignment in progress, back to its origin). A new reassignment
    /// replaces one in progress; replicas neither keeps are stopped and
    /// deleted — at once when out of sync, at completion when in sync.
    /// Starts by writing the assignment.
    pub fn reassign(
        &mut self,
        partition: &P,
        target: Option<Vec<BrokerId>>,
    ) -> Result<Vec<ControllerCommand<P>>, ReassignmentError> {
        let record = self
            .partitions
            .get(partition)
            .ok_or(ReassignmentError::UnknownPartition)?;
        if self.in_flight.contains(partition) {
            return Err(ReassignmentError::Busy);
        }
        let ongoing = self.reassigning.get(partition).map(|o| o.reassignment.clone());
        let origin = match &ongoing {
            Some(r) => r.origin(&record.replicas),
            None => record.replicas.clone(),
        };
        let target = match target {
            Some(target) => {
                self.validate(&origin, &target)?;
                target
            }
            None if ongoing.is_some() => origin.clone(),
            None => return Err(ReassignmentError::NoReassignmentInProgress),
        };
        let (mut replicas, mut reassignment) = Reassignment::between(&origin, &target);
        // Replicas of a replaced reassignment that lead or are in sync stay
        // until the targets are in sync (added and removed at once): the
        // partition never loses its in-sync copies before it has others.
        let state = &record.state;
        for &r in &record.replicas {
            if !replicas.contains(&r) && (state.leader == r || state.isr.contains(&r)) {
                replicas.push(r);
                reassignment.adding.push(r);
                reassignment.removing.push(r);
            }
        }
        let dropped = record
            .replicas
            .iter()
            .copied()
            .filter(|r| !replicas.contains(r))
            .collect();
        self.in_flight.insert(partition.clone());
        let command = ControllerCommand::WriteAssignment {
            partition: partition.clone(),
            replicas: replicas.clone(),
            adding: reassignment.adding.clone(),
            removing: reassignment.removing.clone(),
        };
        self.reassigning.insert(
            partition.clone(),
            Ongoing {
                reassignment,
                step: Step::Recording { replicas, dropped },
            },
        );
        Ok(vec![command])
    }

    /// Kafka's checks of target replicas: some, distinct, valid ids, and
    /// the added ones live.
    fn validate(&self, origin: &[BrokerId], target: &[BrokerId]) -> Result<(), ReassignmentError> {
        let invalid = |m: String| Err(ReassignmentError::InvalidReplicas(m));
        if target.is_empty() {
            return invalid("Empty replica list specified in partition reassignment.".into());
        }
        let distinct: std::collections::BTreeSet<_> = target.iter().collect();
        if distinct.len() != target.len() {
            return invalid(format!(
                "Duplicate replica ids in partition reassignment replica list: {target:?}"
            ));
        }
        if target.iter().any(|&b| b < 0) {
            return invalid(format!("Invalid broker id in replica list: {target:?}"));
        }
        let adding: Vec<BrokerId> = target.iter().copied().filter(|r| !origin.contains(r)).collect();
        if adding.iter().any(|r| !self.live.contains(r)) {
            return invalid(format!(
                "Replica assignment has brokers that are not alive. Replica list: {adding:?}, live broker list: {:?}",
                self.live
            ));
        }
        Ok(())
    }

    /// Carries on a reassignment found in coordination (a new controller
    /// taking office): every replica learns the full set again.
    pub fn resume_reassignment(&mut self, partition: P, reassignment: Reassignment) {
        if reassignment.is_empty() || !self.partitions.contains_key(&partition) {
            return;
        }
        self.reassigning.insert(
            partition,
            Ongoing {
                reassignment,
                step: Step::Announcing,
            },
        );
    }

    /// The reassignments in progress: each partition's full replica set
    /// and what is being added and removed.
    pub fn reassignments(&self) -> Vec<(P, Vec<BrokerId>, Reassignment)> {
        self.reassigning
            .iter()
            .filter_map(|(p, o)| {
                let replicas = match &o.step {
                    Step::Recording { replicas, .. } => replicas.clone(),
                    _ => self.partitions.get(p)?.replicas.clone(),
                };
                Some((p.clone(), replicas, o.reassignment.clone()))
            })
            .filter(|(_, _, r)| !r.is_empty())
            .collect()
    }

    /// A [`ControllerCommand::WriteAssignment`] succeeded: the replicas
    /// dropped by it are stopped and the reassignment carries on; the
    /// final one completes it.
    pub fn assignment_written(&mut self, partition: &P) -> Vec<ControllerCommand<P>> {
        self.in_flight.remove(partition);
        let Some(ongoing) = self.reassigning.get_mut(partition) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        match std::mem::replace(&mut ongoing.step, Step::Announcing) {
            Step::Recording { replicas, dropped } => {
                let Some(record) = self.partitions.get_mut(partition) else {
                    return Vec::new();
                };
                record.replicas = replicas;
                let record = record.clone();
                out.extend(self.stop_and_delete(partition, &record, &dropped));
            }
            Step::Finishing => {
                self.reassigning.remove(partition);
                out.push(ControllerCommand::ReassignmentCompleted {
                    partition: partition.clone(),
                });
            }
            other => ongoing.step = other,
        }
        out.extend(self.reconcile(partition));
        out
    }

    /// A reassignment's next state write, if one is due: a new leader
    /// epoch to announce the full set; once every target is in sync, the
    /// leader and ISR within the targets.
    pub(super) fn reassignment_step(&mut self, partition: &P, record: &PartitionRecord) -> Option<LeaderAndIsr> {
        let ongoing = self.reassigning.get(partition)?;
        let current = &record.state;
        let target = ongoing.reassignment.target(&record.replicas);
        let in_sync = ongoing.reassignment.is_empty() || target.iter().all(|r| current.isr.contains(r));
        if in_sync {
            let leader = if target.contains(&current.leader) && self.may_lead(current.leader) {
                current.leader
            } else {
                *target.iter().find(|r| current.isr.contains(r) && self.may_lead(**r))?
            };
            let isr = current.isr.iter().copied().filter(|r| target.contains(r)).collect();
            let next = self.next(current, leader, isr);
            self.set_step(partition, Step::Completing);
            return Some(next);
        }
        match ongoing.step {
            Step::Announcing => Some(self.next(current, current.leader, current.isr.clone())),
            _ => None,
        }
    }

    /// A state write of `partition` succeeded: any write announced the
    /// full set; a completing one returns the targets and the removed
    /// replicas.
    pub(super) fn reassignment_state_written(&mut self, partition: &P) -> Option<(Vec<BrokerId>, Vec<BrokerId>)> {
        let ongoing = self.reassigning.get_mut(partition)?;
        match ongoing.step {
            Step::Announcing => {
                ongoing.step = Step::CatchingUp;
                None
            }
            Step::Completing => {
                ongoing.step = Step::Finishing;
                let replicas = &self.partitions.get(partition)?.replicas;
                Some((
                    ongoing.reassignment.target(replicas),
                    ongoing.reassignment.removing.clone(),
                ))
            }
            _ => None,
        }
    }

    /// A state write of `partition` lost a race: a completing one is
    /// decided again.
    pub(super) fn reassignment_write_lost(&mut self, partition: &P) {
        if let Some(o) = self.reassigning.get_mut(partition) {
            if o.step == Step::Completing {
                o.step = Step::CatchingUp;
            }
        }
    }

    /// The final state is written (`record`, on the targets): the removed
    /// replicas are stopped and deleted, the assignment written without
    /// them.
    pub(super) fn finish_reassignment(
        &mut self,
        partition: &P,
        record: &PartitionRecord,
        target: Vec<BrokerId>,
        removed: Vec<BrokerId>,
    ) -> Vec<ControllerCommand<P>> {
        let mut out = self.stop_and_delete(partition, record, &removed);
        self.in_flight.insert(partition.clone());
        out.push(ControllerCommand::WriteAssignment {
            partition: partition.clone(),
            replicas: target,
            adding: Vec::new(),
            removing: Vec::new(),
        });
        out
    }

    fn set_step(&mut self, partition: &P, step: Step) {
        if let Some(o) = self.reassigning.get_mut(partition) {
            o.step = step;
        }
    }

    /// StopReplica with deletion to the live brokers among `brokers`.
    fn stop_and_delete(
        &self,
        partition: &P,
        record: &PartitionRecord,
        brokers: &[BrokerId],
    ) -> Vec<ControllerCommand<P>> {
        brokers
            .iter()
            .filter(|b| self.live.contains(b))
            .map(|&broker| ControllerCommand::StopReplica {
                broker,
                controller_epoch: self.epoch,
                partitions: vec![(partition.clone(), record.clone())],
                delete: true,
            })
            .collect()
    }
}
