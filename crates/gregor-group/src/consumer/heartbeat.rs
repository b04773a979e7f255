//! ConsumerGroupHeartbeat (KIP-848) in the state machine: a member joins,
//! heartbeats, changes its subscription (topic names, a pattern, or
//! both), or leaves; the group epoch moves
//! when membership, subscriptions or the subscribed topics change; a new
//! target assignment is computed when the group epoch passed it; and the
//! member takes its next step towards its target (`reconcile`). Members
//! silent past their session, or holding partitions past their rebalance
//! timeout, are fenced by `tick`.
//!
//! Every change is applied at once and written as Kafka's records; the
//! heartbeat is answered when they are stored (`store`: how refused
//! writes are made good).

use std::collections::{BTreeMap, BTreeSet};

use tracing::info;

use crate::consumer::assignor::{partitions, Assignment, Assignor};
use crate::consumer::group::{ConsumerGroup, ConsumerMember};
use crate::consumer::patterns::compile;
use crate::consumer::reconcile::{CurrentAssignment, MemberState};
use crate::consumer::records::ConsumerRecord;
use crate::consumer::request::{
    ConsumerHeartbeat, ConsumerHeartbeatAnswer, TopicLookup, JOIN_EPOCH, LEAVE_EPOCH, STATIC_LEAVE_EPOCH,
};
use crate::machine::GroupStateMachine;
use crate::outputs::{respond, MemberIdGenerator, Output, RequestId, Response};
use crate::protocol::GroupError;

/// The outcome of a heartbeat before its records are stored.
type Outcome = Result<ConsumerHeartbeatAnswer, GroupError>;

impl GroupStateMachine {
    /// ConsumerGroupHeartbeat `request` (answered with
    /// [`Response::ConsumerHeartbeat`], after its records are stored),
    /// with the subscribed topics as `topics` knows them.
    pub fn consumer_heartbeat(
        &mut self,
        request: RequestId,
        hb: ConsumerHeartbeat,
        topics: &dyn TopicLookup,
        now_ms: i64,
        member_ids: &mut dyn MemberIdGenerator,
    ) -> Vec<Output> {
        let mut out = Vec::new();
        let mut records = Vec::new();
        let group_id = hb.group_id.clone();
        let outcome = self.consumer_heartbeat_inner(hb, topics, now_ms, member_ids, &mut records);
        if let Ok(answer) = &outcome {
            self.retire_classic_group(&group_id, &mut out);
            self.settle_first(&group_id, &answer.member_id, &mut records);
        }
        match outcome {
            Ok(answer) if !records.is_empty() => {
                self.write_consumer(&group_id, records, Some((request, answer)), &mut out);
            }
            outcome => respond(&mut out, request, Response::ConsumerHeartbeat(outcome)),
        }
        out
    }

