//! Leader elections asked for by an administrator (Kafka's ElectLeaders):
//! the preferred replica, or any live replica for an offline partition;
//! and Kafka's periodic auto leader rebalance to preferred replicas.

use std::collections::BTreeSet;

use super::{elect_leader, Controller, ControllerCommand, Election};
use crate::types::{BrokerId, NO_LEADER};

/// Which election ElectLeaders asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElectionKind {
    /// The first assigned replica, when it is live and in sync.
    Preferred,
    /// For a partition without a live leader: a live in-sync replica, or
    /// else any live replica (acknowledged records may be lost).
    Unclean,
}

/// Why an election was not held (Kafka's errors).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElectionError {
    /// No such partition (`UNKNOWN_TOPIC_OR_PARTITION`).
    UnknownPartition,
    /// The leader is already the one asked for (`ELECTION_NOT_NEEDED`).
    NotNeeded,
    /// The preferred replica is down or out of sync
    /// (`PREFERRED_LEADER_NOT_AVAILABLE`).
    PreferredLeaderNotAvailable,
    /// No replica may lead (`ELIGIBLE_LEADERS_NOT_AVAILABLE`).
    EligibleLeadersNotAvailable,
    /// The partition has a write in flight; ask again.
    Busy,
}

impl<P: Ord + Clone> Controller<P> {
    /// Elects a partition's leader as asked; the new state is written
    /// before anyone is told, as for every change.
    pub fn elect(&mut self, partition: &P, kind: ElectionKind) -> Result<Vec<ControllerCommand<P>>, ElectionError> {
        let record = self.partitions.get(partition).ok_or(ElectionError::UnknownPartition)?;
        if self.in_flight.contains(partition) {
            return Err(ElectionError::Busy);
        }
        let current = &record.state;
        // Replicas in failed log directories neither lead nor count as live.
        let offline = self.offline_replicas(partition);
        let (leader, isr) = match kind {
            ElectionKind::Preferred => {
                let preferred = *record.replicas.first().ok_or(ElectionError::UnknownPartition)?;
                if current.leader == preferred {
                    return Err(ElectionError::NotNeeded);
                }
                if !self.may_lead(preferred) || !current.isr.contains(&preferred) || offline.contains(&preferred) {
                    return Err(ElectionError::PreferredLeaderNotAvailable);
                }
                (preferred, current.isr.clone())
            }
            ElectionKind::Unclean => {
                if current.leader != NO_LEADER
                    && self.live.contains(&current.leader)
                    && !offline.contains(&current.leader)
                {
                    return Err(ElectionError::NotNeeded);
                }
                let online: BTreeSet<BrokerId> = self.live.iter().copied().filter(|b| !offline.contains(b)).collect();
                match elect_leader(&record.replicas, &current.isr, &online, true) {
                    Election::Leader { leader, isr } => (leader, isr),
                    Election::Offline => return Err(ElectionError::EligibleLeadersNotAvailable),
                }
            }
        };
        let state = self.next(current, leader, isr);
        let expected_version = record.version;
        self.in_flight.insert(partition.clone());
        Ok(vec![ControllerCommand::WriteState {
            partition: partition.clone(),
            state,
            expected_version,
        }])
    }

    /// Kafka's auto leader rebalance (`auto.leader.rebalance.enable`, run
    /// every `leader.imbalance.check.interval.seconds`): a live broker
    /// whose preferred partitions (those it is first replica of, not being
    /// reassigned) are led elsewhere in more than `imbalance_percentage`
    /// percent of cases takes back every one it is in sync for.
    pub fn rebalance_leaders(&mut self, imbalance_percentage: u32) -> Vec<ControllerCommand<P>> {
        let mut elections = Vec::new();
        for &broker in &self.live {
            if self.shutting_down.contains(&broker) {
                continue;
            }
            let preferred: Vec<(&P, &crate::types::PartitionRecord)> = self
                .partitions
                .iter()
                .filter(|(p, r)| r.replicas.first() == Some(&broker) && !self.reassigning.contains_key(*p))
                .collect();
            let elsewhere: Vec<&(&P, &crate::types::PartitionRecord)> =
                preferred.iter().filter(|(_, r)| r.state.leader != broker).collect();
            if elsewhere.len() * 100 <= preferred.len() * imbalance_percentage as usize {
                continue;
            }
            elections.extend(
                elsewhere
                    .into_iter()
                    .filter(|(p, r)| r.state.isr.contains(&broker) && r.version >= 0 && !self.in_flight.contains(*p))
                    .map(|(p, _)| (*p).clone()),
            );
        }
        elections
            .iter()
            .flat_map(|p| self.elect(p, ElectionKind::Preferred).unwrap_or_default())
            .collect()
    }
}
