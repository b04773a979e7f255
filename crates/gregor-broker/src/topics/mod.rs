//! The topics this broker knows: the cluster's record of them (the
//! catalog) merged with the partitions on its disks, and their logs'
//! settings. The controller decides which partitions live here
//! (LeaderAndIsr opens their logs through [`Topics::partition_log`]).

mod assignment;
mod files;
mod names;

use std::collections::BTreeMap;
use std::sync::Arc;

use gregor_log::{Log, LogConfig, LogManager, TopicPartition};
use kafka_protocol::error::ResponseError;
use parking_lot::RwLock;
use uuid::Uuid;

pub use assignment::{check_added_partitions, new_topic_assignment, Placement};
pub use names::validate_topic_name;

use crate::catalog::{CatalogError, ClusterCatalog, Topic};

/// A refusal: the Kafka error and a message for the client.
pub type Refusal = (ResponseError, Option<String>);

/// How topics are created when nobody says otherwise.
#[derive(Debug, Clone)]
pub struct TopicDefaults {
    /// Topic configuration defaults (`log.segment.bytes`, …).
    pub log_config: LogConfig,
    /// `num.partitions`.
    pub num_partitions: u32,
    /// `default.replication.factor`.
    pub replication_factor: u16,
    /// `auto.create.topics.enable`.
    pub auto_create: bool,
}

/// The topics of the cluster this broker knows, and their local logs.
pub struct Topics {
    /// Behind a lock: dynamic broker configs change the log defaults.
    defaults: RwLock<TopicDefaults>,
    logs: Arc<LogManager>,
    catalog: Arc<dyn ClusterCatalog>,
    known: RwLock<BTreeMap<String, Topic>>,
}

impl Topics {
    /// The topics recorded in `catalog`, reconciled with the logs on disk:
    /// a local log's config comes from its topic's record; a recorded topic
    /// with more partitions on disk than recorded is recorded grown; logs
    /// of topics the catalog lacks (deleted while this broker was down)
    /// are set aside — not served, not resurrected, not deleted either.
    /// Blocks on the catalog.
    pub fn open(
        defaults: TopicDefaults,
        logs: Arc<LogManager>,
        catalog: Arc<dyn ClusterCatalog>,
    ) -> Result<Self, String> {
        let on_disk = topics_on_disk(&logs);
        let recorded = catalog.topics().map_err(|e| e.to_string())?;
        let topics = Self {
            defaults: RwLock::new(defaults),
            logs,
            catalog,
            known: RwLock::new(BTreeMap::new()),
        };
        let mut known = BTreeMap::new();
        for (name, recorded_topic) in recorded {
            let mut topic = recorded_topic;
            if let Some(local) = on_disk.get(&name) {
                if local.id.is_some_and(|id| id != topic.id) {
                    tracing::warn!(topic = %name, local = ?local.id, recorded = %topic.id, "topic id on disk differs from the catalog's; using the catalog's");
                }
                if local.partitions > topic.partitions {
                    topic.partitions = local.partitions;
                    topics.catalog.update(&name, &topic, None).map_err(|e| e.to_string())?;
                }
            }
            let config = topics
                .log_config(&topic.overrides)
                .map_err(|e| format!("topic {name}: {e}"))?;
            for p in 0..topic.partitions {
                if topics.logs.get(&TopicPartition::new(&name, p)).is_some() {
                    topics
                        .record_partition(&name, p, &topic, &config)
                        .map_err(|(_, m)| format!("topic {name} partition {p}: {}", m.unwrap_or_default()))?;
                }
            }
            known.insert(name, topic);
        }
        for (name, topic) in on_disk.iter().filter(|(name, _)| !known.contains_key(*name)) {
            tracing::warn!(topic = %name, "on disk but not in the cluster's catalog (deleted while this broker was down?): setting its logs aside");
            for p in 0..topic.partitions {
                let tp = TopicPartition::new(name, p);
                if topics.logs.get(&tp).is_some() {
                    topics.logs.set_aside(&tp).map_err(|e| e.to_string())?;
                }
            }
        }
        *topics.known.write() = known;
        Ok(topics)
    }

