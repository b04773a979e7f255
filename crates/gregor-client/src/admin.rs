//! The admin client: topics created, listed, described, grown and deleted
//! through the Kafka protocol (CreateTopics, Metadata, DescribeConfigs,
//! CreatePartitions, DeleteTopics) on any broker of a cluster.

use std::collections::BTreeMap;
use std::time::Duration;

use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    CreatePartitionsRequest, CreateTopicsRequest, DeleteTopicsRequest, DescribeConfigsRequest, MetadataRequest,
};
use kafka_protocol::protocol::StrBytes;

use crate::cluster::topic_name;
use crate::{ClientError, Connection};

/// A partition's placement and leadership.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionInfo {
    /// Partition number.
    pub partition: i32,
    /// Leader broker (-1: none).
    pub leader: i32,
    /// Leader epoch.
    pub leader_epoch: i32,
    /// Assigned replicas.
    pub replicas: Vec<i32>,
    /// In-sync replicas.
    pub isr: Vec<i32>,
}

/// A topic as Metadata describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicInfo {
    /// Name.
    pub name: String,
    /// Topic id.
    pub id: String,
    /// Internal (`__consumer_offsets`).
    pub internal: bool,
    /// Partitions, by number.
    pub partitions: Vec<PartitionInfo>,
}

/// Administrative operations on a cluster, through one broker.
pub struct Admin {
    pub(crate) connection: Connection,
    bootstrap: String,
}

const TIMEOUT_MS: i32 = 30_000;
const TOPIC_RESOURCE: i8 = 2;

/// Turns a response's error code (and message) into an error.
pub(crate) fn check(code: i16, message: Option<&StrBytes>) -> Result<(), ClientError> {
    if code == 0 {
        return Ok(());
    }
    Err(ClientError::from_code(
        code,
        message.map(|m| m.to_string()).unwrap_or_default(),
    ))
}

impl Admin {
    /// Connects to the first reachable broker of `bootstrap`
    /// (`host:port,host:port`).
    pub async fn connect(bootstrap: &str) -> Result<Self, ClientError> {
        let mut last = None;
        for address in bootstrap.split(',').map(str::trim).filter(|a| !a.is_empty()) {
            let connecting = Connection::connect(address, "gregor-admin");
            match tokio::time::timeout(Duration::from_secs(10), connecting).await {
                Ok(Ok(connection)) => {
                    return Ok(Self {
                        connection,
                        bootstrap: bootstrap.to_string(),
                    })
                }
                Ok(Err(e)) => last = Some(e),
                Err(_) => last = Some(ClientError::Timeout),
            }
        }
        Err(last.unwrap_or_else(|| ClientError::Protocol(format!("no broker address in {bootstrap:?}"))))
    }

    /// Creates a topic (`replication_factor` -1: the broker's default).
    pub async fn create_topic(
        &mut self,
        topic: &str,
        partitions: i32,
        replication_factor: i16,
        configs: &BTreeMap<String, String>,
    ) -> Result<(), ClientError> {
        let mut t = CreatableTopic::default();
        t.name = topic_name(topic);
        t.num_partitions = partitions;
        t.replication_factor = replication_factor;
        t.configs = configs
            .iter()
            .map(|(k, v)| {
                let mut c = CreatableTopicConfig::default();
                c.name = StrBytes::from_string(k.clone());
                c.value = Some(StrBytes::from_string(v.clone()));
                c
            })
            .collect();
        let mut request = CreateTopicsRequest::default();
        request.topics = vec![t];
        request.timeout_ms = TIMEOUT_MS;
        let response = self.connection.send(request, 5).await?;
        for r in &response.topics {
            check(r.error_code, r.error_message.as_ref())?;
        }
        Ok(())
    }

    /// Deletes a topic.
    pub async fn delete_topic(&mut self, topic: &str) -> Result<(), ClientError> {
        let mut request = DeleteTopicsRequest::default();
        request.topic_names = vec![topic_name(topic)];
        request.timeout_ms = TIMEOUT_MS;
        let response = self.connection.send(request, 5).await?;
        for r in &response.responses {
            check(r.error_code, r.error_message.as_ref())?;
        }
        Ok(())
    }

    /// Grows a topic to `partitions` partitions.
    pub async fn add_partitions(&mut self, topic: &str, partitions: i32) -> Result<(), ClientError> {
        let mut t = CreatePartitionsTopic::default();
        t.name = topic_name(topic);
        t.count = partitions;
        // Null: the broker places them (the codec's default is an empty
        // list, which Kafka refuses as "0 assignments provided").
        t.assignments = None;
        let mut request = CreatePartitionsRequest::default();
        request.topics = vec![t];
        request.timeout_ms = TIMEOUT_MS;
        let response = self.connection.send(request, 1).await?;
        for r in &response.results {
            check(r.error_code, r.error_message.as_ref())?;
        }
        Ok(())
    }

