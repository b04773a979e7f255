//! Reconciliation (Kafka's CurrentAssignmentBuilder): how a member moves
//! from the partitions it holds towards its target assignment without a
//! partition ever being held by two members at once.
//!
//! A member first gives up what its target no longer has (it stays at its
//! epoch, UNREVOKED_PARTITIONS, until a heartbeat reports them gone),
//! then takes the target's epoch, and receives each new partition only
//! once its previous holder has released it (UNRELEASED_PARTITIONS until
//! then).

use std::collections::BTreeSet;

use uuid::Uuid;

use crate::consumer::assignor::Assignment;

/// Where a member stands in reaching its target (Kafka's MemberState).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MemberState {
    /// It holds its target assignment, at the target epoch.
    Stable,
    /// It must give up partitions before it moves on.
    UnrevokedPartitions,
    /// Partitions of its target are still held by others.
    UnreleasedPartitions,
    /// Not known (a record of a newer version).
    Unknown,
}

impl MemberState {
    /// Its value in the ConsumerGroupCurrentMemberAssignment record.
    pub fn code(self) -> i8 {
        match self {
            Self::Stable => 0,
            Self::UnrevokedPartitions => 1,
            Self::UnreleasedPartitions => 2,
            Self::Unknown => 127,
        }
    }

    /// The state of record value `code`.
    pub fn from_code(code: i8) -> Self {
        match code {
            0 => Self::Stable,
            1 => Self::UnrevokedPartitions,
            2 => Self::UnreleasedPartitions,
            _ => Self::Unknown,
        }
    }

    /// Its name in ConsumerGroupDescribe.
    pub fn name(self) -> &'static str {
        match self {
            Self::Stable => "stable",
            Self::UnrevokedPartitions => "unrevoked_partitions",
            Self::UnreleasedPartitions => "unreleased_partitions",
            Self::Unknown => "unknown",
        }
    }
}

/// A member's current assignment: its epochs, state, the partitions it
/// holds and those it must give up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurrentAssignment {
    /// The epoch it is at.
    pub epoch: i32,
    /// The epoch it was at before (a lost answer may leave it there).
    pub previous_epoch: i32,
    /// Where it stands.
    pub state: MemberState,
    /// The partitions it holds (and is told it holds).
    pub assigned: Assignment,
    /// The partitions it must give up.
    pub revoking: Assignment,
}

impl CurrentAssignment {
    /// A member that just joined: nothing held, epoch 0 (and -1 before).
    pub fn joining() -> Self {
        Self {
            epoch: 0,
            previous_epoch: -1,
            state: MemberState::Stable,
            assigned: Assignment::new(),
            revoking: Assignment::new(),
        }
    }

    /// The next step towards `target` (of epoch `target_epoch`).
    /// `owned` is what the member's heartbeat reported it holds (`None`
    /// when it did not say); `held_by_other(topic, partition)` tells
    /// whether another member still holds a partition.
    pub fn next(
        &self,
        target_epoch: i32,
        target: &Assignment,
        owned: Option<&Assignment>,
        held_by_other: impl Fn(&Uuid, i32) -> bool,
    ) -> Self {
        match self.state {
            MemberState::Stable | MemberState::Unknown if self.epoch == target_epoch => self.clone(),
            MemberState::UnrevokedPartitions => {
                if self.still_revoking(owned) {
                    // Waiting for the member to give them up.
                    return self.clone();
                }
                self.towards(target_epoch, target, owned, &held_by_other)
            }
            _ => self.towards(target_epoch, target, owned, &held_by_other),
        }
    }

    /// Whether `owned` (as reported) still holds a partition being
    /// revoked; a heartbeat that did not report counts as still holding.
    fn still_revoking(&self, owned: Option<&Assignment>) -> bool {
        let Some(owned) = owned else { return true };
        self.revoking
            .iter()
            .any(|(topic, ps)| owned.get(topic).is_some_and(|o| !o.is_disjoint(ps)))
    }

