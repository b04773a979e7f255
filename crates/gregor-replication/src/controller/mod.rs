//! The controller: keeps every partition led by a live in-sync replica.

use std::collections::{BTreeMap, BTreeSet};

use crate::types::{BrokerId, LeaderAndIsr, PartitionRecord, NO_LEADER};

mod elections;
mod reassignment;

pub use elections::{ElectionError, ElectionKind};
use reassignment::Ongoing;
pub use reassignment::{Reassignment, ReassignmentError};

/// What the controller wants done. Writes are compare-and-set on
/// `expected_version` (-1: create); report the result with
/// [`Controller::state_written`] or, after a conflict, re-read and call
/// [`Controller::state_observed`]. Sends go to one broker each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ControllerCommand<P> {
    /// Record a partition's new state.
    WriteState {
        /// The partition.
        partition: P,
        /// Its new state.
        state: LeaderAndIsr,
        /// The version it replaces (-1: the state does not exist yet).
        expected_version: i32,
    },
    /// Tell a broker its role for these partitions.
    LeaderAndIsr {
        /// The receiving broker.
        broker: BrokerId,
        /// The controller's epoch, for fencing.
        controller_epoch: i32,
        /// The partitions and their records.
        partitions: Vec<(P, PartitionRecord)>,
    },
    /// Tell a broker to stop replicating these partitions: one shutting
    /// down keeps their logs (so no leader adds it back to an ISR); a
    /// replica a reassignment removed deletes them.
    StopReplica {
        /// The receiving broker.
        broker: BrokerId,
        /// The controller's epoch, for fencing.
        controller_epoch: i32,
        /// The partitions and their records.
        partitions: Vec<(P, PartitionRecord)>,
        /// Whether the logs go too.
        delete: bool,
    },
    /// Record a partition's replica assignment (Kafka's topic node: the
    /// replicas, and those being added and removed by a reassignment);
    /// report with [`Controller::assignment_written`].
    WriteAssignment {
        /// The partition.
        partition: P,
        /// Every replica, targets first.
        replicas: Vec<BrokerId>,
        /// Replicas a reassignment adds.
        adding: Vec<BrokerId>,
        /// Replicas a reassignment removes.
        removing: Vec<BrokerId>,
    },
    /// A partition's reassignment is complete (drop it from
    /// `/admin/reassign_partitions`).
    ReassignmentCompleted {
        /// The partition.
        partition: P,
    },
    /// Tell a broker where partitions are led, for its Metadata answers.
    UpdateMetadata {
        /// The receiving broker.
        broker: BrokerId,
        /// The controller's epoch, for fencing.
        controller_epoch: i32,
        /// The live brokers.
        live: Vec<BrokerId>,
        /// The changed partitions.
        partitions: Vec<(P, PartitionRecord)>,
    },
}

/// The outcome of a leader election.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Election {
    /// A new leader and the ISR it starts with.
    Leader {
        /// The elected broker.
        leader: BrokerId,
        /// The ISR: live members of the old one (just the leader after an
        /// unclean election).
        isr: Vec<BrokerId>,
    },
    /// No replica may lead: the partition is offline.
    Offline,
}

/// Elects a leader for a partition whose leader is gone: the first
/// replica, in assignment order, that is live and in the ISR; with
/// `unclean` (`unclean.leader.election.enable`), the first live replica
/// when no ISR member is live (acknowledged records may be lost then).
pub fn elect_leader(replicas: &[BrokerId], isr: &[BrokerId], live: &BTreeSet<BrokerId>, unclean: bool) -> Election {
    let live_isr: Vec<BrokerId> = isr.iter().copied().filter(|b| live.contains(b)).collect();
    if let Some(&leader) = replicas.iter().find(|r| live_isr.contains(r)) {
        return Election::Leader { leader, isr: live_isr };
    }
    if unclean {
        if let Some(&leader) = replicas.iter().find(|r| live.contains(r)) {
            return Election::Leader {
                leader,
                isr: vec![leader],
            };
        }
    }
    Election::Offline
}

