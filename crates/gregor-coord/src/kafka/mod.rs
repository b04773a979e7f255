//! Kafka's ZooKeeper layout on top of any [`Coordinator`]: the paths and
//! the JSON shapes Kafka writes, so an operator looking with `zkCli.sh`
//! sees what they expect.
//!
//! ```text
//! /brokers/ids/<id>                            ephemeral, BrokerRegistration JSON
//! /controller                                  ephemeral, ControllerRegistration JSON
//! /controller_epoch                            the epoch as a decimal number
//! /brokers/topics/<t>                          TopicAssignment JSON
//! /brokers/topics/<t>/partitions/<p>/state     PartitionState JSON
//! /config/topics/<t>                           TopicConfig JSON
//! /admin/delete_topics/<t>                     empty: deletion requested
//! /admin/reassign_partitions                   reassignments asked the old way
//! /isr_change_notification/isr_change_<seq>    partitions whose ISR a leader changed
//! /log_dir_event_notification/log_dir_event_<seq>   a broker's log directory failed
//! /config/changes/config_change_<seq>          an entity whose config changed
//! /config/brokers/<id>, /config/brokers/<default>   dynamic broker configs
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::coordinator::Coordinator;
use crate::error::{CoordError, Result};
use crate::types::{CreateMode, Op, OpResult};

mod log_dir_events;
mod reassignments;

pub use log_dir_events::{LogDirEvent, LOG_DIR_EVENT_NOTIFICATION, LOG_DIR_FAILURE_EVENT};

pub use reassignments::{PartitionReassignment, ReassignPartitions, REASSIGN_PARTITIONS};
mod entity_config;
pub use entity_config::{broker_entity, BROKER_CONFIGS, DEFAULT_ENTITY};
mod nodes;
use nodes::now_ms;
pub use nodes::*;

/// `/brokers/ids`
pub const BROKER_IDS: &str = "/brokers/ids";
/// `/brokers/topics`
pub const TOPICS: &str = "/brokers/topics";
/// `/controller`
pub const CONTROLLER: &str = "/controller";
/// `/controller_epoch`
pub const CONTROLLER_EPOCH: &str = "/controller_epoch";
/// `/config/topics`
pub const TOPIC_CONFIGS: &str = "/config/topics";
/// `/admin/delete_topics`
pub const DELETE_TOPICS: &str = "/admin/delete_topics";
/// `/config/changes`: brokers learn of config changes here.
pub const CONFIG_CHANGES: &str = "/config/changes";

/// `/isr_change_notification`: leaders tell the controller of ISR changes.
pub const ISR_CHANGE_NOTIFICATION: &str = "/isr_change_notification";

/// `/brokers/ids/<id>`
pub fn broker_path(id: i32) -> String {
    format!("{BROKER_IDS}/{id}")
}

/// `/brokers/topics/<topic>`
pub fn topic_path(topic: &str) -> String {
    format!("{TOPICS}/{topic}")
}

/// `/brokers/topics/<topic>/partitions/<p>/state`
pub fn partition_state_path(topic: &str, partition: i32) -> String {
    format!("{TOPICS}/{topic}/partitions/{partition}/state")
}

/// `/config/topics/<topic>`
pub fn topic_config_path(topic: &str) -> String {
    format!("{TOPIC_CONFIGS}/{topic}")
}

fn to_json<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_default()
}

/// A fenced write's error: the fence (operation 0) failing stays a
/// `TransactionFailed`; a write failing is reported as its own error
/// (`BadVersion`, `NodeExists`), which the controller answers by reading
/// the node again.
fn unfenced(e: CoordError) -> CoordError {
    match e {
        CoordError::TransactionFailed { index, source } if index > 0 => *source,
        other => other,
    }
}

/// The check that fences a controller's write: `/controller_epoch` still
/// has the version its election gave it.
fn epoch_fence(controller_epoch_version: i32) -> Op {
    Op::Check {
        path: CONTROLLER_EPOCH.into(),
        version: controller_epoch_version,
    }
}

fn from_json<T: for<'de> Deserialize<'de>>(path: &str, bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| CoordError::Other(format!("malformed JSON at {path}: {e}")))
}

