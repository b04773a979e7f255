//! # gregor-group
//!
//! Kafka's group coordinator: consumer groups with the classic protocol
//! (JoinGroup, SyncGroup, Heartbeat, LeaveGroup, static membership,
//! session and rebalance timeouts) and committed offsets stored as records
//! of the compacted `__consumer_offsets` topic in Kafka's schemas.
//!
//! - [`GroupCoordinator`] is the state machine; time is passed in and
//!   JoinGroup/SyncGroup answers arrive on one-shot channels, so it runs
//!   and is tested without sleeping. [`GroupCoordinator::tick`] expires
//!   members and completes timed-out rebalances.
//! - [`OffsetStore`] is where offsets go; the broker backs it with the
//!   group's partition of `__consumer_offsets` ([`records::partition_for`]).
//!
//! Membership is stored too (Kafka's group metadata record, written when a
//! group becomes stable or empty), so after a coordinator restart a stable
//! group carries on with the same generation and member ids.
//!
//! What it is not: it does not speak the wire protocol (gregor-routing
//! maps requests to it).

#![deny(missing_docs)]

mod coordinator;
pub mod records;

pub use coordinator::{
    GroupConfig, GroupCoordinator, GroupDescription, GroupError, GroupState, JoinRequest, JoinResponse, JoinedMember,
    MemberDescription, OffsetStore, StoredRecord, SyncRequest, SyncResponse, Ticker,
};
pub use records::{CommittedOffset, OFFSETS_TOPIC};