    /// The step computed from scratch: keep what the target keeps, give
    /// up what it drops, take what others have released.
    fn towards(
        &self,
        target_epoch: i32,
        target: &Assignment,
        owned: Option<&Assignment>,
        held_by_other: &impl Fn(&Uuid, i32) -> bool,
    ) -> Self {
        let mut kept = Assignment::new();
        let mut revoking = Assignment::new();
        let mut unreleased = false;
        let topics: BTreeSet<&Uuid> = self.assigned.keys().chain(target.keys()).collect();
        for topic in topics {
            let held = self.assigned.get(topic);
            let wanted = target.get(topic);
            for &p in held.into_iter().flatten() {
                if wanted.is_some_and(|w| w.contains(&p)) {
                    kept.entry(*topic).or_default().insert(p);
                } else {
                    revoking.entry(*topic).or_default().insert(p);
                }
            }
            for &p in wanted.into_iter().flatten() {
                if held.is_some_and(|h| h.contains(&p)) {
                    continue;
                }
                if held_by_other(topic, p) {
                    unreleased = true;
                } else {
                    kept.entry(*topic).or_default().insert(p);
                }
            }
        }
        let gone = Self {
            revoking: revoking.clone(),
            ..self.clone()
        };
        if !revoking.is_empty() && gone.still_revoking(owned) {
            // Give up first, at the current epoch; take nothing new yet.
            let mut assigned = Assignment::new();
            for (topic, ps) in &self.assigned {
                let remaining: BTreeSet<i32> = ps
                    .iter()
                    .copied()
                    .filter(|p| !revoking.get(topic).is_some_and(|r| r.contains(p)))
                    .collect();
                if !remaining.is_empty() {
                    assigned.insert(*topic, remaining);
                }
            }
            return Self {
                epoch: self.epoch,
                previous_epoch: self.previous_epoch,
                state: MemberState::UnrevokedPartitions,
                assigned,
                revoking,
            };
        }
        Self {
            epoch: target_epoch,
            previous_epoch: if target_epoch == self.epoch {
                self.previous_epoch
            } else {
                self.epoch
            },
            state: if unreleased {
                MemberState::UnreleasedPartitions
            } else {
                MemberState::Stable
            },
            assigned: kept,
            revoking: Assignment::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t() -> Uuid {
        Uuid::from_u128(7)
    }

    fn parts(ps: &[i32]) -> Assignment {
        Assignment::from([(t(), ps.iter().copied().collect())])
    }

    fn member(epoch: i32, held: &[i32]) -> CurrentAssignment {
        CurrentAssignment {
            epoch,
            previous_epoch: epoch - 1,
            state: MemberState::Stable,
            assigned: parts(held),
            revoking: Assignment::new(),
        }
    }

    #[test]
    fn a_dropped_partition_is_revoked_before_the_epoch_moves() {
        let m = member(3, &[0, 1]);
        let next = m.next(4, &parts(&[0, 2]), Some(&parts(&[0, 1])), |_, _| false);
        assert_eq!(next.state, MemberState::UnrevokedPartitions);
        assert_eq!(next.epoch, 3);
        assert_eq!(next.assigned, parts(&[0]));
        assert_eq!(next.revoking, parts(&[1]));
        // Still reported owned: no change.
        assert_eq!(next.next(4, &parts(&[0, 2]), Some(&parts(&[0, 1])), |_, _| false), next);
        // Released: the new epoch and the new partition.
        let after = next.next(4, &parts(&[0, 2]), Some(&parts(&[0])), |_, _| false);
        assert_eq!(after.state, MemberState::Stable);
        assert_eq!((after.epoch, after.previous_epoch), (4, 3));
        assert_eq!(after.assigned, parts(&[0, 2]));
    }

    #[test]
    fn a_partition_another_member_holds_waits_for_its_release() {
        let m = member(3, &[0]);
        let next = m.next(4, &parts(&[0, 1]), None, |_, p| p == 1);
        assert_eq!(next.state, MemberState::UnreleasedPartitions);
        assert_eq!(next.epoch, 4);
        assert_eq!(next.assigned, parts(&[0]));
        let after = next.next(4, &parts(&[0, 1]), None, |_, _| false);
        assert_eq!(after.state, MemberState::Stable);
        assert_eq!(after.assigned, parts(&[0, 1]));
        assert_eq!(after.previous_epoch, 3);
    }

    #[test]
    fn a_stable_member_at_the_target_epoch_stays() {
        let m = member(4, &[0, 1]);
        assert_eq!(m.next(4, &parts(&[5]), None, |_, _| false), m);
    }

    #[test]
    fn a_member_that_already_gave_a_partition_up_moves_on_at_once() {
        let m = member(3, &[0, 1]);
        let next = m.next(4, &parts(&[0]), Some(&parts(&[0])), |_, _| false);
        assert_eq!((next.state, next.epoch), (MemberState::Stable, 4));
        assert_eq!(next.assigned, parts(&[0]));
    }
}
