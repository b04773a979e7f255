//! Fetch from followers (KIP-392): which replica a consumer should read a
//! partition from, as a leader answers it in `preferred_read_replica`.
//!
//! Kafka's `ReplicaManager.findPreferredReadReplica` and its
//! `RackAwareReplicaSelector`, without IO: the leader lists the followers
//! that may serve the fetch offset ([`crate::LeaderPartition::read_replica_candidates`]),
//! the caller adds their racks, and [`ReplicaSelector::preferred_read_replica`]
//! picks one — `None` when the leader itself is the one to read from.

use crate::types::BrokerId;

/// The class name of Kafka's rack-aware selector, the one value of
/// `replica.selector.class` gregor serves.
pub const RACK_AWARE_REPLICA_SELECTOR: &str = "org.apache.kafka.common.replica.RackAwareReplicaSelector";

/// `replica.selector.class`: how a leader picks the replica a consumer
/// reads from. Without one (Kafka's default) consumers read from leaders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplicaSelector {
    /// Kafka's `RackAwareReplicaSelector`: the leader if it is in the
    /// client's rack (or the client names none, or no replica is there),
    /// else the most caught-up replica in the client's rack.
    RackAware,
}

/// A `replica.selector.class` gregor does not implement.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("replica.selector.class {0:?} is not supported: the only selector available is {RACK_AWARE_REPLICA_SELECTOR} (or none, to read from leaders only)")]
pub struct UnknownReplicaSelector(pub String);

impl ReplicaSelector {
    /// The selector `replica.selector.class` names: `None` for an empty
    /// value (no selector), an error for a class gregor does not have.
    pub fn from_class_name(name: &str) -> Result<Option<Self>, UnknownReplicaSelector> {
        match name.trim() {
            "" => Ok(None),
            RACK_AWARE_REPLICA_SELECTOR => Ok(Some(Self::RackAware)),
            other => Err(UnknownReplicaSelector(other.to_string())),
        }
    }

    /// The replica a consumer in `client_rack` should fetch from, given
    /// the `leader` and the followers that may serve its fetch offset
    /// (`candidates`: in the ISR, holding the offset); `None` when it is
    /// the leader — Kafka never sends the leader as preferred replica.
    pub fn preferred_read_replica(
        &self,
        client_rack: &str,
        leader: &ReplicaView,
        candidates: &[ReplicaView],
    ) -> Option<BrokerId> {
        match self {
            Self::RackAware => {
                if client_rack.is_empty() || leader.rack.as_deref() == Some(client_rack) {
                    return None;
                }
                candidates
                    .iter()
                    .filter(|r| r.id != leader.id && r.rack.as_deref() == Some(client_rack))
                    .max_by(|a, b| a.caught_up_order(b))
                    .map(|r| r.id)
            }
        }
    }
}

/// A replica as a selector sees it (Kafka's `ReplicaView`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaView {
    /// The broker holding it.
    pub id: BrokerId,
    /// Its `broker.rack` (`None`: none, or the broker has no endpoint for
    /// the client's listener — it cannot be sent to the client then).
    pub rack: Option<String>,
    /// Its log end offset as the leader knows it.
    pub log_end: u64,
    /// Milliseconds since it last had everything the leader had (0 for
    /// the leader).
    pub time_since_caught_up_ms: u64,
}