    fn consumer_heartbeat_inner(
        &mut self,
        hb: ConsumerHeartbeat,
        topics: &dyn TopicLookup,
        now_ms: i64,
        member_ids: &mut dyn MemberIdGenerator,
        records: &mut Vec<ConsumerRecord>,
    ) -> Outcome {
        validate(&hb)?;
        let mut hb = hb;
        if hb.member_epoch == JOIN_EPOCH && hb.owned.is_none() {
            // A join holds nothing (Kafka requires the empty list).
            hb.owned = Some(Assignment::new());
        }
        if let Some(name) = &hb.server_assignor {
            if !self.config.consumer_assignors.iter().any(|a| a.name() == name) {
                return Err(GroupError::UnsupportedAssignor);
            }
        }
        if self.groups.get(&hb.group_id).is_some_and(|g| !g.members.is_empty()) {
            // A classic group with members has the id.
            return Err(GroupError::GroupIdNotFound);
        }
        if hb.member_epoch == LEAVE_EPOCH || hb.member_epoch == STATIC_LEAVE_EPOCH {
            return self.consumer_leave(&hb, now_ms, records);
        }
        if !self.consumer_groups.contains_key(&hb.group_id) {
            if hb.member_epoch != JOIN_EPOCH {
                return Err(GroupError::UnknownMemberId);
            }
            // An empty classic group of that id becomes a consumer group
            // (`retire_classic_group`, once the join succeeded).
            self.consumer_groups
                .insert(hb.group_id.clone(), ConsumerGroup::default());
        }
        let interval = self.config.consumer_heartbeat_interval_ms;
        let default_assignor = self.config.default_assignor();
        let max_size = self.config.consumer_max_size;
        let group_id = hb.group_id.clone();
        let group = self.consumer_groups.get_mut(&group_id).expect("just ensured");
        let (member_id, mut member) = existing_or_new(group, &hb, now_ms, member_ids, max_size, records)?;
        let before = member.clone();
        // The member's own metadata.
        member.last_heartbeat_ms = now_ms;
        member.client_id = hb.client_id.clone();
        member.client_host = hb.client_host.clone();
        if hb.instance_id.is_some() {
            member.instance_id = hb.instance_id.clone();
        }
        if hb.rack_id.is_some() {
            member.rack_id = hb.rack_id.clone();
        }
        if hb.rebalance_timeout_ms >= 0 {
            member.rebalance_timeout_ms = hb.rebalance_timeout_ms;
        }
        if let Some(names) = &hb.subscribed_topic_names {
            member.subscribed = names.iter().cloned().collect();
        }
        if let Some(regex) = &hb.subscribed_topic_regex {
            // An empty pattern removes the member's pattern.
            let regex = Some(regex.clone()).filter(|r| !r.is_empty());
            if regex != member.regex {
                if let Some(r) = &regex {
                    compile(r)?;
                }
                member.regex = regex;
            }
        }
        if hb.server_assignor.is_some() {
            member.server_assignor = hb.server_assignor.clone();
        }
        // As Kafka: the epoch moves when a subscription changes (a new
        // member's, from nothing), not for a static member taking its place
        // back with the same subscription.
        let mut bump = group.epoch == 0 || member.subscribed != before.subscribed || member.regex != before.regex;
        if member.metadata() != before.metadata() || !group.members.contains_key(&member_id) {
            records.push(ConsumerMember::record(&group_id, &member_id, Some(&member)));
        }
        group.members.insert(member_id.clone(), member);
        group.emptied_at_ms = None;
        // The subscribed topics as they are now (patterns matched again).
        group.refresh_patterns(|| topics.names());
        let seen = subscribed_metadata(group, topics);
        if seen != group.topics {
            group.topics = seen;
            records.push(ConsumerRecord::SubscriptionMetadata {
                group: group_id.clone(),
                topics: Some(group.topics.clone()),
            });
            bump = true;
        }
        if bump {
            group.epoch += 1;
            records.push(ConsumerRecord::GroupEpoch {
                group: group_id.clone(),
                epoch: Some(group.epoch),
            });
        }
        if group.epoch > group.target_epoch {
            new_target(group, &group_id, default_assignor, records);
        }
        // The member's next step.
        let member = group.members.get(&member_id).expect("inserted above").clone();
        let target = group.target.get(&member_id).cloned().unwrap_or_default();
        let next = member
            .current
            .next(group.target_epoch, &target, hb.owned.as_ref(), |t, p| {
                group.held_by_other(&member_id, t, p)
            });
        let changed = next != member.current;
        if changed {
            group.set_owned(&member_id, Some(&member.current), &next);
            records.push(ConsumerRecord::current(&group_id, &member_id, Some(&next)));
        }
        let member = group.members.get_mut(&member_id).expect("inserted above");
        member.revoke_deadline_ms = match next.state {
            MemberState::UnrevokedPartitions => member
                .revoke_deadline_ms
                .filter(|_| !changed)
                .or(Some(now_ms + i64::from(member.rebalance_timeout_ms))),
            _ => None,
        };
        // Kafka's rule: the assignment goes out on a full request (a join,
        // or every field given, as after an error) or when it changed —
        // and here also when the member reports holding something else
        // (an answer it lost), so it cannot stay behind.
        let full = hb.member_epoch == JOIN_EPOCH
            || (hb.rebalance_timeout_ms != -1 && hb.subscribed_topic_names.is_some() && hb.owned.is_some());
        let behind = hb
            .owned
            .as_ref()
            .is_some_and(|owned| !partitions(owned).eq(partitions(&next.assigned)));
        let tell = full || behind || member.current.assigned != next.assigned;
        member.current = next;
        Ok(ConsumerHeartbeatAnswer {
            member_id,
            member_epoch: member.current.epoch,
            heartbeat_interval_ms: interval,
            assignment: tell.then(|| member.current.assigned.clone()),
        })
    }

