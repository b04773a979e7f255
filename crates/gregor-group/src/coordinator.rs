//! The classic group protocol as Kafka's group coordinator runs it:
//! members join (JoinGroup), the coordinator waits until every known
//! member has rejoined or the rebalance timeout passes, bumps the
//! generation, picks the protocol every member supports with the most
//! first-choice votes and answers everyone, the leader with the member
//! list; the leader's SyncGroup hands out the assignments; heartbeats keep
//! members alive and tell them when to rejoin.
//!
//! ```text
//! Empty ──join──▶ PreparingRebalance ──all joined / timeout──▶ CompletingRebalance
//!   ▲                    ▲       │                                   │ leader's sync
//!   └── last member gone ┘       └──────── join, leave, expiry ◀── Stable
//! ```
//!
//! JoinGroup and SyncGroup answers come later, through one-shot channels;
//! time is passed in (`now_ms`), so the state machine is testable without
//! waiting, and [`GroupCoordinator::tick`] expires members and rebalances.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::oneshot;
use tracing::info;

use crate::records::{
    group_key, group_value, offset_key, offset_value, parse, CommittedOffset, GroupMetadata, OffsetKey, OffsetsRecord,
    StoredMember,
};

/// Errors of the group protocol, each one a Kafka error code clients act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum GroupError {
    /// The member is not (or no longer) in the group: rejoin.
    #[error("unknown member id")]
    UnknownMemberId,
    /// The generation is not the group's: rejoin.
    #[error("illegal generation")]
    IllegalGeneration,
    /// A rebalance is on: rejoin.
    #[error("rebalance in progress")]
    RebalanceInProgress,
    /// No protocol every member supports, or another protocol type.
    #[error("inconsistent group protocol")]
    InconsistentGroupProtocol,
    /// JoinGroup v4+: rejoin with the member id given.
    #[error("member id required")]
    MemberIdRequired,
    /// A newer member took this static instance id.
    #[error("fenced instance id")]
    FencedInstanceId,
    /// Session timeout outside the broker's bounds.
    #[error("invalid session timeout")]
    InvalidSessionTimeout,
    /// DeleteGroups on a group with members.
    #[error("non-empty group")]
    NonEmptyGroup,
    /// DeleteGroups on an unknown group.
    #[error("group id not found")]
    GroupIdNotFound,
    /// An empty group id.
    #[error("invalid group id")]
    InvalidGroupId,
    /// The offsets could not be stored: retry.
    #[error("coordinator not available")]
    CoordinatorNotAvailable,
}

/// A stored record: key, and value or `None` for a tombstone.
pub type StoredRecord = (Vec<u8>, Option<Vec<u8>>);

/// Committed offsets of one group, by (topic, partition).
type GroupOffsets = BTreeMap<(String, i32), CommittedOffset>;

/// Where committed offsets are kept: `__consumer_offsets` in a broker.
pub trait OffsetStore: Send + Sync {
    /// Appends `records` to the group's partition of the offsets topic,
    /// durably as the topic is configured.
    fn append(&self, group: &str, records: &[StoredRecord]) -> Result<(), String>;
    /// Every record stored so far, oldest first (to rebuild the offsets).
    fn load(&self) -> Result<Vec<StoredRecord>, String>;
}

/// Settings, with Kafka's names and defaults.
#[derive(Debug, Clone)]
pub struct GroupConfig {
    /// `group.min.session.timeout.ms`.
    pub min_session_timeout_ms: i32,
    /// `group.max.session.timeout.ms`.
    pub max_session_timeout_ms: i32,
    /// `group.initial.rebalance.delay.ms`: how long a new group waits for
    /// more members before its first rebalance completes (Kafka's default
    /// is 3000; its shipped `server.properties`, like gregor, uses 0).
    pub initial_rebalance_delay_ms: i64,
    /// `offsets.retention.minutes`, in ms: offsets of a group without
    /// members are removed this long after their commit.
    pub offsets_retention_ms: i64,
}