/// One partition state for `write_partition_states`: the controller's
/// write of `/brokers/topics/<topic>/partitions/<partition>/state` over
/// the node's `expected_version`.
#[derive(Debug, Clone, Copy)]
pub struct StateWrite<'a> {
    /// The topic.
    pub topic: &'a str,
    /// The partition.
    pub partition: i32,
    /// Its new leader, epoch and ISR.
    pub state: &'a PartitionState,
    /// The version the node must still have.
    pub expected_version: i32,
}

/// Kafka's metadata operations over a [`Coordinator`].
pub struct KafkaMetadata<'a> {
    coord: &'a dyn Coordinator,
}

impl<'a> KafkaMetadata<'a> {
    /// Works through `coord`.
    pub fn new(coord: &'a dyn Coordinator) -> Self {
        Self { coord }
    }

    /// Creates the persistent parent paths.
    pub async fn ensure_layout(&self) -> Result<()> {
        for path in [
            BROKER_IDS,
            TOPICS,
            TOPIC_CONFIGS,
            DELETE_TOPICS,
            ISR_CHANGE_NOTIFICATION,
            LOG_DIR_EVENT_NOTIFICATION,
            CONFIG_CHANGES,
        ] {
            self.coord.create_all(path).await?;
        }
        Ok(())
    }

    /// Registers broker `id` as an ephemeral node of this session and
    /// returns its broker epoch (the node's `czxid`, as Kafka's KIP-380).
    /// Another session holding the id is refused with `NodeExists`.
    pub async fn register_broker(&self, id: i32, registration: &BrokerRegistration) -> Result<i64> {
        let path = broker_path(id);
        match self
            .coord
            .create(&path, &to_json(registration), CreateMode::Ephemeral)
            .await
        {
            Err(CoordError::NodeExists(_)) => match self.coord.exists(&path).await? {
                Some(stat) if stat.ephemeral_owner == self.coord.session_id() => Ok(stat.czxid),
                // Another session holds it: a live broker with this id, or
                // this broker's previous incarnation whose session has not
                // expired yet (the caller may wait for that).
                Some(_) => Err(CoordError::NodeExists(format!(
                    "{path}: broker id {id} is registered by another session (another live broker, \
                     or this broker's previous run until its session expires)"
                ))),
                // Gone meanwhile (the old session just expired): try again.
                None => Box::pin(self.register_broker(id, registration)).await,
            },
            Err(e) => Err(e),
            Ok(_) => Ok(self.coord.exists(&path).await?.map_or(-1, |s| s.czxid)),
        }
    }

