//! The coordinator as a sans-IO state machine: [`GroupStateMachine`]
//! takes requests and events (each with the time, `now_ms`) and returns
//! [`Output`]s: answers addressed to the [`RequestId`] the caller gave
//! the request, and records to persist ([`Persist`]), whose outcome the
//! caller feeds back with [`GroupStateMachine::persisted`]. It owns no
//! thread, channel, clock or store, and makes member ids with the
//! [`MemberIdGenerator`] it is handed, so one seed replays one history.
//!
//! As Kafka's GroupMetadataManager, a write comes first: offsets are
//! cached and the OffsetCommit answered, or the group made stable and the
//! SyncGroups answered, only once the records are acknowledged; a refused
//! write drops the pending change and answers with an error.
//!
//! ```text
//! Empty ──join──▶ PreparingRebalance ──all joined / timeout──▶ CompletingRebalance
//!   ▲                    ▲       │                                   │ leader's sync,
//!   └── last member gone ┘       └──────── join, leave, expiry ◀── Stable   then its write
//! ```

use std::collections::BTreeMap;

use tracing::{info, warn};

use crate::group::Group;
use crate::outputs::{respond, Output, PersistId};
use crate::protocol::{GroupConfig, GroupDescription, GroupError, GroupState, MemberDescription, StoredRecord};
use crate::records::{parse, CommittedOffset, GroupMetadata, OffsetsRecord};
use crate::writes::{AfterWrite, Writes};

/// The protocol type shown for a group known only by its offsets: none,
/// which makes it a "simple" group, as Kafka shows it.
const OFFSETS_ONLY_TYPE: &str = "";

/// Committed offsets of one group, by (topic, partition).
pub(crate) type GroupOffsets = BTreeMap<(String, i32), CommittedOffset>;

/// Every group and committed offset of a coordinator, as a state machine.
pub struct GroupStateMachine {
    pub(crate) config: GroupConfig,
    pub(crate) groups: BTreeMap<String, Group>,
    pub(crate) offsets: BTreeMap<String, GroupOffsets>,
    /// Generations of empty groups no longer kept in `groups`, so that a
    /// group coming back carries on from there (until its metadata is
    /// tombstoned).
    pub(crate) retired: BTreeMap<String, i32>,
    pub(crate) writes: Writes,
    /// Join order of members, so the oldest leads.
    pub(crate) next_seq: u64,
}

impl GroupStateMachine {
    /// A state machine without groups.
    pub fn new(config: GroupConfig) -> Self {
        Self {
            config,
            groups: BTreeMap::new(),
            offsets: BTreeMap::new(),
            retired: BTreeMap::new(),
            writes: Writes::default(),
            next_seq: 0,
        }
    }

    /// Replaces the state of the groups `owned` picks (those of one
    /// `__consumer_offsets` partition) with what `records`, that
    /// partition's records oldest first, say: committed offsets, stable
    /// groups' membership (members get a session from `now_ms`), and the
    /// generation of empty groups.
    pub fn reload(&mut self, owned: impl Fn(&str) -> bool, records: &[StoredRecord], now_ms: i64) -> Vec<Output> {
        let mut offsets: BTreeMap<String, GroupOffsets> = BTreeMap::new();
        let mut memberships: BTreeMap<String, Option<GroupMetadata>> = BTreeMap::new();
        for (key, value) in records {
            match parse(key, value.as_deref()) {
                Some(OffsetsRecord::Offset(k, v)) if owned(&k.group) => {
                    let group = offsets.entry(k.group).or_default();
                    match v {
                        Some(v) => {
                            group.insert((k.topic, k.partition), v);
                        }
                        None => {
                            group.remove(&(k.topic, k.partition));
                        }
                    }
                }
                Some(OffsetsRecord::Group(group, meta)) if owned(&group) => {
                    memberships.insert(group, meta);
                }
                _ => {}
            }
        }
        offsets.retain(|_, o| !o.is_empty());
        let out = self.unload(&owned);
        let mut restored = 0;
        for (id, meta) in memberships {
            match meta {
                Some(meta) if meta.members.is_empty() => {
                    self.retired.insert(id, meta.generation);
                }
                Some(meta) => {
                    self.groups
                        .insert(id, Group::restored(meta, now_ms, &mut self.next_seq));
                    restored += 1;
                }
                None => {}
            }
        }
        if restored > 0 || !offsets.is_empty() {
            info!(
                groups = restored,
                groups_with_offsets = offsets.len(),
                records = records.len(),
                "loaded groups and committed offsets"
            );
        }
        self.offsets.extend(offsets);
        out
    }

    /// Forgets the groups `owned` picks (their `__consumer_offsets`
    /// partition is led elsewhere now): waiting joins and syncs are told
    /// to rejoin (and find the new coordinator), writes not yet out are
    /// dropped (their requests answered COORDINATOR_NOT_AVAILABLE), and
    /// writes out complete without effect here.
    pub fn unload(&mut self, owned: impl Fn(&str) -> bool) -> Vec<Output> {
        let mut out = Vec::new();
        let unloaded: Vec<String> = self.groups.keys().filter(|id| owned(id)).cloned().collect();
        for id in unloaded {
            if let Some(mut group) = self.groups.remove(&id) {
                for (member_id, member) in group.members.iter_mut() {
                    member.fail_waiters(member_id, GroupError::RebalanceInProgress, &mut out);
                }
            }
        }
        self.offsets.retain(|id, _| !owned(id));
        self.retired.retain(|id, _| !owned(id));
        for dropped in self.writes.abandon(&owned) {
            if let Some((request, response)) = dropped.answer(Err(GroupError::CoordinatorNotAvailable)) {
                respond(&mut out, request, response);
            }
        }
        out
    }

