//! The operator's client for partitions: replica reassignments
//! (AlterPartitionReassignments, ListPartitionReassignments) and leader
//! elections (ElectLeaders) on the controller, records deleted
//! (DeleteRecords) on each partition's leader, log directories described
//! (DescribeLogDirs) and broker or topic configs changed
//! (IncrementalAlterConfigs) on the broker they belong to.

use std::collections::BTreeMap;

use kafka_protocol::messages::alter_partition_reassignments_request::{ReassignablePartition, ReassignableTopic};
use kafka_protocol::messages::delete_records_request::{DeleteRecordsPartition, DeleteRecordsTopic};
use kafka_protocol::messages::describe_log_dirs_request::DescribableLogDirTopic;
use kafka_protocol::messages::elect_leaders_request::TopicPartitions;
use kafka_protocol::messages::incremental_alter_configs_request::{AlterConfigsResource, AlterableConfig};
use kafka_protocol::messages::list_partition_reassignments_request::ListPartitionReassignmentsTopics;
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, BrokerId, DeleteRecordsRequest, DescribeLogDirsRequest, ElectLeadersRequest,
    IncrementalAlterConfigsRequest, ListPartitionReassignmentsRequest,
};
use kafka_protocol::protocol::{Request, StrBytes};

use crate::cluster::topic_name;
use crate::{Admin, ClientError, Cluster, TopicInfo};

const TIMEOUT_MS: i32 = 30_000;
/// Kafka's NOT_CONTROLLER: the controller moved; ask again.
const NOT_CONTROLLER: i16 = 41;
/// Kafka's ELECTION_NOT_NEEDED.
pub const ELECTION_NOT_NEEDED: i16 = 84;
/// ConfigResource type of a topic.
pub const TOPIC_RESOURCE: i8 = 2;
/// ConfigResource type of a broker.
pub const BROKER_RESOURCE: i8 = 4;

/// A topic and partition, printed `topic-partition` as Kafka does.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TopicPartition {
    /// Topic name.
    pub topic: String,
    /// Partition number.
    pub partition: i32,
}

impl TopicPartition {
    /// `topic`'s partition `partition`.
    pub fn new(topic: impl Into<String>, partition: i32) -> Self {
        Self {
            topic: topic.into(),
            partition,
        }
    }
}

impl std::fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

/// One partition's answer: done (`error_code` 0) or a Kafka error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionAnswer {
    /// The partition.
    pub partition: TopicPartition,
    /// Kafka's error code (0: none).
    pub error_code: i16,
    /// The broker's message, if any.
    pub message: Option<String>,
}

impl PartitionAnswer {
    /// The error, if the partition has one.
    pub fn error(&self) -> Option<ClientError> {
        (self.error_code != 0)
            .then(|| ClientError::from_code(self.error_code, self.message.clone().unwrap_or_default()))
    }
}

/// A reassignment under way, as ListPartitionReassignments tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OngoingReassignment {
    /// The partition.
    pub partition: TopicPartition,
    /// Every replica now: the target's and those still being removed.
    pub replicas: Vec<i32>,
    /// Replicas being added.
    pub adding: Vec<i32>,
    /// Replicas being removed.
    pub removing: Vec<i32>,
}

/// Which leader ElectLeaders chooses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElectionType {
    /// The first replica of the assignment, if it is in sync.
    Preferred,
    /// Any live replica, in sync or not, when the partition has no leader.
    Unclean,
}

impl ElectionType {
    fn code(self) -> i8 {
        match self {
            ElectionType::Preferred => 0,
            ElectionType::Unclean => 1,
        }
    }
}

/// A partition's replica in a log directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogDirReplica {
    /// The partition.
    pub partition: TopicPartition,
    /// Bytes on disk.
    pub size: i64,
    /// How far the replica is behind its leader's log end (0 on the leader).
    pub offset_lag: i64,
    /// A future replica (being moved here from another directory).
    pub is_future: bool,
}

/// One log directory of a broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogDir {
    /// Its path on the broker.
    pub path: String,
    /// Kafka's error code for the directory (0: online).
    pub error_code: i16,
    /// Its volume's size in bytes (-1: not told).
    pub total_bytes: i64,
    /// Free bytes on its volume (-1: not told).
    pub usable_bytes: i64,
    /// The replicas in it.
    pub replicas: Vec<LogDirReplica>,
}

/// Partition operations on a cluster reached through bootstrap brokers.
pub struct PartitionAdmin {
    cluster: Cluster,
    admin: Admin,
}

