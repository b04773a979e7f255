//! Kafka's replication throttles (KIP-73), follower side: while a replica
//! its topic names in `follower.replication.throttled.replicas`
//! (`partition:broker` pairs, or `*`) is out of the ISR, the fetches of
//! such replicas on this broker share `follower.replication.throttled.rate`
//! bytes/s — a throttled partition is left out of the next fetch while
//! the rate is over it. In-sync replicas are never throttled, so a
//! reassignment's copy cannot slow the partitions it does not move.

use gregor_log::TopicPartition;
use parking_lot::Mutex;

use crate::quotas::{QuotaWindow, SampledRate};
use crate::Broker;

/// The topic config naming the replicas throttled on the follower side.
pub const FOLLOWER_THROTTLED_REPLICAS: &str = "follower.replication.throttled.replicas";

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
    /// Whether this broker's replica of `tp` is throttled now: named by its
    /// topic, out of the ISR, and a follower rate set.
    fn follower_throttled(&self, tp: &TopicPartition) -> Option<u64> {
        let bound = self.dynamic_config().follower_replication_throttled_rate()?;
        let local = self.config().node_id;
        let named = self
            .topics()
            .get(&tp.topic)
            .and_then(|t| t.overrides.get(FOLLOWER_THROTTLED_REPLICAS).cloned())
            .is_some_and(|list| names_replica(&list, tp.partition, local));
        let in_sync = self
            .replicas()
            .partition_record(tp)
            .is_some_and(|r| r.state.isr.contains(&local));
        (named && !in_sync).then_some(bound)
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