    /// A member leaving: for good (its records tombstoned, the group epoch
    /// bumped), or a static member for now (kept at epoch -2, its
    /// partitions held for its return within its session).
    fn consumer_leave(&mut self, hb: &ConsumerHeartbeat, now_ms: i64, records: &mut Vec<ConsumerRecord>) -> Outcome {
        let group_id = &hb.group_id;
        let Some(group) = self.consumer_groups.get_mut(group_id) else {
            return Err(GroupError::UnknownMemberId);
        };
        let member_id = match &hb.instance_id {
            Some(instance) => {
                let Some(id) = group.static_member(instance).map(str::to_string) else {
                    return Err(GroupError::UnknownMemberId);
                };
                if id != hb.member_id {
                    return Err(GroupError::FencedInstanceId);
                }
                id
            }
            None if group.members.contains_key(&hb.member_id) => hb.member_id.clone(),
            None => return Err(GroupError::UnknownMemberId),
        };
        if hb.member_epoch == STATIC_LEAVE_EPOCH {
            let member = group.members.get_mut(&member_id).expect("found above");
            member.current.epoch = STATIC_LEAVE_EPOCH;
            records.push(ConsumerRecord::current(group_id, &member_id, Some(&member.current)));
        } else {
            remove_member(group, group_id, &member_id, now_ms, records);
        }
        info!(group = %group_id, member = %member_id, epoch = hb.member_epoch, "consumer left the group");
        Ok(ConsumerHeartbeatAnswer {
            member_id,
            member_epoch: hb.member_epoch,
            heartbeat_interval_ms: 0,
            assignment: None,
        })
    }

    /// Fences members silent past their session or holding partitions past
    /// their rebalance timeout (`tick`).
    pub(crate) fn expire_consumers(&mut self, now_ms: i64, out: &mut Vec<Output>) {
        let session = i64::from(self.config.consumer_session_timeout_ms);
        let ids: Vec<String> = self.consumer_groups.keys().cloned().collect();
        for group_id in ids {
            let group = self.consumer_groups.get_mut(&group_id).expect("listed above");
            let expired: Vec<String> = group
                .members
                .iter()
                .filter(|(_, m)| {
                    now_ms - m.last_heartbeat_ms > session || m.revoke_deadline_ms.is_some_and(|d| now_ms > d)
                })
                .map(|(id, _)| id.clone())
                .collect();
            if expired.is_empty() {
                continue;
            }
            let mut records = Vec::new();
            for member_id in &expired {
                info!(group = %group_id, member = %member_id, "consumer fenced: session or rebalance timeout passed");
                remove_member(group, &group_id, member_id, now_ms, &mut records);
            }
            self.write_consumer(&group_id, records, None, out);
        }
        self.rewrite_unstored(out);
        self.retire_empty_consumer_groups(now_ms, out);
    }
}