impl PartitionAdmin {
    /// Connects to `bootstrap` (`host:port,…`) and learns the brokers and
    /// the controller.
    pub async fn connect(bootstrap: &str) -> Result<Self, ClientError> {
        let admin = Admin::connect(bootstrap).await?;
        let mut cluster = Cluster::new(bootstrap, "gregor-admin");
        cluster.set_auto_create(false);
        cluster.refresh(&[]).await?;
        Ok(Self { cluster, admin })
    }

    /// The live brokers with their racks, by id.
    pub fn brokers(&self) -> Vec<(i32, Option<String>)> {
        self.cluster
            .brokers()
            .into_iter()
            .map(|id| (id, self.cluster.rack(id).map(str::to_string)))
            .collect()
    }

    /// The named topics' partitions and replicas (an unknown topic is an
    /// error).
    pub async fn topics(&mut self, names: &[&str]) -> Result<Vec<TopicInfo>, ClientError> {
        if names.is_empty() {
            return Ok(Vec::new());
        }
        self.admin.topics(Some(names)).await
    }

    async fn controller(&mut self) -> Result<i32, ClientError> {
        if self.cluster.controller().is_none() {
            self.cluster.refresh(&[]).await?;
        }
        self.cluster
            .controller()
            .ok_or_else(|| ClientError::Protocol("the cluster names no controller".into()))
    }

    /// Sends `request` to the controller; asks again once, after a
    /// metadata refresh, when it answers NOT_CONTROLLER (`error_code`
    /// reads the answer's top-level error).
    async fn on_controller<R: Request + Clone>(
        &mut self,
        request: R,
        version: i16,
        error_code: impl Fn(&R::Response) -> i16,
    ) -> Result<R::Response, ClientError> {
        let mut attempt = 0;
        loop {
            let controller = self.controller().await?;
            let response = self
                .cluster
                .connection(controller)
                .await?
                .send(request.clone(), version)
                .await;
            let response = self.dropping_on_error(controller, response)?;
            if error_code(&response) == NOT_CONTROLLER && attempt == 0 {
                attempt += 1;
                self.cluster.refresh(&[]).await?;
                continue;
            }
            return Ok(response);
        }
    }

    /// Starts (`Some(replicas)`) or cancels (`None`) reassignments; each
    /// partition's answer.
    pub async fn alter_reassignments(
        &mut self,
        changes: &[(TopicPartition, Option<Vec<i32>>)],
    ) -> Result<Vec<PartitionAnswer>, ClientError> {
        let mut by_topic: BTreeMap<&str, Vec<ReassignablePartition>> = BTreeMap::new();
        for (tp, replicas) in changes {
            let mut p = ReassignablePartition::default();
            p.partition_index = tp.partition;
            p.replicas = replicas.as_ref().map(|r| r.iter().copied().map(BrokerId).collect());
            by_topic.entry(tp.topic.as_str()).or_default().push(p);
        }
        let mut request = AlterPartitionReassignmentsRequest::default();
        request.timeout_ms = TIMEOUT_MS;
        request.topics = by_topic
            .into_iter()
            .map(|(name, partitions)| {
                let mut t = ReassignableTopic::default();
                t.name = topic_name(name);
                t.partitions = partitions;
                t
            })
            .collect();
        let response = self.on_controller(request, 0, |r| r.error_code).await?;
        if response.error_code != 0 {
            return Err(ClientError::from_code(
                response.error_code,
                response.error_message.map(|m| m.to_string()).unwrap_or_default(),
            ));
        }
        let mut answers = Vec::new();
        for t in response.responses {
            for p in t.partitions {
                answers.push(PartitionAnswer {
                    partition: TopicPartition::new(t.name.0.to_string(), p.partition_index),
                    error_code: p.error_code,
                    message: p.error_message.map(|m| m.to_string()),
                });
            }
        }
        answers.sort_by(|a, b| a.partition.cmp(&b.partition));
        Ok(answers)
    }

