//! What a client knows of a cluster: brokers, partition leaders, and one
//! connection per broker.

use std::collections::HashMap;
use std::time::Duration;

use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, ListOffsetsRequest, MetadataRequest, TopicName};
use kafka_protocol::protocol::StrBytes;

use crate::{ClientError, Connection};

/// Brokers, leaders and connections, refreshed from Metadata.
pub struct Cluster {
    bootstrap: Vec<String>,
    client_id: String,
    brokers: HashMap<i32, String>,
    leaders: HashMap<(String, i32), i32>,
    partitions: HashMap<String, i32>,
    connections: HashMap<i32, Connection>,
    auto_create: bool,
    controller: Option<i32>,
    racks: HashMap<i32, Option<String>>,
}

impl Cluster {
    /// A cluster reached through `bootstrap` (`host:port,…`); nothing is
    /// connected until needed.
    pub fn new(bootstrap: &str, client_id: &str) -> Self {
        Self {
            bootstrap: bootstrap
                .split(',')
                .map(|a| a.trim().to_string())
                .filter(|a| !a.is_empty())
                .collect(),
            client_id: client_id.to_string(),
            brokers: HashMap::new(),
            leaders: HashMap::new(),
            partitions: HashMap::new(),
            connections: HashMap::new(),
            auto_create: true,
            controller: None,
            racks: HashMap::new(),
        }
    }

    /// Whether asking for a topic's metadata may create it (on a broker
    /// with `auto.create.topics.enable`); producers and consumers do,
    /// admin tools must not.
    pub fn set_auto_create(&mut self, auto_create: bool) {
        self.auto_create = auto_create;
    }

    /// Asks for `topics`' metadata (creating them when the broker
    /// auto-creates, unless turned off), through any reachable broker.
    pub async fn refresh(&mut self, topics: &[&str]) -> Result<(), ClientError> {
        let mut request = MetadataRequest::default();
        request.topics = Some(
            topics
                .iter()
                .map(|t| {
                    let mut topic = MetadataRequestTopic::default();
                    topic.name = Some(topic_name(t));
                    topic
                })
                .collect(),
        );
        request.allow_auto_topic_creation = self.auto_create;
        let mut last = ClientError::Protocol("no broker address given".into());
        let known: Vec<String> = self.brokers.values().cloned().collect();
        for address in self.bootstrap.clone().into_iter().chain(known) {
            let connected = tokio::time::timeout(
                Duration::from_secs(10),
                Connection::connect(address.as_str(), &self.client_id),
            )
            .await
            .map_err(|_| ClientError::Timeout)
            .and_then(|c| c);
            let mut connection = match connected {
                Ok(c) => c,
                Err(e) => {
                    last = e;
                    continue;
                }
            };
            let response = match connection.send(request.clone(), 9).await {
                Ok(r) => r,
                Err(e) => {
                    last = e;
                    continue;
                }
            };
            for b in &response.brokers {
                self.brokers.insert(b.node_id.0, format!("{}:{}", b.host, b.port));
                self.racks.insert(b.node_id.0, b.rack.as_ref().map(|r| r.to_string()));
            }
            self.controller = Some(response.controller_id.0).filter(|&c| c >= 0);
            for t in &response.topics {
                let Some(name) = &t.name else { continue };
                let name = name.0.to_string();
                if t.error_code != 0 || t.partitions.is_empty() {
                    continue;
                }
                self.partitions.insert(name.clone(), t.partitions.len() as i32);
                for p in &t.partitions {
                    if p.error_code == 0 && p.leader_id.0 >= 0 {
                        self.leaders.insert((name.clone(), p.partition_index), p.leader_id.0);
                    } else {
                        self.leaders.remove(&(name.clone(), p.partition_index));
                    }
                }
            }
            return Ok(());
        }
        Err(last)
    }

    /// How many partitions `topic` has, once known.
    pub fn partitions(&self, topic: &str) -> Option<i32> {
        self.partitions.get(topic).copied()
    }

