//! The broker: its parts assembled — topics, replicas, groups,
//! transactions, producer ids, one clock — and the few operations that span several of them.

use std::collections::BTreeMap;
use std::sync::Arc;

use gregor_auth::acl::Authorizer;
use gregor_group::GroupConfig;
use gregor_log::{Clock, Log, LogManager, TopicPartition};
use kafka_protocol::error::ResponseError;

use crate::catalog::ClusterCatalog;
use crate::config::BrokerConfig;
use crate::controller_inbox::ControllerInbox;
use crate::dynamic_config::{DynamicBrokerConfig, DynamicLayers};
use crate::errors::replication_error;
use crate::fetch_sessions::FetchSessions;
use crate::groups::{Groups, OffsetsTopic, OffsetsTopicSettings};
use crate::producer_ids::ProducerIds;
use crate::quotas::ClientQuotas;
use crate::quotas::QuotaWindow;
use crate::replicas::ReplicaManager;
use crate::replication_throttle::ReplicationThrottle;
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
    dynamic: DynamicBrokerConfig,
    quotas: ClientQuotas,
    scram_credentials: crate::scram_credentials::ScramCredentials,
    replication_throttle: ReplicationThrottle,
    leader_replication_throttle: ReplicationThrottle,
    authorizer: Authorizer,
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
        // The dynamic broker configs recorded before this broker started
        // shape the log defaults the topics open with.
        let dynamic = DynamicBrokerConfig::new(config.properties.clone(), config.default_log_config.clone());
        let layers = recorded_layers(catalog.as_ref(), &dynamic, config.node_id)?;
        let log_config = dynamic.log_config(&layers).unwrap_or_else(|e| {
            tracing::warn!("dynamic broker configs do not apply: {e}");
            config.default_log_config.clone()
        });
        replicas.set_dynamic_min_insync_replicas(dynamic_min_insync(&layers));
        dynamic.set_layers(layers);
        let defaults = TopicDefaults {
            log_config,
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
            authorizer: Authorizer::new(config.authorizer.clone()),
            quotas: ClientQuotas::new(config.quota_window, clock.clone()),
            scram_credentials: Default::default(),
            replication_throttle: ReplicationThrottle::new(QuotaWindow::default()),
            leader_replication_throttle: ReplicationThrottle::new(QuotaWindow::default()),
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
            dynamic,
        })
    }

    /// The SCRAM credentials (KIP-554) SASL listeners authenticate from.
    pub fn scram_credentials(&self) -> &crate::scram_credentials::ScramCredentials {
        &self.scram_credentials
    }

    /// The follower side's replication throttle.
    pub fn replication_throttle(&self) -> &ReplicationThrottle {
        &self.replication_throttle
    }

    /// The leader side's replication throttle.
    pub fn leader_replication_throttle(&self) -> &ReplicationThrottle {
        &self.leader_replication_throttle
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

    /// The ACL authorizer (allows everything unless `authorizer.class.name`
    /// is set).
    pub fn authorizer(&self) -> &Authorizer {
        &self.authorizer
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

    /// [`Broker::readable_log`] for a consumer's fetch; with
    /// `from_followers` (Fetch v11+, KIP-392) a follower's log too, read to
    /// its own high watermark.
    pub fn consumer_readable_log(
        &self,
        topic: &str,
        partition: i32,
        current_leader_epoch: Option<i32>,
        from_followers: bool,
    ) -> Result<(Arc<Log>, u64), ResponseError> {
        let tp = self.topics.known_partition(topic, partition)?;
        self.replicas
            .consumer_log(&tp, current_leader_epoch, from_followers)
            .map_err(replication_error)
    }

    /// The follower a consumer in `client_rack` should fetch `topic`'s
    /// `partition` from, when this broker leads it and
    /// `replica.selector.class` picks one (see
    /// [`ReplicaManager::preferred_read_replica`]).
    pub fn preferred_read_replica(
        &self,
        topic: &str,
        partition: i32,
        client_rack: &str,
        fetch_offset: i64,
        listener: &str,
    ) -> Option<i32> {
        if !self.replicas.selects_read_replicas() {
            return None; // the common case: no work on the fetch path
        }
        let tp = TopicPartition::new(topic, u32::try_from(partition).ok()?);
        self.replicas
            .preferred_read_replica(&tp, client_rack, fetch_offset, listener)
    }

    /// A log directory went offline: its partitions stop being led and
    /// followed here (the group and transaction coordinators resign those
    /// of their topics) and answer KAFKA_STORAGE_ERROR. Returns them.
    pub fn take_log_dir_offline(&self, dir: &std::path::Path) -> Vec<TopicPartition> {
        let partitions: Vec<TopicPartition> = self
            .logs
            .logs_by_dir()
            .into_iter()
            .filter(|(path, _)| path == dir)
            .flat_map(|(_, logs)| logs.into_iter().map(|(tp, _)| tp))
            .collect();
        self.replicas.take_offline(&partitions);
        for tp in &partitions {
            let p = tp.partition;
            if tp.topic == gregor_group::OFFSETS_TOPIC {
                if let Err(e) = self.groups.partition_changed(p, false, self.now_ms()) {
                    tracing::warn!(partition = p, "resigning the groups of an offline partition: {e}");
                }
            } else if tp.topic == gregor_transaction::TRANSACTION_STATE_TOPIC {
                if let Err(e) = self.transactions.partition_led(p, None) {
                    tracing::warn!(partition = p, "resigning the transactions of an offline partition: {e}");
                }
            }
        }
        tracing::error!(dir = %dir.display(), partitions = partitions.len(), "log directory offline: its partitions are no longer served here");
        partitions
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

    /// The dynamic broker configs (and the throttled replication rates).
    pub fn dynamic_config(&self) -> &DynamicBrokerConfig {
        &self.dynamic
    }

    /// The dynamic configs recorded for a BROKER resource (`Some(id)`: this
    /// broker, `None`: the cluster-wide defaults), without what cannot
    /// apply — IncrementalAlterConfigs starts from them, as Kafka does.
    pub fn recorded_broker_config(&self, broker: Option<i32>) -> Result<BTreeMap<String, String>, Refusal> {
        let recorded = self.topics.catalog().broker_config(broker).map_err(unavailable)?;
        Ok(self.dynamic.sanitized(recorded))
    }

    /// Makes `configs` the whole dynamic config of a BROKER resource:
    /// checked as Kafka checks them (INVALID_REQUEST with Kafka's message),
    /// then — unless `validate_only` — recorded in the catalog (every
    /// broker learns it) and applied here.
    pub fn replace_broker_config(
        &self,
        broker: Option<i32>,
        configs: BTreeMap<String, String>,
        validate_only: bool,
    ) -> Result<(), Refusal> {
        // INVALID_REQUEST, not INVALID_CONFIG: Kafka 3.9's
        // ConfigAdminManager turns a refused broker config into it
        // (KAFKA-13609 keeps it so for compatibility).
        self.dynamic
            .check(broker, &configs)
            .map_err(|m| (ResponseError::InvalidRequest, Some(m)))?;
        if validate_only {
            return Ok(());
        }
        self.topics
            .catalog()
            .set_broker_config(broker, &configs)
            .map_err(unavailable)?;
        let mut layers = self.dynamic.layers();
        *layers.layer_mut(broker) = configs;
        self.apply_dynamic(layers);
        tracing::info!(broker = ?broker, "dynamic broker configs changed");
        Ok(())
    }

    /// Re-reads this broker's dynamic configs and the cluster-wide
    /// defaults from the catalog (a change notification) and applies them
    /// if they changed.
    pub fn refresh_broker_config(&self) -> Result<(), String> {
        let layers = recorded_layers(self.topics.catalog().as_ref(), &self.dynamic, self.config.node_id)?;
        if layers != self.dynamic.layers() {
            self.apply_dynamic(layers);
            tracing::info!("dynamic broker configs changed elsewhere: applied");
        }
        Ok(())
    }

    /// Applies dynamic configs: the log defaults of every topic, the
    /// broker-wide `min.insync.replicas`, then the server's hooks.
    fn apply_dynamic(&self, layers: DynamicLayers) {
        match self.dynamic.log_config(&layers) {
            Ok(log_config) => {
                self.replicas
                    .set_dynamic_min_insync_replicas(dynamic_min_insync(&layers));
                self.topics.set_default_log_config(log_config);
                for (name, topic) in self.topics.all() {
                    self.replicas
                        .set_min_insync_replicas(&name, min_insync(&topic.overrides));
                }
            }
            Err(e) => tracing::warn!("dynamic broker configs do not apply to the log defaults: {e}"),
        }
        self.dynamic.set_layers(layers);
    }

    /// Asks for a topic's deletion; the controller carries it out (every
    /// broker forgets it, see [`Broker::forget_topic`]).
    pub fn delete_topic(&self, name: &str) -> Result<(), ResponseError> {
        self.topics.request_deletion(name)?;
        tracing::info!(topic = name, "topic deletion asked");
        Ok(())
    }

    /// Forgets a topic deleted elsewhere (StopReplica with delete) and
    /// deletes its local logs.
    pub fn forget_topic(&self, name: &str) -> Result<(), ResponseError> {
        let partitions = self.topics.forget(name);
        self.delete_local_partitions(name, partitions)
    }

    /// Stops replicating one partition and deletes its local log (a
    /// reassignment moved the replica to other brokers).
    pub fn delete_partition(&self, tp: &TopicPartition) -> Result<(), ResponseError> {
        self.replicas.stop_replica(tp);
        if self.logs.get(tp).is_some() {
            self.logs.delete(tp).map_err(|_| ResponseError::KafkaStorageError)?;
        }
        Ok(())
    }

    fn delete_local_partitions(&self, name: &str, partitions: u32) -> Result<(), ResponseError> {
        for p in 0..partitions {
            self.delete_partition(&TopicPartition::new(name, p))?;
        }
        self.replicas.forget_topic(name);
        Ok(())
    }
}

/// The dynamic configs the catalog records for broker `node_id` and the
/// cluster, without what cannot apply.
fn recorded_layers(
    catalog: &dyn ClusterCatalog,
    dynamic: &DynamicBrokerConfig,
    node_id: i32,
) -> Result<DynamicLayers, String> {
    let read = |broker| catalog.broker_config(broker).map_err(|e| e.to_string());
    Ok(DynamicLayers {
        per_broker: dynamic.sanitized(read(Some(node_id))?),
        cluster_default: dynamic.sanitized(read(None)?),
    })
}

fn dynamic_min_insync(layers: &DynamicLayers) -> Option<usize> {
    layers.get("min.insync.replicas")?.trim().parse().ok()
}

fn unavailable(e: crate::CatalogError) -> Refusal {
    (ResponseError::UnknownServerError, Some(e.to_string()))
}

fn min_insync(overrides: &BTreeMap<String, String>) -> Option<usize> {
    overrides.get("min.insync.replicas")?.trim().parse().ok()
}
