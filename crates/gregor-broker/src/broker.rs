//! The broker: its parts assembled — topics, replicas, groups,
//! transactions, producer ids, one clock — and the few operations that span several of them.

use std::collections::BTreeMap;
use std::sync::Arc;

use gregor_group::GroupConfig;
use gregor_log::{Clock, Log, LogManager, TopicPartition};
use kafka_protocol::error::ResponseError;

use crate::catalog::ClusterCatalog;
use crate::config::BrokerConfig;
use crate::controller_inbox::ControllerInbox;
use crate::errors::replication_error;
use crate::fetch_sessions::FetchSessions;
use crate::groups::{Groups, OffsetsTopic, OffsetsTopicSettings};
use crate::producer_ids::ProducerIds;
use crate::quotas::ClientQuotas;
use crate::replicas::ReplicaManager;
use crate::topics::{Refusal, TopicDefaults, Topics};
use crate::transactions::Transactions;
use gregor_transaction::TransactionSettings;

/// A broker's state, shared by its request handlers and background tasks.
pub struct Broker {
    config: BrokerConfig,
    clock: Arc<dyn Clock>,
    logs: Arc<LogManager>,
    topics: Arc<Topics>,
    replicas: Arc<ReplicaManager>,
    groups: Groups,
    transactions: Transactions,
    producer_ids: Arc<ProducerIds>,
    fetch_sessions: FetchSessions,
    controller_inbox: ControllerInbox,
    quotas: ClientQuotas,
}

