//! One group and its members: who is in it, what they support, who leads,
//! which generation it is in, and the group's own transitions (preparing
//! and completing a rebalance). Answers to waiting requests are pushed to
//! an output list; nothing here does IO.

use std::collections::BTreeMap;

use tracing::info;

use crate::outputs::{respond, Output, RequestId, Response};
use crate::protocol::{GroupError, GroupState, JoinResponse, JoinedMember, SyncResponse};
use crate::records::{GroupMetadata, StoredMember};

/// A member of a group.
pub(crate) struct Member {
    /// Static instance id (`group.instance.id`).
    pub(crate) instance_id: Option<String>,
    /// Client id, for DescribeGroups.
    pub(crate) client_id: String,
    /// Client host, for DescribeGroups.
    pub(crate) client_host: String,
    /// Silence longer than this expires the member.
    pub(crate) session_timeout_ms: i64,
    /// How long a rebalance waits for this member to rejoin.
    pub(crate) rebalance_timeout_ms: i64,
    /// Protocols in preference order, with their metadata.
    pub(crate) protocols: Vec<(String, Vec<u8>)>,
    /// Its assignment in the current generation.
    pub(crate) assignment: Vec<u8>,
    /// When it was last heard of.
    pub(crate) last_heartbeat_ms: i64,
    /// Its JoinGroup waiting for the join phase to complete.
    pub(crate) join_waiter: Option<RequestId>,
    /// Its SyncGroup waiting for the leader's assignment.
    pub(crate) sync_waiter: Option<RequestId>,
    /// Order of first join, so the oldest member leads.
    pub(crate) joined_seq: u64,
}

impl Member {
    /// A member that has not joined yet (the join fills it in).
    pub(crate) fn new(now_ms: i64, joined_seq: u64) -> Self {
        Self {
            instance_id: None,
            client_id: String::new(),
            client_host: String::new(),
            session_timeout_ms: 0,
            rebalance_timeout_ms: 0,
            protocols: Vec::new(),
            assignment: Vec::new(),
            last_heartbeat_ms: now_ms,
            join_waiter: None,
            sync_waiter: None,
            joined_seq,
        }
    }

    /// Its metadata for `protocol` (empty if it does not support it).
    pub(crate) fn metadata_for(&self, protocol: &str) -> Vec<u8> {
        self.protocols
            .iter()
            .find(|(name, _)| name == protocol)
            .map(|(_, m)| m.clone())
            .unwrap_or_default()
    }

    /// Answers its waiting join and sync, if any, with `error`.
    pub(crate) fn fail_waiters(&mut self, id: &str, error: GroupError, out: &mut Vec<Output>) {
        if let Some(request) = self.join_waiter.take() {
            respond(out, request, Response::Join(JoinResponse::error(error, id)));
        }
        if let Some(request) = self.sync_waiter.take() {
            respond(out, request, Response::Sync(SyncResponse::error(error)));
        }
    }
}

/// A consumer group.
pub(crate) struct Group {
    /// Where it is in the rebalance protocol.
    pub(crate) state: GroupState,
    /// The current generation.
    pub(crate) generation: i32,
    /// Protocol type ("consumer"), while it has members.
    pub(crate) protocol_type: Option<String>,
    /// The chosen protocol.
    pub(crate) protocol: Option<String>,
    /// The leader's member id.
    pub(crate) leader: Option<String>,
    /// Members by id.
    pub(crate) members: BTreeMap<String, Member>,
    /// Static instance id → the member id holding it.
    pub(crate) static_members: BTreeMap<String, String>,
    /// Member ids handed out with MEMBER_ID_REQUIRED, until they join
    /// (with the time they are forgotten).
    pub(crate) pending: BTreeMap<String, i64>,
    /// When the join phase completes even without every member.
    pub(crate) rebalance_deadline_ms: i64,
    /// The join phase does not complete before this (initial delay).
    pub(crate) join_not_before_ms: i64,
    /// The leader's assignment is being stored; SyncGroup answers wait.
    pub(crate) storing_assignment: bool,
}

impl Group {
    /// An empty group starting from `generation`.
    pub(crate) fn new(generation: i32) -> Self {
        Self {
            state: GroupState::Empty,
            generation,
            protocol_type: None,
            protocol: None,
            leader: None,
            members: BTreeMap::new(),
            static_members: BTreeMap::new(),
            pending: BTreeMap::new(),
            rebalance_deadline_ms: 0,
            join_not_before_ms: 0,
            storing_assignment: false,
        }
    }