    /// The creation defaults (the log defaults as dynamic broker configs
    /// leave them).
    pub fn defaults(&self) -> TopicDefaults {
        self.defaults.read().clone()
    }

    /// Makes `config` the log defaults (dynamic broker configs changed
    /// `log.retention.ms`, …) and applies it to the local logs of every
    /// topic without an override of the changed properties. A topic whose
    /// overrides no longer pass with the new defaults keeps its config
    /// (logged).
    pub fn set_default_log_config(&self, config: LogConfig) {
        self.defaults.write().log_config = config;
        for (name, topic) in self.all() {
            let Ok(config) = self.log_config(&topic.overrides).map_err(|e| {
                tracing::warn!(topic = %name, "new broker defaults do not fit the topic's overrides: {e}");
            }) else {
                continue;
            };
            for (tp, log) in self.logs.logs() {
                if tp.topic == name && *log.config() != config {
                    if let Err(e) = log.set_config(config.clone()) {
                        tracing::warn!(partition = %tp, "applying new broker defaults: {e}");
                    }
                }
            }
        }
    }

    /// The catalog topics are recorded in.
    pub fn catalog(&self) -> &Arc<dyn ClusterCatalog> {
        &self.catalog
    }

    /// Every known topic, by name.
    pub fn all(&self) -> BTreeMap<String, Topic> {
        self.known.read().clone()
    }

    /// One known topic.
    pub fn get(&self, name: &str) -> Option<Topic> {
        self.known.read().get(name).cloned()
    }

    /// The id of a known topic.
    pub fn id_of(&self, name: &str) -> Option<Uuid> {
        self.known.read().get(name).map(|t| t.id)
    }

    /// The name of the known topic with id `id` (Fetch v13+ names topics
    /// by id).
    pub fn name_of(&self, id: Uuid) -> Option<String> {
        self.known
            .read()
            .iter()
            .find(|(_, t)| t.id == id)
            .map(|(name, _)| name.clone())
    }

    /// The log settings of a topic with `overrides` over the defaults,
    /// checked by Kafka's rules (the message names the property at fault).
    pub fn log_config(&self, overrides: &BTreeMap<String, String>) -> Result<LogConfig, String> {
        LogConfig::with_overrides(&self.defaults.read().log_config, overrides).map_err(|e| e.to_string())
    }

    /// The partition, if its topic is known and has it
    /// (`UNKNOWN_TOPIC_OR_PARTITION` otherwise).
    pub fn known_partition(&self, topic: &str, partition: i32) -> Result<TopicPartition, ResponseError> {
        let p = u32::try_from(partition).map_err(|_| ResponseError::UnknownTopicOrPartition)?;
        // Every produce and fetch partition asks: look, don't clone the topic.
        match self.known.read().get(topic) {
            Some(t) if p < t.partitions => Ok(TopicPartition::new(topic, p)),
            _ => Err(ResponseError::UnknownTopicOrPartition),
        }
    }

    /// Whether the topic is known and has the partition (a look, nothing
    /// allocated: every partition of a produce asks).
    pub fn has_partition(&self, topic: &str, partition: i32) -> bool {
        u32::try_from(partition).is_ok_and(|p| self.known.read().get(topic).is_some_and(|t| p < t.partitions))
    }

    /// The local log of a known partition.
    pub fn log(&self, topic: &str, partition: i32) -> Option<Arc<Log>> {
        let tp = self.known_partition(topic, partition).ok()?;
        self.logs.get(&tp)
    }