    /// The reassignments under way: all (`None`) or of these partitions.
    pub async fn list_reassignments(
        &mut self,
        partitions: Option<&[TopicPartition]>,
    ) -> Result<Vec<OngoingReassignment>, ClientError> {
        let mut request = ListPartitionReassignmentsRequest::default();
        request.timeout_ms = TIMEOUT_MS;
        request.topics = partitions.map(|ps| {
            partitions_by_topic(ps)
                .into_iter()
                .map(|(name, indexes)| {
                    let mut t = ListPartitionReassignmentsTopics::default();
                    t.name = topic_name(name);
                    t.partition_indexes = indexes;
                    t
                })
                .collect()
        });
        let response = self.on_controller(request, 0, |r| r.error_code).await?;
        if response.error_code != 0 {
            return Err(ClientError::from_code(
                response.error_code,
                response.error_message.map(|m| m.to_string()).unwrap_or_default(),
            ));
        }
        let ids = |v: Vec<BrokerId>| v.into_iter().map(|b| b.0).collect::<Vec<_>>();
        let mut out = Vec::new();
        for t in response.topics {
            for p in t.partitions {
                out.push(OngoingReassignment {
                    partition: TopicPartition::new(t.name.0.to_string(), p.partition_index),
                    replicas: ids(p.replicas),
                    adding: ids(p.adding_replicas),
                    removing: ids(p.removing_replicas),
                });
            }
        }
        out.sort_by(|a, b| a.partition.cmp(&b.partition));
        Ok(out)
    }

    /// Elects leaders of these partitions (`None`: every partition) on the
    /// controller; each partition's answer (ELECTION_NOT_NEEDED when its
    /// leader is already the one the election would choose).
    pub async fn elect_leaders(
        &mut self,
        election: ElectionType,
        partitions: Option<&[TopicPartition]>,
    ) -> Result<Vec<PartitionAnswer>, ClientError> {
        let mut request = ElectLeadersRequest::default();
        request.election_type = election.code();
        request.timeout_ms = TIMEOUT_MS;
        // `None` (every partition) is set explicitly: the default is none.
        request.topic_partitions = partitions.map(|ps| {
            partitions_by_topic(ps)
                .into_iter()
                .map(|(name, partitions)| {
                    let mut t = TopicPartitions::default();
                    t.topic = topic_name(name);
                    t.partitions = partitions;
                    t
                })
                .collect()
        });
        let response = self.on_controller(request, 2, |r| r.error_code).await?;
        if response.error_code != 0 {
            return Err(ClientError::from_code(response.error_code, "ElectLeaders"));
        }
        let mut answers = Vec::new();
        for t in response.replica_election_results {
            for p in t.partition_result {
                answers.push(PartitionAnswer {
                    partition: TopicPartition::new(t.topic.0.to_string(), p.partition_id),
                    error_code: p.error_code,
                    message: p.error_message.map(|m| m.to_string()),
                });
            }
        }
        answers.sort_by(|a, b| a.partition.cmp(&b.partition));
        Ok(answers)
    }

    /// Deletes the records before each offset (-1: the high watermark)
    /// on each partition's leader; each partition's answer and its new
    /// low watermark.
    pub async fn delete_records(
        &mut self,
        before: &[(TopicPartition, i64)],
    ) -> Result<Vec<(PartitionAnswer, i64)>, ClientError> {
        let topics: Vec<&str> = {
            let mut t: Vec<&str> = before.iter().map(|(tp, _)| tp.topic.as_str()).collect();
            t.sort_unstable();
            t.dedup();
            t
        };
        self.cluster.refresh(&topics).await?;
        let mut answers = Vec::new();
        let mut by_leader: BTreeMap<i32, BTreeMap<&str, Vec<DeleteRecordsPartition>>> = BTreeMap::new();
        for (tp, offset) in before {
            let Some(leader) = self.cluster.leader(&tp.topic, tp.partition) else {
                // No such topic or partition, or no leader now.
                let known = self.cluster.partitions(&tp.topic).is_some_and(|n| tp.partition < n);
                answers.push((
                    PartitionAnswer {
                        partition: tp.clone(),
                        error_code: if known { 5 } else { 3 },
                        message: None,
                    },
                    -1,
                ));
                continue;
            };
            let mut p = DeleteRecordsPartition::default();
            p.partition_index = tp.partition;
            p.offset = *offset;
            by_leader
                .entry(leader)
                .or_default()
                .entry(tp.topic.as_str())
                .or_default()
                .push(p);
        }
        for (leader, topics) in by_leader {
            let mut request = DeleteRecordsRequest::default();
            request.timeout_ms = TIMEOUT_MS;
            request.topics = topics
                .into_iter()
                .map(|(name, partitions)| {
                    let mut t = DeleteRecordsTopic::default();
                    t.name = topic_name(name);
                    t.partitions = partitions;
                    t
                })
                .collect();
            let response = self.cluster.connection(leader).await?.send(request, 2).await;
            let response = self.dropping_on_error(leader, response)?;
            for t in response.topics {
                for p in t.partitions {
                    let answer = PartitionAnswer {
                        partition: TopicPartition::new(t.name.0.to_string(), p.partition_index),
                        error_code: p.error_code,
                        message: None,
                    };
                    answers.push((answer, p.low_watermark));
                }
            }
        }
        answers.sort_by(|a, b| a.0.partition.cmp(&b.0.partition));
        Ok(answers)
    }

