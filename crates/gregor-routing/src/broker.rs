//! What the request handlers work on: this broker's identity, its logs,
//! and the topics it knows.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use gregor_group::records::OFFSETS_TOPIC;
use gregor_group::{GroupConfig, GroupCoordinator};
use gregor_log::{CleanupPolicy, Log, LogConfig, LogManager, MessageTimestampType, TopicPartition};
use kafka_protocol::error::ResponseError;
use parking_lot::RwLock;
use uuid::Uuid;

use crate::catalog::{CatalogError, ClusterCatalog, Placement};
use crate::error::{log_error, replication_error};
use crate::metrics::BrokerMetrics;
use crate::offsets_store::{offsets_topic_config, OffsetsTopicStore};
use crate::replicas::{IsrWriter, LeaderAppend, ReplicaAppendError, ReplicaManager};

/// Broker settings the handlers need (Kafka's names in comments).
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// `broker.id`.
    pub node_id: i32,
    /// Host clients are told to connect to (`advertised.listeners`).
    pub advertised_host: String,
    /// Port clients are told to connect to.
    pub advertised_port: u16,
    /// `num.partitions` for auto-created topics.
    pub num_partitions: u32,
    /// `auto.create.topics.enable`.
    pub auto_create_topics: bool,
    /// Topic configuration defaults (`log.segment.bytes`, …).
    pub default_log_config: LogConfig,
    /// The cluster id reported in Metadata.
    pub cluster_id: String,
    /// `offsets.topic.num.partitions`.
    pub offsets_topic_partitions: u32,
    /// `offsets.topic.segment.bytes`.
    pub offsets_topic_segment_bytes: u32,
    /// `offsets.topic.replication.factor` (capped to the live brokers).
    pub offsets_topic_replication_factor: u16,
    /// `default.replication.factor` for auto-created topics and
    /// CreateTopics without a factor.
    pub default_replication_factor: u16,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        Self {
            node_id: 0,
            advertised_host: "127.0.0.1".into(),
            advertised_port: 9092,
            num_partitions: 1,
            auto_create_topics: true,
            default_log_config: LogConfig::default(),
            cluster_id: "gregor-cluster".into(),
            offsets_topic_partitions: 50,
            offsets_topic_segment_bytes: 100 * 1024 * 1024,
            offsets_topic_replication_factor: 3,
            default_replication_factor: 1,
        }
    }
}

/// A topic: its id, partition count and config overrides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topic {
    /// Kafka topic id.
    pub id: Uuid,
    /// Number of partitions.
    pub partitions: u32,
    /// Topic-level settings given at creation (`retention.ms` → `…`).
    pub overrides: BTreeMap<String, String>,
}

/// The state the handlers share.
pub struct Broker {
    config: BrokerConfig,
    logs: Arc<LogManager>,
    topics: RwLock<BTreeMap<String, Topic>>,
    appended: Arc<tokio::sync::Notify>,
    next_producer_id: AtomicI64,
    producer_ids: parking_lot::Mutex<Option<std::ops::RangeInclusive<i64>>>,
    catalog: Option<Arc<dyn ClusterCatalog>>,
    replicas: Option<Arc<ReplicaManager>>,
    groups: std::sync::OnceLock<Arc<GroupCoordinator>>,
    /// `__consumer_offsets` partitions whose groups this broker
    /// coordinates (leads and has loaded), in a cluster.
    group_partitions: parking_lot::Mutex<std::collections::BTreeSet<u32>>,
    metrics: Arc<BrokerMetrics>,
}

const PARTITION_METADATA: &str = "partition.metadata";
/// The topic's config overrides, `key=value` lines, in each partition dir
/// (until topic metadata lives in coordination).
const TOPIC_CONFIG: &str = "topic.config";

