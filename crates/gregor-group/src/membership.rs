//! The classic rebalance protocol as Kafka's group coordinator runs it:
//! members join (JoinGroup), the coordinator waits until every known
//! member has rejoined or the rebalance timeout passes, bumps the
//! generation, picks the protocol every member supports with the most
//! first-choice votes and answers everyone, the leader with the member
//! list; the leader's SyncGroup hands out the assignments once they are
//! stored; heartbeats keep members alive and tell them when to rejoin;
//! members leave, or expire when silent past their session timeout.

use std::collections::BTreeMap;

use tracing::{debug, info};

use crate::group::{Group, Member};
use crate::machine::GroupStateMachine;
use crate::outputs::{respond, MemberIdGenerator, Output, RequestId, Response};
use crate::protocol::{GroupError, GroupState, JoinRequest, JoinResponse, MemberOf, SyncRequest, SyncResponse};
use crate::records::{group_key, group_value};
use crate::writes::AfterWrite;

impl GroupStateMachine {
    /// JoinGroup `request`, answered (with [`Response::Join`]) when the
    /// join phase completes; new member ids come from `ids`.
    pub fn join(
        &mut self,
        request_id: RequestId,
        request: JoinRequest,
        now_ms: i64,
        ids: &mut dyn MemberIdGenerator,
    ) -> Vec<Output> {
        debug!(group = %request.group_id, member = %request.member_id, "join");
        let mut out = Vec::new();
        let reply = |out: &mut Vec<Output>, error| {
            let answer = JoinResponse::error(error, &request.member_id);
            respond(out, request_id, Response::Join(answer));
        };
        if request.group_id.is_empty() {
            reply(&mut out, GroupError::InvalidGroupId);
            return out;
        }
        if self
            .consumer_groups
            .get(&request.group_id)
            .is_some_and(|g| !g.members.is_empty())
        {
            // A consumer-protocol group with members has the id.
            reply(&mut out, GroupError::InconsistentGroupProtocol);
            return out;
        }
        if request.session_timeout_ms < self.config.min_session_timeout_ms
            || request.session_timeout_ms > self.config.max_session_timeout_ms
        {
            reply(&mut out, GroupError::InvalidSessionTimeout);
            return out;
        }
        self.drop_empty_consumer_group(&request.group_id, &mut out);
        let initial_delay_ms = self.config.initial_rebalance_delay_ms;
        let seq = self.next_seq;
        let group = self.group_entry(&request.group_id);
        if !group.supports(&request.protocol_type, &request.protocols) {
            reply(&mut out, GroupError::InconsistentGroupProtocol);
            return out;
        }
        let member_id = if request.member_id.is_empty() {
            let prefix = request.group_instance_id.as_deref().unwrap_or(&request.client_id);
            let new_id = ids.member_id(prefix);
            if let Some(instance) = &request.group_instance_id {
                // A static member back (or restarted): it takes over its
                // instance id; the old member id is fenced.
                if let Some(old) = group.static_members.get(instance).cloned() {
                    if let Some(mut member) = group.members.remove(&old) {
                        member.fail_waiters(&old, GroupError::FencedInstanceId, &mut out);
                        if group.leader.as_deref() == Some(old.as_str()) {
                            group.leader = Some(new_id.clone());
                        }
                        group.members.insert(new_id.clone(), member);
                    }
                }
            } else if request.require_known_member_id {
                group
                    .pending
                    .insert(new_id.clone(), now_ms + i64::from(request.session_timeout_ms));
                let answer = JoinResponse::error(GroupError::MemberIdRequired, &new_id);
                respond(&mut out, request_id, Response::Join(answer));
                return out;
            }
            new_id
        } else {
            let known = group.members.contains_key(&request.member_id);
            if !known && group.pending.remove(&request.member_id).is_none() {
                let error = match &request.group_instance_id {
                    Some(i) if group.static_members.get(i).is_some_and(|m| *m != request.member_id) => {
                        GroupError::FencedInstanceId
                    }
                    _ => GroupError::UnknownMemberId,
                };
                reply(&mut out, error);
                return out;
            }
            request.member_id.clone()
        };
        if group.members.is_empty() {
            group.protocol_type = Some(request.protocol_type.clone());
        }
        let member = group
            .members
            .entry(member_id.clone())
            .or_insert_with(|| Member::new(now_ms, seq));
        member.instance_id = request.group_instance_id.clone();
        member.client_id = request.client_id;
        member.client_host = request.client_host;
        member.session_timeout_ms = i64::from(request.session_timeout_ms);
        member.rebalance_timeout_ms = i64::from(request.rebalance_timeout_ms.max(request.session_timeout_ms));
        member.protocols = request.protocols;
        member.last_heartbeat_ms = now_ms;
        if let Some(old) = member.join_waiter.replace(request_id) {
            let answer = JoinResponse::error(GroupError::RebalanceInProgress, &member_id);
            respond(&mut out, old, Response::Join(answer));
        }
        if let Some(instance) = request.group_instance_id {
            group.static_members.insert(instance, member_id);
        }
        group.prepare_rebalance(now_ms, initial_delay_ms, &mut out);
        group.try_complete_join(&request.group_id, now_ms, &mut out);
        self.next_seq += 1;
        out
    }