impl Default for GroupConfig {
    fn default() -> Self {
        Self {
            min_session_timeout_ms: 6_000,
            max_session_timeout_ms: 1_800_000,
            initial_rebalance_delay_ms: 0,
            offsets_retention_ms: 7 * 24 * 3_600_000,
        }
    }
}

/// A JoinGroup request.
#[derive(Debug, Clone, Default)]
pub struct JoinRequest {
    /// The group.
    pub group_id: String,
    /// Empty on a first join.
    pub member_id: String,
    /// Static membership (`group.instance.id`).
    pub group_instance_id: Option<String>,
    /// Client id, for DescribeGroups.
    pub client_id: String,
    /// Client host, for DescribeGroups.
    pub client_host: String,
    /// "consumer" for consumers.
    pub protocol_type: String,
    /// Protocols in preference order, with their metadata.
    pub protocols: Vec<(String, Vec<u8>)>,
    /// Session timeout.
    pub session_timeout_ms: i32,
    /// Rebalance timeout.
    pub rebalance_timeout_ms: i32,
    /// JoinGroup v4+: a first join gets MEMBER_ID_REQUIRED and an id.
    pub require_known_member_id: bool,
}

/// One member as the leader sees it in its JoinGroup answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinedMember {
    /// Member id.
    pub member_id: String,
    /// Static instance id.
    pub group_instance_id: Option<String>,
    /// Its metadata for the chosen protocol.
    pub metadata: Vec<u8>,
}

/// A JoinGroup answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JoinResponse {
    /// The error, if any.
    pub error: Option<GroupError>,
    /// The new generation.
    pub generation_id: i32,
    /// Protocol type.
    pub protocol_type: Option<String>,
    /// The chosen protocol.
    pub protocol_name: Option<String>,
    /// The leader's member id.
    pub leader: String,
    /// This member's id.
    pub member_id: String,
    /// Every member (only in the leader's answer).
    pub members: Vec<JoinedMember>,
}

impl JoinResponse {
    fn error(error: GroupError, member_id: &str) -> Self {
        Self {
            error: Some(error),
            generation_id: -1,
            member_id: member_id.to_string(),
            ..Self::default()
        }
    }
}

/// A SyncGroup request.
#[derive(Debug, Clone, Default)]
pub struct SyncRequest {
    /// The group.
    pub group_id: String,
    /// The generation the member joined.
    pub generation_id: i32,
    /// The member.
    pub member_id: String,
    /// Static instance id.
    pub group_instance_id: Option<String>,
    /// From the leader: each member's assignment.
    pub assignments: Vec<(String, Vec<u8>)>,
}

/// A SyncGroup answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncResponse {
    /// The error, if any.
    pub error: Option<GroupError>,
    /// Protocol type.
    pub protocol_type: Option<String>,
    /// The chosen protocol.
    pub protocol_name: Option<String>,
    /// This member's assignment.
    pub assignment: Vec<u8>,
}

impl SyncResponse {
    fn error(error: GroupError) -> Self {
        Self {
            error: Some(error),
            ..Self::default()
        }
    }
}

/// A group's state, as DescribeGroups names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupState {
    /// No members.
    Empty,
    /// Waiting for members to (re)join.
    PreparingRebalance,
    /// Waiting for the leader's assignment.
    CompletingRebalance,
    /// Members have their assignments.
    Stable,
}

impl GroupState {
    /// Kafka's name of the state.
    pub fn name(self) -> &'static str {
        match self {
            Self::Empty => "Empty",
            Self::PreparingRebalance => "PreparingRebalance",
            Self::CompletingRebalance => "CompletingRebalance",
            Self::Stable => "Stable",
        }
    }
}

/// A member as DescribeGroups shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberDescription {
    /// Member id.
    pub member_id: String,
    /// Static instance id.
    pub group_instance_id: Option<String>,
    /// Client id.
    pub client_id: String,
    /// Client host.
    pub client_host: String,
    /// Its metadata for the chosen protocol.
    pub metadata: Vec<u8>,
    /// Its assignment.
    pub assignment: Vec<u8>,
}

