//! What a client knows of a cluster: brokers, partition leaders, and one
//! connection per broker.

use std::collections::HashMap;
use std::time::Duration;

use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{MetadataRequest, TopicName};
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
        }
    }

    /// Asks for `topics`' metadata (creating them when the broker
    /// auto-creates), through any reachable broker.
    pub async fn refresh(&mut self, topics: &[&str]) -> Result<(), ClientError> {
        let mut request = MetadataRequest::default();
        request.topics = Some(
            topics
                .iter()
                .map(|t| {
                    let mut topic = MetadataRequestTopic::default();
                    topic.name = Some(TopicName(StrBytes::from_string(t.to_string())));
                    topic
                })
                .collect(),
        );
        request.allow_auto_topic_creation = true;
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
            }
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
}