/// The controller's state machine. It reconciles every partition with the
/// live brokers: a partition whose leader died gets a new one from its ISR
/// (or goes offline, keeping its ISR so a returning member can lead
/// again), dead brokers leave ISRs, and preferred replicas lead again when
/// a broker's share of them led elsewhere grows too large (Kafka's auto
/// leader rebalance, run periodically). A broker in controlled shutdown leads
/// nothing it can hand to another in-sync replica and leaves the ISRs it
/// follows in. A replica whose broker reported its log directory offline
/// (KAFKA_STORAGE_ERROR to a LeaderAndIsr) is treated as a dead broker's,
/// for that partition only, until the broker registers again. Each change bumps the leader epoch, is written to
/// coordination, and only then sent to the brokers. One write per
/// partition is in flight at a time.
#[derive(Debug, Clone)]
pub struct Controller<P> {
    epoch: i32,
    live: BTreeSet<BrokerId>,
    shutting_down: BTreeSet<BrokerId>,
    partitions: BTreeMap<P, PartitionRecord>,
    in_flight: BTreeSet<P>,
    reassigning: BTreeMap<P, Ongoing>,
    unclean: bool,
    /// Replicas on offline log directories, by broker (Kafka's
    /// `replicasOnOfflineDirs`).
    offline_replicas: BTreeMap<BrokerId, BTreeSet<P>>,
}

impl<P: Ord + Clone> Controller<P> {
    /// A controller of `controller_epoch` that found `partitions` in
    /// coordination and `live` brokers registered.
    pub fn new(
        controller_epoch: i32,
        live: impl IntoIterator<Item = BrokerId>,
        partitions: BTreeMap<P, PartitionRecord>,
        unclean: bool,
    ) -> Self {
        Self {
            epoch: controller_epoch,
            live: live.into_iter().collect(),
            shutting_down: BTreeSet::new(),
            partitions,
            in_flight: BTreeSet::new(),
            reassigning: BTreeMap::new(),
            unclean,
            offline_replicas: BTreeMap::new(),
        }
    }

    /// The controller epoch.
    pub fn epoch(&self) -> i32 {
        self.epoch
    }

    /// The live brokers.
    pub fn live(&self) -> &BTreeSet<BrokerId> {
        &self.live
    }

    /// Every partition's record.
    pub fn partitions(&self) -> &BTreeMap<P, PartitionRecord> {
        &self.partitions
    }

    /// Takes office: fixes what needs fixing and tells every live broker
    /// its roles and the cluster's metadata.
    pub fn start(&mut self) -> Vec<ControllerCommand<P>> {
        let mut out = self.reconcile_where(|_| true);
        for &broker in &self.live {
            out.extend(self.roles_for(broker));
        }
        out.extend(self.metadata_to_all(self.partitions.keys().cloned().collect()));
        out
    }

    /// A broker registered: it learns its roles and the metadata, the
    /// other brokers that it is live (as Kafka's `onBrokerStartup`: their
    /// leaders then let its replicas back into ISRs); offline partitions it
    /// can lead come back.
    pub fn broker_up(&mut self, broker: BrokerId) -> Vec<ControllerCommand<P>> {
        self.live.insert(broker);
        self.shutting_down.remove(&broker);
        // A restart brings its log directories back (or it reports them again).
        self.offline_replicas.remove(&broker);
        let mut out: Vec<_> = self
            .live
            .iter()
            .filter(|&&b| b != broker)
            .flat_map(|&b| self.metadata_to(b, Vec::new()))
            .collect();
        out.extend(self.roles_for(broker));
        out.extend(self.metadata_to(broker, self.partitions.keys().cloned().collect()));
        out.extend(self.reconcile_where(|r| r.replicas.contains(&broker)));
        out
    }

    /// A broker's session ended: partitions it led get new leaders, ISRs
    /// it was in shrink, and every live broker learns it is gone (as
    /// Kafka's controller tells them even when no partition changes — after
    /// a controlled shutdown none does).
    pub fn broker_down(&mut self, broker: BrokerId) -> Vec<ControllerCommand<P>> {
        self.live.remove(&broker);
        self.shutting_down.remove(&broker);
        self.offline_replicas.remove(&broker);
        let mut out = self.metadata_to_all(Vec::new());
        out.extend(self.reconcile_where(|r| r.state.leader == broker || r.state.isr.contains(&broker)));
        out
    }