/// Kafka's checks of a heartbeat's fields (INVALID_REQUEST).
fn validate(hb: &ConsumerHeartbeat) -> Result<(), GroupError> {
    let invalid = |why: &'static str| Err(GroupError::InvalidRequest(why));
    if hb.group_id.is_empty() {
        return invalid("GroupId can't be empty.");
    }
    // Record keys and values hold strings of at most i16::MAX bytes.
    let strings = [&hb.group_id, &hb.member_id, &hb.client_id, &hb.client_host].into_iter();
    let optional = [
        &hb.instance_id,
        &hb.rack_id,
        &hb.subscribed_topic_regex,
        &hb.server_assignor,
    ];
    let names = hb.subscribed_topic_names.iter().flatten();
    if strings
        .chain(optional.into_iter().flatten())
        .chain(names)
        .any(|s| s.len() > i16::MAX as usize)
    {
        return invalid("A string of the request is too long.");
    }
    if hb.instance_id.as_deref() == Some("") {
        return invalid("InstanceId can't be empty.");
    }
    if hb.rack_id.as_deref() == Some("") {
        return invalid("RackId can't be empty.");
    }
    match hb.member_epoch {
        JOIN_EPOCH => {
            if hb.rebalance_timeout_ms == -1 {
                return invalid("RebalanceTimeoutMs must be provided in first request.");
            }
            if hb.owned.as_ref().is_some_and(|o| !o.is_empty()) {
                return invalid("TopicPartitions must be empty when (re-)joining.");
            }
            if hb.subscribed_topic_names.is_none() && hb.subscribed_topic_regex.is_none() {
                return invalid(
                    "Either SubscribedTopicNames or SubscribedTopicRegex must be non-null when (re-)joining.",
                );
            }
        }
        STATIC_LEAVE_EPOCH if hb.instance_id.is_none() => return invalid("InstanceId can't be null."),
        epoch if epoch < STATIC_LEAVE_EPOCH => return invalid("MemberEpoch is invalid."),
        _ if hb.member_id.is_empty() => return invalid("MemberId can't be empty."),
        _ => {}
    }
    Ok(())
}

/// The member the heartbeat speaks for (its id and a copy to update): a
/// known one whose epoch checks out, a static member rejoining in place
/// of its previous self, or a new one.
fn existing_or_new(
    group: &mut ConsumerGroup,
    hb: &ConsumerHeartbeat,
    now_ms: i64,
    member_ids: &mut dyn MemberIdGenerator,
    max_size: usize,
    records: &mut Vec<ConsumerRecord>,
) -> Result<(String, ConsumerMember), GroupError> {
    if hb.member_epoch != JOIN_EPOCH {
        let member = match &hb.instance_id {
            Some(instance) => {
                let id = group.static_member(instance).ok_or(GroupError::UnknownMemberId)?;
                if id != hb.member_id {
                    return Err(GroupError::FencedInstanceId);
                }
                &group.members[id]
            }
            None => group.members.get(&hb.member_id).ok_or(GroupError::UnknownMemberId)?,
        };
        check_epoch(member, hb)?;
        return Ok((hb.member_id.clone(), member.clone()));
    }
    let member_id = if hb.member_id.is_empty() {
        member_ids.member_id(hb.instance_id.as_deref().unwrap_or(&hb.client_id))
    } else {
        hb.member_id.clone()
    };
    if let Some(instance) = &hb.instance_id {
        if let Some(previous) = group.static_member(instance).map(str::to_string) {
            if group.members[&previous].current.epoch != STATIC_LEAVE_EPOCH {
                return Err(GroupError::UnreleasedInstanceId);
            }
            // The instance is back (under a new id, or its own): it takes
            // over its previous self's assignment and target at epoch 0 and
            // reconciles from there, as Kafka's replaceMember.
            let mut member = group.members.remove(&previous).expect("found above");
            member.current.epoch = JOIN_EPOCH;
            member.current.previous_epoch = JOIN_EPOCH;
            if previous != member_id {
                let target = group.target.remove(&previous);
                records.push(ConsumerRecord::current(&hb.group_id, &previous, None));
                records.push(ConsumerRecord::target_member(&hb.group_id, &previous, None));
                records.push(ConsumerMember::record(&hb.group_id, &previous, None));
                if let Some(target) = target {
                    records.push(ConsumerRecord::target_member(&hb.group_id, &member_id, Some(&target)));
                    group.target.insert(member_id.clone(), target);
                }
                group.set_owned(&previous, Some(&member.current), &CurrentAssignment::joining());
                group.set_owned(&member_id, None, &member.current);
            }
            records.push(ConsumerRecord::current(&hb.group_id, &member_id, Some(&member.current)));
            member.last_heartbeat_ms = now_ms;
            return Ok((member_id, member));
        }
    }
    if let Some(member) = group.members.get(&member_id) {
        // A join under an id already in the group: it holds nothing now
        // (the client gave its partitions up as lost) and starts over.
        let mut member = member.clone();
        let joining = CurrentAssignment::joining();
        group.set_owned(&member_id, Some(&member.current), &joining);
        member.current = joining;
        member.last_heartbeat_ms = now_ms;
        return Ok((member_id, member));
    }
    if group.members.len() >= max_size {
        return Err(GroupError::GroupMaxSizeReached);
    }
    Ok((
        member_id,
        ConsumerMember {
            instance_id: hb.instance_id.clone(),
            rack_id: hb.rack_id.clone(),
            client_id: hb.client_id.clone(),
            client_host: hb.client_host.clone(),
            subscribed: BTreeSet::new(),
            regex: None,
            server_assignor: None,
            rebalance_timeout_ms: hb.rebalance_timeout_ms,
            current: CurrentAssignment::joining(),
            last_heartbeat_ms: now_ms,
            revoke_deadline_ms: None,
        },
    ))
}