    /// The leader of a partition, once known.
    pub fn leader(&self, topic: &str, partition: i32) -> Option<i32> {
        self.leaders.get(&(topic.to_string(), partition)).copied()
    }

    /// Every known broker (after a refresh), by id.
    pub fn brokers(&self) -> Vec<i32> {
        let mut ids: Vec<i32> = self.brokers.keys().copied().collect();
        ids.sort_unstable();
        ids
    }

    /// The controller, as the last Metadata answer named it.
    pub fn controller(&self) -> Option<i32> {
        self.controller
    }

    /// A known broker's `broker.rack` (`None`: no rack, or unknown broker).
    pub fn rack(&self, broker: i32) -> Option<&str> {
        self.racks.get(&broker).and_then(|r| r.as_deref())
    }

    /// Some known broker (after a refresh).
    pub fn any_broker(&self) -> Option<i32> {
        self.brokers.keys().min().copied()
    }

    /// The connection to `broker`, opened if needed.
    pub async fn connection(&mut self, broker: i32) -> Result<&mut Connection, ClientError> {
        if !self.connections.contains_key(&broker) {
            let address = self
                .brokers
                .get(&broker)
                .cloned()
                .ok_or_else(|| ClientError::Protocol(format!("unknown broker {broker}")))?;
            let connection = Connection::connect(address.as_str(), &self.client_id).await?;
            self.connections.insert(broker, connection);
        }
        self.connections
            .get_mut(&broker)
            .ok_or_else(|| ClientError::Protocol(format!("unknown broker {broker}")))
    }

    /// Drops a connection that failed (the next use reconnects).
    pub fn disconnect(&mut self, broker: i32) {
        self.connections.remove(&broker);
    }

    /// The coordinator of `group` (FindCoordinator through any broker),
    /// retried while the coordinator is not yet available.
    pub async fn coordinator(&mut self, group: &str) -> Result<i32, ClientError> {
        for _ in 0..50 {
            let mut request = FindCoordinatorRequest::default();
            request.key = StrBytes::from_string(group.to_string());
            let any = match self.any_broker() {
                Some(b) => b,
                None => {
                    self.refresh(&[]).await?;
                    self.any_broker()
                        .ok_or_else(|| ClientError::Protocol("no broker known".into()))?
                }
            };
            let response = self.connection(any).await?.send(request, 2).await?;
            if response.error_code == 0 {
                return Ok(response.node_id.0);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(ClientError::from_code(15, format!("group {group}")))
    }

    /// ListOffsets on the partition's leader: -2 earliest, -1 latest (the
    /// high watermark), or the first offset at or after a timestamp (-1
    /// when no record is that recent).
    pub async fn list_offset(&mut self, topic: &str, partition: i32, timestamp: i64) -> Result<i64, ClientError> {
        if self.leader(topic, partition).is_none() {
            self.refresh(&[topic]).await?;
        }
        let leader = self
            .leader(topic, partition)
            .ok_or_else(|| ClientError::from_code(5, format!("{topic}-{partition}")))?;
        let mut p = ListOffsetsPartition::default();
        p.partition_index = partition;
        p.timestamp = timestamp;
        p.current_leader_epoch = -1;
        let mut t = ListOffsetsTopic::default();
        t.name = topic_name(topic);
        t.partitions = vec![p];
        let mut request = ListOffsetsRequest::default();
        request.replica_id = BrokerId(-1);
        request.topics = vec![t];
        let response = self.connection(leader).await?.send(request, 4).await?;
        let answer = response
            .topics
            .into_iter()
            .flat_map(|t| t.partitions)
            .next()
            .ok_or_else(|| ClientError::Protocol("ListOffsets answered nothing".into()))?;
        if answer.error_code != 0 {
            return Err(ClientError::from_code(
                answer.error_code,
                format!("offsets of {topic}-{partition}"),
            ));
        }
        Ok(answer.offset)
    }
}

/// A protocol topic name.
pub(crate) fn topic_name(t: &str) -> TopicName {
    TopicName(StrBytes::from_string(t.to_string()))
}
