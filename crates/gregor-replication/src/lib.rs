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
//!
//! ```
//! use gregor_replication::{LeaderAndIsr, LeaderPartition, ReplicaSettings};
//!
//! // Broker 1 leads a partition replicated on brokers 1, 2 and 3.
//! let state = LeaderAndIsr { leader: 1, leader_epoch: 0, isr: vec![1, 2, 3], controller_epoch: 1 };
//! let mut leader = LeaderPartition::new(1, &state, 0, &[1, 2, 3], 0, 0, ReplicaSettings::default(), 0);
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
mod role;

pub use assignment::{assign_replicas, AssignmentError, BrokerInfo};
pub use controller::{elect_leader, Controller, ControllerCommand, Election, PartitionRecord};
pub use follower::{follower_high_watermark, EpochEnd, FollowerPartition, FollowerRequest, LocalLog, Truncation};
pub use leader::{IsrChange, LeaderPartition, LeaderProgress};
pub use purgatory::{AckOutcome, AckPurgatory, Completed};
pub use role::{ControllerFence, ReplicaRole, RoleChange};

/// A broker's id (`broker.id`).
pub type BrokerId = i32;

/// The leader of a partition that has none.
pub const NO_LEADER: BrokerId = -1;

/// A partition's leadership as the controller records it
/// (`/brokers/topics/<t>/partitions/<p>/state`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaderAndIsr {
    /// The leader, or [`NO_LEADER`].
    pub leader: BrokerId,
    /// Bumped at every leader change.
    pub leader_epoch: i32,
    /// The in-sync replicas.
    pub isr: Vec<BrokerId>,
    /// Epoch of the controller that wrote it.
    pub controller_epoch: i32,
}

/// Replication settings (Kafka's names in comments).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplicaSettings {
    /// `replica.lag.time.max.ms`: a follower that has not caught up for
    /// this long leaves the ISR.
    pub replica_lag_time_max_ms: u64,
    /// `min.insync.replicas`: the ISR size `acks=all` needs.
    pub min_insync_replicas: usize,
}

impl Default for ReplicaSettings {
    fn default() -> Self {
        Self {
            replica_lag_time_max_ms: 30_000,
            min_insync_replicas: 1,
        }
    }
}

/// Why a replication step was refused; each maps to Kafka's error code of
/// the same name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ReplicationError {
    /// This broker does not lead the partition.
    #[error("not the leader of the partition")]
    NotLeaderOrFollower,
    /// The request carries an older leader epoch than the partition's.
    #[error("fenced leader epoch")]
    FencedLeaderEpoch,
    /// The request carries a newer leader epoch than this broker knows.
    #[error("unknown leader epoch")]
    UnknownLeaderEpoch,
    /// The ISR is smaller than `min.insync.replicas`; nothing was written.
    #[error("not enough in-sync replicas")]
    NotEnoughReplicas,
    /// Written, but the ISR shrank below `min.insync.replicas` before every
    /// member had it.
    #[error("not enough in-sync replicas after append")]
    NotEnoughReplicasAfterAppend,
    /// The replicas did not all have the records in time.
    #[error("request timed out")]
    RequestTimedOut,
    /// The broker is not a replica of the partition.
    #[error("not a replica of the partition")]
    UnknownReplica,
    /// The controller epoch is older than one already seen.
    #[error("stale controller epoch")]
    StaleControllerEpoch,
    /// The leader epoch is not newer than the partition's.
    #[error("stale leader epoch")]
    StaleLeaderEpoch,
}