    /// Every topic (`None`) or the named ones, with their partitions.
    pub async fn topics(&mut self, names: Option<&[&str]>) -> Result<Vec<TopicInfo>, ClientError> {
        let mut request = MetadataRequest::default();
        request.topics = names.map(|n| {
            n.iter()
                .map(|t| {
                    let mut topic = MetadataRequestTopic::default();
                    topic.name = Some(topic_name(t));
                    topic
                })
                .collect()
        });
        // Describing a topic must not create it (on a broker with
        // `auto.create.topics.enable`).
        request.allow_auto_topic_creation = false;
        let response = self.connection.send(request, 12).await?;
        let mut topics = Vec::new();
        for t in response.topics {
            check(t.error_code, None)?;
            let mut partitions: Vec<PartitionInfo> = t
                .partitions
                .iter()
                .map(|p| PartitionInfo {
                    partition: p.partition_index,
                    leader: p.leader_id.0,
                    leader_epoch: p.leader_epoch,
                    replicas: p.replica_nodes.iter().map(|b| b.0).collect(),
                    isr: p.isr_nodes.iter().map(|b| b.0).collect(),
                })
                .collect();
            partitions.sort_by_key(|p| p.partition);
            topics.push(TopicInfo {
                name: t.name.map(|n| n.0.to_string()).unwrap_or_default(),
                id: t.topic_id.to_string(),
                internal: t.is_internal,
                partitions,
            });
        }
        topics.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(topics)
    }

    /// Sets (`Some`) or deletes (`None`) topic config overrides
    /// (IncrementalAlterConfigs).
    pub async fn alter_topic_config(
        &mut self,
        topic: &str,
        changes: &[(String, Option<String>)],
    ) -> Result<(), ClientError> {
        use kafka_protocol::messages::incremental_alter_configs_request::{AlterConfigsResource, AlterableConfig};
        let mut resource = AlterConfigsResource::default();
        resource.resource_type = TOPIC_RESOURCE;
        resource.resource_name = StrBytes::from_string(topic.to_string());
        resource.configs = changes
            .iter()
            .map(|(k, v)| {
                let mut c = AlterableConfig::default();
                c.name = StrBytes::from_string(k.clone());
                c.config_operation = if v.is_some() { 0 } else { 1 };
                c.value = v.clone().map(StrBytes::from_string);
                c
            })
            .collect();
        let mut request = kafka_protocol::messages::IncrementalAlterConfigsRequest::default();
        request.resources = vec![resource];
        let response = self.connection.send(request, 1).await?;
        for r in &response.responses {
            check(r.error_code, r.error_message.as_ref())?;
        }
        Ok(())
    }

    /// Each partition's earliest and latest (high watermark) offsets,
    /// asked of its leader.
    pub async fn list_offsets(&mut self, topic: &str) -> Result<Vec<(i32, i64, i64)>, ClientError> {
        let partitions = self
            .topics(Some(&[topic]))
            .await?
            .into_iter()
            .next()
            .map_or(0, |t| t.partitions.len() as i32);
        let mut leaders = crate::Consumer::new(&self.bootstrap, crate::ConsumerConfig::default());
        let mut out = Vec::new();
        for p in 0..partitions {
            let earliest = leaders.list_offset(topic, p, -2).await?;
            let latest = leaders.list_offset(topic, p, -1).await?;
            out.push((p, earliest, latest));
        }
        Ok(out)
    }

    /// A topic's configuration: every key with its value.
    pub async fn topic_config(&mut self, topic: &str) -> Result<BTreeMap<String, String>, ClientError> {
        let mut resource = DescribeConfigsResource::default();
        resource.resource_type = TOPIC_RESOURCE;
        resource.resource_name = StrBytes::from_string(topic.to_string());
        resource.configuration_keys = None; // every key
        let mut request = DescribeConfigsRequest::default();
        request.resources = vec![resource];
        let response = self.connection.send(request, 1).await?;
        let mut configs = BTreeMap::new();
        for r in response.results {
            check(r.error_code, r.error_message.as_ref())?;
            for c in r.configs {
                configs.insert(c.name.to_string(), c.value.map(|v| v.to_string()).unwrap_or_default());
            }
        }
        Ok(configs)
    }
}