impl Broker {
    /// A broker over `logs`; topics are found from the partitions on disk.
    pub fn new(config: BrokerConfig, logs: Arc<LogManager>) -> Self {
        let mut topics: BTreeMap<String, Topic> = BTreeMap::new();
        for (tp, log) in logs.logs() {
            let id = read_topic_id(log.dir()).unwrap_or_else(Uuid::new_v4);
            let overrides = read_overrides(log.dir());
            match topic_config(&config.default_log_config, &overrides).map(|c| log.set_config(c)) {
                Ok(Ok(())) => {}
                _ => tracing::warn!(partition = %tp, "ignoring invalid topic config overrides"),
            }
            let entry = topics.entry(tp.topic.clone()).or_insert(Topic {
                id,
                partitions: 0,
                overrides,
            });
            entry.partitions = entry.partitions.max(tp.partition + 1);
        }
        // Producer ids from the start time: unique across restarts of one broker.
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_millis() as i64)
            & 0x0000_ffff_ffff_ffff;
        Self {
            config,
            logs,
            topics: RwLock::new(topics),
            appended: Arc::new(tokio::sync::Notify::new()),
            next_producer_id: AtomicI64::new(seed << 8),
            producer_ids: parking_lot::Mutex::new(None),
            catalog: None,
            replicas: None,
            groups: std::sync::OnceLock::new(),
            group_partitions: parking_lot::Mutex::new(std::collections::BTreeSet::new()),
            metrics: Arc::new(BrokerMetrics::new()),
        }
    }

    /// The broker's metrics.
    pub fn metrics(&self) -> &Arc<BrokerMetrics> {
        &self.metrics
    }

    /// The metrics in Prometheus' text format, gauges read now.
    pub fn render_metrics(&self) -> String {
        self.metrics.render(&self.logs, self.replicas.as_deref())
    }

    /// Wakes fetches waiting for data.
    pub fn notify_appended(&self) {
        self.appended.notify_waiters();
    }

    /// A broker whose topics are also recorded in `catalog`, reconciled
    /// with the disks first. Without `replicas`, topics found only on disk
    /// are recorded and recorded topics get their missing partitions (with
    /// the recorded id and overrides). With `replicas` the broker is part
    /// of a replicated cluster: the controller says which partitions it
    /// holds and leads (LeaderAndIsr creates their logs), and logs of
    /// topics the catalog no longer has are set aside. Blocks on the
    /// catalog.
    pub fn with_catalog(
        config: BrokerConfig,
        logs: Arc<LogManager>,
        catalog: Arc<dyn ClusterCatalog>,
        replicas: Option<Arc<ReplicaManager>>,
    ) -> Result<Self, String> {
        let mut broker = Self::new(config, logs);
        let recorded = catalog.topics().map_err(|e| e.to_string())?;
        let mut merged = broker.topics();
        for (name, recorded_topic) in &recorded {
            let mut topic = recorded_topic.clone();
            if let Some(local) = merged.get(name) {
                if local.id != topic.id {
                    tracing::warn!(topic = %name, local = %local.id, recorded = %topic.id, "topic id on disk differs from the catalog's; using the catalog's");
                }
                if local.partitions > topic.partitions {
                    topic.partitions = local.partitions;
                    catalog.update(name, &topic).map_err(|e| e.to_string())?;
                }
            }
            let config = topic_config(&broker.config.default_log_config, &topic.overrides)
                .map_err(|e| format!("topic {name}: {e}"))?;
            for p in 0..topic.partitions {
                let on_disk = broker.logs.get(&TopicPartition::new(name, p)).is_some();
                if replicas.is_none() || on_disk {
                    broker
                        .create_partition(name, p, &topic, &config)
                        .map_err(|(_, m)| format!("topic {name} partition {p}: {}", m.unwrap_or_default()))?;
                }
            }
            merged.insert(name.clone(), topic);
        }
        let disk_only: Vec<(String, Topic)> = merged
            .iter()
            .filter(|(name, _)| !recorded.contains_key(*name))
            .map(|(n, t)| (n.clone(), t.clone()))
            .collect();
        for (name, topic) in disk_only {
            if replicas.is_some() {
                // In a cluster the catalog is the truth: a topic it lacks was
                // deleted while this broker was down. Set its logs aside (not
                // served, not resurrected, not deleted either).
                tracing::warn!(topic = %name, "on disk but not in the cluster's catalog (deleted while this broker was down?): setting its logs aside");
                for p in 0..topic.partitions {
                    let tp = TopicPartition::new(&name, p);
                    if broker.logs.get(&tp).is_some() {
                        broker.logs.set_aside(&tp).map_err(|e| e.to_string())?;
                    }
                }
                merged.remove(&name);
                continue;
            }
            match catalog.create(&name, &topic, Placement::Here) {
                Ok(()) | Err(CatalogError::AlreadyExists) => {}
                Err(e) => return Err(e.to_string()),
            }
            tracing::info!(topic = %name, "recorded a topic found on disk");
        }
        broker.topics = RwLock::new(merged);
        broker.catalog = Some(catalog);
        if let Some(r) = &replicas {
            broker.appended = r.progress();
            let (shrinks, expands) = r.isr_change_counters();
            broker.metrics.register_isr_changes(shrinks, expands);
        }
        broker.replicas = replicas;
        Ok(broker)
    }

    /// The replica manager, when this broker is part of a replicated
    /// cluster.
    pub fn replicas(&self) -> Option<&Arc<ReplicaManager>> {
        self.replicas.as_ref()
    }

    /// The log a consumer reads and its high watermark: any local log
    /// alone; in a cluster only as leader (checking the client's
    /// `current_leader_epoch`).
    pub fn readable_log(
        &self,
        topic: &str,
        partition: i32,
        current_leader_epoch: Option<i32>,
    ) -> Result<(Arc<Log>, u64), ResponseError> {
        let Some(replicas) = &self.replicas else {
            let log = self
                .log(topic, partition)
                .ok_or(ResponseError::UnknownTopicOrPartition)?;
            let hw = log.high_watermark();
            return Ok((log, hw));
        };
        let tp = self.known_partition(topic, partition)?;
        replicas
            .leader_log(&tp, current_leader_epoch)
            .map_err(replication_error)
    }

    fn known_partition(&self, topic: &str, partition: i32) -> Result<TopicPartition, ResponseError> {
        let p = u32::try_from(partition).map_err(|_| ResponseError::UnknownTopicOrPartition)?;
        match self.topic(topic) {
            Some(t) if p < t.partitions => Ok(TopicPartition::new(topic, p)),
            _ => Err(ResponseError::UnknownTopicOrPartition),
        }
    }

    /// Appends a producer's batches to a partition this broker leads
    /// (any local partition outside a cluster).
    pub fn append(
        &self,
        topic: &str,
        partition: i32,
        batches: &mut [u8],
        acks_all: bool,
    ) -> Result<LeaderAppend, (ResponseError, String)> {
        let Some(replicas) = &self.replicas else {
            let log = self
                .log(topic, partition)
                .ok_or((ResponseError::UnknownTopicOrPartition, String::new()))?;
            let info = log.append(batches, 0).map_err(|e| (log_error(&e), e.to_string()))?;
            return Ok(LeaderAppend {
                info,
                waiting_for: None,
                acked: acks_all.then_some(Ok(())),
            });
        };
        let tp = self.known_partition(topic, partition).map_err(|e| (e, String::new()))?;
        replicas.append_as_leader(&tp, batches, acks_all).map_err(|e| match e {
            ReplicaAppendError::Replication(r) => (replication_error(r), r.to_string()),
            ReplicaAppendError::Log(l) => (log_error(&l), l.to_string()),
        })
    }

    /// Learns a topic created on another broker from the catalog.
    pub fn learn_topic(&self, topic: &str) -> Result<Topic, String> {
        if let Some(t) = self.topic(topic) {
            return Ok(t);
        }
        let catalog = self.catalog.as_ref().ok_or("no catalog")?;
        let recorded = catalog
            .topic(topic)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("topic {topic} is not recorded"))?;
        Ok(self.topics.write().entry(topic.to_string()).or_insert(recorded).clone())
    }

    /// The local log of a partition the controller placed here, created
    /// (with the topic's recorded config) if needed; the topic is learnt
    /// from the catalog when it was created on another broker.
    pub fn replica_log(&self, topic: &str, partition: u32) -> Result<Arc<Log>, String> {
        let known = self.learn_topic(topic)?;
        if partition >= known.partitions {
            // Grown elsewhere (CreatePartitions): learn the new count.
            if let Some(catalog) = &self.catalog {
                if let Ok(Some(recorded)) = catalog.topic(topic) {
                    if let Some(t) = self.topics.write().get_mut(topic) {
                        t.partitions = t.partitions.max(recorded.partitions);
                    }
                }
            }
        }
        let known = self.topic(topic).ok_or("topic vanished")?;
        let tp = TopicPartition::new(topic, partition);
        if let Some(log) = self.logs.get(&tp) {
            return Ok(log);
        }
        let config = topic_config(&self.config.default_log_config, &known.overrides)?;
        self.create_partition(topic, partition, &known, &config)
            .map_err(|(_, m)| m.unwrap_or_default())?;
        self.logs.get(&tp).ok_or_else(|| "log not created".to_string())
    }

    /// Changes a topic's config overrides (`None` removes one): checked,
    /// recorded in the catalog (every broker learns it), applied to this
    /// broker's logs.
    pub fn alter_topic_config(
        &self,
        name: &str,
        changes: &[(String, Option<String>)],
    ) -> Result<(), (ResponseError, Option<String>)> {
        let topic = self.topic(name).ok_or((ResponseError::UnknownTopicOrPartition, None))?;
        let mut overrides = topic.overrides.clone();
        for (key, value) in changes {
            match value {
                Some(v) => overrides.insert(key.clone(), v.clone()),
                None => overrides.remove(key),
            };
        }
        topic_config(&self.config.default_log_config, &overrides)
            .map_err(|m| (ResponseError::InvalidConfig, Some(m)))?;
        if let Some(catalog) = &self.catalog {
            catalog.set_config(name, &overrides).map_err(catalog_error)?;
        }
        self.apply_topic_overrides(name, overrides)
            .map_err(|m| (ResponseError::KafkaStorageError, Some(m)))
    }

    /// Re-reads a topic's config overrides from the catalog (another broker
    /// changed them) and applies them here.
    pub fn refresh_topic_config(&self, name: &str) -> Result<(), String> {
        let Some(catalog) = &self.catalog else { return Ok(()) };
        let Some(recorded) = catalog.topic(name).map_err(|e| e.to_string())? else {
            return Ok(());
        };
        if self.topic(name).is_some_and(|t| t.overrides == recorded.overrides) {
            return Ok(());
        }
        self.apply_topic_overrides(name, recorded.overrides)
    }

    fn apply_topic_overrides(&self, name: &str, overrides: BTreeMap<String, String>) -> Result<(), String> {
        let config = topic_config(&self.config.default_log_config, &overrides)?;
        for (tp, log) in self.logs.logs() {
            if tp.topic == name {
                log.set_config(config.clone()).map_err(|e| e.to_string())?;
                write_overrides(log.dir(), &overrides).map_err(|e| e.to_string())?;
            }
        }
        if let Some(replicas) = &self.replicas {
            let min_insync = overrides.get("min.insync.replicas").and_then(|v| v.trim().parse().ok());
            replicas.set_min_insync_replicas(name, min_insync);
        }
        if let Some(t) = self.topics.write().get_mut(name) {
            t.overrides = overrides;
        }
        tracing::info!(topic = name, "topic config changed");
        Ok(())
    }

    /// The topic's `min.insync.replicas` override, if any.
    pub fn min_insync_replicas(&self, topic: &str) -> Option<usize> {
        self.topic(topic)?
            .overrides
            .get("min.insync.replicas")?
            .trim()
            .parse()
            .ok()
    }

    /// Starts this broker's group coordinator, its offsets loaded from
    /// `__consumer_offsets` (blocks on the disk).
    pub fn start_groups(self: &Arc<Self>, config: GroupConfig) -> Result<Arc<GroupCoordinator>, String> {
        let store = Arc::new(OffsetsTopicStore::new(Arc::downgrade(self)));
        let coordinator = Arc::new(GroupCoordinator::new(config, store)?);
        self.groups
            .set(coordinator.clone())
            .map_err(|_| "the group coordinator is already started".to_string())?;
        Ok(coordinator)
    }

    /// The group coordinator, once started.
    pub fn groups(&self) -> Option<&Arc<GroupCoordinator>> {
        self.groups.get()
    }

    /// The group coordinator if this broker coordinates `group`: always
    /// outside a cluster; in one, when it leads the group's
    /// `__consumer_offsets` partition and has loaded it (`None` makes
    /// clients look the coordinator up again).
    pub fn groups_for(&self, group: &str) -> Option<&Arc<GroupCoordinator>> {
        if self.replicas.is_none() {
            return self.groups();
        }
        let partitions = self.topic(OFFSETS_TOPIC)?.partitions;
        let p = gregor_group::records::partition_for(group, partitions).unsigned_abs();
        self.group_partitions
            .lock()
            .contains(&p)
            .then(|| self.groups())
            .flatten()
    }

    /// This broker became the leader of `__consumer_offsets` partition `p`
    /// (`leads`) or stopped leading it: its groups are loaded from the
    /// partition's log, or forgotten.
    pub fn group_partition_changed(&self, p: u32, leads: bool) -> Result<(), String> {
        let Some(groups) = self.groups() else { return Ok(()) };
        let partitions = self.topic(OFFSETS_TOPIC).map_or(0, |t| t.partitions);
        let owned = |group: &str| gregor_group::records::partition_for(group, partitions).unsigned_abs() == p;
        let mut loaded = self.group_partitions.lock();
        if leads {
            let records = crate::offsets_store::load_partition(self, p)?;
            groups.reload(owned, &records, crate::api::now_ms());
            loaded.insert(p);
        } else {
            loaded.remove(&p);
            groups.unload(owned);
        }
        Ok(())
    }

    /// Creates `__consumer_offsets` if it does not exist yet (compacted,
    /// `offsets.topic.num.partitions` partitions); returns its partition count.
    pub fn ensure_offsets_topic(&self) -> Result<u32, String> {
        if let Some(topic) = self.topic(OFFSETS_TOPIC) {
            return Ok(topic.partitions);
        }
        let live = match (&self.catalog, &self.replicas) {
            (Some(catalog), Some(_)) => catalog.live_brokers().map_err(|e| e.to_string())?.max(1),
            _ => 1,
        };
        let configured = self.config.offsets_topic_replication_factor.max(1);
        let replication = configured.min(u16::try_from(live).unwrap_or(u16::MAX));
        if replication < configured {
            // As Kafka does for a cluster smaller than the setting.
            tracing::warn!(
                configured,
                live_brokers = live,
                "offsets.topic.replication.factor is capped to the live broker count: {OFFSETS_TOPIC} gets {replication} replica(s)"
            );
        }
        match self.create_topic(
            OFFSETS_TOPIC,
            self.config.offsets_topic_partitions,
            Some(replication),
            offsets_topic_config(self.config.offsets_topic_segment_bytes),
        ) {
            Ok(topic) => Ok(topic.partitions),
            // Created meanwhile, here or on another broker.
            Err((ResponseError::TopicAlreadyExists, _)) => self.learn_topic(OFFSETS_TOPIC).map(|t| t.partitions),
            Err((e, m)) => Err(format!("creating {OFFSETS_TOPIC}: {e:?} {}", m.unwrap_or_default())),
        }
    }

    /// Resolves at the next [`Broker::notify_appended`].
    pub fn appended(&self) -> tokio::sync::futures::Notified<'_> {
        self.appended.notified()
    }

    /// A producer id not handed out before: from this broker's block
    /// claimed in the catalog (a new block when it runs out), or, without
    /// a catalog, from a clock-seeded counter.
    pub fn next_producer_id(&self) -> Result<i64, CatalogError> {
        let Some(catalog) = &self.catalog else {
            return Ok(self.next_producer_id.fetch_add(1, Ordering::Relaxed));
        };
        let mut block = self.producer_ids.lock();
        loop {
            if let Some(id) = block.as_mut().and_then(Iterator::next) {
                return Ok(id);
            }
            *block = Some(catalog.allocate_producer_ids()?);
        }
    }

    /// The settings.
    pub fn config(&self) -> &BrokerConfig {
        &self.config
    }

    /// The log manager.
    pub fn logs(&self) -> &Arc<LogManager> {
        &self.logs
    }

    /// Every topic, by name.
    pub fn topics(&self) -> BTreeMap<String, Topic> {
        self.topics.read().clone()
    }

    /// One topic.
    pub fn topic(&self, name: &str) -> Option<Topic> {
        self.topics.read().get(name).cloned()
    }

    /// The log of a partition this broker holds.
    pub fn log(&self, topic: &str, partition: i32) -> Option<Arc<Log>> {
        let partition = u32::try_from(partition).ok()?;
        let known = self.topic(topic)?;
        if partition >= known.partitions {
            return None;
        }
        self.logs.get(&TopicPartition::new(topic, partition))
    }

    /// Creates a topic with `partitions` partitions, `replication_factor`
    /// replicas each (`None`: `default.replication.factor`) and config
    /// overrides. In a cluster the partitions' logs appear on their
    /// replicas when the controller assigns them.
    pub fn create_topic(
        &self,
        name: &str,
        partitions: u32,
        replication_factor: Option<u16>,
        overrides: BTreeMap<String, String>,
    ) -> Result<Topic, (ResponseError, Option<String>)> {
        validate_topic_name(name).map_err(|e| (e, None))?;
        if partitions == 0 {
            return Err((ResponseError::InvalidPartitions, Some("at least one partition".into())));
        }
        let config = topic_config(&self.config.default_log_config, &overrides)
            .map_err(|m| (ResponseError::InvalidConfig, Some(m)))?;
        let mut topics = self.topics.write();
        if topics.contains_key(name) {
            return Err((ResponseError::TopicAlreadyExists, None));
        }
        let topic = Topic {
            id: Uuid::new_v4(),
            partitions,
            overrides,
        };
        if let Some(catalog) = &self.catalog {
            let replication = replication_factor.unwrap_or(self.config.default_replication_factor);
            catalog
                .create(name, &topic, Placement::Replicated(replication))
                .map_err(catalog_error)?;
        }
        if self.replicas.is_none() {
            for p in 0..partitions {
                self.create_partition(name, p, &topic, &config)?;
            }
        }
        topics.insert(name.to_string(), topic.clone());
        tracing::info!(topic = name, partitions, "created topic");
        Ok(topic)
    }

    /// Grows a topic to `count` partitions.
    pub fn add_partitions(&self, name: &str, count: u32) -> Result<(), (ResponseError, Option<String>)> {
        let mut topics = self.topics.write();
        let topic = topics
            .get_mut(name)
            .ok_or((ResponseError::UnknownTopicOrPartition, None))?;
        if count <= topic.partitions {
            let message = format!("topic has {} partitions; the count can only grow", topic.partitions);
            return Err((ResponseError::InvalidPartitions, Some(message)));
        }
        let config = topic_config(&self.config.default_log_config, &topic.overrides)
            .map_err(|m| (ResponseError::InvalidConfig, Some(m)))?;
        let grown = Topic {
            partitions: count,
            ..topic.clone()
        };
        if let Some(catalog) = &self.catalog {
            catalog.update(name, &grown).map_err(catalog_error)?;
        }
        if self.replicas.is_none() {
            for p in topic.partitions..count {
                self.create_partition(name, p, &grown, &config)?;
            }
        }
        *topic = grown;
        tracing::info!(topic = name, partitions = count, "added partitions");
        Ok(())
    }

    fn create_partition(
        &self,
        name: &str,
        p: u32,
        topic: &Topic,
        config: &LogConfig,
    ) -> Result<(), (ResponseError, Option<String>)> {
        let storage = |e: String| (ResponseError::KafkaStorageError, Some(e));
        let log = self
            .logs
            .get_or_create(&TopicPartition::new(name, p), Some(config.clone()))
            .map_err(|e| storage(e.to_string()))?;
        log.set_config(config.clone()).map_err(|e| storage(e.to_string()))?;
        write_topic_id(log.dir(), topic.id).map_err(|e| storage(e.to_string()))?;
        write_overrides(log.dir(), &topic.overrides).map_err(|e| storage(e.to_string()))
    }

    /// The topic, created with the defaults if unknown and auto-creation is on.
    pub fn topic_or_create(&self, name: &str) -> Result<Topic, ResponseError> {
        if let Some(t) = self.topic(name) {
            return Ok(t);
        }
        if self.replicas.is_some() {
            // Perhaps created on another broker.
            if let Ok(t) = self.learn_topic(name) {
                return Ok(t);
            }
        }
        if !self.config.auto_create_topics {
            return Err(ResponseError::UnknownTopicOrPartition);
        }
        match self.create_topic(name, self.config.num_partitions, None, BTreeMap::new()) {
            Err((ResponseError::TopicAlreadyExists, _)) => self
                .learn_topic(name)
                .map_err(|_| ResponseError::UnknownTopicOrPartition),
            other => other.map_err(|(e, _)| e),
        }
    }

    /// Deletes a topic and its logs.
    pub fn delete_topic(&self, name: &str) -> Result<(), ResponseError> {
        let mut topics = self.topics.write();
        if !topics.contains_key(name) {
            return Err(ResponseError::UnknownTopicOrPartition);
        }
        if let Some(catalog) = &self.catalog {
            catalog.delete(name).map_err(|e| catalog_error(e).0)?;
        }
        let topic = topics.remove(name).ok_or(ResponseError::UnknownTopicOrPartition)?;
        drop(topics);
        self.delete_local_partitions(name, topic.partitions)?;
        if let Some(replicas) = &self.replicas {
            replicas.forget_topic(name);
        }
        tracing::info!(topic = name, "deleted topic");
        Ok(())
    }

    /// Deletes this broker's logs of a topic (StopReplica with delete, or
    /// DeleteTopics) and forgets it.
    pub fn delete_local_partitions(&self, name: &str, partitions: u32) -> Result<(), ResponseError> {
        for p in 0..partitions {
            let tp = TopicPartition::new(name, p);
            if let Some(replicas) = &self.replicas {
                replicas.stop_replica(&tp);
            }
            if self.logs.get(&tp).is_some() {
                self.logs.delete(&tp).map_err(|_| ResponseError::KafkaStorageError)?;
            }
        }
        Ok(())
    }

    /// Forgets a topic deleted elsewhere and deletes its local logs.
    pub fn forget_topic(&self, name: &str) -> Result<(), ResponseError> {
        let removed = self.topics.write().remove(name);
        let partitions = removed.map_or(0, |t| t.partitions);
        let on_disk = self
            .logs
            .logs()
            .into_iter()
            .filter(|(tp, _)| tp.topic == name)
            .map(|(tp, _)| tp.partition + 1)
            .max()
            .unwrap_or(0);
        self.delete_local_partitions(name, partitions.max(on_disk))?;
        if let Some(replicas) = &self.replicas {
            replicas.forget_topic(name);
        }
        Ok(())
    }
}