    /// `broker`'s log directories with the replicas in them (of `topics`
    /// only, if given).
    pub async fn describe_log_dirs(
        &mut self,
        broker: i32,
        topics: Option<&[String]>,
    ) -> Result<Vec<LogDir>, ClientError> {
        let mut request = DescribeLogDirsRequest::default();
        request.topics = None; // every topic (the default is none)
        if let Some(names) = topics {
            // DescribeLogDirs asks for partitions by number: the topics'
            // partition counts come from Metadata.
            let named: Vec<&str> = names.iter().map(String::as_str).collect();
            self.cluster.refresh(&named).await?;
            request.topics = Some(
                names
                    .iter()
                    .filter_map(|name| {
                        let count = self.cluster.partitions(name)?;
                        let mut t = DescribableLogDirTopic::default();
                        t.topic = topic_name(name);
                        t.partitions = (0..count).collect();
                        Some(t)
                    })
                    .collect(),
            );
        }
        let response = self.cluster.connection(broker).await?.send(request, 4).await;
        let response = self.dropping_on_error(broker, response)?;
        if response.error_code != 0 {
            return Err(ClientError::from_code(
                response.error_code,
                format!("log dirs of broker {broker}"),
            ));
        }
        let mut dirs: Vec<LogDir> = response
            .results
            .into_iter()
            .map(|r| {
                let mut replicas: Vec<LogDirReplica> = r
                    .topics
                    .into_iter()
                    .flat_map(|t| {
                        let name = t.name.0.to_string();
                        t.partitions.into_iter().map(move |p| LogDirReplica {
                            partition: TopicPartition::new(name.clone(), p.partition_index),
                            size: p.partition_size,
                            offset_lag: p.offset_lag,
                            is_future: p.is_future_key,
                        })
                    })
                    .collect();
                replicas.sort_by(|a, b| a.partition.cmp(&b.partition));
                LogDir {
                    path: r.log_dir.to_string(),
                    error_code: r.error_code,
                    total_bytes: r.total_bytes,
                    usable_bytes: r.usable_bytes,
                    replicas,
                }
            })
            .collect();
        dirs.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(dirs)
    }

    /// Sets (`Some`) or deletes (`None`) configs of a broker (asked of
    /// that broker, as Kafka's admin client does) or of a topic
    /// (IncrementalAlterConfigs).
    pub async fn alter_configs(
        &mut self,
        resource_type: i8,
        name: &str,
        changes: &[(&str, Option<String>)],
    ) -> Result<(), ClientError> {
        let mut resource = AlterConfigsResource::default();
        resource.resource_type = resource_type;
        resource.resource_name = StrBytes::from_string(name.to_string());
        resource.configs = changes
            .iter()
            .map(|(k, v)| {
                let mut c = AlterableConfig::default();
                c.name = StrBytes::from_string(k.to_string());
                c.config_operation = if v.is_some() { 0 } else { 1 };
                c.value = v.clone().map(StrBytes::from_string);
                c
            })
            .collect();
        let mut request = IncrementalAlterConfigsRequest::default();
        request.resources = vec![resource];
        let target = match (resource_type, name.parse::<i32>()) {
            (BROKER_RESOURCE, Ok(id)) => id,
            _ => self.controller().await?,
        };
        let response = self.cluster.connection(target).await?.send(request, 1).await;
        let response = self.dropping_on_error(target, response)?;
        for r in response.responses {
            if r.error_code != 0 {
                return Err(ClientError::from_code(
                    r.error_code,
                    r.error_message.map(|m| m.to_string()).unwrap_or_default(),
                ));
            }
        }
        Ok(())
    }

    /// Drops the connection to `broker` when a call on it failed (the next
    /// use reconnects).
    fn dropping_on_error<T>(&mut self, broker: i32, result: Result<T, ClientError>) -> Result<T, ClientError> {
        if result.is_err() {
            self.cluster.disconnect(broker);
        }
        result
    }
}

/// Partition indexes grouped by topic, in name order.
fn partitions_by_topic(partitions: &[TopicPartition]) -> BTreeMap<&str, Vec<i32>> {
    let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for tp in partitions {
        by_topic.entry(tp.topic.as_str()).or_default().push(tp.partition);
    }
    by_topic
}