    /// A live broker announced a failed log directory (Kafka's log dir
    /// event notification): it is sent LeaderAndIsr for every replica it
    /// holds, and answers KAFKA_STORAGE_ERROR for those in the offline
    /// directory (report them with [`Controller::replicas_offline`]).
    pub fn log_dir_failed(&self, broker: BrokerId) -> Vec<ControllerCommand<P>> {
        if !self.live.contains(&broker) {
            return Vec::new();
        }
        self.roles_for(broker)
    }

    /// `broker` answered KAFKA_STORAGE_ERROR for `partitions`: their
    /// replicas there are offline. A partition it led gets a new leader
    /// among the other in-sync replicas (or none, keeping its ISR), and it
    /// leaves the ISRs — as for a dead broker, but only those partitions.
    /// Every broker learns the offline replicas (Metadata lists them).
    pub fn replicas_offline(&mut self, broker: BrokerId, partitions: Vec<P>) -> Vec<ControllerCommand<P>> {
        if !self.live.contains(&broker) {
            return Vec::new();
        }
        let known = self.offline_replicas.entry(broker).or_default();
        let new: Vec<P> = partitions.into_iter().filter(|p| known.insert(p.clone())).collect();
        if new.is_empty() {
            return Vec::new();
        }
        let mut out = self.metadata_to_all(new.clone());
        out.extend(new.iter().flat_map(|p| self.reconcile(p)));
        out
    }

    /// The replicas of `partition` on offline log directories of live brokers.
    pub fn offline_replicas(&self, partition: &P) -> Vec<BrokerId> {
        self.offline_replicas
            .iter()
            .filter(|(_, ps)| ps.contains(partition))
            .map(|(b, _)| *b)
            .collect()
    }

    /// A live broker asked for a controlled shutdown (Kafka's
    /// ControlledShutdown): each partition it leads moves to another live
    /// in-sync replica where there is one, and it leaves the ISRs of the
    /// others, so its stop costs clients only a metadata refresh. Asking
    /// again retries what is left. Nothing for a broker that is not live.
    pub fn broker_shutting_down(&mut self, broker: BrokerId) -> Vec<ControllerCommand<P>> {
        if !self.live.contains(&broker) {
            return Vec::new();
        }
        self.shutting_down.insert(broker);
        self.reconcile_where(|r| r.state.leader == broker || r.state.isr.contains(&broker))
    }

    /// The partitions `broker` still leads that have other replicas: what
    /// a controlled shutdown could not move (yet).
    pub fn leaderships_remaining(&self, broker: BrokerId) -> Vec<P> {
        self.partitions
            .iter()
            .filter(|(_, r)| r.state.leader == broker && r.replicas.len() > 1)
            .map(|(p, _)| p.clone())
            .collect()
    }

    /// A new partition on `replicas`: led by the first live one, all live
    /// replicas in its ISR. With none live, as in Kafka, it gets no state
    /// (clients do not see it) until one of them registers.
    pub fn partition_added(&mut self, partition: P, replicas: Vec<BrokerId>) -> Vec<ControllerCommand<P>> {
        let isr: Vec<BrokerId> = replicas.iter().copied().filter(|r| self.live.contains(r)).collect();
        let leader = isr.first().copied().unwrap_or(NO_LEADER);
        let state = LeaderAndIsr {
            leader,
            leader_epoch: 0,
            isr: if leader == NO_LEADER { replicas.clone() } else { isr },
            controller_epoch: self.epoch,
        };
        if leader == NO_LEADER {
            let record = PartitionRecord {
                replicas,
                state,
                version: -1,
            };
            self.partitions.insert(partition, record);
            return Vec::new();
        }
        self.partitions.insert(
            partition.clone(),
            PartitionRecord {
                replicas,
                state: state.clone(),
                version: -1,
            },
        );
        self.in_flight.insert(partition.clone());
        vec![ControllerCommand::WriteState {
            partition,
            state,
            expected_version: -1,
        }]
    }

    /// A partition was deleted.
    pub fn partition_removed(&mut self, partition: &P) {
        self.partitions.remove(partition);
        self.in_flight.remove(partition);
        self.reassigning.remove(partition);
    }

