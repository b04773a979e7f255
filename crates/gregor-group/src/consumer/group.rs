//! A consumer group of the KIP-848 protocol: its epoch, members, target
//! assignment, the topic metadata that target was computed from, and who
//! holds each partition. Plain state and its own bookkeeping; the
//! heartbeat's decisions are in `heartbeat`.

use std::collections::{BTreeMap, BTreeSet};

use uuid::Uuid;

use crate::consumer::assignor::{partitions, Assignment, AssignmentSpec, Assignor, MemberSpec};
use crate::consumer::patterns::Patterns;
use crate::consumer::reconcile::{CurrentAssignment, MemberState};
use crate::consumer::records::{ConsumerRecord, MemberMetadata, RecordKey};
use crate::protocol::GroupError;

/// A member of a consumer group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ConsumerMember {
    /// `group.instance.id`, for a static member.
    pub(crate) instance_id: Option<String>,
    /// `client.rack`.
    pub(crate) rack_id: Option<String>,
    /// Client id, for describing the group.
    pub(crate) client_id: String,
    /// Client host, for describing the group.
    pub(crate) client_host: String,
    /// The topics it subscribes to, by name.
    pub(crate) subscribed: BTreeSet<String>,
    /// The pattern it subscribes with, if any (topics matching it count
    /// as subscribed too).
    pub(crate) regex: Option<String>,
    /// The server assignor it asked for.
    pub(crate) server_assignor: Option<String>,
    /// How long it may take to give partitions up.
    pub(crate) rebalance_timeout_ms: i32,
    /// Its current assignment and epochs.
    pub(crate) current: CurrentAssignment,
    /// When it was last heard of (ms).
    pub(crate) last_heartbeat_ms: i64,
    /// While it must give partitions up: by when (ms).
    pub(crate) revoke_deadline_ms: Option<i64>,
}

impl ConsumerMember {
    /// What its member record (key 5) holds.
    pub(crate) fn metadata(&self) -> MemberMetadata {
        MemberMetadata {
            instance_id: self.instance_id.clone(),
            rack_id: self.rack_id.clone(),
            client_id: self.client_id.clone(),
            client_host: self.client_host.clone(),
            subscribed: self.subscribed.iter().cloned().collect(),
            regex: self.regex.clone(),
            rebalance_timeout_ms: self.rebalance_timeout_ms,
            server_assignor: self.server_assignor.clone(),
        }
    }

    /// Key 5 of member `member_id` of `group_id`: `member`'s metadata, or
    /// a tombstone.
    pub(crate) fn record(group_id: &str, member_id: &str, member: Option<&Self>) -> ConsumerRecord {
        ConsumerRecord::Member {
            group: group_id.to_string(),
            member: member_id.to_string(),
            value: member.map(Self::metadata),
        }
    }
}

/// The group's state as ConsumerGroupDescribe, DescribeGroups and
/// ListGroups show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsumerGroupState {
    /// No members.
    Empty,
    /// A new target assignment is to be computed.
    Assigning,
    /// Members are moving to the target assignment.
    Reconciling,
    /// Every member holds its target at the target epoch.
    Stable,
}

impl ConsumerGroupState {
    /// Kafka's name of the state.
    pub fn name(self) -> &'static str {
        match self {
            Self::Empty => "Empty",
            Self::Assigning => "Assigning",
            Self::Reconciling => "Reconciling",
            Self::Stable => "Stable",
        }
    }
}

/// A consumer group.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ConsumerGroup {
    /// The group epoch: bumped on every change of membership,
    /// subscriptions or subscribed topics' metadata.
    pub(crate) epoch: i32,
    /// Members by id.
    pub(crate) members: BTreeMap<String, ConsumerMember>,
    /// The epoch of the target assignment.
    pub(crate) target_epoch: i32,
    /// Member id → target assignment.
    pub(crate) target: BTreeMap<String, Assignment>,
    /// Subscribed topics as last seen: name → (id, partitions).
    pub(crate) topics: BTreeMap<String, (Uuid, i32)>,
    /// Who holds each partition (assigned or still revoking).
    pub(crate) owners: BTreeMap<(Uuid, i32), String>,
    /// Keys whose last write was refused, to write again.
    pub(crate) dirty: BTreeSet<RecordKey>,
    /// Since when it has had no members (ms), for its retirement.
    pub(crate) emptied_at_ms: Option<i64>,
    /// The members' patterns and the topics they match.
    pub(crate) patterns: Patterns,
}

impl ConsumerGroup {
    /// Its state for describing it.
    pub(crate) fn state(&self) -> ConsumerGroupState {
        if self.members.is_empty() {
            ConsumerGroupState::Empty
        } else if self.target_epoch != self.epoch {
            ConsumerGroupState::Assigning
        } else if self
            .members
            .values()
            .all(|m| m.current.epoch == self.target_epoch && m.current.state == MemberState::Stable)
        {
            ConsumerGroupState::Stable
        } else {
            ConsumerGroupState::Reconciling
        }
    }

