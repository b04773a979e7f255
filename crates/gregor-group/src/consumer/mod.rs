//! The consumer group protocol of KIP-848 (ConsumerGroupHeartbeat,
//! ConsumerGroupDescribe), which Kafka 4's Java client speaks with
//! `group.protocol=consumer`: the coordinator, not a member, assigns
//! partitions, and members reconcile towards their targets one heartbeat
//! at a time.
//!
//! Modules by job: `assignor` (the server-side `uniform` and `range`
//! assignors), `reconcile` (a member's next step towards its target),
//! `group` (a consumer group's state), `describe` (what is shown of it), `heartbeat` (the heartbeat and
//! expiry in the state machine), `load` (a group rebuilt from its
//! records), `patterns` (pattern subscriptions), `records` (Kafka's record schemas, keys 3–8) `store` (the way to the log) and
//! `request` (the protocol's vocabulary).

mod assignor;
mod describe;
mod group;
mod heartbeat;
mod load;
mod patterns;
mod reconcile;
pub(crate) mod records;
mod request;
mod store;

pub use assignor::{partitions, Assignment, AssignmentSpec, Assignor, MemberSpec};
pub(crate) use group::ConsumerGroup;
pub use group::ConsumerGroupState;
pub(crate) use load::ConsumerGroupsLoader;
pub use reconcile::{CurrentAssignment, MemberState};
pub use records::{ConsumerRecord, MemberMetadata};
pub use request::{
    ConsumerGroupDescription, ConsumerHeartbeat, ConsumerHeartbeatAnswer, ConsumerMemberDescription, TopicLookup,
    JOIN_EPOCH, LEAVE_EPOCH, STATIC_LEAVE_EPOCH,
};