    /// SyncGroup `request`: followers' answers ([`Response::Sync`]) come
    /// with the leader's assignment, once it is stored.
    pub fn sync(&mut self, request_id: RequestId, request: SyncRequest, now_ms: i64) -> Vec<Output> {
        debug!(group = %request.group_id, member = %request.member_id, generation = request.generation_id, "sync");
        let mut out = Vec::new();
        let reply = |out: &mut Vec<Output>, answer| respond(out, request_id, Response::Sync(answer));
        let Some(group) = self.groups.get_mut(&request.group_id) else {
            reply(&mut out, SyncResponse::error(GroupError::UnknownMemberId));
            return out;
        };
        if let Err(e) = group.member_check(&request.member_id, request.group_instance_id.as_deref()) {
            reply(&mut out, SyncResponse::error(e));
            return out;
        }
        if request.generation_id != group.generation {
            reply(&mut out, SyncResponse::error(GroupError::IllegalGeneration));
            return out;
        }
        match group.state {
            GroupState::Empty | GroupState::PreparingRebalance => {
                reply(&mut out, SyncResponse::error(GroupError::RebalanceInProgress));
            }
            GroupState::Stable => {
                let assignment = group.members[&request.member_id].assignment.clone();
                reply(&mut out, synced(group, assignment));
            }
            GroupState::CompletingRebalance => {
                let is_leader = group.leader.as_deref() == Some(request.member_id.as_str());
                if let Some(member) = group.members.get_mut(&request.member_id) {
                    member.last_heartbeat_ms = now_ms;
                    if let Some(old) = member.sync_waiter.replace(request_id) {
                        let answer = SyncResponse::error(GroupError::RebalanceInProgress);
                        respond(&mut out, old, Response::Sync(answer));
                    }
                }
                if is_leader && !group.storing_assignment {
                    // Stored first (Kafka's storeGroup); the group becomes
                    // stable and the syncs are answered once it is.
                    let mut given: BTreeMap<String, Vec<u8>> = request.assignments.into_iter().collect();
                    let assignments: BTreeMap<String, Vec<u8>> = group
                        .members
                        .keys()
                        .map(|id| (id.clone(), given.remove(id).unwrap_or_default()))
                        .collect();
                    let meta = group.metadata(now_ms, |id, _| assignments[id].clone());
                    group.storing_assignment = true;
                    let generation = group.generation;
                    let records = vec![(group_key(&request.group_id), Some(group_value(&meta)))];
                    let then = AfterWrite::Assignment {
                        generation,
                        assignments,
                    };
                    self.writes.enqueue(&request.group_id, records, then, &mut out);
                }
            }
        }
        out
    }

    /// The leader's assignment for `generation` was stored (`stored`) or
    /// not: if the group still waits for it, it becomes stable and every
    /// waiting sync gets its assignment, or they all get
    /// COORDINATOR_NOT_AVAILABLE and the group rebalances.
    pub(crate) fn assignment_stored(
        &mut self,
        group_id: &str,
        generation: i32,
        mut assignments: BTreeMap<String, Vec<u8>>,
        stored: bool,
        now_ms: i64,
        out: &mut Vec<Output>,
    ) {
        let Some(group) = self.groups.get_mut(group_id) else {
            return;
        };
        // A member may have joined or left meanwhile: then nothing changes.
        if group.state != GroupState::CompletingRebalance || group.generation != generation || !group.storing_assignment
        {
            return;
        }
        group.storing_assignment = false;
        if !stored {
            for member in group.members.values_mut() {
                member.assignment.clear();
                if let Some(request) = member.sync_waiter.take() {
                    let answer = SyncResponse::error(GroupError::CoordinatorNotAvailable);
                    respond(out, request, Response::Sync(answer));
                }
            }
            group.prepare_rebalance(now_ms, 0, out);
            return;
        }
        for (id, member) in group.members.iter_mut() {
            member.assignment = assignments.remove(id).unwrap_or_default();
        }
        group.state = GroupState::Stable;
        let waiting: Vec<(RequestId, Vec<u8>)> = group
            .members
            .values_mut()
            .filter_map(|m| m.sync_waiter.take().map(|w| (w, m.assignment.clone())))
            .collect();
        for (request, assignment) in waiting {
            respond(out, request, Response::Sync(synced(group, assignment)));
        }
    }

