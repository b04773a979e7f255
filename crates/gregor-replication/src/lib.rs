//! # gregor-replication
//!
//! Kafka's replication protocol as **sans-IO** state machines: they take
//! inputs (follower fetches, coordination results, clock readings in
//! milliseconds) and return what should happen next; they never touch a
//! socket, a disk or a clock. gregor-server drives them with the network
//! and gregor-log; the crate's simulation test drives them with a
//! simulated network and simulated disks under thousands of seeded
//! schedules.
//!
//! - [`LeaderPartition`]: a partition this broker leads — each follower's
//!   log end offset, the in-sync replica set (ISR), the high watermark
//!   (min log end offset over the ISR), ISR shrink after
//!   `replica.lag.time.max.ms` and expansion when a follower catches up,
//!   `acks=all` bookkeeping with `min.insync.replicas`.
//! - [`FollowerPartition`]: a partition this broker follows — truncation
//!   by leader epoch (OffsetsForLeaderEpoch) before fetching.
//! - [`ReplicaRole`]: which of the two a partition is, switched by the
//!   controller's LeaderAndIsr, fenced by leader and controller epochs.
//! - [`AckPurgatory`]: produce requests waiting for `acks=all`.
//! - [`Controller`]: the cluster's controller — leader election from the
//!   ISR on broker loss, preferred leaders, the commands to send.
//! - [`assign_replicas`]: Kafka's replica placement (rack-aware).
//! - [`ReplicaSelector`]: the replica a consumer should fetch from
//!   (KIP-392, `replica.selector.class`).
//!
//! ```
//! use gregor_replication::{LeaderAndIsr, LeaderPartition, LocalPosition, PartitionRecord, ReplicaSettings};
//!
//! // Broker 1 leads a partition replicated on brokers 1, 2 and 3.
//! let state = LeaderAndIsr { leader: 1, leader_epoch: 0, isr: vec![1, 2, 3], controller_epoch: 1 };
//! let record = PartitionRecord { replicas: vec![1, 2, 3], state, version: 0 };
//! let empty = LocalPosition { log_end: 0, high_watermark: 0 };
//! let mut leader = LeaderPartition::new(1, &record, empty, ReplicaSettings::default(), 0);
//! leader.on_append(10); // ten records written locally
//! leader.on_follower_fetch(2, 10, 5).unwrap();
//! assert_eq!(leader.high_watermark(), 0); // broker 3 has not fetched yet
//! leader.on_follower_fetch(3, 10, 6).unwrap();
//! assert_eq!(leader.high_watermark(), 10); // every ISR member has the records
//! ```

#![deny(missing_docs)]

mod assignment;
mod controller;
mod follower;
mod leader;
mod purgatory;
mod read_replica;
mod role;
mod types;

pub use assignment::{assign_replicas, AssignmentError, BrokerInfo};
pub use controller::{
    elect_leader, Controller, ControllerCommand, Election, ElectionError, ElectionKind, Reassignment, ReassignmentError,
};
pub use follower::{follower_high_watermark, EpochEnd, FollowerPartition, FollowerRequest, LocalLog, Truncation};
pub use leader::{IsrChange, LeaderPartition, LeaderProgress};
pub use purgatory::{AckOutcome, AckPurgatory, Completed};
pub use read_replica::{ReplicaSelector, ReplicaView, UnknownReplicaSelector, RACK_AWARE_REPLICA_SELECTOR};
pub use role::{ControllerFence, ReplicaRole, RoleChange};
pub use types::{BrokerId, LeaderAndIsr, LocalPosition, PartitionRecord, ReplicaSettings, ReplicationError, NO_LEADER};
