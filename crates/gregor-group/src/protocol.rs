//! The group protocol's vocabulary: requests, answers, errors, settings
//! and what DescribeGroups shows. Plain data, shared by the state machine
//! and its driver.

use gregor_log::TxnVerification;

use crate::consumer::Assignor;

/// Who a request speaks for: a member of one generation of a group,
/// static when it names its `group.instance.id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemberOf<'a> {
    /// The group.
    pub group_id: &'a str,
    /// The generation the member believes in.
    pub generation_id: i32,
    /// The member id.
    pub member_id: &'a str,
    /// `group.instance.id`, for a static member.
    pub instance_id: Option<&'a str>,
}

impl<'a> MemberOf<'a> {
    /// Member `member_id` (static with `instance_id`) of generation
    /// `generation_id` of `group_id`.
    pub fn new(group_id: &'a str, generation_id: i32, member_id: &'a str, instance_id: Option<&'a str>) -> Self {
        Self {
            group_id,
            generation_id,
            member_id,
            instance_id,
        }
    }
}

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
    /// OffsetDelete of a topic a live consumer group subscribes to.
    #[error("group subscribed to topic")]
    GroupSubscribedToTopic,
    /// DeleteGroups on an unknown group.
    #[error("group id not found")]
    GroupIdNotFound,
    /// An empty group id.
    #[error("invalid group id")]
    InvalidGroupId,
    /// The offsets could not be stored: retry.
    #[error("coordinator not available")]
    CoordinatorNotAvailable,
    /// This broker does not coordinate the group (it does not lead the
    /// group's `__consumer_offsets` partition, or has not loaded it):
    /// find the coordinator again.
    #[error("not coordinator")]
    NotCoordinator,
    /// OffsetFetch with `require_stable`: a transaction (or a commit
    /// still being written) has offsets of the partition not yet
    /// committed; retry.
    #[error("unstable offset commit")]
    UnstableOffsetCommit,
    /// TxnOffsetCommit: the log knows a newer epoch of the producer (a
    /// newer producer with its transactional id fenced it).
    #[error("invalid producer epoch")]
    InvalidProducerEpoch,
    /// TxnOffsetCommit: the batch would open the producer's transaction
    /// in the offsets partition without a verification that still holds
    /// (KIP-890: a marker landed after the transaction coordinator
    /// confirmed it).
    #[error("invalid transaction state")]
    InvalidTxnState,
    /// ConsumerGroupHeartbeat: the member's epoch is not the coordinator's
    /// (a newer one, or an old one with partitions it no longer holds):
    /// give up every partition and rejoin.
    #[error("fenced member epoch")]
    FencedMemberEpoch,
    /// OffsetCommit or OffsetFetch of a consumer-protocol member with an
    /// older epoch than its current one.
    #[error("stale member epoch")]
    StaleMemberEpoch,
    /// ConsumerGroupHeartbeat naming a server assignor the coordinator
    /// does not have.
    #[error("unsupported assignor")]
    UnsupportedAssignor,
    /// A static member joining while its instance id is still held by a
    /// member that has not left.
    #[error("unreleased instance id")]
    UnreleasedInstanceId,
    /// The group has `group.consumer.max.size` members already.
    #[error("group max size reached")]
    GroupMaxSizeReached,
    /// A subscription pattern that does not compile.
    #[error("invalid regular expression")]
    InvalidRegularExpression,
    /// A request whose fields break the protocol's rules.
    #[error("invalid request: {0}")]
    InvalidRequest(&'static str),
}

/// Why the offset store did not take a write.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The log refused a transactional batch: it knows a newer epoch of
    /// its producer.
    #[error("producer fenced: {0}")]
    ProducerFenced(String),
    /// The log refused a transactional batch opening its producer's
    /// transaction: its verification (KIP-890) no longer holds.
    #[error("transaction not verified: {0}")]
    NotVerified(String),
    /// Not stored (not the partition's leader, replicas behind, disk
    /// trouble): the client retries.
    #[error("{0}")]
    Unavailable(String),
}

