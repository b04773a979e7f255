//! The JSON shapes of Kafka's ZooKeeper nodes (registrations, topic
//! assignments, partition states, configs, notifications), as Kafka
//! writes and reads them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `/config/changes/config_change_<seq>` (Kafka's version 2 format).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigChange {
    /// Format version (2).
    pub version: i32,
    /// What changed: `topics/<t>`.
    pub entity_path: String,
}

/// `/isr_change_notification/isr_change_<seq>`: the partitions whose ISR
/// a leader changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IsrChangeNotification {
    /// Format version (1).
    pub version: i32,
    /// The partitions.
    pub partitions: Vec<IsrChangedPartition>,
}

/// One partition of an [`IsrChangeNotification`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IsrChangedPartition {
    /// Topic name.
    pub topic: String,
    /// Partition number.
    pub partition: i32,
}

/// What a broker registers (Kafka's version 5 format).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerRegistration {
    /// Format version (5).
    pub version: i32,
    /// Host of the first PLAINTEXT-protocol endpoint (`null` without one,
    /// as Kafka writes it).
    #[serde(default)]
    pub host: Option<String>,
    /// Port of the first PLAINTEXT-protocol endpoint (-1 without one).
    pub port: i32,
    /// Always -1 (gregor has no JMX).
    pub jmx_port: i32,
    /// Registration time, milliseconds as a string (as Kafka writes it).
    pub timestamp: String,
    /// `LISTENER://host:port`, one per advertised listener.
    pub endpoints: Vec<String>,
    /// Listener name → security protocol.
    pub listener_security_protocol_map: BTreeMap<String, String>,
    /// `broker.rack`, when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rack: Option<String>,
    /// Supported features (empty).
    #[serde(default)]
    pub features: BTreeMap<String, serde_json::Value>,
    /// The broker epoch (KIP-380): the registration node's creation
    /// transaction (`czxid`), as Kafka derives it; not part of the JSON,
    /// filled in when read (-1 before the broker registered).
    #[serde(skip, default = "minus_one_i64")]
    pub broker_epoch: i64,
}

/// One advertised listener of a broker: its name, security protocol and
/// where clients reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisteredEndpoint {
    /// The listener's name (`PLAINTEXT`, `INTERNAL`, …).
    pub listener: String,
    /// The listener's security protocol (`SASL_SSL`, …).
    pub security_protocol: String,
    /// Host to connect to.
    pub host: String,
    /// Port to connect to.
    pub port: u16,
}

impl BrokerRegistration {
    /// A registration for one PLAINTEXT listener.
    pub fn plaintext(host: &str, port: u16, rack: Option<String>) -> Self {
        Self::with_endpoints(
            &[RegisteredEndpoint {
                listener: "PLAINTEXT".into(),
                security_protocol: "PLAINTEXT".into(),
                host: host.to_string(),
                port,
            }],
            rack,
        )
    }

    /// A registration of every advertised listener (Kafka's `endpoints`
    /// and `listener_security_protocol_map`; `host`/`port` name the first
    /// PLAINTEXT one, as Kafka's do).
    pub fn with_endpoints(endpoints: &[RegisteredEndpoint], rack: Option<String>) -> Self {
        let plaintext = endpoints.iter().find(|e| e.security_protocol == "PLAINTEXT");
        Self {
            version: 5,
            host: plaintext.map(|e| e.host.clone()),
            port: plaintext.map_or(-1, |e| i32::from(e.port)),
            jmx_port: -1,
            timestamp: now_ms(),
            endpoints: endpoints
                .iter()
                .map(|e| format!("{}://{}:{}", e.listener, host_in_url(&e.host), e.port))
                .collect(),
            listener_security_protocol_map: endpoints
                .iter()
                .map(|e| (e.listener.clone(), e.security_protocol.clone()))
                .collect(),
            rack,
            features: BTreeMap::new(),
            broker_epoch: -1,
        }
    }

