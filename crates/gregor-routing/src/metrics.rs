//! The broker's metrics in Prometheus' text format: requests and their
//! latency per API, bytes in and out, the request queue's depth,
//! under-replicated partitions, ISR shrinks and expansions, fetch
//! sessions held, each partition's log size and segment count, and the
//! connections per listener (open, created, closed, closed as idle,
//! refused by a limit).

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use gregor_log::LogManager;
use parking_lot::Mutex;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use tokio::sync::Semaphore;

use gregor_broker::ReplicaManager;

/// The `api` label: a Kafka API's name.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ApiLabels {
    api: String,
}

/// The `listener` label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ListenerLabels {
    listener: String,
}

/// The `listener` and `reason` labels of a refused connection.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RefusedLabels {
    listener: String,
    reason: String,
}

/// The `topic` and `partition` labels.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PartitionLabels {
    topic: String,
    partition: u32,
}

type LatencyFamily = Family<ApiLabels, Histogram, fn() -> Histogram>;

/// Every metric of one broker.
pub struct BrokerMetrics {
    registry: Mutex<Registry>,
    requests: Family<ApiLabels, Counter>,
    latency: LatencyFamily,
    bytes_in: Counter,
    bytes_out: Counter,
    queue_depth: Gauge,
    queue: OnceLock<(Arc<Semaphore>, usize)>,
    under_replicated: Gauge,
    fetch_sessions: Gauge,
    log_bytes: Family<PartitionLabels, Gauge>,
    log_segments: Family<PartitionLabels, Gauge>,
    connections: Family<ListenerLabels, Gauge>,
    connections_created: Family<ListenerLabels, Counter>,
    connections_closed: Family<ListenerLabels, Counter>,
    connections_expired: Family<ListenerLabels, Counter>,
    connections_refused: Family<RefusedLabels, Counter>,
    acceptor_blocked: Family<ListenerLabels, Counter<f64, std::sync::atomic::AtomicU64>>,
}

fn latency_histogram() -> Histogram {
    // 50 µs … ~6.5 s.
    Histogram::new(exponential_buckets(0.000_05, 2.0, 18))
}

impl Default for BrokerMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl BrokerMetrics {
    /// Every metric registered, at zero.
    pub fn new() -> Self {
        let metrics = Self {
            registry: Mutex::new(Registry::with_prefix("gregor")),
            requests: Family::default(),
            latency: Family::new_with_constructor(latency_histogram),
            bytes_in: Counter::default(),
            bytes_out: Counter::default(),
            queue_depth: Gauge::default(),
            queue: OnceLock::new(),
            under_replicated: Gauge::default(),
            fetch_sessions: Gauge::default(),
            log_bytes: Family::default(),
            log_segments: Family::default(),
            connections: Family::default(),
            connections_created: Family::default(),
            connections_closed: Family::default(),
            connections_expired: Family::default(),
            connections_refused: Family::default(),
            acceptor_blocked: Family::default(),
        };
        {
            let mut r = metrics.registry.lock();
            r.register("requests", "Requests handled, by API", metrics.requests.clone());
            r.register(
                "request_latency_seconds",
                "Time from a request read to its response written, by API",
                metrics.latency.clone(),
            );
            r.register("bytes_in", "Request bytes read", metrics.bytes_in.clone());
            r.register("bytes_out", "Response bytes written", metrics.bytes_out.clone());
            r.register(
                "request_queue_depth",
                "Requests waiting for a handler",
                metrics.queue_depth.clone(),
            );
            r.register(
                "under_replicated_partitions",
                "Partitions led here whose ISR lacks some replica",
                metrics.under_replicated.clone(),
            );
            r.register(
                "fetch_sessions",
                "Incremental fetch sessions held (KIP-227)",
                metrics.fetch_sessions.clone(),
            );
            r.register(
                "log_size_bytes",
                "Bytes in a partition's log",
                metrics.log_bytes.clone(),
            );
            r.register(
                "log_segments",
                "Segments in a partition's log",
                metrics.log_segments.clone(),
            );
            // Kafka's socket-server-metrics, per listener.
            r.register(
                "connection_count",
                "Connections open, by listener",
                metrics.connections.clone(),
            );
            r.register(
                "connection_creation",
                "Connections accepted and served, by listener",
                metrics.connections_created.clone(),
            );
            r.register(
                "connection_close",
                "Connections closed, by listener",
                metrics.connections_closed.clone(),
            );
            r.register(
                "connections_idle_closed",
                "Connections closed after connections.max.idle.ms without progress, by listener",
                metrics.connections_expired.clone(),
            );
            r.register(
                "connections_refused",
                "Connections closed at once by a connection limit, by listener and limit",
                metrics.connections_refused.clone(),
            );
            r.register(
                "acceptor_blocked_seconds",
                "Time an acceptor waited for max.connections to allow another connection, by listener",
                metrics.acceptor_blocked.clone(),
            );
        }
        metrics
    }