impl From<&StoreError> for GroupError {
    fn from(error: &StoreError) -> Self {
        match error {
            StoreError::ProducerFenced(_) => Self::InvalidProducerEpoch,
            StoreError::NotVerified(_) => Self::InvalidTxnState,
            StoreError::Unavailable(_) => Self::CoordinatorNotAvailable,
        }
    }
}

/// The transactional producer a write belongs to (TxnOffsetCommit): its
/// batch carries the id and epoch and the transactional bit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TxnProducer {
    /// Producer id.
    pub id: i64,
    /// Producer epoch.
    pub epoch: i16,
    /// How the log checks that the transaction the batch may open was
    /// verified with the transaction coordinator (KIP-890).
    pub verification: TxnVerification,
}

impl TxnProducer {
    /// Producer `id` at `epoch`, its batch not checked for verification.
    pub fn new(id: i64, epoch: i16) -> Self {
        Self {
            id,
            epoch,
            verification: TxnVerification::Skip,
        }
    }
}

/// One entry of a `__consumer_offsets` partition as a reload reads it, in
/// log order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoadedRecord {
    /// A keyed record of a data batch.
    Record {
        /// Its key.
        key: Vec<u8>,
        /// Its value (`None`: a tombstone).
        value: Option<Vec<u8>>,
        /// Its offset in the partition.
        offset: u64,
        /// The producer id of its batch when that batch is transactional.
        producer: Option<i64>,
    },
    /// A transaction marker (a control batch) ending `producer_id`'s
    /// transaction.
    Marker {
        /// The producer.
        producer_id: i64,
        /// COMMIT (`true`) or ABORT.
        commit: bool,
    },
}

/// A committed offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedOffset {
    /// The next offset the group will read.
    pub offset: i64,
    /// Leader epoch of the committed record (-1: unknown).
    pub leader_epoch: i32,
    /// The client's metadata string.
    pub metadata: String,
    /// When it was committed (ms).
    pub commit_timestamp: i64,
}

/// One partition's answer to an OffsetFetch requiring stable offsets: its
/// committed offset (`None`: none), or
/// [`GroupError::UnstableOffsetCommit`].
pub type StableOffset = Result<Option<CommittedOffset>, GroupError>;

/// A stored record: key, and value or `None` for a tombstone.
pub type StoredRecord = (Vec<u8>, Option<Vec<u8>>);

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
    /// `offsets.retention.check.interval.ms`: an empty group without
    /// offsets is forgotten (its metadata tombstoned) this long after its
    /// last member left — Kafka forgets it at its next retention check, run
    /// at this interval; until then it is Empty (DeleteGroups succeeds).
    pub offsets_retention_check_interval_ms: i64,
    /// `group.consumer.session.timeout.ms`: a consumer-protocol member
    /// silent this long is fenced.
    pub consumer_session_timeout_ms: i32,
    /// `group.consumer.heartbeat.interval.ms`: how often consumer-protocol
    /// members heartbeat.
    pub consumer_heartbeat_interval_ms: i32,
    /// `group.consumer.max.size`: members a consumer group may have.
    pub consumer_max_size: usize,
    /// `group.consumer.assignors`: the server assignors, the first the
    /// default.
    pub consumer_assignors: Vec<Assignor>,
}

impl Default for GroupConfig {
    fn default() -> Self {
        Self {
            min_session_timeout_ms: 6_000,
            max_session_timeout_ms: 1_800_000,
            initial_rebalance_delay_ms: 0,
            offsets_retention_ms: 7 * 24 * 3_600_000,
            offsets_retention_check_interval_ms: 600_000,
            consumer_session_timeout_ms: 45_000,
            consumer_heartbeat_interval_ms: 5_000,
            consumer_max_size: i32::MAX as usize,
            consumer_assignors: vec![Assignor::Uniform, Assignor::Range],
        }
    }
}

impl GroupConfig {
    /// The server assignor of groups whose members name none: the first
    /// of `group.consumer.assignors`.
    pub fn default_assignor(&self) -> Assignor {
        self.consumer_assignors.first().copied().unwrap_or(Assignor::Uniform)
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
    /// An answer carrying only `error` (generation −1) for `member_id`.
    pub(crate) fn error(error: GroupError, member_id: &str) -> Self {
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
    /// An answer carrying only `error`.
    pub(crate) fn error(error: GroupError) -> Self {
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