    /// The member of static instance `instance_id`, if any.
    pub(crate) fn static_member(&self, instance_id: &str) -> Option<&str> {
        self.members
            .iter()
            .find(|(_, m)| m.instance_id.as_deref() == Some(instance_id))
            .map(|(id, _)| id.as_str())
    }

    /// The topics `member` subscribes to: by name, and by its pattern.
    pub(crate) fn member_topics<'a>(&'a self, member: &'a ConsumerMember) -> impl Iterator<Item = &'a str> {
        let by_pattern = member.regex.iter().flat_map(|r| self.patterns.matched(r));
        member.subscribed.iter().chain(by_pattern).map(String::as_str)
    }

    /// Every topic any member subscribes to.
    pub(crate) fn subscribed_topics(&self) -> BTreeSet<&str> {
        self.members.values().flat_map(|m| self.member_topics(m)).collect()
    }

    /// Matches the members' patterns against `names` (every topic's).
    pub(crate) fn refresh_patterns(&mut self, names: impl FnOnce() -> Vec<String>) {
        let wanted: BTreeSet<String> = self.members.values().filter_map(|m| m.regex.clone()).collect();
        if wanted.is_empty() && self.patterns.is_empty() {
            return;
        }
        let names = if wanted.is_empty() { Vec::new() } else { names() };
        self.patterns.refresh(wanted.iter().map(String::as_str), &names);
    }

    /// The assignor for the next target: the one most members asked for
    /// (ties to the first by name), else `default`.
    pub(crate) fn preferred_assignor(&self, default: Assignor) -> Assignor {
        let mut votes: BTreeMap<&str, usize> = BTreeMap::new();
        for name in self.members.values().filter_map(|m| m.server_assignor.as_deref()) {
            *votes.entry(name).or_default() += 1;
        }
        votes
            .iter()
            .max_by_key(|(name, n)| (**n, std::cmp::Reverse(**name)))
            .and_then(|(name, _)| Assignor::named(name))
            .unwrap_or(default)
    }

    /// The next target assignment with `assignor`, from the members'
    /// subscriptions, the topics as last seen and the current target.
    pub(crate) fn compute_target(&self, assignor: Assignor) -> BTreeMap<String, Assignment> {
        let spec = AssignmentSpec {
            members: self
                .members
                .iter()
                .map(|(id, m)| {
                    let spec = MemberSpec {
                        subscribed: self
                            .member_topics(m)
                            .filter_map(|t| self.topics.get(t))
                            .map(|(id, _)| *id)
                            .collect(),
                        current: self.target.get(id).cloned().unwrap_or_default(),
                        instance_id: m.instance_id.clone(),
                    };
                    (id.clone(), spec)
                })
                .collect(),
            topics: self.topics.values().copied().collect(),
        };
        assignor.assign(&spec)
    }

    /// Records that `member` now holds what `current` says (assigned and
    /// revoking), releasing what it held before and no longer does.
    pub(crate) fn set_owned(&mut self, member: &str, before: Option<&CurrentAssignment>, now: &CurrentAssignment) {
        if let Some(before) = before {
            for tp in held(before) {
                if self.owners.get(&tp).is_some_and(|m| m == member) {
                    self.owners.remove(&tp);
                }
            }
        }
        for tp in held(now) {
            self.owners.insert(tp, member.to_string());
        }
    }

    /// Whether the group takes an offset commit from `member_id` at
    /// `member_epoch` (Kafka's ConsumerGroup.validateOffsetCommit): one
    /// without an epoch (-1: an admin tool) while the group is empty; a
    /// member at its current epoch (STALE_MEMBER_EPOCH otherwise).
    pub(crate) fn commit_check(&self, member_id: &str, member_epoch: i32) -> Result<(), GroupError> {
        if member_epoch < 0 && self.members.is_empty() {
            return Ok(());
        }
        let member = self.members.get(member_id).ok_or(GroupError::UnknownMemberId)?;
        if member_epoch != member.current.epoch {
            return Err(GroupError::StaleMemberEpoch);
        }
        Ok(())
    }

    /// Whether a member other than `member` holds `partition` of `topic`.
    pub(crate) fn held_by_other(&self, member: &str, topic: &Uuid, partition: i32) -> bool {
        self.owners.get(&(*topic, partition)).is_some_and(|m| m != member)
    }
}

/// Every partition a member holds: assigned or still revoking.
fn held(current: &CurrentAssignment) -> impl Iterator<Item = (Uuid, i32)> + '_ {
    partitions(&current.assigned).chain(partitions(&current.revoking))
}