    /// Every connection metric of `listener`, at zero (so a dashboard finds
    /// them before anything happens).
    pub fn listener_started(&self, listener: &str) {
        let labels = listener_labels(listener);
        let _ = self.connections.get_or_create(&labels);
        let _ = self.connections_created.get_or_create(&labels);
        let _ = self.connections_closed.get_or_create(&labels);
        let _ = self.connections_expired.get_or_create(&labels);
        let _ = self.acceptor_blocked.get_or_create(&labels);
        let _ = self.connections_refused.get_or_create(&RefusedLabels {
            listener: listener.to_string(),
            reason: "max.connections.per.ip".to_string(),
        });
    }

    /// A connection on `listener` starts being served.
    pub fn connection_opened(&self, listener: &str) {
        let labels = listener_labels(listener);
        self.connections.get_or_create(&labels).inc();
        self.connections_created.get_or_create(&labels).inc();
    }

    /// A served connection on `listener` closed.
    pub fn connection_closed(&self, listener: &str) {
        let labels = listener_labels(listener);
        self.connections.get_or_create(&labels).dec();
        self.connections_closed.get_or_create(&labels).inc();
    }

    /// A connection on `listener` is closed as idle.
    pub fn connection_expired(&self, listener: &str) {
        self.connections_expired.get_or_create(&listener_labels(listener)).inc();
    }

    /// A new connection on `listener` was closed at once by limit `reason`.
    pub fn connection_refused(&self, listener: &str, reason: &str) {
        let labels = RefusedLabels {
            listener: listener.to_string(),
            reason: reason.to_string(),
        };
        self.connections_refused.get_or_create(&labels).inc();
    }

    /// The acceptor of `listener` waited `waited` for a connection slot.
    pub fn acceptor_blocked(&self, listener: &str, waited: Duration) {
        self.acceptor_blocked
            .get_or_create(&listener_labels(listener))
            .inc_by(waited.as_secs_f64());
    }

    /// Counts one request of `api_key`: its bytes, the response's, and how
    /// long it took.
    pub fn observe_request(&self, api_key: i16, took: Duration, bytes_in: usize, bytes_out: usize) {
        let labels = ApiLabels {
            api: api_name(api_key).to_string(),
        };
        self.requests.get_or_create(&labels).inc();
        self.latency.get_or_create(&labels).observe(took.as_secs_f64());
        self.bytes_in.inc_by(bytes_in as u64);
        self.bytes_out.inc_by(bytes_out as u64);
    }

    /// Follows the request queue's slots (`capacity` of them).
    pub fn watch_queue(&self, slots: Arc<Semaphore>, capacity: usize) {
        let _ = self.queue.set((slots, capacity));
    }

    /// Counts ISR changes of the partitions led here.
    pub fn register_isr_changes(&self, shrinks: Counter, expands: Counter) {
        let mut r = self.registry.lock();
        r.register("isr_shrinks", "ISR shrinks of partitions led here", shrinks);
        r.register("isr_expands", "ISR expansions of partitions led here", expands);
    }

    /// Counts client quota throttling: responses throttled and their
    /// throttle times (ms), by quota kind.
    pub fn register_quota_throttles<L, M>(&self, throttled: Family<L, M>, throttle_ms: Family<L, M>)
    where
        L: prometheus_client::encoding::EncodeLabelSet
            + Clone
            + Eq
            + std::hash::Hash
            + std::fmt::Debug
            + Send
            + Sync
            + 'static,
        M: prometheus_client::metrics::TypedMetric
            + prometheus_client::encoding::EncodeMetric
            + Default
            + std::fmt::Debug
            + Send
            + Sync
            + 'static,
    {
        let mut r = self.registry.lock();
        r.register(
            "quota_throttled_responses",
            "Responses throttled by a client quota, by quota",
            throttled,
        );
        r.register(
            "quota_throttle_time_ms",
            "Throttle time given by client quotas (ms), by quota",
            throttle_ms,
        );
    }

    /// The text exposition, with the gauges read now (`fetch_sessions`:
    /// the fetch sessions held).
    pub fn render(&self, logs: &LogManager, replicas: &ReplicaManager, fetch_sessions: usize) -> String {
        self.fetch_sessions.set(fetch_sessions as i64);
        if let Some((slots, capacity)) = self.queue.get() {
            let waiting = capacity.saturating_sub(slots.available_permits());
            self.queue_depth.set(waiting as i64);
        }
        self.under_replicated.set(replicas.under_replicated() as i64);
        self.log_bytes.clear();
        self.log_segments.clear();
        for (tp, log) in logs.logs() {
            let labels = PartitionLabels {
                topic: tp.topic.clone(),
                partition: tp.partition,
            };
            self.log_bytes.get_or_create(&labels).set(log.size_bytes() as i64);
            self.log_segments.get_or_create(&labels).set(log.segment_count() as i64);
        }
        let mut text = String::new();
        if prometheus_client::encoding::text::encode(&mut text, &self.registry.lock()).is_err() {
            text.clear();
        }
        text
    }
}