    /// The write `id` was appended (`Ok`) or refused: its change is
    /// applied or dropped, its requests answered, and the group's next
    /// write, if any, goes out.
    pub fn persisted(&mut self, id: PersistId, result: Result<(), String>, now_ms: i64) -> Vec<Output> {
        let mut out = Vec::new();
        let Some(done) = self.writes.complete(id, &mut out) else {
            warn!(?id, "a write completed that was not out");
            return out;
        };
        if let Err(e) = &result {
            warn!(group = %done.group, "could not store to the offsets topic: {e}");
        }
        let ok = result.is_ok();
        let applies = ok && !done.orphaned;
        let answer = done
            .then
            .answer(result.map_err(|_| GroupError::CoordinatorNotAvailable));
        match done.then {
            AfterWrite::Commit { offsets, .. } => {
                if applies {
                    self.offsets.entry(done.group).or_default().extend(offsets);
                }
            }
            AfterWrite::Assignment {
                generation,
                assignments,
            } => {
                if !done.orphaned {
                    self.assignment_stored(&done.group, generation, assignments, ok, now_ms, &mut out);
                }
            }
            AfterWrite::Emptied => {}
            AfterWrite::Expiry { partitions } => {
                if applies {
                    self.offsets_removed(&done.group, &partitions);
                    info!(group = %done.group, partitions = partitions.len(), "expired committed offsets");
                }
            }
            AfterWrite::Retire { generation } => {
                if applies {
                    self.forget(&done.group, Some(generation));
                }
            }
            AfterWrite::Delete {
                partitions, generation, ..
            } => {
                if applies {
                    self.offsets_removed(&done.group, &partitions);
                    self.forget(&done.group, generation);
                }
            }
        }
        if let Some((request, response)) = answer {
            respond(&mut out, request, response);
        }
        out
    }

    /// The group `group_id`, created empty (carrying on from its retired
    /// generation) if it is not known.
    pub(crate) fn group_entry(&mut self, group_id: &str) -> &mut Group {
        if !self.groups.contains_key(group_id) {
            let generation = self.retired.remove(group_id).unwrap_or(0);
            self.groups.insert(group_id.to_string(), Group::new(generation));
        }
        self.groups.get_mut(group_id).expect("just inserted")
    }

    /// Periodic work at `now_ms`: expires silent members (and handed-out
    /// ids never used), completes rebalances whose timeout passed, removes
    /// offsets of groups without members that are older than
    /// `offsets.retention.minutes`, and tombstones the metadata of empty
    /// groups left without offsets.
    pub fn tick(&mut self, now_ms: i64) -> Vec<Output> {
        let mut out = Vec::new();
        self.expire_members(now_ms, &mut out);
        self.expire_offsets(now_ms, &mut out);
        out
    }

    /// The current generation of `group_id` (that of its last life if it
    /// is empty and no longer kept); `None` for a group not known.
    pub fn generation(&self, group_id: &str) -> Option<i32> {
        self.groups
            .get(group_id)
            .map(|g| g.generation)
            .or_else(|| self.retired.get(group_id).copied())
    }

    /// DescribeGroups for one group (`None`: not known, which Kafka
    /// describes as Dead).
    pub fn describe(&self, group_id: &str) -> Option<GroupDescription> {
        let Some(group) = self.groups.get(group_id) else {
            // No members left, but offsets kept: Empty, as ListGroups says
            // and Kafka describes it.
            return self.offsets.contains_key(group_id).then(|| GroupDescription {
                group_id: group_id.to_string(),
                state: GroupState::Empty,
                protocol_type: OFFSETS_ONLY_TYPE.to_string(),
                protocol: String::new(),
                members: Vec::new(),
            });
        };
        let protocol = group.protocol.clone().unwrap_or_default();
        Some(GroupDescription {
            group_id: group_id.to_string(),
            state: group.state,
            protocol_type: group.protocol_type.clone().unwrap_or_default(),
            protocol: protocol.clone(),
            members: group
                .members
                .iter()
                .map(|(id, m)| MemberDescription {
                    member_id: id.clone(),
                    group_instance_id: m.instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    metadata: m.metadata_for(&protocol),
                    assignment: m.assignment.clone(),
                })
                .collect(),
        })
    }

    /// ListGroups: every group with members or committed offsets, with
    /// its protocol type and state.
    pub fn list(&self) -> Vec<(String, String, GroupState)> {
        let mut out: BTreeMap<String, (String, GroupState)> = self
            .groups
            .iter()
            .map(|(id, g)| (id.clone(), (g.protocol_type.clone().unwrap_or_default(), g.state)))
            .collect();
        for id in self.offsets.keys() {
            out.entry(id.clone())
                .or_insert_with(|| (OFFSETS_ONLY_TYPE.to_string(), GroupState::Empty));
        }
        out.into_iter().map(|(id, (t, s))| (id, t, s)).collect()
    }
}