/// A group as DescribeGroups shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDescription {
    /// Group id.
    pub group_id: String,
    /// Its state.
    pub state: GroupState,
    /// Protocol type ("consumer").
    pub protocol_type: String,
    /// The chosen protocol.
    pub protocol: String,
    /// Its members.
    pub members: Vec<MemberDescription>,
}

struct Member {
    instance_id: Option<String>,
    client_id: String,
    client_host: String,
    session_timeout_ms: i64,
    rebalance_timeout_ms: i64,
    protocols: Vec<(String, Vec<u8>)>,
    assignment: Vec<u8>,
    last_heartbeat_ms: i64,
    join_waiter: Option<oneshot::Sender<JoinResponse>>,
    sync_waiter: Option<oneshot::Sender<SyncResponse>>,
    /// Order of first join, so the oldest member leads.
    joined_seq: u64,
}

impl Member {
    fn metadata_for(&self, protocol: &str) -> Vec<u8> {
        self.protocols
            .iter()
            .find(|(name, _)| name == protocol)
            .map(|(_, m)| m.clone())
            .unwrap_or_default()
    }
}

struct Group {
    state: GroupState,
    generation: i32,
    protocol_type: Option<String>,
    protocol: Option<String>,
    leader: Option<String>,
    members: BTreeMap<String, Member>,
    static_members: HashMap<String, String>,
    /// Member ids handed out with MEMBER_ID_REQUIRED, until they join.
    pending: HashMap<String, i64>,
    rebalance_deadline_ms: i64,
    join_not_before_ms: i64,
}

impl Group {
    fn new() -> Self {
        Self {
            state: GroupState::Empty,
            generation: 0,
            protocol_type: None,
            protocol: None,
            leader: None,
            members: BTreeMap::new(),
            static_members: HashMap::new(),
            pending: HashMap::new(),
            rebalance_deadline_ms: 0,
            join_not_before_ms: 0,
        }
    }

    /// Protocols every member (and the joining one) supports.
    fn supports(&self, protocol_type: &str, protocols: &[(String, Vec<u8>)]) -> bool {
        if self.members.is_empty() {
            return !protocols.is_empty();
        }
        self.protocol_type.as_deref() == Some(protocol_type)
            && protocols
                .iter()
                .any(|(p, _)| self.members.values().all(|m| m.protocols.iter().any(|(q, _)| q == p)))
    }

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

    fn remove_member(&mut self, id: &str) {
        if let Some(member) = self.members.remove(id) {
            if let Some(instance) = &member.instance_id {
                if self.static_members.get(instance).map(String::as_str) == Some(id) {
                    self.static_members.remove(instance);
                }
            }
            if let Some(w) = member.join_waiter {
                let _ = w.send(JoinResponse::error(GroupError::UnknownMemberId, id));
            }
            if let Some(w) = member.sync_waiter {
                let _ = w.send(SyncResponse::error(GroupError::UnknownMemberId));
            }
        }
        if self.leader.as_deref() == Some(id) {
            self.leader = None;
        }
    }

    fn prepare_rebalance(&mut self, now_ms: i64, initial_delay_ms: i64) {
        if self.state == GroupState::PreparingRebalance {
            return;
        }
        for member in self.members.values_mut() {
            if let Some(w) = member.sync_waiter.take() {
                let _ = w.send(SyncResponse::error(GroupError::RebalanceInProgress));
            }
        }
        let timeout = self.members.values().map(|m| m.rebalance_timeout_ms).max().unwrap_or(0);
        self.join_not_before_ms = if self.state == GroupState::Empty {
            now_ms + initial_delay_ms
        } else {
            now_ms
        };
        self.rebalance_deadline_ms = now_ms + timeout.max(initial_delay_ms);
        self.state = GroupState::PreparingRebalance;
    }

