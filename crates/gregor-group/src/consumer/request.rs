//! The consumer protocol's vocabulary: a ConsumerGroupHeartbeat as the
//! state machine takes it, its answer, what it is told of topics, and
//! what describing a consumer group shows.

use std::collections::BTreeMap;

use uuid::Uuid;

use crate::consumer::assignor::Assignment;
use crate::consumer::group::ConsumerGroupState;

/// The epoch of a member joining.
pub const JOIN_EPOCH: i32 = 0;
/// The epoch of a member leaving for good.
pub const LEAVE_EPOCH: i32 = -1;
/// The epoch of a static member leaving for now (it may come back as
/// the same instance and carry on with its assignment).
pub const STATIC_LEAVE_EPOCH: i32 = -2;

/// A ConsumerGroupHeartbeat.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConsumerHeartbeat {
    /// The group.
    pub group_id: String,
    /// The member id: chosen by the client (v1), or empty on a v0 join
    /// (the coordinator makes one).
    pub member_id: String,
    /// [`JOIN_EPOCH`], [`LEAVE_EPOCH`], [`STATIC_LEAVE_EPOCH`] or the
    /// member's current epoch.
    pub member_epoch: i32,
    /// `group.instance.id`, for a static member.
    pub instance_id: Option<String>,
    /// `client.rack`.
    pub rack_id: Option<String>,
    /// The rebalance timeout, -1 if unchanged.
    pub rebalance_timeout_ms: i32,
    /// The subscribed topics, `None` if unchanged.
    pub subscribed_topic_names: Option<Vec<String>>,
    /// A subscription pattern (v1), `None` if unchanged.
    pub subscribed_topic_regex: Option<String>,
    /// The server assignor asked for, `None` if unchanged.
    pub server_assignor: Option<String>,
    /// The partitions the member holds, `None` if unchanged.
    pub owned: Option<Assignment>,
    /// Client id, for describing the group.
    pub client_id: String,
    /// Client host, for describing the group.
    pub client_host: String,
}

/// The answer to a ConsumerGroupHeartbeat that succeeded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConsumerHeartbeatAnswer {
    /// The member's id.
    pub member_id: String,
    /// The member's epoch now.
    pub member_epoch: i32,
    /// How often the member is to heartbeat.
    pub heartbeat_interval_ms: i32,
    /// The partitions the member is to hold, when they changed (or it
    /// joined); `None` when it keeps what it has.
    pub assignment: Option<Assignment>,
}

/// What the coordinator knows of topics: the id and partition count of
/// an existing topic by name, and every topic's name (for pattern
/// subscriptions).
pub trait TopicLookup {
    /// The id and partition count of topic `name`, if it exists.
    fn topic(&self, name: &str) -> Option<(Uuid, i32)>;
    /// The names of every topic a pattern may match (internal ones left
    /// out).
    fn names(&self) -> Vec<String>;
}

impl TopicLookup for BTreeMap<String, (Uuid, i32)> {
    fn topic(&self, name: &str) -> Option<(Uuid, i32)> {
        self.get(name).copied()
    }

    fn names(&self) -> Vec<String> {
        self.keys().filter(|n| !n.starts_with("__")).cloned().collect()
    }
}

/// One member as ConsumerGroupDescribe shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerMemberDescription {
    /// Member id.
    pub member_id: String,
    /// `group.instance.id`.
    pub instance_id: Option<String>,
    /// `client.rack`.
    pub rack_id: Option<String>,
    /// Its epoch.
    pub member_epoch: i32,
    /// Client id.
    pub client_id: String,
    /// Client host.
    pub client_host: String,
    /// Subscribed topics.
    pub subscribed_topic_names: Vec<String>,
    /// Subscription pattern.
    pub subscribed_topic_regex: Option<String>,
    /// The partitions it holds.
    pub assignment: Assignment,
    /// Its target assignment.
    pub target_assignment: Assignment,
}

/// A consumer group as ConsumerGroupDescribe shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerGroupDescription {
    /// The group.
    pub group_id: String,
    /// Its state.
    pub state: ConsumerGroupState,
    /// The group epoch.
    pub epoch: i32,
    /// The target assignment's epoch.
    pub assignment_epoch: i32,
    /// The assignor of its next target.
    pub assignor_name: String,
    /// Members by id.
    pub members: Vec<ConsumerMemberDescription>,
}
