//! Metadata: the broker list (just this one) and the topics asked for,
//! auto-creating unknown ones when allowed.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse, TopicName};

use super::str_bytes;
use crate::broker::{Broker, Topic};

/// Answers a Metadata request.
pub fn handle(broker: &Broker, request: MetadataRequest, version: i16) -> MetadataResponse {
    let config = broker.config();
    let mut response = MetadataResponse::default();
    let mut me = MetadataResponseBroker::default();
    me.node_id = BrokerId(config.node_id);
    me.host = str_bytes(&config.advertised_host);
    me.port = i32::from(config.advertised_port);
    response.brokers = vec![me];
    // Fields newer than the request's version must stay at their defaults.
    if version >= 2 {
        response.cluster_id = Some(str_bytes(&config.cluster_id));
    }
    if version >= 1 {
        response.controller_id = BrokerId(config.node_id);
    }

    // v0: an empty list means all topics; v1+: null means all.
    let requested: Option<Vec<String>> = match request.topics {
        None => None,
        Some(t) if t.is_empty() && version == 0 => None,
        Some(t) => Some(t.into_iter().filter_map(|t| t.name.map(|n| n.0.to_string())).collect()),
    };
    let auto_create = version < 4 || request.allow_auto_topic_creation;
    response.topics = match requested {
        None => broker
            .topics()
            .into_iter()
            .map(|(name, t)| topic_entry(broker, &name, Ok(t), version))
            .collect(),
        Some(names) => names
            .into_iter()
            .map(|name| {
                let found = if auto_create {
                    broker.topic_or_create(&name)
                } else {
                    broker.topic(&name).ok_or(ResponseError::UnknownTopicOrPartition)
                };
                topic_entry(broker, &name, found, version)
            })
            .collect(),
    };
    response
}

fn topic_entry(
    broker: &Broker,
    name: &str,
    topic: Result<Topic, ResponseError>,
    version: i16,
) -> MetadataResponseTopic {
    let me = BrokerId(broker.config().node_id);
    let mut entry = MetadataResponseTopic::default();
    entry.name = Some(TopicName(str_bytes(name)));
    match topic {
        Err(e) => entry.error_code = e.code(),
        Ok(t) => {
            if version >= 10 {
                entry.topic_id = t.id;
            }
            if version >= 1 {
                entry.is_internal = name == gregor_group::OFFSETS_TOPIC;
            }
            entry.partitions = (0..t.partitions as i32)
                .map(|p| {
                    let mut part = MetadataResponsePartition::default();
                    part.partition_index = p;
                    part.leader_id = me;
                    part.replica_nodes = vec![me];
                    part.isr_nodes = vec![me];
                    part
                })
                .collect();
        }
    }
    entry
}
