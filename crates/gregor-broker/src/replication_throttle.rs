//! Kafka's replication throttles (KIP-73). Follower side: while a replica
//! its topic names in `follower.replication.throttled.replicas`
//! (`partition:broker` pairs, or `*`) is out of the ISR, the fetches of
//! such replicas on this broker share `follower.replication.throttled.rate`
//! bytes/s — a throttled partition is left out of the next fetch while
//! the rate is over it. Leader side: a partition whose replica here is
//! named in `leader.replication.throttled.replicas` answers an out-of-sync
//! follower no records while this broker's reads for such followers are
//! over `leader.replication.throttled.rate`. In-sync replicas are never
//! throttled, so a reassignment's copy cannot slow the partitions it does
//! not move.

use gregor_log::TopicPartition;
use parking_lot::Mutex;

use crate::quotas::{QuotaWindow, SampledRate};
use crate::Broker;

/// The topic config naming the replicas throttled on the follower side.
pub const FOLLOWER_THROTTLED_REPLICAS: &str = "follower.replication.throttled.replicas";
/// The topic config naming the replicas throttled on the leader side.
pub const LEADER_THROTTLED_REPLICAS: &str = "leader.replication.throttled.replicas";

/// The follower side's measured replication rate of throttled replicas.
#[derive(Debug, Default)]
pub struct ReplicationThrottle {
    rate: Mutex<SampledRate>,
    window: QuotaWindow,
}

impl ReplicationThrottle {
    /// A throttle sampled over `window` (Kafka's replication quotas use
    /// `replication.quota.window.num` = 11 samples of 1 s).
    pub fn new(window: QuotaWindow) -> Self {
        Self {
            rate: Mutex::new(SampledRate::default()),
            window,
        }
    }

    /// Whether the rate is over `bound` bytes/s at `now_ms`.
    pub fn exceeded(&self, bound: u64, now_ms: i64) -> bool {
        self.rate.lock().rate(self.window, now_ms) > bound as f64
    }

    /// Counts `bytes` fetched at `now_ms`.
    pub fn record(&self, bytes: usize, now_ms: i64) {
        self.rate.lock().record(self.window, bytes as f64, now_ms);
    }
}

/// Whether a throttled-replicas config value names replica `broker` of
/// `partition`.
pub fn names_replica(list: &str, partition: u32, broker: i32) -> bool {
    let wanted = format!("{partition}:{broker}");
    list.split(',')
        .map(str::trim)
        .any(|entry| entry == "*" || entry == wanted)
}

impl Broker {
    /// Whether the topic's `config` list names this broker's replica of `tp`.
    fn names_local_replica(&self, tp: &TopicPartition, config: &str) -> bool {
        self.topics()
            .get(&tp.topic)
            .and_then(|t| t.overrides.get(config).cloned())
            .is_some_and(|list| names_replica(&list, tp.partition, self.config().node_id))
    }

    /// Whether `broker` is in `tp`'s ISR as this broker knows it.
    fn in_sync(&self, tp: &TopicPartition, broker: i32) -> bool {
        self.replicas()
            .partition_record(tp)
            .is_some_and(|r| r.state.isr.contains(&broker))
    }

    /// Whether this broker's replica of `tp` is throttled now: named by its
    /// topic, out of the ISR, and a follower rate set.
    fn follower_throttled(&self, tp: &TopicPartition) -> Option<u64> {
        let bound = self.dynamic_config().follower_replication_throttled_rate()?;
        let named = self.names_local_replica(tp, FOLLOWER_THROTTLED_REPLICAS);
        (named && !self.in_sync(tp, self.config().node_id)).then_some(bound)
    }

    /// Whether reads of `tp` (led here) for `follower` are throttled now.
    fn leader_throttled(&self, tp: &TopicPartition, follower: i32) -> Option<u64> {
        let bound = self.dynamic_config().leader_replication_throttled_rate()?;
        let named = self.names_local_replica(tp, LEADER_THROTTLED_REPLICAS);
        (named && !self.in_sync(tp, follower)).then_some(bound)
    }

    /// Whether a follower fetch of `tp` by `follower` gets no records now:
    /// it is throttled and the leader rate is over its bound.
    pub fn leader_read_waits(&self, tp: &TopicPartition, follower: i32) -> bool {
        self.leader_throttled(tp, follower)
            .is_some_and(|bound| self.leader_replication_throttle().exceeded(bound, self.now_ms()))
    }

    /// Counts `bytes` read of `tp` for `follower` against the leader rate
    /// (when throttled).
    pub fn record_leader_read(&self, tp: &TopicPartition, follower: i32, bytes: usize) {
        if self.leader_throttled(tp, follower).is_some() {
            self.leader_replication_throttle().record(bytes, self.now_ms());
        }
    }

    /// Whether the fetch of `tp` waits: it is throttled and the follower
    /// rate is over its bound.
    pub fn follower_fetch_waits(&self, tp: &TopicPartition) -> bool {
        self.follower_throttled(tp)
            .is_some_and(|bound| self.replication_throttle().exceeded(bound, self.now_ms()))
    }

    /// Counts `bytes` fetched for `tp` against the follower rate (when it
    /// is throttled).
    pub fn record_follower_fetch(&self, tp: &TopicPartition, bytes: usize) {
        if self.follower_throttled(tp).is_some() {
            self.replication_throttle().record(bytes, self.now_ms());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_name_replicas_as_kafka_writes_them() {
        assert!(names_replica("0:1,1:1", 1, 1));
        assert!(!names_replica("0:1,1:1", 1, 0));
        assert!(names_replica("*", 7, 3));
        assert!(!names_replica("", 0, 0));
    }

    #[test]
    fn the_rate_is_checked_against_the_bound() {
        let t = ReplicationThrottle::new(QuotaWindow {
            samples: 2,
            window_ms: 1000,
        });
        assert!(!t.exceeded(1000, 0));
        t.record(5000, 0);
        assert!(t.exceeded(1000, 100), "5000 bytes within the first window");
        assert!(!t.exceeded(1000, 20_000), "the samples expired");
    }
}