/// The Kafka error for a catalog failure.
fn catalog_error(e: CatalogError) -> (ResponseError, Option<String>) {
    match e {
        CatalogError::AlreadyExists => (ResponseError::TopicAlreadyExists, None),
        CatalogError::Unavailable(m) => (ResponseError::UnknownServerError, Some(m)),
        CatalogError::InvalidReplicationFactor(m) => (ResponseError::InvalidReplicationFactor, Some(m)),
    }
}

/// The defaults with `overrides` applied.
pub fn topic_config(defaults: &LogConfig, overrides: &BTreeMap<String, String>) -> Result<LogConfig, String> {
    let mut config = defaults.clone();
    for (key, value) in overrides {
        apply_topic_config(&mut config, key, value)?;
    }
    Ok(config)
}

/// Applies one topic-level config (`retention.ms=…`) to `config`.
pub fn apply_topic_config(config: &mut LogConfig, key: &str, value: &str) -> Result<(), String> {
    fn num<T: std::str::FromStr>(key: &str, value: &str) -> Result<T, String> {
        value
            .trim()
            .parse()
            .map_err(|_| format!("invalid value {value:?} for {key}"))
    }
    match key {
        "cleanup.policy" => {
            config.cleanup_policy = match value.replace(' ', "").as_str() {
                "delete" => CleanupPolicy::Delete,
                "compact" => CleanupPolicy::Compact,
                "compact,delete" | "delete,compact" => CleanupPolicy::CompactDelete,
                other => return Err(format!("invalid cleanup.policy {other:?}")),
            }
        }
        "retention.ms" => config.retention_ms = num(key, value)?,
        "retention.bytes" => config.retention_bytes = num(key, value)?,
        "segment.bytes" => config.segment_bytes = num(key, value)?,
        "segment.ms" => config.segment_ms = num(key, value)?,
        "segment.index.bytes" => config.segment_index_bytes = num(key, value)?,
        "index.interval.bytes" => config.index_interval_bytes = num(key, value)?,
        "max.message.bytes" => config.max_message_bytes = num(key, value)?,
        "flush.messages" => config.flush_messages = num(key, value)?,
        "flush.ms" => config.flush_ms = num(key, value)?,
        "min.cleanable.dirty.ratio" => config.min_cleanable_dirty_ratio = num(key, value)?,
        "min.compaction.lag.ms" => config.min_compaction_lag_ms = num(key, value)?,
        "max.compaction.lag.ms" => config.max_compaction_lag_ms = num(key, value)?,
        "delete.retention.ms" => config.delete_retention_ms = num(key, value)?,
        // Replication settings: read by the replica manager, checked here.
        "min.insync.replicas" => {
            if num::<usize>(key, value)? == 0 {
                return Err("min.insync.replicas must be at least 1".into());
            }
        }
        "unclean.leader.election.enable" => {
            num::<bool>(key, value)?;
        }
        "message.timestamp.type" => {
            config.message_timestamp_type = match value {
                "CreateTime" => MessageTimestampType::CreateTime,
                "LogAppendTime" => MessageTimestampType::LogAppendTime,
                other => return Err(format!("invalid message.timestamp.type {other:?}")),
            }
        }
        other => return Err(format!("unknown topic config {other}")),
    }
    config.validate().map_err(|e| e.to_string())
}