    /// Heartbeat: keeps the member alive; says when to rejoin.
    pub fn heartbeat(&mut self, request_id: RequestId, member: MemberOf<'_>, now_ms: i64) -> Vec<Output> {
        let MemberOf {
            group_id,
            generation_id,
            member_id,
            instance_id,
        } = member;
        debug!(
            group = group_id,
            member = member_id,
            generation = generation_id,
            "heartbeat"
        );
        let result = (|| {
            if group_id.is_empty() {
                return Err(GroupError::InvalidGroupId);
            }
            let group = self.groups.get_mut(group_id).ok_or(GroupError::UnknownMemberId)?;
            group.member_check(member_id, instance_id)?;
            if let Some(member) = group.members.get_mut(member_id) {
                member.last_heartbeat_ms = now_ms;
            }
            match group.state {
                GroupState::PreparingRebalance => Err(GroupError::RebalanceInProgress),
                GroupState::Empty => Err(GroupError::UnknownMemberId),
                _ if generation_id != group.generation => Err(GroupError::IllegalGeneration),
                _ => Ok(()),
            }
        })();
        let mut out = Vec::new();
        respond(&mut out, request_id, Response::Heartbeat(result));
        out
    }

    /// LeaveGroup: each (member id, instance id) leaves; the rest rebalance.
    pub fn leave(
        &mut self,
        request_id: RequestId,
        group_id: &str,
        members: &[(String, Option<String>)],
        now_ms: i64,
    ) -> Vec<Output> {
        let mut out = Vec::new();
        let Some(group) = self.groups.get_mut(group_id) else {
            let results = vec![Err(GroupError::UnknownMemberId); members.len()];
            respond(&mut out, request_id, Response::Leave(results));
            return out;
        };
        let results: Vec<Result<(), GroupError>> = members
            .iter()
            .map(|(member_id, instance)| {
                let id = match (member_id.is_empty(), instance) {
                    (true, Some(i)) => group
                        .static_members
                        .get(i)
                        .cloned()
                        .ok_or(GroupError::UnknownMemberId)?,
                    _ => {
                        group.member_check(member_id, instance.as_deref())?;
                        member_id.clone()
                    }
                };
                group.remove_member(&id, &mut out);
                Ok(())
            })
            .collect();
        if results.iter().any(Result::is_ok) {
            group.prepare_rebalance(now_ms, 0, &mut out);
            if group.try_complete_join(group_id, now_ms, &mut out) {
                self.store_emptied(group_id, now_ms, &mut out);
            }
        }
        respond(&mut out, request_id, Response::Leave(results));
        out
    }

    /// Expires silent members and handed-out ids never used, completes
    /// rebalances whose timeout passed, and stops keeping empty groups
    /// (their generation is kept apart, see `retired`).
    pub(crate) fn expire_members(&mut self, now_ms: i64, out: &mut Vec<Output>) {
        let mut emptied = Vec::new();
        for (id, group) in self.groups.iter_mut() {
            group.pending.retain(|_, deadline| *deadline > now_ms);
            let expired: Vec<String> = group
                .members
                .iter()
                .filter(|(_, m)| m.join_waiter.is_none() && now_ms - m.last_heartbeat_ms > m.session_timeout_ms)
                .map(|(id, _)| id.clone())
                .collect();
            if !expired.is_empty() {
                info!(group = %id, members = ?expired, "members' sessions expired");
                for member in &expired {
                    group.remove_member(member, out);
                }
                group.prepare_rebalance(now_ms, 0, out);
            }
            if group.try_complete_join(id, now_ms, out) {
                emptied.push(id.clone());
            }
        }
        for id in emptied {
            self.store_emptied(&id, now_ms, out);
        }
        let gone: Vec<String> = self
            .groups
            .iter()
            .filter(|(_, g)| g.members.is_empty() && g.pending.is_empty() && g.state == GroupState::Empty)
            .map(|(id, _)| id.clone())
            .collect();
        for id in gone {
            if let Some(group) = self.groups.remove(&id) {
                self.retired_since.insert(id.clone(), now_ms);
                self.retired.insert(id, group.generation);
            }
        }
    }

    /// Stores the membership of a group just left empty. A refused write
    /// is only logged: nobody waits for it.
    fn store_emptied(&mut self, group_id: &str, now_ms: i64, out: &mut Vec<Output>) {
        let Some(group) = self.groups.get(group_id) else { return };
        let meta = group.metadata(now_ms, |_, m| m.assignment.clone());
        let records = vec![(group_key(group_id), Some(group_value(&meta)))];
        self.writes.enqueue(group_id, records, AfterWrite::Emptied, out);
    }
}

/// A successful SyncGroup answer carrying `assignment`.
fn synced(group: &Group, assignment: Vec<u8>) -> SyncResponse {
    SyncResponse {
        error: None,
        protocol_type: group.protocol_type.clone(),
        protocol_name: group.protocol.clone(),
        assignment,
    }
}