    /// Completes the join phase when every member has rejoined (or the
    /// rebalance timeout passed, dropping those that did not).
    /// Returns true when the group was left empty (its metadata changes).
    fn try_complete_join(&mut self, group_id: &str, now_ms: i64) -> bool {
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
            self.remove_member(&id);
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
            if let Some(w) = member.join_waiter.take() {
                let _ = w.send(JoinResponse {
                    error: None,
                    generation_id: self.generation,
                    protocol_type: self.protocol_type.clone(),
                    protocol_name: Some(protocol.clone()),
                    leader: leader.clone(),
                    member_id: id.clone(),
                    members: if *id == leader { everyone.clone() } else { Vec::new() },
                });
            }
        }
        false
    }

    /// The membership to store: Kafka's group metadata value.
    fn metadata(&self, now_ms: i64) -> GroupMetadata {
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
                    assignment: m.assignment.clone(),
                })
                .collect(),
        }
    }

    /// A stable group rebuilt from its stored metadata; members get a full
    /// session from `now_ms` to heartbeat again.
    fn restored(meta: GroupMetadata, now_ms: i64) -> Self {
        let mut group = Self::new();
        group.state = GroupState::Stable;
        group.generation = meta.generation;
        group.protocol_type = Some(meta.protocol_type);
        group.leader = meta.leader;
        let protocol = meta.protocol.clone().unwrap_or_default();
        group.protocol = meta.protocol;
        for (seq, m) in meta.members.into_iter().enumerate() {
            if let Some(instance) = &m.group_instance_id {
                group.static_members.insert(instance.clone(), m.member_id.clone());
            }
            group.members.insert(
                m.member_id,
                Member {
                    instance_id: m.group_instance_id,
                    client_id: m.client_id,
                    client_host: m.client_host,
                    session_timeout_ms: i64::from(m.session_timeout_ms),
                    rebalance_timeout_ms: i64::from(m.rebalance_timeout_ms),
                    protocols: vec![(protocol.clone(), m.subscription)],
                    assignment: m.assignment,
                    last_heartbeat_ms: now_ms,
                    join_waiter: None,
                    sync_waiter: None,
                    joined_seq: seq as u64,
                },
            );
        }
        group
    }

    /// The member a request speaks for, checking static membership.
    fn member_check(&self, member_id: &str, instance_id: Option<&str>) -> Result<(), GroupError> {
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

/// The system clock in ms since the epoch (for loading and the ticker;
/// everything else takes the time as an argument).
fn wall_clock_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// The group coordinator of a broker: every group and committed offset.
pub struct GroupCoordinator {
    config: GroupConfig,
    groups: Mutex<HashMap<String, Group>>,
    offsets: Mutex<HashMap<String, GroupOffsets>>,
    store: Arc<dyn OffsetStore>,
    next_seq: std::sync::atomic::AtomicU64,
}

impl GroupCoordinator {
    /// A coordinator whose offsets live in `store`, loaded from it now.
    pub fn new(config: GroupConfig, store: Arc<dyn OffsetStore>) -> Result<Self, String> {
        let records = store.load()?;
        let coordinator = Self {
            config,
            groups: Mutex::new(HashMap::new()),
            offsets: Mutex::new(HashMap::new()),
            store,
            next_seq: std::sync::atomic::AtomicU64::new(0),
        };
        coordinator.reload(|_| true, &records);
        Ok(coordinator)
    }

    /// Replaces the state of the groups `owned` picks (those of one
    /// `__consumer_offsets` partition, when this broker becomes its
    /// leader) with what `records` — that partition's records, oldest
    /// first — say: committed offsets, and stable groups' membership.
    pub fn reload(&self, owned: impl Fn(&str) -> bool, records: &[StoredRecord]) {
        let mut offsets: HashMap<String, GroupOffsets> = HashMap::new();
        let mut memberships: HashMap<String, Option<GroupMetadata>> = HashMap::new();
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
        let now = wall_clock_ms();
        let restored: HashMap<String, Group> = memberships
            .into_iter()
            .filter_map(|(id, meta)| {
                meta.filter(|m| !m.members.is_empty())
                    .map(|m| (id, Group::restored(m, now)))
            })
            .collect();
        if !restored.is_empty() || !offsets.is_empty() {
            info!(
                groups = restored.len(),
                groups_with_offsets = offsets.len(),
                records = records.len(),
                "loaded groups and committed offsets"
            );
        }
        self.unload(&owned);
        self.groups.lock().extend(restored);
        self.offsets.lock().extend(offsets);
    }

    /// Forgets the groups `owned` picks (this broker no longer leads their
    /// `__consumer_offsets` partition); their members' waiting joins and
    /// syncs end, and they find the new coordinator.
    pub fn unload(&self, owned: impl Fn(&str) -> bool) {
        self.groups.lock().retain(|id, _| !owned(id));
        self.offsets.lock().retain(|id, _| !owned(id));
    }

    /// JoinGroup: the answer arrives when the join phase completes.
    pub fn join(&self, request: JoinRequest, now_ms: i64) -> oneshot::Receiver<JoinResponse> {
        tracing::debug!(group = %request.group_id, member = %request.member_id, "join");
        let (tx, rx) = oneshot::channel();
        let reply = |error| JoinResponse::error(error, &request.member_id);
        if request.group_id.is_empty() {
            let _ = tx.send(reply(GroupError::InvalidGroupId));
            return rx;
        }
        if request.session_timeout_ms < self.config.min_session_timeout_ms
            || request.session_timeout_ms > self.config.max_session_timeout_ms
        {
            let _ = tx.send(reply(GroupError::InvalidSessionTimeout));
            return rx;
        }
        let mut groups = self.groups.lock();
        let group = groups.entry(request.group_id.clone()).or_insert_with(Group::new);
        if !group.supports(&request.protocol_type, &request.protocols) {
            let _ = tx.send(reply(GroupError::InconsistentGroupProtocol));
            return rx;
        }
        let member_id = if request.member_id.is_empty() {
            let prefix = request.group_instance_id.as_deref().unwrap_or(&request.client_id);
            let new_id = format!("{prefix}-{}", uuid::Uuid::new_v4());
            if let Some(instance) = &request.group_instance_id {
                // A static member back (or restarted): it takes over its
                // instance id; the old member id is fenced.
                if let Some(old) = group.static_members.get(instance).cloned() {
                    if let Some(mut member) = group.members.remove(&old) {
                        if let Some(w) = member.join_waiter.take() {
                            let _ = w.send(JoinResponse::error(GroupError::FencedInstanceId, &old));
                        }
                        if let Some(w) = member.sync_waiter.take() {
                            let _ = w.send(SyncResponse::error(GroupError::FencedInstanceId));
                        }
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
                let _ = tx.send(JoinResponse::error(GroupError::MemberIdRequired, &new_id));
                return rx;
            }
            new_id
        } else {
            let known = group.members.contains_key(&request.member_id);
            if !known && group.pending.remove(&request.member_id).is_none() {
                let error = match (&request.group_instance_id, group.members.is_empty()) {
                    (Some(i), _) if group.static_members.get(i).is_some_and(|m| *m != request.member_id) => {
                        GroupError::FencedInstanceId
                    }
                    _ => GroupError::UnknownMemberId,
                };
                let _ = tx.send(reply(error));
                return rx;
            }
            request.member_id.clone()
        };
        if group.members.is_empty() {
            group.protocol_type = Some(request.protocol_type.clone());
        }
        let seq = self.next_seq.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let member = group.members.entry(member_id.clone()).or_insert_with(|| Member {
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
            joined_seq: seq,
        });
        member.instance_id = request.group_instance_id.clone();
        member.client_id = request.client_id;
        member.client_host = request.client_host;
        member.session_timeout_ms = i64::from(request.session_timeout_ms);
        member.rebalance_timeout_ms = i64::from(request.rebalance_timeout_ms.max(request.session_timeout_ms));
        member.protocols = request.protocols;
        member.last_heartbeat_ms = now_ms;
        if let Some(old) = member.join_waiter.replace(tx) {
            let _ = old.send(JoinResponse::error(GroupError::RebalanceInProgress, &member_id));
        }
        if let Some(instance) = request.group_instance_id {
            group.static_members.insert(instance, member_id);
        }
        group.prepare_rebalance(now_ms, self.config.initial_rebalance_delay_ms);
        group.try_complete_join(&request.group_id, now_ms);
        rx
    }

    /// Stores a group's membership (`None`: the group is deleted). A
    /// failure is logged: membership is an optimisation (members rejoin).
    fn store_membership(&self, group: &str, value: Option<Vec<u8>>) {
        if let Err(e) = self.store.append(group, &[(group_key(group), value)]) {
            tracing::warn!(group, "could not store group metadata: {e}");
        }
    }

    /// Stores the now-empty membership of each group in `emptied`.
    fn store_emptied(&self, emptied: Vec<(String, GroupMetadata)>) {
        for (group, meta) in emptied {
            self.store_membership(&group, Some(group_value(&meta)));
        }
    }

    /// SyncGroup: followers' answers arrive with the leader's assignment.
    pub fn sync(&self, request: SyncRequest, now_ms: i64) -> oneshot::Receiver<SyncResponse> {
        let mut stable = None;
        let rx = self.sync_locked(&request, now_ms, &mut stable);
        if let Some(value) = stable {
            self.store_membership(&request.group_id, Some(value));
        }
        rx
    }

    fn sync_locked(
        &self,
        request: &SyncRequest,
        now_ms: i64,
        stable: &mut Option<Vec<u8>>,
    ) -> oneshot::Receiver<SyncResponse> {
        tracing::debug!(group = %request.group_id, member = %request.member_id, generation = request.generation_id, "sync");
        let (tx, rx) = oneshot::channel();
        let mut groups = self.groups.lock();
        let Some(group) = groups.get_mut(&request.group_id) else {
            let _ = tx.send(SyncResponse::error(GroupError::UnknownMemberId));
            return rx;
        };
        if let Err(e) = group.member_check(&request.member_id, request.group_instance_id.as_deref()) {
            let _ = tx.send(SyncResponse::error(e));
            return rx;
        }
        if request.generation_id != group.generation {
            let _ = tx.send(SyncResponse::error(GroupError::IllegalGeneration));
            return rx;
        }
        let answer = |group: &Group, assignment: Vec<u8>| SyncResponse {
            error: None,
            protocol_type: group.protocol_type.clone(),
            protocol_name: group.protocol.clone(),
            assignment,
        };
        match group.state {
            GroupState::Empty | GroupState::PreparingRebalance => {
                let _ = tx.send(SyncResponse::error(GroupError::RebalanceInProgress));
            }
            GroupState::Stable => {
                let assignment = group.members[&request.member_id].assignment.clone();
                let _ = tx.send(answer(group, assignment));
            }
            GroupState::CompletingRebalance => {
                let is_leader = group.leader.as_deref() == Some(request.member_id.as_str());
                if let Some(member) = group.members.get_mut(&request.member_id) {
                    member.last_heartbeat_ms = now_ms;
                    member.sync_waiter = Some(tx);
                }
                if is_leader {
                    let mut given: HashMap<String, Vec<u8>> = request.assignments.iter().cloned().collect();
                    for (id, member) in group.members.iter_mut() {
                        member.assignment = given.remove(id).unwrap_or_default();
                    }
                    group.state = GroupState::Stable;
                    *stable = Some(group_value(&group.metadata(now_ms)));
                    let waiting: Vec<(oneshot::Sender<SyncResponse>, Vec<u8>)> = group
                        .members
                        .values_mut()
                        .filter_map(|m| m.sync_waiter.take().map(|w| (w, m.assignment.clone())))
                        .collect();
                    for (w, assignment) in waiting {
                        let _ = w.send(answer(group, assignment));
                    }
                }
            }
        }
        rx
    }

    /// Heartbeat: keeps the member alive; says when to rejoin.
    pub fn heartbeat(
        &self,
        group_id: &str,
        generation_id: i32,
        member_id: &str,
        instance_id: Option<&str>,
        now_ms: i64,
    ) -> Result<(), GroupError> {
        tracing::debug!(
            group = group_id,
            member = member_id,
            generation = generation_id,
            "heartbeat"
        );
        let mut groups = self.groups.lock();
        let group = groups.get_mut(group_id).ok_or(GroupError::UnknownMemberId)?;
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
    }

    /// LeaveGroup: each (member id, instance id) leaves; the rest rebalance.
    pub fn leave(
        &self,
        group_id: &str,
        members: &[(String, Option<String>)],
        now_ms: i64,
    ) -> Vec<Result<(), GroupError>> {
        let mut groups = self.groups.lock();
        let Some(group) = groups.get_mut(group_id) else {
            return vec![Err(GroupError::UnknownMemberId); members.len()];
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
                group.remove_member(&id);
                Ok(())
            })
            .collect();
        let mut emptied = Vec::new();
        if results.iter().any(Result::is_ok) {
            group.prepare_rebalance(now_ms, 0);
            if group.try_complete_join(group_id, now_ms) {
                emptied.push((group_id.to_string(), group.metadata(now_ms)));
            }
        }
        drop(groups);
        self.store_emptied(emptied);
        results
    }

    /// Expires silent members (and handed-out ids never used), completes
    /// rebalances whose timeout passed, and removes offsets of groups
    /// without members that are older than `offsets.retention.minutes`.
    pub fn tick(&self, now_ms: i64) {
        let mut emptied = Vec::new();
        {
            let mut groups = self.groups.lock();
            for (id, group) in groups.iter_mut() {
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
                        group.remove_member(member);
                    }
                    group.prepare_rebalance(now_ms, 0);
                }
                if group.try_complete_join(id, now_ms) {
                    emptied.push((id.clone(), group.metadata(now_ms)));
                }
            }
            groups.retain(|_, g| !(g.members.is_empty() && g.pending.is_empty() && g.state == GroupState::Empty));
        }
        self.store_emptied(emptied);
        self.expire_offsets(now_ms);
    }

    fn expire_offsets(&self, now_ms: i64) {
        let retention = self.config.offsets_retention_ms;
        let live: Vec<String> = self.groups.lock().keys().cloned().collect();
        let mut expired: Vec<(String, Vec<(String, i32)>)> = Vec::new();
        for (group, offsets) in self.offsets.lock().iter() {
            if live.contains(group) {
                continue;
            }
            let old: Vec<(String, i32)> = offsets
                .iter()
                .filter(|(_, o)| now_ms - o.commit_timestamp > retention)
                .map(|(k, _)| k.clone())
                .collect();
            if !old.is_empty() {
                expired.push((group.clone(), old));
            }
        }
        for (group, partitions) in expired {
            if self.delete_offsets(&group, &partitions).is_ok() {
                info!(group = %group, partitions = partitions.len(), "expired committed offsets");
            }
        }
    }

    fn delete_offsets(&self, group: &str, partitions: &[(String, i32)]) -> Result<(), GroupError> {
        let tombstones: Vec<StoredRecord> = partitions
            .iter()
            .map(|(topic, partition)| {
                let key = OffsetKey {
                    group: group.to_string(),
                    topic: topic.clone(),
                    partition: *partition,
                };
                (offset_key(&key), None)
            })
            .collect();
        self.store
            .append(group, &tombstones)
            .map_err(|_| GroupError::CoordinatorNotAvailable)?;
        let mut offsets = self.offsets.lock();
        if let Some(stored) = offsets.get_mut(group) {
            for p in partitions {
                stored.remove(p);
            }
            if stored.is_empty() {
                offsets.remove(group);
            }
        }
        Ok(())
    }

    /// OffsetCommit: checks the member and generation (a generation of −1
    /// with no member commits for a group without live members), then
    /// stores every offset in one append.
    #[allow(clippy::too_many_arguments)]
    pub fn commit(
        &self,
        group_id: &str,
        generation_id: i32,
        member_id: &str,
        instance_id: Option<&str>,
        offsets: &[(String, i32, CommittedOffset)],
    ) -> Result<(), GroupError> {
        if group_id.is_empty() {
            return Err(GroupError::InvalidGroupId);
        }
        {
            let groups = self.groups.lock();
            match groups.get(group_id) {
                Some(group) if !group.members.is_empty() => {
                    if generation_id < 0 && member_id.is_empty() {
                        return Err(GroupError::IllegalGeneration);
                    }
                    group.member_check(member_id, instance_id)?;
                    // As Kafka: members commit while a rebalance is being
                    // prepared (before they rejoin), not between the join
                    // and the assignment.
                    if group.state == GroupState::CompletingRebalance {
                        return Err(GroupError::RebalanceInProgress);
                    }
                    if generation_id != group.generation {
                        return Err(GroupError::IllegalGeneration);
                    }
                }
                _ if generation_id >= 0 || !member_id.is_empty() => return Err(GroupError::UnknownMemberId),
                _ => {}
            }
        }
        let records: Vec<StoredRecord> = offsets
            .iter()
            .map(|(topic, partition, value)| {
                let key = OffsetKey {
                    group: group_id.to_string(),
                    topic: topic.clone(),
                    partition: *partition,
                };
                (offset_key(&key), Some(offset_value(value)))
            })
            .collect();
        self.store
            .append(group_id, &records)
            .map_err(|_| GroupError::CoordinatorNotAvailable)?;
        let mut stored = self.offsets.lock();
        let group = stored.entry(group_id.to_string()).or_default();
        for (topic, partition, value) in offsets {
            group.insert((topic.clone(), *partition), value.clone());
        }
        Ok(())
    }

    /// OffsetFetch: the committed offsets of `partitions` (`None`: all).
    pub fn committed(
        &self,
        group_id: &str,
        partitions: Option<&[(String, i32)]>,
    ) -> Vec<((String, i32), Option<CommittedOffset>)> {
        let stored = self.offsets.lock();
        let group = stored.get(group_id);
        match partitions {
            Some(wanted) => wanted
                .iter()
                .map(|p| (p.clone(), group.and_then(|g| g.get(p)).cloned()))
                .collect(),
            None => group
                .map(|g| g.iter().map(|(k, v)| (k.clone(), Some(v.clone()))).collect())
                .unwrap_or_default(),
        }
    }

    /// DescribeGroups for one group (an unknown group describes as Dead
    /// with no members, as Kafka answers; `None` here).
    pub fn describe(&self, group_id: &str) -> Option<GroupDescription> {
        let groups = self.groups.lock();
        let group = groups.get(group_id)?;
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
        let groups = self.groups.lock();
        let mut out: BTreeMap<String, (String, GroupState)> = groups
            .iter()
            .map(|(id, g)| (id.clone(), (g.protocol_type.clone().unwrap_or_default(), g.state)))
            .collect();
        for id in self.offsets.lock().keys() {
            out.entry(id.clone())
                .or_insert_with(|| ("consumer".to_string(), GroupState::Empty));
        }
        out.into_iter().map(|(id, (t, s))| (id, t, s)).collect()
    }

    /// DeleteGroups: a group without members loses its offsets.
    pub fn delete(&self, group_id: &str) -> Result<(), GroupError> {
        if self.groups.lock().get(group_id).is_some_and(|g| !g.members.is_empty()) {
            return Err(GroupError::NonEmptyGroup);
        }
        let partitions: Vec<(String, i32)> = match self.offsets.lock().get(group_id) {
            Some(o) => o.keys().cloned().collect(),
            None if self.groups.lock().contains_key(group_id) => Vec::new(),
            None => return Err(GroupError::GroupIdNotFound),
        };
        self.delete_offsets(group_id, &partitions)?;
        self.store
            .append(group_id, &[(group_key(group_id), None)])
            .map_err(|_| GroupError::CoordinatorNotAvailable)?;
        self.groups.lock().remove(group_id);
        Ok(())
    }
}

/// The thread that calls [`GroupCoordinator::tick`] on a period.
pub struct Ticker {
    stop: std::sync::mpsc::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

impl Ticker {
    /// Stops the thread and waits for it.
    pub fn stop(self) {
        drop(self.stop);
        let _ = self.thread.join();
    }
}

impl GroupCoordinator {
    /// Ticks `coordinator` every `every` with the system clock on a thread
    /// of its own (ticks may append offset tombstones: blocking work).
    pub fn spawn_ticker(coordinator: Arc<Self>, every: std::time::Duration) -> std::io::Result<Ticker> {
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("gregor-group-ticker".into())
            .spawn(move || {
                while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(every) {
                    coordinator.tick(wall_clock_ms());
                }
            })?;
        Ok(Ticker { stop, thread })
    }
}
