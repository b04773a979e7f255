//! The cluster catalog kept in coordination (embedded store or ZooKeeper),
//! in Kafka's layout (dynamic broker configs in `/config/brokers/<id>` and
//! `/config/brokers/<default>`).

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use gregor_coord::kafka::{broker_entity, KafkaMetadata, TopicAssignment, TopicConfig};
use gregor_coord::{CoordError, Coordinator};
use gregor_replication::{assign_replicas, BrokerInfo};
use tokio::runtime::Handle;
use uuid::Uuid;

use crate::catalog::{CatalogError, ClusterCatalog, Topic};
use crate::topics::{check_added_partitions, Placement};

/// The cluster catalog in coordination: topics in `/brokers/topics/<t>`
/// (replicas placed on the live brokers) and `/config/topics/<t>`,
/// producer ids from `/latest_producer_id_block`.
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

    /// Places `partitions` partitions of `replication_factor` replicas on
    /// the live brokers, as Kafka does (random start, rack-aware).
    async fn place(
        &self,
        partitions: std::ops::Range<u32>,
        replication_factor: u16,
    ) -> Result<Vec<Vec<i32>>, CatalogError> {
        let brokers: Vec<BrokerInfo> = self
            .meta()
            .brokers()
            .await
            .map_err(unavailable)?
            .into_iter()
            .map(|(id, registration)| BrokerInfo {
                id,
                rack: registration.rack,
            })
            .collect();
        let (start, shift) = (random_below(brokers.len()), random_below(brokers.len()));
        let all = assign_replicas(&brokers, partitions.end, replication_factor, start, shift)
            .map_err(|e| CatalogError::InvalidReplicationFactor(e.to_string()))?;
        Ok(all.into_iter().skip(partitions.start as usize).collect())
    }

    fn topic_id(topic: &Topic) -> Option<String> {
        Some(URL_SAFE_NO_PAD.encode(topic.id.as_bytes()))
    }
}

/// A random number below `n` (placement's start and shift).
fn random_below(n: usize) -> usize {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64),
    );
    (hasher.finish() % n.max(1) as u64) as usize
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
            // Topics marked for deletion are gone for clients already (as
            // in Kafka's metadata cache), while their nodes remain.
            let doomed = meta.topics_marked_for_deletion().await.map_err(unavailable)?;
            for name in meta.topics().await.map_err(unavailable)? {
                if doomed.contains(&name) {
                    continue;
                }
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

    fn create(&self, name: &str, topic: &Topic, placement: &Placement) -> Result<(), CatalogError> {
        let config = TopicConfig {
            version: 1,
            config: topic.overrides.clone(),
        };
        self.runtime.block_on(async {
            let replicas = match placement {
                Placement::Spread(factor) => self.place(0..topic.partitions, *factor).await?,
                Placement::Given(replicas) => replicas.clone(),
            };
            let assignment = TopicAssignment::new(&replicas, Self::topic_id(topic));
            self.meta()
                .create_topic(name, &assignment, &config)
                .await
                .map_err(unavailable)
        })
    }

    fn update(&self, name: &str, topic: &Topic, given: Option<&[Vec<i32>]>) -> Result<(), CatalogError> {
        self.runtime.block_on(async {
            let meta = self.meta();
            let mut assignment = meta.topic_assignment(name).await.map_err(unavailable)?;
            let existing = assignment.partitions.len() as u32;
            if topic.partitions > existing {
                let factor = assignment.partitions.values().next().map_or(1, |r| r.len()) as u16;
                let added = match given {
                    Some(given) => {
                        let brokers = meta.brokers().await.map_err(unavailable)?.into_keys().collect();
                        check_added_partitions(given, existing, topic.partitions - existing, factor.into(), &brokers)
                            .map_err(|(_, m)| CatalogError::InvalidReplicaAssignment(m.unwrap_or_default()))?;
                        given.to_vec()
                    }
                    None => self.place(existing..topic.partitions, factor).await?,
                };
                for (i, replicas) in added.into_iter().enumerate() {
                    assignment
                        .partitions
                        .insert((existing as usize + i).to_string(), replicas);
                }
            }
            meta.set_topic_assignment(name, &assignment).await.map_err(unavailable)
        })
    }

    fn set_config(&self, name: &str, overrides: &BTreeMap<String, String>) -> Result<(), CatalogError> {
        let config = TopicConfig {
            version: 1,
            config: overrides.clone(),
        };
        self.runtime
            .block_on(self.meta().set_topic_config(name, &config))
            .map_err(unavailable)
    }

    fn broker_config(&self, broker: Option<i32>) -> Result<BTreeMap<String, String>, CatalogError> {
        self.runtime
            .block_on(self.meta().entity_config(&broker_entity(broker)))
            .map_err(unavailable)
    }

    fn set_broker_config(&self, broker: Option<i32>, config: &BTreeMap<String, String>) -> Result<(), CatalogError> {
        self.runtime
            .block_on(self.meta().set_entity_config(&broker_entity(broker), config))
            .map_err(unavailable)
    }

    fn broker_ids(&self) -> Result<std::collections::BTreeSet<i32>, CatalogError> {
        self.runtime
            .block_on(self.meta().brokers())
            .map(|b| b.into_keys().collect())
            .map_err(unavailable)
    }

    fn delete(&self, name: &str) -> Result<(), CatalogError> {
        self.runtime
            .block_on(self.meta().request_topic_deletion(name))
            .map_err(unavailable)
    }

    fn allocate_producer_ids(&self) -> Result<std::ops::RangeInclusive<i64>, CatalogError> {
        self.runtime
            .block_on(self.meta().allocate_producer_id_block(self.broker_id))
            .map_err(unavailable)
    }
}