    /// Protocols every member (and the joining one) supports.
    pub(crate) fn supports(&self, protocol_type: &str, protocols: &[(String, Vec<u8>)]) -> bool {
        if self.members.is_empty() {
            // As Kafka: the first member names a protocol type and protocols.
            return !protocol_type.is_empty() && !protocols.is_empty();
        }
        self.protocol_type.as_deref() == Some(protocol_type)
            && protocols
                .iter()
                .any(|(p, _)| self.members.values().all(|m| m.protocols.iter().any(|(q, _)| q == p)))
    }

    /// The protocol every member supports with the most first-choice votes.
    fn choose_protocol(&self) -> Option<String> {
        let common: Vec<&String> = self
            .members
            .values()
            .next()?
            .protocols
            .iter()
            .map(|(p, _)| p)
            .filter(|p| self.members.values().all(|m| m.protocols.iter().any(|(q, _)| q == *p)))
            .collect();
        let mut votes: BTreeMap<&String, usize> = BTreeMap::new();
        for member in self.members.values() {
            if let Some((p, _)) = member.protocols.iter().find(|(p, _)| common.contains(&p)) {
                *votes.entry(p).or_default() += 1;
            }
        }
        // Most votes; ties go to the first common protocol of the oldest member.
        common
            .iter()
            .max_by_key(|p| {
                (
                    votes.get(*p).copied().unwrap_or(0),
                    std::cmp::Reverse(common.iter().position(|q| q == *p)),
                )
            })
            .map(|p| (*p).clone())
    }

    /// Removes a member; its waiting requests get UNKNOWN_MEMBER_ID.
    pub(crate) fn remove_member(&mut self, id: &str, out: &mut Vec<Output>) {
        if let Some(mut member) = self.members.remove(id) {
            if let Some(instance) = &member.instance_id {
                if self.static_members.get(instance).map(String::as_str) == Some(id) {
                    self.static_members.remove(instance);
                }
            }
            member.fail_waiters(id, GroupError::UnknownMemberId, out);
        }
        if self.leader.as_deref() == Some(id) {
            self.leader = None;
        }
    }

    /// Starts a rebalance (once): waiting syncs are told to rejoin, and
    /// the join phase gets the longest rebalance timeout of the members.
    pub(crate) fn prepare_rebalance(&mut self, now_ms: i64, initial_delay_ms: i64, out: &mut Vec<Output>) {
        if self.state == GroupState::PreparingRebalance {
            return;
        }
        for member in self.members.values_mut() {
            if let Some(request) = member.sync_waiter.take() {
                respond(
                    out,
                    request,
                    Response::Sync(SyncResponse::error(GroupError::RebalanceInProgress)),
                );
            }
        }
        let timeout = self.members.values().map(|m| m.rebalance_timeout_ms).max().unwrap_or(0);
        self.join_not_before_ms = if self.state == GroupState::Empty {
            now_ms + initial_delay_ms
        } else {
            now_ms
        };
        self.rebalance_deadline_ms = now_ms + timeout.max(initial_delay_ms);
        self.storing_assignment = false;
        self.state = GroupState::PreparingRebalance;
    }