    /// Learns a topic created on another broker from the catalog.
    pub fn learn(&self, name: &str) -> Result<Topic, String> {
        if let Some(t) = self.get(name) {
            return Ok(t);
        }
        let recorded = self
            .catalog
            .topic(name)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("topic {name} is not recorded"))?;
        Ok(self.known.write().entry(name.to_string()).or_insert(recorded).clone())
    }

    /// Whether topic `name` exists: known here, or learnt from the catalog
    /// when created through another broker. Never creates it — Kafka
    /// creates topics only for a Metadata request that allows it, so a
    /// Produce to an unknown topic is UNKNOWN_TOPIC_OR_PARTITION.
    pub fn exists(&self, name: &str) -> bool {
        // Every produce asks: look, don't clone the topic.
        self.known.read().contains_key(name) || self.learn(name).is_ok()
    }

    /// The topic; learnt from the catalog when created on another broker,
    /// or created with the defaults when unknown and auto-creation is on
    /// (a Metadata request's `allow_auto_topic_creation`).
    pub fn get_or_create(&self, name: &str) -> Result<Topic, ResponseError> {
        if let Ok(t) = self.learn(name) {
            return Ok(t);
        }
        if !self.defaults.read().auto_create {
            return Err(ResponseError::UnknownTopicOrPartition);
        }
        let partitions = self.defaults.read().num_partitions;
        match self.create(name, partitions, None, BTreeMap::new()) {
            Err((ResponseError::TopicAlreadyExists, _)) => {
                self.learn(name).map_err(|_| ResponseError::UnknownTopicOrPartition)
            }
            other => other.map_err(|(e, _)| e),
        }
    }

    /// Records a topic with `partitions` partitions of
    /// `replication_factor` replicas each (`None`:
    /// `default.replication.factor`) and config overrides. The partitions'
    /// logs appear on their replicas when the controller assigns them.
    pub fn create(
        &self,
        name: &str,
        partitions: u32,
        replication_factor: Option<u16>,
        overrides: BTreeMap<String, String>,
    ) -> Result<Topic, Refusal> {
        let replication = replication_factor.unwrap_or_else(|| self.defaults.read().replication_factor);
        self.create_placed(name, partitions, Placement::Spread(replication), overrides)
    }

    /// Records a topic whose replicas go as `placement` says (given: one
    /// list per partition, `partitions` is their count).
    pub fn create_placed(
        &self,
        name: &str,
        partitions: u32,
        placement: Placement,
        overrides: BTreeMap<String, String>,
    ) -> Result<Topic, Refusal> {
        validate_topic_name(name).map_err(|e| (e, None))?;
        if partitions == 0 {
            return Err((ResponseError::InvalidPartitions, Some("at least one partition".into())));
        }
        self.log_config(&overrides)
            .map_err(|m| (ResponseError::InvalidConfig, Some(m)))?;
        let mut known = self.known.write();
        if known.contains_key(name) {
            return Err((ResponseError::TopicAlreadyExists, None));
        }
        let topic = Topic {
            id: Uuid::new_v4(),
            partitions,
            overrides,
        };
        self.catalog.create(name, &topic, &placement).map_err(catalog_refusal)?;
        known.insert(name.to_string(), topic.clone());
        tracing::info!(topic = name, partitions, "created topic");
        Ok(topic)
    }

    /// Grows a topic to `count` partitions, the new ones' replicas as
    /// `given` (checked as Kafka does) or spread over the live brokers.
    pub fn grow(&self, name: &str, count: u32, given: Option<Vec<Vec<i32>>>) -> Result<(), Refusal> {
        let mut known = self.known.write();
        let topic = known
            .get_mut(name)
            .ok_or((ResponseError::UnknownTopicOrPartition, None))?;
        if count <= topic.partitions {
            let message = format!("topic has {} partitions; the count can only grow", topic.partitions);
            return Err((ResponseError::InvalidPartitions, Some(message)));
        }
        let grown = Topic {
            partitions: count,
            ..topic.clone()
        };
        self.catalog
            .update(name, &grown, given.as_deref())
            .map_err(catalog_refusal)?;
        *topic = grown;
        tracing::info!(topic = name, partitions = count, "added partitions");
        Ok(())
    }

    /// Asks the catalog to delete a topic (Kafka's
    /// `/admin/delete_topics/<t>`): the controller has every broker forget
    /// it and delete its logs ([`Topics::forget`]).
    pub fn request_deletion(&self, name: &str) -> Result<(), ResponseError> {
        if !self.known.read().contains_key(name) {
            return Err(ResponseError::UnknownTopicOrPartition);
        }
        self.catalog.delete(name).map_err(|e| {
            tracing::warn!(topic = name, "asking for the topic's deletion failed: {e}");
            catalog_refusal(e).0
        })
    }

    /// Forgets a topic deleted elsewhere; returns how many partitions its
    /// local logs may span (known or found on disk).
    pub fn forget(&self, name: &str) -> u32 {
        let removed = self.known.write().remove(name).map_or(0, |t| t.partitions);
        let on_disk = self
            .logs
            .logs()
            .into_iter()
            .filter(|(tp, _)| tp.topic == name)
            .map(|(tp, _)| tp.partition + 1)
            .max()
            .unwrap_or(0);
        removed.max(on_disk)
    }

    /// The local log of a partition the controller placed here, created
    /// (with the topic's recorded config) if needed; the topic, or its
    /// grown partition count, is learnt from the catalog when it changed on
    /// another broker.
    pub fn partition_log(&self, name: &str, partition: u32) -> Result<Arc<Log>, String> {
        let known = self.learn(name)?;
        if partition >= known.partitions {
            if let Ok(Some(recorded)) = self.catalog.topic(name) {
                if let Some(t) = self.known.write().get_mut(name) {
                    t.partitions = t.partitions.max(recorded.partitions);
                }
            }
        }
        let known = self.get(name).ok_or("topic vanished")?;
        let tp = TopicPartition::new(name, partition);
        if let Some(log) = self.logs.get(&tp) {
            return Ok(log);
        }
        let config = self.log_config(&known.overrides)?;
        self.record_partition(name, partition, &known, &config)
            .map_err(|(_, m)| m.unwrap_or_default())?;
        self.logs.get(&tp).ok_or_else(|| "log not created".to_string())
    }

    /// A topic's config overrides with `changes` made (`None` removes
    /// one), checked by Kafka's rules — IncrementalAlterConfigs' new
    /// overrides, recorded by [`Topics::replace_overrides`] unless only
    /// validating.
    pub fn altered(
        &self,
        name: &str,
        changes: &[(String, Option<String>)],
    ) -> Result<BTreeMap<String, String>, Refusal> {
        let topic = self.get(name).ok_or((ResponseError::UnknownTopicOrPartition, None))?;
        let mut overrides = topic.overrides;
        for (key, value) in changes {
            match value {
                Some(v) => overrides.insert(key.clone(), v.clone()),
                None => overrides.remove(key),
            };
        }
        self.check_overrides(name, &overrides)?;
        Ok(overrides)
    }

    /// Checks `overrides` as the whole config of topic `name` (the legacy
    /// AlterConfigs' replace-all, and every path that changes overrides):
    /// the topic must exist, the settings pass Kafka's rules.
    pub fn check_overrides(&self, name: &str, overrides: &BTreeMap<String, String>) -> Result<(), Refusal> {
        if self.get(name).is_none() {
            return Err((ResponseError::UnknownTopicOrPartition, None));
        }
        self.log_config(overrides)
            .map(|_| ())
            .map_err(|m| (ResponseError::InvalidConfig, Some(m)))
    }

    /// Makes `overrides` the whole config of topic `name`: checked, then
    /// recorded in the catalog (every broker learns it); returns them, for
    /// the caller to apply with [`Topics::apply_overrides`].
    pub fn replace_overrides(
        &self,
        name: &str,
        overrides: BTreeMap<String, String>,
    ) -> Result<BTreeMap<String, String>, Refusal> {
        self.check_overrides(name, &overrides)?;
        self.catalog.set_config(name, &overrides).map_err(catalog_refusal)?;
        Ok(overrides)
    }

    /// The overrides the catalog records for a topic, when they differ from
    /// what this broker applies (another broker changed them).
    pub fn recorded_overrides_if_changed(&self, name: &str) -> Result<Option<BTreeMap<String, String>>, String> {
        let Some(recorded) = self.catalog.topic(name).map_err(|e| e.to_string())? else {
            return Ok(None);
        };
        let unchanged = self.get(name).is_some_and(|t| t.overrides == recorded.overrides);
        Ok((!unchanged).then_some(recorded.overrides))
    }

    /// Applies a topic's overrides to its local logs and remembers them.
    pub fn apply_overrides(&self, name: &str, overrides: BTreeMap<String, String>) -> Result<(), String> {
        let config = self.log_config(&overrides)?;
        for (tp, log) in self.logs.logs() {
            if tp.topic == name {
                log.set_config(config.clone()).map_err(|e| e.to_string())?;
                files::write_overrides(log.dir(), &overrides).map_err(|e| e.to_string())?;
            }
        }
        if let Some(t) = self.known.write().get_mut(name) {
            t.overrides = overrides;
        }
        tracing::info!(topic = name, "topic config changed");
        Ok(())
    }

    /// The number of live brokers the catalog knows.
    pub fn live_brokers(&self) -> Result<usize, CatalogError> {
        self.catalog.live_brokers()
    }

    /// Opens (or creates) a partition's log with `config` and records the
    /// topic's id and overrides beside it.
    fn record_partition(&self, name: &str, p: u32, topic: &Topic, config: &LogConfig) -> Result<(), Refusal> {
        let storage = |e: String| (ResponseError::KafkaStorageError, Some(e));
        let log = self
            .logs
            .get_or_create(&TopicPartition::new(name, p), Some(config.clone()))
            .map_err(|e| storage(e.to_string()))?;
        log.set_config(config.clone()).map_err(|e| storage(e.to_string()))?;
        files::write_topic_id(log.dir(), topic.id).map_err(|e| storage(e.to_string()))?;
        files::write_overrides(log.dir(), &topic.overrides).map_err(|e| storage(e.to_string()))
    }
}

