//! Fetch from followers (KIP-392) in the replica manager: the leader's
//! choice of a `preferred_read_replica` for a consumer (with
//! `replica.selector.class` set), and a follower serving a consumer from
//! its own log, to its own high watermark.

use std::sync::Arc;

use gregor_log::{Log, TopicPartition};
use gregor_replication::{BrokerId, ReplicaSelector, ReplicaView, ReplicationError};

use super::ReplicaManager;

impl ReplicaManager {
    /// Sets `replica.selector.class` (`None`: consumers read from leaders,
    /// Kafka's default).
    pub fn set_replica_selector(&self, selector: Option<ReplicaSelector>) {
        *self.replica_selector.write() = selector;
    }

    /// Whether `replica.selector.class` is set (without one no fetch
    /// needs [`ReplicaManager::preferred_read_replica`]).
    pub fn selects_read_replicas(&self) -> bool {
        self.replica_selector.read().is_some()
    }

    /// The replica a consumer in `client_rack` fetching `tp` at
    /// `fetch_offset` through listener `listener` should read from
    /// instead of this broker — Kafka's `findPreferredReadReplica`: only a
    /// leader answers one, only with a selector, only an in-sync follower
    /// holding the offset whose broker the client can reach on its
    /// listener, and never itself.
    pub fn preferred_read_replica(
        &self,
        tp: &TopicPartition,
        client_rack: &str,
        fetch_offset: i64,
        listener: &str,
    ) -> Option<BrokerId> {
        let selector = (*self.replica_selector.read())?;
        let fetch_offset = u64::try_from(fetch_offset).ok()?;
        let (log_end, mut candidates) = {
            let replica = self.replica(tp)?;
            let replica = replica.lock();
            let leader = replica.role.leader()?;
            (
                replica.log.end_offset(),
                leader.read_replica_candidates(fetch_offset, self.now_ms()),
            )
        };
        let view = self.view.read();
        let rack_of = |id: BrokerId| {
            view.brokers
                .get(&id)
                .filter(|b| b.for_listener(listener).is_some())
                .and_then(|b| b.rack.clone())
        };
        for candidate in &mut candidates {
            candidate.rack = rack_of(candidate.id);
        }
        let leader = ReplicaView {
            id: self.local,
            rack: rack_of(self.local),
            log_end,
            time_since_caught_up_ms: 0,
        };
        drop(view);
        selector.preferred_read_replica(client_rack, &leader, &candidates)
    }

    /// The log a consumer reads and the high watermark to read to, on the
    /// leader or — with `from_followers` (Fetch v11+, as Kafka's
    /// `FetchParams.fetchOnlyLeader`) — on a follower, whose own high
    /// watermark bounds the read. `current_leader_epoch` is checked
    /// against the epoch this replica knows, leader or follower:
    /// FENCED_LEADER_EPOCH when the client's is older, UNKNOWN_LEADER_EPOCH
    /// when newer.
    pub fn consumer_log(
        &self,
        tp: &TopicPartition,
        current_leader_epoch: Option<i32>,
        from_followers: bool,
    ) -> Result<(Arc<Log>, u64), ReplicationError> {
        if !from_followers {
            return self.leader_log(tp, current_leader_epoch);
        }
        let replica = self.hosted(tp)?;
        let replica = replica.lock();
        if let Some(leader) = replica.role.leader() {
            leader.check_epoch(current_leader_epoch)?;
            return Ok((replica.log.clone(), leader.high_watermark()));
        }
        let follower = replica.role.follower().ok_or(ReplicationError::NotLeaderOrFollower)?;
        match current_leader_epoch {
            Some(e) if e < follower.leader_epoch() => Err(ReplicationError::FencedLeaderEpoch),
            Some(e) if e > follower.leader_epoch() => Err(ReplicationError::UnknownLeaderEpoch),
            _ => Ok((replica.log.clone(), replica.log.high_watermark())),
        }
    }
}