    /// The registered brokers, by id.
    pub async fn brokers(&self) -> Result<BTreeMap<i32, BrokerRegistration>> {
        let mut brokers = BTreeMap::new();
        for child in self.coord.children(BROKER_IDS).await? {
            let Ok(id) = child.parse::<i32>() else { continue };
            match self.coord.get(&broker_path(id)).await {
                Ok((data, stat)) => {
                    let mut registration: BrokerRegistration = from_json(&broker_path(id), &data)?;
                    registration.broker_epoch = stat.czxid;
                    brokers.insert(id, registration);
                }
                Err(CoordError::NoNode(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(brokers)
    }

    /// Tries to become the controller: creates `/controller` and, on
    /// success, bumps `/controller_epoch` with compare-and-set. Returns the
    /// new epoch, or `None` when another broker is controller.
    pub async fn try_become_controller(&self, broker_id: i32) -> Result<Option<i32>> {
        let registration = ControllerRegistration {
            version: 2,
            brokerid: broker_id,
            timestamp: now_ms(),
            kraft_controller_epoch: -1,
        };
        match self
            .coord
            .create(CONTROLLER, &to_json(&registration), CreateMode::Ephemeral)
            .await
        {
            Err(CoordError::NodeExists(_)) => return Ok(None),
            other => other?,
        };
        loop {
            match self.controller_epoch().await? {
                None => match self.coord.create(CONTROLLER_EPOCH, b"1", CreateMode::Persistent).await {
                    Ok(_) => return Ok(Some(1)),
                    Err(CoordError::NodeExists(_)) => continue,
                    Err(e) => return Err(e),
                },
                Some((epoch, version)) => {
                    let next = epoch + 1;
                    match self
                        .coord
                        .set(CONTROLLER_EPOCH, next.to_string().as_bytes(), Some(version))
                        .await
                    {
                        Ok(_) => return Ok(Some(next)),
                        Err(CoordError::BadVersion(_)) => continue,
                        Err(e) => return Err(e),
                    }
                }
            }
        }
    }

    /// The current controller's broker id.
    pub async fn controller(&self) -> Result<Option<i32>> {
        match self.coord.get(CONTROLLER).await {
            Ok((data, _)) => Ok(Some(from_json::<ControllerRegistration>(CONTROLLER, &data)?.brokerid)),
            Err(CoordError::NoNode(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Gives up the controller office if this session holds it (its
    /// `/controller` node): a controller that stopped on an error steps
    /// down so that an election follows — otherwise its own node would
    /// keep every broker, itself included, waiting for it to go. Returns
    /// whether it resigned.
    pub async fn resign_controller(&self) -> Result<bool> {
        match self.coord.get(CONTROLLER).await {
            Ok((_, stat)) if stat.ephemeral_owner == self.coord.session_id() => {
                match self.coord.delete(CONTROLLER, Some(stat.version)).await {
                    Ok(()) => Ok(true),
                    Err(CoordError::NoNode(_) | CoordError::BadVersion(_)) => Ok(false),
                    Err(e) => Err(e),
                }
            }
            Ok(_) | Err(CoordError::NoNode(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The controller epoch and the node's version (for fencing checks).
    pub async fn controller_epoch(&self) -> Result<Option<(i32, i32)>> {
        match self.coord.get(CONTROLLER_EPOCH).await {
            Ok((data, stat)) => {
                let epoch = std::str::from_utf8(&data)
                    .ok()
                    .and_then(|s| s.trim().parse().ok())
                    .ok_or_else(|| CoordError::Other("malformed /controller_epoch".into()))?;
                Ok(Some((epoch, stat.version)))
            }
            Err(CoordError::NoNode(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Creates a topic's assignment and config in one transaction.
    pub async fn create_topic(&self, topic: &str, assignment: &TopicAssignment, config: &TopicConfig) -> Result<()> {
        let ops = vec![
            Op::Create {
                path: topic_config_path(topic),
                data: to_json(config),
                mode: CreateMode::Persistent,
            },
            Op::Create {
                path: topic_path(topic),
                data: to_json(assignment),
                mode: CreateMode::Persistent,
            },
        ];
        self.coord.multi(ops).await.map(|_| ()).map_err(|e| match e {
            CoordError::TransactionFailed { source, .. } => *source,
            other => other,
        })
    }

    /// The topics that exist.
    pub async fn topics(&self) -> Result<Vec<String>> {
        self.coord.children(TOPICS).await
    }

    /// A topic's assignment.
    pub async fn topic_assignment(&self, topic: &str) -> Result<TopicAssignment> {
        let path = topic_path(topic);
        let (data, _) = self.coord.get(&path).await?;
        from_json(&path, &data)
    }

    /// Replaces a topic's assignment (partitions added).
    pub async fn set_topic_assignment(&self, topic: &str, assignment: &TopicAssignment) -> Result<()> {
        self.coord
            .set(&topic_path(topic), &to_json(assignment), None)
            .await
            .map(|_| ())
    }

    /// Removes a topic: its partition states, assignment, config and any
    /// pending deletion request. Nodes already gone are fine.
    pub async fn delete_topic(&self, topic: &str) -> Result<()> {
        // The controller may be writing a new partition's state meanwhile:
        // a parent that gained a child is listed and deleted again.
        let mut attempts = 0;
        loop {
            match self.delete_topic_nodes(topic).await {
                Err(CoordError::NotEmpty(_)) if attempts < 20 => attempts += 1,
                other => return other,
            }
        }
    }

    async fn delete_topic_nodes(&self, topic: &str) -> Result<()> {
        let partitions = format!("{}/partitions", topic_path(topic));
        let mut paths = Vec::new();
        match self.coord.children(&partitions).await {
            Ok(children) => {
                for p in children {
                    paths.push(format!("{partitions}/{p}/state"));
                    paths.push(format!("{partitions}/{p}"));
                }
                paths.push(partitions);
            }
            Err(CoordError::NoNode(_)) => {}
            Err(e) => return Err(e),
        }
        paths.extend([
            topic_path(topic),
            topic_config_path(topic),
            format!("{DELETE_TOPICS}/{topic}"),
        ]);
        for path in paths {
            match self.coord.delete(&path, None).await {
                Ok(()) | Err(CoordError::NoNode(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Replaces a topic's config overrides and tells every broker (a
    /// `/config/changes` notification).
    pub async fn set_topic_config(&self, topic: &str, config: &TopicConfig) -> Result<()> {
        self.coord
            .set(&topic_config_path(topic), &to_json(config), None)
            .await?;
        self.announce_config_change(&format!("topics/{topic}")).await
    }

    /// The config change notifications after `seen` (their node names, in
    /// order) with the topics they name.
    pub async fn config_changes_after(&self, seen: Option<&str>) -> Result<Vec<(String, Option<String>)>> {
        Ok(self
            .config_notifications_after(seen)
            .await?
            .into_iter()
            .map(|(name, entity)| {
                let topic = entity.and_then(|e| e.strip_prefix("topics/").map(str::to_string));
                (name, topic)
            })
            .collect())
    }

    /// A topic's config overrides.
    pub async fn topic_config(&self, topic: &str) -> Result<TopicConfig> {
        let path = topic_config_path(topic);
        let (data, _) = self.coord.get(&path).await?;
        from_json(&path, &data)
    }

    /// Writes a partition's state, fenced by the controller epoch: the
    /// write happens only if `/controller_epoch` still has
    /// `controller_epoch_version` and the state node `expected_version`
    /// (`None`: create it). Returns the state node's new version; a moved
    /// epoch fails as `TransactionFailed` at index 0, a moved state node
    /// as `BadVersion` (`NodeExists` when it was to be created).
    pub async fn write_partition_state(
        &self,
        topic: &str,
        partition: i32,
        state: &PartitionState,
        controller_epoch_version: i32,
        expected_version: Option<i32>,
    ) -> Result<i32> {
        if let Some(expected_version) = expected_version {
            let write = StateWrite {
                topic,
                partition,
                state,
                expected_version,
            };
            // One version per write, or an error.
            return Ok(self.write_partition_states(&[write], controller_epoch_version).await?[0]);
        }
        self.coord
            .create_all(&format!("{TOPICS}/{topic}/partitions/{partition}"))
            .await?;
        let create = Op::Create {
            path: partition_state_path(topic, partition),
            data: to_json(state),
            mode: CreateMode::Persistent,
        };
        self.coord
            .multi(vec![epoch_fence(controller_epoch_version), create])
            .await
            .map_err(unfenced)?;
        // A node's first version.
        Ok(0)
    }

    /// Replaces several partitions' state nodes in one transaction fenced
    /// by the controller epoch, as Kafka's controller sends its state
    /// updates in a batch: every node is written, each only if it still
    /// has its expected version, or none is (`BadVersion` then, as
    /// `write_partition_state`). Returns each node's new version, in the
    /// order given. The caller keeps a batch within the service's request
    /// size (ZooKeeper's `jute.maxbuffer`, 1 MB by default).
    pub async fn write_partition_states(
        &self,
        writes: &[StateWrite<'_>],
        controller_epoch_version: i32,
    ) -> Result<Vec<i32>> {
        let mut ops = Vec::with_capacity(writes.len() + 1);
        ops.push(epoch_fence(controller_epoch_version));
        ops.extend(writes.iter().map(|w| Op::Set {
            path: partition_state_path(w.topic, w.partition),
            data: to_json(w.state),
            version: Some(w.expected_version),
        }));
        let results = self.coord.multi(ops).await.map_err(unfenced)?;
        let versions: Vec<i32> = results
            .iter()
            .filter_map(|r| match r {
                OpResult::Set(stat) => Some(stat.version),
                _ => None,
            })
            .collect();
        if versions.len() != writes.len() {
            return Err(CoordError::Other(format!(
                "a batch of {} partition states answered with {} versions",
                writes.len(),
                versions.len()
            )));
        }
        Ok(versions)
    }

    /// A leader records a new ISR: the state node is replaced if it still
    /// has `expected_version` (no controller fence: the leader epoch inside
    /// is unchanged), then the controller is notified. Returns the new
    /// version, or `BadVersion` when the state moved on.
    pub async fn write_isr(
        &self,
        topic: &str,
        partition: i32,
        state: &PartitionState,
        expected_version: i32,
    ) -> Result<i32> {
        let path = partition_state_path(topic, partition);
        let stat = self.coord.set(&path, &to_json(state), Some(expected_version)).await?;
        let notification = IsrChangeNotification {
            version: 1,
            partitions: vec![IsrChangedPartition {
                topic: topic.to_string(),
                partition,
            }],
        };
        self.coord
            .create(
                &format!("{ISR_CHANGE_NOTIFICATION}/isr_change_"),
                &to_json(&notification),
                CreateMode::PersistentSequential,
            )
            .await?;
        Ok(stat.version)
    }

    /// Takes the pending ISR change notifications (reading and deleting
    /// them): the partitions they name.
    pub async fn take_isr_changes(&self) -> Result<Vec<(String, i32)>> {
        let mut changed = Vec::new();
        for child in self.coord.children(ISR_CHANGE_NOTIFICATION).await? {
            let path = format!("{ISR_CHANGE_NOTIFICATION}/{child}");
            match self.coord.get(&path).await {
                Ok((data, _)) => {
                    if let Ok(n) = from_json::<IsrChangeNotification>(&path, &data) {
                        changed.extend(n.partitions.into_iter().map(|p| (p.topic, p.partition)));
                    }
                    match self.coord.delete(&path, None).await {
                        Ok(()) | Err(CoordError::NoNode(_)) => {}
                        Err(e) => return Err(e),
                    }
                }
                Err(CoordError::NoNode(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(changed)
    }

    /// A partition's state and its node version.
    pub async fn partition_state(&self, topic: &str, partition: i32) -> Result<(PartitionState, i32)> {
        let path = partition_state_path(topic, partition);
        let (data, stat) = self.coord.get(&path).await?;
        Ok((from_json(&path, &data)?, stat.version))
    }

    /// Claims the next block of [`PRODUCER_ID_BLOCK_SIZE`] producer ids for
    /// `broker` with compare-and-set on `/latest_producer_id_block`, so no
    /// two brokers (or restarts) share an id. Returns the block's bounds.
    pub async fn allocate_producer_id_block(&self, broker: i32) -> Result<std::ops::RangeInclusive<i64>> {
        loop {
            let (start, version) = match self.coord.get(PRODUCER_ID_BLOCK).await {
                Ok((data, stat)) => {
                    let last: ProducerIdBlock = from_json(PRODUCER_ID_BLOCK, &data)?;
                    let end: i64 = last.block_end.parse().map_err(|_| {
                        CoordError::Other(format!(
                            "malformed block_end {:?} at {PRODUCER_ID_BLOCK}",
                            last.block_end
                        ))
                    })?;
                    (end + 1, Some(stat.version))
                }
                Err(CoordError::NoNode(_)) => (0, None),
                Err(e) => return Err(e),
            };
            let end = start + PRODUCER_ID_BLOCK_SIZE - 1;
            let block = ProducerIdBlock {
                version: 1,
                broker,
                block_start: start.to_string(),
                block_end: end.to_string(),
            };
            let written = match version {
                Some(v) => self
                    .coord
                    .set(PRODUCER_ID_BLOCK, &to_json(&block), Some(v))
                    .await
                    .map(|_| ()),
                None => self
                    .coord
                    .create(PRODUCER_ID_BLOCK, &to_json(&block), CreateMode::Persistent)
                    .await
                    .map(|_| ()),
            };
            match written {
                Ok(()) => return Ok(start..=end),
                // Another broker claimed a block first: read again.
                Err(CoordError::BadVersion(_) | CoordError::NodeExists(_)) => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// The topics marked for deletion (`/admin/delete_topics/<t>`).
    pub async fn topics_marked_for_deletion(&self) -> Result<Vec<String>> {
        match self.coord.children(DELETE_TOPICS).await {
            Ok(topics) => Ok(topics),
            Err(CoordError::NoNode(_)) => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    /// Requests deletion of a topic (`/admin/delete_topics/<t>`).
    pub async fn request_topic_deletion(&self, topic: &str) -> Result<()> {
        match self
            .coord
            .create(&format!("{DELETE_TOPICS}/{topic}"), b"", CreateMode::Persistent)
            .await
        {
            Ok(_) | Err(CoordError::NodeExists(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }
}