/// What the partition directories of a topic record.
struct TopicOnDisk {
    /// The topic id, when a directory records a readable one.
    id: Option<Uuid>,
    /// One more than the highest partition found.
    partitions: u32,
}

/// The topics the logs on disk belong to, as their directories record them.
/// The catalog is the authority on a topic's id and config (the files are
/// rewritten from it when the topic's partitions are recorded at start-up);
/// an unreadable file is reported with its name, never read as a default.
fn topics_on_disk(logs: &LogManager) -> BTreeMap<String, TopicOnDisk> {
    let mut topics: BTreeMap<String, TopicOnDisk> = BTreeMap::new();
    for (tp, log) in logs.logs() {
        let id = files::read_topic_id(log.dir()).unwrap_or_else(|e| {
            tracing::warn!(partition = %tp, "{e}; the catalog's topic id replaces it");
            None
        });
        if let Err(e) = files::read_overrides(log.dir()) {
            tracing::warn!(partition = %tp, "{e}; the catalog's config overrides replace it");
        }
        let entry = topics
            .entry(tp.topic.clone())
            .or_insert(TopicOnDisk { id, partitions: 0 });
        entry.id = entry.id.or(id);
        entry.partitions = entry.partitions.max(tp.partition + 1);
    }
    topics
}

/// The Kafka error for a catalog failure.
fn catalog_refusal(e: CatalogError) -> Refusal {
    match e {
        CatalogError::AlreadyExists => (ResponseError::TopicAlreadyExists, None),
        CatalogError::Unavailable(m) => (ResponseError::UnknownServerError, Some(m)),
        CatalogError::InvalidReplicationFactor(m) => (ResponseError::InvalidReplicationFactor, Some(m)),
        CatalogError::InvalidReplicaAssignment(m) => (ResponseError::InvalidReplicaAssignment, Some(m)),
    }
}