    /// A write succeeded: `state` is recorded at `version`. The replicas
    /// learn their roles, every broker the metadata; a further change
    /// follows if one is due.
    pub fn state_written(&mut self, partition: &P, state: LeaderAndIsr, version: i32) -> Vec<ControllerCommand<P>> {
        self.in_flight.remove(partition);
        let completing = self.reassignment_state_written(partition);
        let Some(record) = self.partitions.get_mut(partition) else {
            return Vec::new();
        };
        record.state = state;
        record.version = version;
        if let Some((target, _)) = &completing {
            record.replicas = target.clone();
        }
        let record = record.clone();
        let mut out: Vec<ControllerCommand<P>> = record
            .replicas
            .iter()
            .filter(|b| self.live.contains(b))
            .map(|&broker| {
                let partitions = vec![(partition.clone(), record.clone())];
                let controller_epoch = self.epoch;
                if self.shutting_down.contains(&broker) && record.state.leader != broker {
                    ControllerCommand::StopReplica {
                        broker,
                        controller_epoch,
                        partitions,
                        delete: false,
                    }
                } else {
                    ControllerCommand::LeaderAndIsr {
                        broker,
                        controller_epoch,
                        partitions,
                    }
                }
            })
            .collect();
        out.extend(self.metadata_to_all(vec![partition.clone()]));
        match completing {
            Some((target, removed)) => out.extend(self.finish_reassignment(partition, &record, target, removed)),
            None => out.extend(self.reconcile(partition)),
        }
        out
    }

    /// Coordination's watch says the state is `state` at `version`: written
    /// by someone else (a leader changing its ISR), or the notice of the
    /// controller's own write. Only a newer version is news: brokers learn
    /// the metadata and a change follows if one is due. A write of the
    /// controller's in flight stays in flight — its own answer (written,
    /// or refused because the node moved on) decides what follows.
    pub fn state_observed(&mut self, partition: &P, state: LeaderAndIsr, version: i32) -> Vec<ControllerCommand<P>> {
        match self.partitions.get(partition) {
            Some(record) if version > record.version => self.record_observed(partition, state, version),
            _ => Vec::new(),
        }
    }

    /// A state write was refused because the node moved on; `state` at
    /// `version` is what coordination holds now. The write is no longer
    /// in flight; a change follows if one is still due.
    pub fn state_write_refused(
        &mut self,
        partition: &P,
        state: LeaderAndIsr,
        version: i32,
    ) -> Vec<ControllerCommand<P>> {
        if self.in_flight.remove(partition) {
            self.reassignment_write_lost(partition);
        }
        match self.partitions.get(partition) {
            Some(record) if version >= record.version => self.record_observed(partition, state, version),
            _ => Vec::new(),
        }
    }

    fn record_observed(&mut self, partition: &P, state: LeaderAndIsr, version: i32) -> Vec<ControllerCommand<P>> {
        let Some(record) = self.partitions.get_mut(partition) else {
            return Vec::new();
        };
        record.state = state;
        record.version = version;
        let mut out = self.metadata_to_all(vec![partition.clone()]);
        out.extend(self.reconcile(partition));
        out
    }

    fn reconcile_where(&mut self, pick: impl Fn(&PartitionRecord) -> bool) -> Vec<ControllerCommand<P>> {
        let chosen: Vec<P> = self
            .partitions
            .iter()
            .filter(|(_, r)| pick(r))
            .map(|(p, _)| p.clone())
            .collect();
        chosen.iter().flat_map(|p| self.reconcile(p)).collect()
    }

    fn reconcile(&mut self, partition: &P) -> Vec<ControllerCommand<P>> {
        if self.in_flight.contains(partition) {
            return Vec::new();
        }
        let Some(record) = self.partitions.get(partition).cloned() else {
            return Vec::new();
        };
        let Some(next) = self.next_state(partition, &record) else {
            return Vec::new();
        };
        self.in_flight.insert(partition.clone());
        vec![ControllerCommand::WriteState {
            partition: partition.clone(),
            state: next,
            expected_version: record.version,
        }]
    }

    /// The change a partition needs, if any: a lost leader or ISR member
    /// first, then a reassignment's next step. (Leadership goes back to
    /// preferred replicas only by [`Controller::rebalance_leaders`] or an
    /// election asked for, as in Kafka.)
    fn next_state(&mut self, partition: &P, record: &PartitionRecord) -> Option<LeaderAndIsr> {
        if let Some(next) = self.repair(partition, record) {
            return Some(next);
        }
        if self.reassigning.contains_key(partition) {
            return self.reassignment_step(partition, record);
        }
        None
    }

