//! # gregor-group
//!
//! Kafka's group coordinator: consumer groups with the classic protocol
//! (JoinGroup, SyncGroup, Heartbeat, LeaveGroup, static membership,
//! session and rebalance timeouts) and committed offsets stored as records
//! of the compacted `__consumer_offsets` topic in Kafka's schemas.
//!
//! Two layers:
//!
//! - [`GroupStateMachine`] is the coordinator as a sans-IO state machine:
//!   requests and events go in with the time (`now_ms`) and a
//!   [`RequestId`]; [`Output`]s come out — answers addressed to request
//!   ids, and records to persist, whose outcome is fed back with
//!   [`GroupStateMachine::persisted`]. It has no thread, channel, clock or
//!   store, and takes member ids from a [`MemberIdGenerator`], so a
//!   deterministic simulation drives it (`tests/simulation.rs`). As in
//!   Kafka, offsets are cached and commits answered, and a group made
//!   stable and its syncs answered, only once their records are
//!   acknowledged; a group's writes go out one at a time, in order.
//! - [`GroupCoordinator`] drives it for a broker: the machine behind a
//!   lock, JoinGroup/SyncGroup answers on one-shot channels, member ids
//!   from uuids, writes appended to an [`OffsetStore`] outside the lock,
//!   and a [`Ticker`] thread calling [`GroupCoordinator::tick`]. The broker
//!   backs the store with the group's partition of `__consumer_offsets`
//!   ([`records::partition_for`]).
//!
//! Modules by job: `protocol` (requests, answers, errors, settings),
//! `group` (a group, its members and its own transitions), `membership`
//! (join, sync, heartbeat, leave, expiry: the rebalance protocol),
//! `offsets` (commit, fetch, expiry, delete), `transactions`
//! (TxnOffsetCommit and the end of transactions), `offset_cache`
//! (committed offsets and those of open transactions, the same rules live
//! and on reload), `writes` (each group's ordered line of writes),
//! `machine` (the state machine's inputs, outputs and loading), `driver`
//! (the coordinator) and [`records`] (Kafka's record schemas).
//!
//! Transactional offset commits (KIP-98) are written as a transactional
//! batch of the producer and stay pending — invisible to OffsetFetch, and
//! UNSTABLE_OFFSET_COMMIT to one requiring stable offsets — until the
//! broker reports the transaction's marker in that partition
//! ([`GroupCoordinator::complete_transaction`]).
//!
//! Membership is stored too (Kafka's group metadata record, written when a
//! group becomes stable or empty), so after a coordinator restart a stable
//! group carries on with the same generation and member ids, and an empty
//! group's next generation follows its last.
//!
//! The consumer protocol of KIP-848 (ConsumerGroupHeartbeat: the
//! coordinator assigns partitions with its `uniform` or `range` assignor
//! and members reconcile towards their targets) lives in [`consumer`],
//! in the same state machine; its records are Kafka's (keys 3–8).
//!
//! What it is not: it does not speak the wire protocol (gregor-routing
//! maps requests to it).

#![deny(missing_docs)]

pub mod consumer;
mod driver;
mod group;
mod machine;
mod membership;
mod offset_cache;
mod offset_delete;
mod offsets;
mod outputs;
mod protocol;
pub mod records;
mod transactions;
mod writes;

pub use driver::{GroupCoordinator, OffsetStore, UuidMemberIds};
/// The thread of [`GroupCoordinator::spawn_ticker`].
pub use gregor_log::Ticker;
pub use machine::GroupStateMachine;
pub use outputs::{MemberIdGenerator, OffsetDeletion, Output, Persist, PersistId, RequestId, Response};
pub use protocol::{
    CommittedOffset, GroupConfig, GroupDescription, GroupError, GroupState, JoinRequest, JoinResponse, JoinedMember,
    LoadedRecord, MemberDescription, MemberOf, StableOffset, StoreError, StoredRecord, SyncRequest, SyncResponse,
    TxnProducer,
};
pub use records::OFFSETS_TOPIC;