    /// Completes the join phase when every member has rejoined (or the
    /// rebalance timeout passed, dropping those that did not): the
    /// generation moves on and every waiting join is answered.
    /// Returns true when the group was left empty (its metadata changes).
    pub(crate) fn try_complete_join(&mut self, group_id: &str, now_ms: i64, out: &mut Vec<Output>) -> bool {
        if self.state != GroupState::PreparingRebalance {
            return false;
        }
        let all_joined = self.members.values().all(|m| m.join_waiter.is_some());
        if !(all_joined && now_ms >= self.join_not_before_ms) && now_ms < self.rebalance_deadline_ms {
            return false;
        }
        let late: Vec<String> = self
            .members
            .iter()
            .filter(|(_, m)| m.join_waiter.is_none())
            .map(|(id, _)| id.clone())
            .collect();
        for id in late {
            self.remove_member(&id, out);
        }
        self.generation += 1;
        if self.members.is_empty() {
            self.state = GroupState::Empty;
            self.protocol = None;
            self.protocol_type = None;
            self.leader = None;
            info!(group = group_id, generation = self.generation, "group is empty");
            return true;
        }
        self.protocol = self.choose_protocol();
        let oldest = self
            .members
            .iter()
            .min_by_key(|(_, m)| m.joined_seq)
            .map(|(id, _)| id.clone());
        if self.leader.as_ref().is_none_or(|l| !self.members.contains_key(l)) {
            self.leader = oldest;
        }
        self.state = GroupState::CompletingRebalance;
        let protocol = self.protocol.clone().unwrap_or_default();
        let leader = self.leader.clone().unwrap_or_default();
        let everyone: Vec<JoinedMember> = self
            .members
            .iter()
            .map(|(id, m)| JoinedMember {
                member_id: id.clone(),
                group_instance_id: m.instance_id.clone(),
                metadata: m.metadata_for(&protocol),
            })
            .collect();
        info!(group = group_id, generation = self.generation, members = everyone.len(), %protocol, "rebalanced");
        for (id, member) in self.members.iter_mut() {
            member.assignment.clear();
            member.last_heartbeat_ms = now_ms;
            if let Some(request) = member.join_waiter.take() {
                let answer = JoinResponse {
                    error: None,
                    generation_id: self.generation,
                    protocol_type: self.protocol_type.clone(),
                    protocol_name: Some(protocol.clone()),
                    leader: leader.clone(),
                    member_id: id.clone(),
                    members: if *id == leader { everyone.clone() } else { Vec::new() },
                };
                respond(out, request, Response::Join(answer));
            }
        }
        false
    }

    /// The membership to store (Kafka's group metadata value), with each
    /// member's assignment from `assignment_of`.
    pub(crate) fn metadata(&self, now_ms: i64, assignment_of: impl Fn(&str, &Member) -> Vec<u8>) -> GroupMetadata {
        let protocol = self.protocol.clone().unwrap_or_default();
        GroupMetadata {
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            generation: self.generation,
            protocol: self.protocol.clone(),
            leader: self.leader.clone(),
            state_timestamp: now_ms,
            members: self
                .members
                .iter()
                .map(|(id, m)| StoredMember {
                    member_id: id.clone(),
                    group_instance_id: m.instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    rebalance_timeout_ms: m.rebalance_timeout_ms as i32,
                    session_timeout_ms: m.session_timeout_ms as i32,
                    subscription: m.metadata_for(&protocol),
                    assignment: assignment_of(id, m),
                })
                .collect(),
        }
    }

    /// A stable group rebuilt from its stored metadata; members get a full
    /// session from `now_ms` to heartbeat again, and join order numbers
    /// from `next_seq` in their stored order.
    pub(crate) fn restored(meta: GroupMetadata, now_ms: i64, next_seq: &mut u64) -> Self {
        let mut group = Self::new(meta.generation);
        group.state = GroupState::Stable;
        group.protocol_type = Some(meta.protocol_type);
        group.leader = meta.leader;
        let protocol = meta.protocol.clone().unwrap_or_default();
        group.protocol = meta.protocol;
        for m in meta.members {
            if let Some(instance) = &m.group_instance_id {
                group.static_members.insert(instance.clone(), m.member_id.clone());
            }
            let mut member = Member::new(now_ms, *next_seq);
            *next_seq += 1;
            member.instance_id = m.group_instance_id;
            member.client_id = m.client_id;
            member.client_host = m.client_host;
            member.session_timeout_ms = i64::from(m.session_timeout_ms);
            member.rebalance_timeout_ms = i64::from(m.rebalance_timeout_ms);
            member.protocols = vec![(protocol.clone(), m.subscription)];
            member.assignment = m.assignment;
            group.members.insert(m.member_id, member);
        }
        group
    }

    /// The member a request speaks for, checking static membership.
    pub(crate) fn member_check(&self, member_id: &str, instance_id: Option<&str>) -> Result<(), GroupError> {
        if let Some(instance) = instance_id {
            if let Some(current) = self.static_members.get(instance) {
                if current != member_id {
                    return Err(GroupError::FencedInstanceId);
                }
            }
        }
        if self.members.contains_key(member_id) {
            Ok(())
        } else {
            Err(GroupError::UnknownMemberId)
        }
    }
}