    /// Every endpoint this registration names (entries that do not parse
    /// are left out).
    pub fn registered_endpoints(&self) -> Vec<RegisteredEndpoint> {
        self.endpoints
            .iter()
            .filter_map(|url| {
                let (listener, address) = url.split_once("://")?;
                let (host, port) = address.rsplit_once(':')?;
                let host = host.trim_start_matches('[').trim_end_matches(']');
                Some(RegisteredEndpoint {
                    listener: listener.to_string(),
                    security_protocol: self
                        .listener_security_protocol_map
                        .get(listener)
                        .cloned()
                        .unwrap_or_else(|| listener.to_string()),
                    host: host.to_string(),
                    port: port.parse().ok()?,
                })
            })
            .collect()
    }

    /// The endpoint of listener `name`, if the broker registered one.
    pub fn endpoint(&self, name: &str) -> Option<RegisteredEndpoint> {
        self.registered_endpoints().into_iter().find(|e| e.listener == name)
    }
}

/// A host as it stands in a URL (IPv6 addresses in brackets).
fn host_in_url(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

/// `/controller`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControllerRegistration {
    /// Format version (2).
    pub version: i32,
    /// The controller's broker id.
    pub brokerid: i32,
    /// Election time in milliseconds, as a string.
    pub timestamp: String,
    /// -1: not a KRaft controller.
    #[serde(rename = "kraftControllerEpoch", default = "minus_one")]
    pub kraft_controller_epoch: i32,
}

fn minus_one() -> i32 {
    -1
}

fn minus_one_i64() -> i64 {
    -1
}

/// `/latest_producer_id_block`: the last block of producer ids claimed.
pub const PRODUCER_ID_BLOCK: &str = "/latest_producer_id_block";
/// Producer ids per block, as Kafka claims them.
pub const PRODUCER_ID_BLOCK_SIZE: i64 = 1000;

/// `/latest_producer_id_block` (Kafka writes the bounds as strings).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProducerIdBlock {
    /// Format version (1).
    pub version: i32,
    /// The broker that claimed it.
    pub broker: i32,
    /// First id of the block.
    pub block_start: String,
    /// Last id of the block.
    pub block_end: String,
}

/// `/brokers/topics/<t>`: partition → replica broker ids.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicAssignment {
    /// Format version (3).
    pub version: i32,
    /// The topic's id (a base64 UUID in Kafka), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic_id: Option<String>,
    /// Partition number (as a string key) → replicas.
    pub partitions: BTreeMap<String, Vec<i32>>,
    /// Reassignment in progress (empty).
    #[serde(default)]
    pub adding_replicas: BTreeMap<String, Vec<i32>>,
    /// Reassignment in progress (empty).
    #[serde(default)]
    pub removing_replicas: BTreeMap<String, Vec<i32>>,
}

impl TopicAssignment {
    /// An assignment from replica lists indexed by partition.
    pub fn new(replicas: &[Vec<i32>], topic_id: Option<String>) -> Self {
        Self {
            version: 3,
            topic_id,
            partitions: replicas
                .iter()
                .enumerate()
                .map(|(p, r)| (p.to_string(), r.clone()))
                .collect(),
            adding_replicas: BTreeMap::new(),
            removing_replicas: BTreeMap::new(),
        }
    }
}

/// `/brokers/topics/<t>/partitions/<p>/state`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionState {
    /// Epoch of the controller that wrote it.
    pub controller_epoch: i32,
    /// Leader broker id (-1: none).
    pub leader: i32,
    /// Format version (1).
    pub version: i32,
    /// Leader epoch.
    pub leader_epoch: i32,
    /// In-sync replicas.
    pub isr: Vec<i32>,
}

/// `/config/topics/<t>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicConfig {
    /// Format version (1).
    pub version: i32,
    /// Topic-level overrides (`retention.ms`, …).
    pub config: BTreeMap<String, String>,
}

/// Now in milliseconds since the epoch, as Kafka writes timestamps.
pub(super) fn now_ms() -> String {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis())
        .to_string()
}