    /// `current` moved on: a new leader and ISR in the next leader epoch.
    fn next(&self, current: &LeaderAndIsr, leader: BrokerId, isr: Vec<BrokerId>) -> LeaderAndIsr {
        LeaderAndIsr {
            leader,
            leader_epoch: current.leader_epoch + 1,
            isr,
            controller_epoch: self.epoch,
        }
    }

    /// Whether `broker` is live and not on its way out: it may lead and
    /// stay in ISRs.
    fn may_lead(&self, broker: BrokerId) -> bool {
        self.live.contains(&broker) && !self.shutting_down.contains(&broker)
    }

    /// The change a lost (or leaving) leader or ISR member needs, if any.
    fn repair(&self, partition: &P, record: &PartitionRecord) -> Option<LeaderAndIsr> {
        let current = &record.state;
        let next = |leader: BrokerId, isr: Vec<BrokerId>| self.next(current, leader, isr);
        // Live with the replica online: may lead and stay in the ISR.
        let offline = self.offline_replicas(partition);
        let online: BTreeSet<BrokerId> = self.live.iter().copied().filter(|b| !offline.contains(b)).collect();
        // And not on its way out.
        let staying: BTreeSet<BrokerId> = online.difference(&self.shutting_down).copied().collect();
        if current.leader == NO_LEADER || !online.contains(&current.leader) {
            // A broker shutting down leads only when no one else can.
            let election = match elect_leader(&record.replicas, &current.isr, &staying, false) {
                Election::Offline => elect_leader(&record.replicas, &current.isr, &online, self.unclean),
                elected => elected,
            };
            return match election {
                Election::Leader { leader, isr } => Some(next(leader, isr)),
                Election::Offline if current.leader != NO_LEADER => Some(next(NO_LEADER, current.isr.clone())),
                Election::Offline => None,
            };
        }
        if self.shutting_down.contains(&current.leader) {
            if let Election::Leader { leader, isr } = elect_leader(&record.replicas, &current.isr, &staying, false) {
                return Some(next(leader, isr));
            }
            // No one else in sync: it leads until it stops (a remaining
            // partition of its controlled shutdown).
        }
        // Dead, shutting down, or no longer a replica (a reassignment
        // finished by a controller that failed before telling everyone).
        let leaves_isr = |b: &BrokerId| {
            !online.contains(b)
                || (*b != current.leader && self.shutting_down.contains(b))
                || (*b != current.leader && !record.replicas.contains(b))
        };
        if current.isr.iter().any(leaves_isr) {
            // The leader stays: the ISR shrinks within its epoch (as
            // Kafka's KRaft controller does), so followers need not
            // truncate and fetch again.
            let isr = current.isr.iter().copied().filter(|b| !leaves_isr(b)).collect();
            return Some(LeaderAndIsr {
                isr,
                controller_epoch: self.epoch,
                ..current.clone()
            });
        }
        None
    }

    fn roles_for(&self, broker: BrokerId) -> Vec<ControllerCommand<P>> {
        let partitions: Vec<(P, PartitionRecord)> = self
            .partitions
            .iter()
            .filter(|(_, r)| r.replicas.contains(&broker) && r.version >= 0)
            .map(|(p, r)| (p.clone(), r.clone()))
            .collect();
        if partitions.is_empty() {
            return Vec::new();
        }
        vec![ControllerCommand::LeaderAndIsr {
            broker,
            controller_epoch: self.epoch,
            partitions,
        }]
    }

    fn metadata_to(&self, broker: BrokerId, partitions: Vec<P>) -> Vec<ControllerCommand<P>> {
        let partitions = partitions
            .into_iter()
            .filter_map(|p| self.partitions.get(&p).map(|r| (p, r.clone())))
            .filter(|(_, r)| r.version >= 0)
            .collect();
        vec![ControllerCommand::UpdateMetadata {
            broker,
            controller_epoch: self.epoch,
            live: self.live.iter().copied().collect(),
            partitions,
        }]
    }

    fn metadata_to_all(&self, partitions: Vec<P>) -> Vec<ControllerCommand<P>> {
        self.live
            .iter()
            .flat_map(|&b| self.metadata_to(b, partitions.clone()))
            .collect()
    }
}

#[cfg(test)]
mod tests;
