//! The values every replication state machine shares: broker ids, a
//! partition's leadership and record, settings, refusals.

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

/// A partition as the controller knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionRecord {
    /// The assigned replicas; the first is the preferred leader.
    pub replicas: Vec<BrokerId>,
    /// Leader, epoch and ISR.
    pub state: LeaderAndIsr,
    /// The version of the state in coordination (-1: not written yet).
    pub version: i32,
}

/// Where a replica's local log stands when it takes a role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalPosition {
    /// The log end offset.
    pub log_end: u64,
    /// The checkpointed high watermark.
    pub high_watermark: u64,
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
    /// The replica's log directory is offline.
    #[error("the replica's log directory is offline")]
    KafkaStorageError,
}