impl ReplicaView {
    /// Kafka's `ReplicaView.comparator()`: "more caught up" is greater —
    /// a higher log end, then a more recent catch-up, then a higher id.
    fn caught_up_order(&self, other: &Self) -> std::cmp::Ordering {
        self.log_end
            .cmp(&other.log_end)
            .then(other.time_since_caught_up_ms.cmp(&self.time_since_caught_up_ms))
            .then(self.id.cmp(&other.id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(id: BrokerId, rack: &str, log_end: u64, since: u64) -> ReplicaView {
        ReplicaView {
            id,
            rack: (!rack.is_empty()).then(|| rack.to_string()),
            log_end,
            time_since_caught_up_ms: since,
        }
    }

    #[test]
    fn class_names() {
        assert_eq!(ReplicaSelector::from_class_name(""), Ok(None));
        assert_eq!(
            ReplicaSelector::from_class_name(RACK_AWARE_REPLICA_SELECTOR),
            Ok(Some(ReplicaSelector::RackAware))
        );
        let err = ReplicaSelector::from_class_name("com.example.Mine").unwrap_err();
        assert!(err.to_string().contains("com.example.Mine"), "{err}");
    }

    #[test]
    fn a_follower_in_the_clients_rack_is_preferred() {
        let leader = view(1, "r0", 100, 0);
        let followers = [view(2, "r1", 100, 0), view(3, "r2", 100, 0)];
        let s = ReplicaSelector::RackAware;
        assert_eq!(s.preferred_read_replica("r1", &leader, &followers), Some(2));
        assert_eq!(s.preferred_read_replica("r2", &leader, &followers), Some(3));
    }

    #[test]
    fn the_leader_when_in_the_rack_without_rack_or_without_candidate() {
        let leader = view(1, "r0", 100, 0);
        let followers = [view(2, "r1", 100, 0), view(3, "r0", 100, 0)];
        let s = ReplicaSelector::RackAware;
        // The leader is in the client's rack: it serves, even with a
        // follower there too.
        assert_eq!(s.preferred_read_replica("r0", &leader, &followers), None);
        // No rack named, or a rack without replicas.
        assert_eq!(s.preferred_read_replica("", &leader, &followers), None);
        assert_eq!(s.preferred_read_replica("r9", &leader, &followers), None);
        // No candidate left in the rack (out of the ISR, or behind the
        // fetch offset: the leader did not list it).
        assert_eq!(s.preferred_read_replica("r1", &leader, &followers[1..]), None);
        // A follower without a rack (or endpoint) never matches.
        assert_eq!(s.preferred_read_replica("r1", &leader, &[view(2, "", 100, 0)]), None);
    }

    #[test]
    fn the_most_caught_up_of_the_rack() {
        let leader = view(1, "r0", 100, 0);
        let s = ReplicaSelector::RackAware;
        let followers = [view(2, "r1", 90, 0), view(3, "r1", 100, 50), view(4, "r1", 95, 0)];
        assert_eq!(s.preferred_read_replica("r1", &leader, &followers), Some(3));
        // Same log end: the most recently caught up, then the highest id.
        let followers = [view(2, "r1", 100, 10), view(3, "r1", 100, 50)];
        assert_eq!(s.preferred_read_replica("r1", &leader, &followers), Some(2));
        let followers = [view(2, "r1", 100, 0), view(3, "r1", 100, 0)];
        assert_eq!(s.preferred_read_replica("r1", &leader, &followers), Some(3));
    }

    #[test]
    fn the_leader_lists_in_sync_followers_holding_the_offset() {
        use crate::{LeaderAndIsr, LeaderPartition, LocalPosition, PartitionRecord, ReplicaSettings};
        let state = LeaderAndIsr {
            leader: 1,
            leader_epoch: 0,
            isr: vec![1, 2, 3],
            controller_epoch: 1,
        };
        let record = PartitionRecord {
            replicas: vec![1, 2, 3, 4],
            state,
            version: 0,
        };
        let at = LocalPosition {
            log_end: 0,
            high_watermark: 0,
        };
        let mut leader = LeaderPartition::new(1, &record, at, ReplicaSettings::default(), 0);
        leader.on_append(100);
        // Nobody fetched yet: no follower is known to hold anything.
        assert!(leader.read_replica_candidates(0, 0).is_empty());
        leader.on_follower_fetch(2, 100, 10).unwrap();
        leader.on_follower_log_start(2, 20);
        leader.on_follower_fetch(3, 60, 10).unwrap();
        leader.on_follower_fetch(4, 100, 10).unwrap(); // not in the ISR
        let ids = |offset| -> Vec<BrokerId> {
            leader
                .read_replica_candidates(offset, 30)
                .into_iter()
                .map(|r| r.id)
                .collect()
        };
        assert_eq!(ids(50), vec![2, 3]);
        assert_eq!(ids(80), vec![2]); // 3 has only up to 60
        assert_eq!(ids(10), vec![3]); // 2 starts at 20
        let two = &leader.read_replica_candidates(100, 30)[0];
        assert_eq!((two.log_end, two.time_since_caught_up_ms), (100, 20));
    }
}
