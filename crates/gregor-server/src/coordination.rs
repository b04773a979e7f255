//! The broker's coordination: the embedded store (default, kept in a hidden
//! `.coordination` directory of the first log dir) or a ZooKeeper ensemble
//! (`zookeeper.connect`), Kafka's layout in either, and the catalog the
//! routing layer records topics and claims producer-id blocks in.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use gregor_coord::kafka::{BrokerRegistration, KafkaMetadata, TopicAssignment, TopicConfig};
use gregor_coord::{CoordError, Coordinator, EmbeddedCoordinator, EmbeddedStore, ZooKeeperCoordinator};
use gregor_routing::{CatalogError, ClusterCatalog, Topic};
use tokio::runtime::Handle;
use uuid::Uuid;

/// Directory of the embedded store inside the first log dir.
pub const EMBEDDED_DIR: &str = ".coordination";

/// Connects to ZooKeeper at `zookeeper` or opens the embedded store under
/// `log_dir`, then creates Kafka's paths.
pub async fn connect(
    zookeeper: Option<&str>,
    log_dir: &Path,
    session_timeout: Duration,
) -> anyhow::Result<Arc<dyn Coordinator>> {
    let coordinator: Arc<dyn Coordinator> = match zookeeper {
        Some(hosts) => Arc::new(
            ZooKeeperCoordinator::connect(hosts, session_timeout)
                .await
                .with_context(|| format!("connecting to ZooKeeper at {hosts}"))?,
        ),
        None => {
            let dir = log_dir.join(EMBEDDED_DIR);
            let store = EmbeddedStore::open(&dir)
                .with_context(|| format!("opening the embedded coordination store in {}", dir.display()))?;
            Arc::new(EmbeddedCoordinator::connect(&store, session_timeout))
        }
    };
    KafkaMetadata::new(coordinator.as_ref())
        .ensure_layout()
        .await
        .context("creating the coordination layout")?;
    Ok(coordinator)
}

/// Registers this broker (`/brokers/ids/<id>`, ephemeral) and runs for
/// controller; returns whether it won.
pub async fn register(coordinator: &dyn Coordinator, id: i32, host: &str, port: u16) -> anyhow::Result<bool> {
    let meta = KafkaMetadata::new(coordinator);
    meta.register_broker(id, &BrokerRegistration::plaintext(host, port, None))
        .await
        .with_context(|| format!("registering broker {id}"))?;
    Ok(meta
        .try_become_controller(id)
        .await
        .context("electing a controller")?
        .is_some())
}

/// The cluster catalog in coordination: topics in `/brokers/topics/<t>`
/// (every partition on this broker until replication assigns replicas) and
/// `/config/topics/<t>`, producer ids from `/latest_producer_id_block`.
/// Blocks on `runtime`: call it off the runtime's threads (handler
/// threads, `spawn_blocking`).
pub struct CoordinatedCatalog {
    coordinator: Arc<dyn Coordinator>,
    runtime: Handle,
    broker_id: i32,
}

impl CoordinatedCatalog {
    /// A catalog over `coordinator`, run on `runtime`.
    pub fn new(coordinator: Arc<dyn Coordinator>, runtime: Handle, broker_id: i32) -> Self {
        Self {
            coordinator,
            runtime,
            broker_id,
        }
    }

    fn meta(&self) -> KafkaMetadata<'_> {
        KafkaMetadata::new(self.coordinator.as_ref())
    }

    fn assignment(&self, topic: &Topic) -> TopicAssignment {
        let replicas = vec![vec![self.broker_id]; topic.partitions as usize];
        TopicAssignment::new(&replicas, Some(URL_SAFE_NO_PAD.encode(topic.id.as_bytes())))
    }
}

fn unavailable(e: CoordError) -> CatalogError {
    match e {
        CoordError::NodeExists(_) => CatalogError::AlreadyExists,
        other => CatalogError::Unavailable(other.to_string()),
    }
}

impl ClusterCatalog for CoordinatedCatalog {
    fn topics(&self) -> Result<BTreeMap<String, Topic>, CatalogError> {
        self.runtime.block_on(async {
            let meta = self.meta();
            let mut topics = BTreeMap::new();
            for name in meta.topics().await.map_err(unavailable)? {
                let assignment = meta.topic_assignment(&name).await.map_err(unavailable)?;
                let overrides = match meta.topic_config(&name).await {
                    Ok(config) => config.config,
                    Err(CoordError::NoNode(_)) => BTreeMap::new(),
                    Err(e) => return Err(unavailable(e)),
                };
                let id = assignment
                    .topic_id
                    .as_deref()
                    .and_then(|id| URL_SAFE_NO_PAD.decode(id).ok())
                    .and_then(|bytes| Uuid::from_slice(&bytes).ok())
                    .unwrap_or_else(Uuid::new_v4);
                let partitions = assignment.partitions.len() as u32;
                topics.insert(
                    name,
                    Topic {
                        id,
                        partitions,
                        overrides,
                    },
                );
            }
            Ok(topics)
        })
    }

    fn create(&self, name: &str, topic: &Topic) -> Result<(), CatalogError> {
        let config = TopicConfig {
            version: 1,
            config: topic.overrides.clone(),
        };
        self.runtime
            .block_on(self.meta().create_topic(name, &self.assignment(topic), &config))
            .map_err(unavailable)
    }

    fn update(&self, name: &str, topic: &Topic) -> Result<(), CatalogError> {
        self.runtime
            .block_on(self.meta().set_topic_assignment(name, &self.assignment(topic)))
            .map_err(unavailable)
    }

    fn delete(&self, name: &str) -> Result<(), CatalogError> {
        self.runtime
            .block_on(self.meta().delete_topic(name))
            .map_err(unavailable)
    }

    fn allocate_producer_ids(&self) -> Result<std::ops::RangeInclusive<i64>, CatalogError> {
        self.runtime
            .block_on(self.meta().allocate_producer_id_block(self.broker_id))
            .map_err(unavailable)
    }
}