fn listener_labels(listener: &str) -> ListenerLabels {
    ListenerLabels {
        listener: listener.to_string(),
    }
}

/// A Kafka API's name for the `api` label.
fn api_name(key: i16) -> &'static str {
    use kafka_protocol::messages::ApiKey;
    match key {
        crate::request::LEADER_AND_ISR => "LeaderAndIsr",
        crate::request::STOP_REPLICA => "StopReplica",
        crate::request::UPDATE_METADATA => "UpdateMetadata",
        crate::request::CONTROLLED_SHUTDOWN => "ControlledShutdown",
        other => match ApiKey::try_from(other) {
            Ok(ApiKey::Produce) => "Produce",
            Ok(ApiKey::Fetch) => "Fetch",
            Ok(ApiKey::ListOffsets) => "ListOffsets",
            Ok(ApiKey::Metadata) => "Metadata",
            Ok(ApiKey::OffsetCommit) => "OffsetCommit",
            Ok(ApiKey::OffsetFetch) => "OffsetFetch",
            Ok(ApiKey::FindCoordinator) => "FindCoordinator",
            Ok(ApiKey::JoinGroup) => "JoinGroup",
            Ok(ApiKey::Heartbeat) => "Heartbeat",
            Ok(ApiKey::LeaveGroup) => "LeaveGroup",
            Ok(ApiKey::SyncGroup) => "SyncGroup",
            Ok(ApiKey::DescribeGroups) => "DescribeGroups",
            Ok(ApiKey::ListGroups) => "ListGroups",
            Ok(ApiKey::ApiVersions) => "ApiVersions",
            Ok(ApiKey::CreateTopics) => "CreateTopics",
            Ok(ApiKey::DeleteTopics) => "DeleteTopics",
            Ok(ApiKey::InitProducerId) => "InitProducerId",
            Ok(ApiKey::OffsetForLeaderEpoch) => "OffsetForLeaderEpoch",
            Ok(ApiKey::DescribeConfigs) => "DescribeConfigs",
            Ok(ApiKey::CreatePartitions) => "CreatePartitions",
            Ok(ApiKey::DeleteGroups) => "DeleteGroups",
            Ok(ApiKey::DeleteRecords) => "DeleteRecords",
            Ok(ApiKey::IncrementalAlterConfigs) => "IncrementalAlterConfigs",
            Ok(ApiKey::TxnOffsetCommit) => "TxnOffsetCommit",
            Ok(ApiKey::AddPartitionsToTxn) => "AddPartitionsToTxn",
            Ok(ApiKey::AddOffsetsToTxn) => "AddOffsetsToTxn",
            Ok(ApiKey::EndTxn) => "EndTxn",
            Ok(ApiKey::WriteTxnMarkers) => "WriteTxnMarkers",
            Ok(ApiKey::DescribeTransactions) => "DescribeTransactions",
            Ok(ApiKey::ListTransactions) => "ListTransactions",
            Ok(ApiKey::DescribeProducers) => "DescribeProducers",
            Ok(ApiKey::DescribeCluster) => "DescribeCluster",
            Ok(ApiKey::DescribeLogDirs) => "DescribeLogDirs",
            Ok(ApiKey::AlterConfigs) => "AlterConfigs",
            Ok(ApiKey::OffsetDelete) => "OffsetDelete",
            Ok(ApiKey::DescribeClientQuotas) => "DescribeClientQuotas",
            Ok(ApiKey::AlterClientQuotas) => "AlterClientQuotas",
            _ => "Other",
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_show_up_by_api_in_the_text_format() {
        let metrics = BrokerMetrics::new();
        metrics.observe_request(0, Duration::from_micros(300), 1000, 50);
        metrics.observe_request(0, Duration::from_millis(2), 500, 50);
        metrics.observe_request(4, Duration::from_micros(80), 10, 5);
        let dir = tempfile::tempdir().unwrap();
        let logs = LogManager::open(gregor_log::LogManagerConfig::new(vec![dir.path().to_path_buf()])).unwrap();
        let replicas = ReplicaManager::new(0, Default::default(), Arc::new(gregor_log::SystemClock));
        let text = metrics.render(&logs, &replicas, 0);
        assert!(text.contains("gregor_requests_total{api=\"Produce\"} 2"), "{text}");
        assert!(text.contains("gregor_requests_total{api=\"LeaderAndIsr\"} 1"), "{text}");
        assert!(
            text.contains("gregor_request_latency_seconds_count{api=\"Produce\"} 2"),
            "{text}"
        );
        assert!(text.contains("gregor_bytes_in_total 1510"), "{text}");
        assert!(text.ends_with("# EOF\n"));
    }
}