/// Kafka's rule: 1–249 characters of `[a-zA-Z0-9._-]`, not `.` or `..`.
pub fn validate_topic_name(name: &str) -> Result<(), ResponseError> {
    let legal = !name.is_empty()
        && name.len() <= 249
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-');
    if legal {
        Ok(())
    } else {
        Err(ResponseError::InvalidTopicException)
    }
}

fn read_topic_id(dir: &Path) -> Option<Uuid> {
    let text = std::fs::read_to_string(dir.join(PARTITION_METADATA)).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("topic_id: "))
        .and_then(|id| Uuid::parse_str(id.trim()).ok())
}

fn read_overrides(dir: &Path) -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(dir.join(TOPIC_CONFIG)).unwrap_or_default();
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn write_overrides(dir: &Path, overrides: &BTreeMap<String, String>) -> std::io::Result<()> {
    let text: String = overrides.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
    std::fs::write(dir.join(TOPIC_CONFIG), text)
}

fn write_topic_id(dir: &Path, id: Uuid) -> std::io::Result<()> {
    std::fs::write(dir.join(PARTITION_METADATA), format!("version: 0\ntopic_id: {id}\n"))
}

impl IsrWriter for Broker {
    fn write_isr(
        &self,
        partition: &TopicPartition,
        state: &gregor_replication::LeaderAndIsr,
        expected_version: i32,
    ) -> Option<i32> {
        let catalog = self.catalog.as_ref()?;
        match catalog.write_isr(partition, state, expected_version) {
            Ok(version) => version,
            Err(e) => {
                tracing::warn!(%partition, "recording the ISR failed: {e}");
                None
            }
        }
    }
}