impl Broker {
    /// Assembles a broker over `logs`: topics reconciled with `catalog`
    /// (see [`Topics::open`]), the replica manager the controller's
    /// requests drive, the group coordinator over `__consumer_offsets`.
    /// Blocks on the catalog and the disks: call it off the runtime.
    pub fn open(
        config: BrokerConfig,
        group_config: GroupConfig,
        logs: Arc<LogManager>,
        catalog: Arc<dyn ClusterCatalog>,
        replicas: Arc<ReplicaManager>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, String> {
        let defaults = TopicDefaults {
            log_config: config.default_log_config.clone(),
            num_partitions: config.num_partitions,
            replication_factor: config.default_replication_factor,
            auto_create: config.auto_create_topics,
        };
        let topics = Arc::new(Topics::open(defaults, logs.clone(), catalog.clone())?);
        let offsets = Arc::new(OffsetsTopic::new(
            OffsetsTopicSettings {
                partitions: config.offsets_topic_partitions,
                segment_bytes: config.offsets_topic_segment_bytes,
                replication_factor: config.offsets_topic_replication_factor,
            },
            topics.clone(),
            replicas.clone(),
            clock.clone(),
        ));
        let groups = Groups::start(group_config, offsets, clock.clone())
            .map_err(|e| format!("loading committed offsets: {e}"))?;
        let producer_ids = Arc::new(ProducerIds::new(catalog));
        let transactions = Transactions::start(
            TransactionSettings {
                state_log_partitions: config.transaction_state.partitions,
                offsets_topic_partitions: config.offsets_topic_partitions,
                ..config.transactions.clone()
            },
            config.transaction_state,
            topics.clone(),
            replicas.clone(),
            producer_ids.clone(),
            clock.clone(),
        );
        Ok(Self {
            quotas: ClientQuotas::new(config.quota_window, clock.clone()),
            clock,
            logs,
            topics,
            replicas,
            groups,
            transactions,
            producer_ids,
            fetch_sessions: FetchSessions::new(config.fetch_session_slots),
            controller_inbox: ControllerInbox::default(),
            config,
        })
    }

    /// The settings.
    pub fn config(&self) -> &BrokerConfig {
        &self.config
    }

    /// Now, by the broker's clock (ms since the Unix epoch).
    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// The log manager.
    pub fn logs(&self) -> &Arc<LogManager> {
        &self.logs
    }

    /// The topics.
    pub fn topics(&self) -> &Topics {
        &self.topics
    }

    /// The replica manager.
    pub fn replicas(&self) -> &Arc<ReplicaManager> {
        &self.replicas
    }

    /// The groups.
    pub fn groups(&self) -> &Groups {
        &self.groups
    }

    /// Requests for the controller, while it runs in this process.
    pub fn controller_inbox(&self) -> &ControllerInbox {
        &self.controller_inbox
    }

    /// The transactions.
    pub fn transactions(&self) -> &Transactions {
        &self.transactions
    }

    /// The client quotas (configs, rates, throttle times).
    pub fn quotas(&self) -> &ClientQuotas {
        &self.quotas
    }

    /// The fetch sessions.
    pub fn fetch_sessions(&self) -> &FetchSessions {
        &self.fetch_sessions
    }

    /// A producer id no broker handed out before.
    pub fn next_producer_id(&self) -> Result<i64, crate::CatalogError> {
        self.producer_ids.next()
    }

    /// Resolves at the next append or high watermark move (waiting
    /// fetches listen to it).
    pub fn appended(&self) -> Arc<tokio::sync::Notify> {
        self.replicas.progress()
    }

    /// The log a consumer reads and its high watermark, if this broker
    /// leads the partition (checking the client's `current_leader_epoch`).
    pub fn readable_log(
        &self,
        topic: &str,
        partition: i32,
        current_leader_epoch: Option<i32>,
    ) -> Result<(Arc<Log>, u64), ResponseError> {
        let tp = self.topics.known_partition(topic, partition)?;
        self.replicas
            .leader_log(&tp, current_leader_epoch)
            .map_err(replication_error)
    }

    /// The topic's `min.insync.replicas` override, if any.
    pub fn min_insync_replicas(&self, topic: &str) -> Option<usize> {
        min_insync(&self.topics.get(topic)?.overrides)
    }

    /// Changes a topic's config overrides (`None` removes one): checked,
    /// recorded in the catalog (every broker learns it), applied here.
    pub fn alter_topic_config(&self, name: &str, changes: &[(String, Option<String>)]) -> Result<(), Refusal> {
        let overrides = self.topics.altered(name, changes)?;
        self.replace_topic_config(name, overrides)
    }

    /// Makes `overrides` the whole of a topic's config (the legacy
    /// AlterConfigs): checked, recorded in the catalog, applied here.
    pub fn replace_topic_config(&self, name: &str, overrides: BTreeMap<String, String>) -> Result<(), Refusal> {
        let overrides = self.topics.replace_overrides(name, overrides)?;
        self.apply_overrides(name, overrides)
            .map_err(|m| (ResponseError::KafkaStorageError, Some(m)))
    }

    /// Re-reads a topic's config overrides from the catalog (another broker
    /// changed them) and applies them here.
    pub fn refresh_topic_config(&self, name: &str) -> Result<(), String> {
        match self.topics.recorded_overrides_if_changed(name)? {
            Some(overrides) => self.apply_overrides(name, overrides),
            None => Ok(()),
        }
    }

    fn apply_overrides(&self, name: &str, overrides: BTreeMap<String, String>) -> Result<(), String> {
        self.replicas.set_min_insync_replicas(name, min_insync(&overrides));
        self.topics.apply_overrides(name, overrides)
    }

    /// Deletes a topic: from the catalog, then its local logs.
    pub fn delete_topic(&self, name: &str) -> Result<(), ResponseError> {
        let topic = self.topics.delete(name)?;
        self.delete_local_partitions(name, topic.partitions)?;
        tracing::info!(topic = name, "deleted topic");
        Ok(())
    }

    /// Forgets a topic deleted elsewhere (StopReplica with delete) and
    /// deletes its local logs.
    pub fn forget_topic(&self, name: &str) -> Result<(), ResponseError> {
        let partitions = self.topics.forget(name);
        self.delete_local_partitions(name, partitions)
    }

    fn delete_local_partitions(&self, name: &str, partitions: u32) -> Result<(), ResponseError> {
        for p in 0..partitions {
            let tp = TopicPartition::new(name, p);
            self.replicas.stop_replica(&tp);
            if self.logs.get(&tp).is_some() {
                self.logs.delete(&tp).map_err(|_| ResponseError::KafkaStorageError)?;
            }
        }
        self.replicas.forget_topic(name);
        Ok(())
    }
}

fn min_insync(overrides: &BTreeMap<String, String>) -> Option<usize> {
    overrides.get("min.insync.replicas")?.trim().parse().ok()
}
