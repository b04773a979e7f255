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

use crate::consumer::{ConsumerGroup, ConsumerGroupsLoader};
use crate::group::Group;
use crate::offset_cache::{OffsetCache, Partition, PartitionOffsets, Placed};
use crate::outputs::{respond, Output, PersistId};
use crate::protocol::{
    GroupConfig, GroupDescription, GroupError, GroupState, LoadedRecord, MemberDescription, StoreError,
};
use crate::records::{parse, GroupMetadata, OffsetsRecord};
use crate::writes::{AfterWrite, Writes};

/// The protocol type shown for a group known only by its offsets: none,
/// which makes it a "simple" group, as Kafka shows it.
const OFFSETS_ONLY_TYPE: &str = "";

/// Every group and committed offset of a coordinator, as a state machine.
pub struct GroupStateMachine {
    pub(crate) config: GroupConfig,
    pub(crate) groups: BTreeMap<String, Group>,
    /// Consumer groups of the KIP-848 protocol.
    pub(crate) consumer_groups: BTreeMap<String, ConsumerGroup>,
    /// Committed offsets, and those of open transactions.
    pub(crate) offsets: OffsetCache,
    /// Generations of empty groups no longer kept in `groups`, so that a
    /// group coming back carries on from there (until its metadata is
    /// tombstoned).
    pub(crate) retired: BTreeMap<String, i32>,
    /// When each retired group's last member left (ms), for its retention.
    pub(crate) retired_since: BTreeMap<String, i64>,
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
            consumer_groups: BTreeMap::new(),
            offsets: OffsetCache::default(),
            retired: BTreeMap::new(),
            retired_since: BTreeMap::new(),
            writes: Writes::default(),
            next_seq: 0,
        }
    }

    /// Replaces the state of the groups `owned` picks (those of one
    /// `__consumer_offsets` partition) with what `records`, that
    /// partition's records and markers in log order, say: committed
    /// offsets, offsets of transactions still open (pending until their
    /// marker), stable groups' membership (members get a session from
    /// `now_ms`), and the generation of empty groups.
    pub fn reload(&mut self, owned: impl Fn(&str) -> bool, records: &[LoadedRecord], now_ms: i64) -> Vec<Output> {
        let out = self.unload(&owned);
        self.load(&owned, records, now_ms);
        out
    }

    /// Adds what `records` (one partition's, in log order) say of the
    /// groups `owned` picks, which the machine holds nothing of.
    pub(crate) fn load(&mut self, owned: &impl Fn(&str) -> bool, records: &[LoadedRecord], now_ms: i64) {
        // Markers apply to this partition's transactions only.
        let mut offsets = OffsetCache::default();
        let mut memberships: BTreeMap<String, Option<GroupMetadata>> = BTreeMap::new();
        let mut consumers = ConsumerGroupsLoader::default();
        for record in records {
            let (key, value, log_offset, producer) = match record {
                LoadedRecord::Marker { producer_id, commit } => {
                    offsets.complete(&|_| true, *producer_id, *commit);
                    continue;
                }
                LoadedRecord::Record {
                    key,
                    value,
                    offset,
                    producer,
                } => (key, value, *offset, *producer),
            };
            match parse(key, value.as_deref()) {
                Some(OffsetsRecord::Offset(k, v)) if owned(&k.group) => {
                    let partition = (k.topic, k.partition);
                    match (v, producer) {
                        (Some(value), None) => offsets.commit(&k.group, partition, Placed { value, log_offset }),
                        (Some(value), Some(pid)) => {
                            offsets.stage(&k.group, pid, partition, Placed { value, log_offset })
                        }
                        (None, _) => offsets.remove(&k.group, &partition),
                    }
                }
                Some(OffsetsRecord::Group(group, meta)) if owned(&group) => {
                    memberships.insert(group, meta);
                }
                Some(OffsetsRecord::Consumer(record)) if owned(record.group()) => consumers.apply(record),
                _ => {}
            }
        }
        let mut restored = 0;
        for (id, meta) in memberships {
            match meta {
                Some(meta) if meta.members.is_empty() => {
                    self.retired_since.insert(id.clone(), now_ms);
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
        for (id, group) in consumers.finish(now_ms) {
            self.consumer_groups.insert(id, group);
            restored += 1;
        }
        let with_offsets = offsets.groups().count();
        if restored > 0 || with_offsets > 0 {
            info!(
                groups = restored,
                groups_with_offsets = with_offsets,
                records = records.len(),
                "loaded groups and committed offsets"
            );
        }
        self.offsets.absorb(offsets);
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
        self.consumer_groups.retain(|id, _| !owned(id));
        self.offsets.forget(&owned);
        self.retired.retain(|id, _| !owned(id));
        self.retired_since.retain(|id, _| !owned(id));
        for dropped in self.writes.abandon(&owned) {
            if let Some((request, response)) = dropped.answer(Err(GroupError::CoordinatorNotAvailable)) {
                respond(&mut out, request, response);
            }
        }
        out
    }

    /// The write `id` was appended (`Ok`, with the offset of its first
    /// record) or refused: its change is applied or dropped, its requests
    /// answered, and the group's next write, if any, goes out.
    pub fn persisted(&mut self, id: PersistId, result: Result<u64, StoreError>, now_ms: i64) -> Vec<Output> {
        let mut out = Vec::new();
        // A consumer group's refused write takes the group's consumer
        // writes queued behind it along: they were decided on what it
        // was to store (`consumer::store`).
        let refused = result.is_err();
        let dependent = |done: &AfterWrite, waiting: &AfterWrite| {
            refused && matches!(done, AfterWrite::Consumer { .. }) && matches!(waiting, AfterWrite::Consumer { .. })
        };
        let Some((done, dropped)) = self.writes.complete(id, dependent, &mut out) else {
            warn!(?id, "a write completed that was not out");
            return out;
        };
        for write in dropped {
            self.consumer_write_dropped(&done.group, write, &mut out);
        }
        if let Err(e) = &result {
            warn!(group = %done.group, "could not store to the offsets topic: {e}");
        }
        let ok = result.is_ok();
        // Where the records landed, when they did and still count here.
        let first = result.as_ref().ok().copied().filter(|_| !done.orphaned);
        let applies = first.is_some();
        // Each record's offset: the batch's first, counted on.
        let placed = |offsets: PartitionOffsets| -> Vec<(Partition, Placed)> {
            let Some(first) = first else { return Vec::new() };
            (first..)
                .zip(offsets)
                .map(|(log_offset, (partition, value))| (partition, Placed { value, log_offset }))
                .collect()
        };
        let answer = done.then.answer(result.as_ref().map(|_| ()).map_err(GroupError::from));
        match done.then {
            AfterWrite::Commit { offsets, .. } => {
                for (partition, placed) in placed(offsets) {
                    self.offsets.commit(&done.group, partition, placed);
                }
            }
            AfterWrite::TxnCommit { producer, offsets, .. } => {
                for (partition, placed) in placed(offsets) {
                    self.offsets.stage(&done.group, producer.id, partition, placed);
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
            AfterWrite::Consumer { keys, .. } => {
                if !ok && !done.orphaned {
                    self.consumer_write_refused(&done.group, keys);
                }
            }
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
            AfterWrite::DeleteOffsets { partitions, .. } => {
                if applies {
                    self.offsets_removed(&done.group, &partitions);
                    info!(group = %done.group, partitions = partitions.len(), "deleted committed offsets");
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
            self.retired_since.remove(group_id);
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
        self.expire_consumers(now_ms, &mut out);
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
        if self.consumer_groups.contains_key(group_id) {
            // DescribeGroups describes classic groups only: a consumer
            // group is Dead to it, as Kafka answers.
            return None;
        }
        let Some(group) = self.groups.get(group_id) else {
            // No members left, but offsets kept: Empty, as ListGroups says
            // and Kafka describes it.
            return self.offsets.knows(group_id).then(|| GroupDescription {
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

    /// ListGroups: every classic group with members or committed offsets
    /// (and groups known only by their offsets), with its protocol type
    /// and state.
    pub fn list(&self) -> Vec<(String, String, GroupState)> {
        let mut out: BTreeMap<String, (String, GroupState)> = self
            .groups
            .iter()
            .map(|(id, g)| (id.clone(), (g.protocol_type.clone().unwrap_or_default(), g.state)))
            .collect();
        // Consumer groups (KIP-848) are listed by `list_consumer`.
        for id in self
            .offsets
            .groups()
            .filter(|id| !self.consumer_groups.contains_key(*id))
        {
            out.entry(id.clone())
                .or_insert_with(|| (OFFSETS_ONLY_TYPE.to_string(), GroupState::Empty));
        }
        out.into_iter().map(|(id, (t, s))| (id, t, s)).collect()
    }
}