/// Kafka's epoch check: the member's epoch, or its previous one when the
/// answer that moved it on may have been lost (it then holds no more than
/// it is assigned); else FENCED_MEMBER_EPOCH.
fn check_epoch(member: &ConsumerMember, hb: &ConsumerHeartbeat) -> Result<(), GroupError> {
    let current = &member.current;
    if hb.member_epoch == current.epoch {
        return Ok(());
    }
    let owned_within = hb.owned.as_ref().is_some_and(|owned| {
        owned
            .iter()
            .all(|(t, ps)| current.assigned.get(t).is_some_and(|a| ps.is_subset(a)))
    });
    if hb.member_epoch < current.epoch && hb.member_epoch == current.previous_epoch && owned_within {
        return Ok(());
    }
    Err(GroupError::FencedMemberEpoch)
}

/// The subscribed topics that exist, with their ids and partition counts.
fn subscribed_metadata(group: &ConsumerGroup, topics: &dyn TopicLookup) -> BTreeMap<String, (uuid::Uuid, i32)> {
    group
        .subscribed_topics()
        .into_iter()
        .filter_map(|name| topics.topic(name).map(|t| (name.to_string(), t)))
        .collect()
}

/// Computes the group's target assignment for its epoch and records the
/// members whose target changed.
fn new_target(group: &mut ConsumerGroup, group_id: &str, default: Assignor, records: &mut Vec<ConsumerRecord>) {
    let assignor = group.preferred_assignor(default);
    let target = group.compute_target(assignor);
    for (member, assignment) in &target {
        if group.target.get(member) != Some(assignment) {
            records.push(ConsumerRecord::target_member(group_id, member, Some(assignment)));
        }
    }
    group.target = target;
    group.target_epoch = group.epoch;
    records.push(ConsumerRecord::TargetEpoch {
        group: group_id.to_string(),
        epoch: Some(group.epoch),
    });
    info!(group = %group_id, epoch = group.epoch, assignor = assignor.name(), members = group.members.len(), "new target assignment");
}

/// Removes `member_id` from the group: its partitions are free, its
/// records tombstoned, and the group epoch bumped.
fn remove_member(
    group: &mut ConsumerGroup,
    group_id: &str,
    member_id: &str,
    now_ms: i64,
    records: &mut Vec<ConsumerRecord>,
) {
    let Some(member) = group.members.remove(member_id) else {
        return;
    };
    if group.members.is_empty() {
        group.emptied_at_ms = Some(now_ms);
    }
    group.set_owned(member_id, Some(&member.current), &CurrentAssignment::joining());
    group.target.remove(member_id);
    records.push(ConsumerRecord::current(group_id, member_id, None));
    records.push(ConsumerRecord::target_member(group_id, member_id, None));
    records.push(ConsumerMember::record(group_id, member_id, None));
    // Topics nobody subscribes to any more leave the subscription metadata
    // now, as Kafka's fencing does (else the next heartbeat would move the
    // epoch a second time).
    let subscribed: BTreeSet<String> = group.subscribed_topics().into_iter().map(str::to_string).collect();
    let before = group.topics.len();
    group.topics.retain(|name, _| subscribed.contains(name));
    if group.topics.len() != before {
        records.push(ConsumerRecord::SubscriptionMetadata {
            group: group_id.to_string(),
            topics: Some(group.topics.clone()),
        });
    }
    group.epoch += 1;
    records.push(ConsumerRecord::GroupEpoch {
        group: group_id.to_string(),
        epoch: Some(group.epoch),
    });
}
