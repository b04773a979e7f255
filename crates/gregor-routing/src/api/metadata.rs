//! Metadata: the live brokers and the topics asked for with each
//! partition's leader, replicas and ISR as the controller last told this
//! broker, auto-creating unknown topics when allowed.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse, TopicName};

use super::str_bytes;
use gregor_broker::{validate_topic_name, Broker, ClusterView, Topic, TopicView};

/// Answers a Metadata request from a client connected through `listener`:
/// the brokers are given with their endpoints of that listener (a broker
/// without it is left out, as Kafka does).
pub fn handle(broker: &Broker, request: MetadataRequest, version: i16, listener: &str) -> MetadataResponse {
    let config = broker.config();
    let mut response = MetadataResponse::default();
    let view = broker.replicas().view();
    response.brokers = match &view {
        v if !v.brokers.is_empty() => v
            .brokers
            .iter()
            .filter_map(|(&id, endpoint)| {
                let (host, port) = endpoint.for_listener(listener)?;
                let mut b = MetadataResponseBroker::default();
                b.node_id = BrokerId(id);
                b.host = str_bytes(host);
                b.port = i32::from(port);
                if version >= 1 {
                    b.rack = endpoint.rack.as_deref().map(str_bytes);
                }
                Some(b)
            })
            .collect(),
        _ => config
            .advertised_for(listener)
            .map(|(host, port)| {
                let mut me = MetadataResponseBroker::default();
                me.node_id = BrokerId(config.node_id);
                me.host = str_bytes(host);
                me.port = i32::from(port);
                me
            })
            .into_iter()
            .collect(),
    };
    // Fields newer than the request's version must stay at their defaults.
    if version >= 2 {
        response.cluster_id = Some(str_bytes(&config.cluster_id));
    }
    if version >= 1 {
        response.controller_id = BrokerId(view.controller);
    }
    // The authorized_operations bit sets (cluster, topics) are filled in
    // by authorize::operations, which knows the session.

    // v0: an empty list means all topics; v1+: null means all.
    // v10+: a topic may be asked for by id alone (KIP-516; KIP-848
    // consumers resolve the ids of their assignment so); an id no topic
    // has is UNKNOWN_TOPIC_ID.
    let mut unknown_ids = Vec::new();
    let requested: Option<Vec<String>> = match request.topics {
        None => None,
        Some(t) if t.is_empty() && version == 0 => None,
        Some(t) => Some(
            t.into_iter()
                .filter_map(|t| match t.name {
                    Some(n) => Some(n.0.to_string()),
                    None if !t.topic_id.is_nil() => {
                        let name = broker.topics().name_of(t.topic_id);
                        if name.is_none() {
                            unknown_ids.push(t.topic_id);
                        }
                        name
                    }
                    None => None,
                })
                .collect(),
        ),
    };
    let auto_create = version < 4 || request.allow_auto_topic_creation;
    // As Kafka's metadata cache: a topic is known once the controller told
    // this broker about one of its partitions (a topic no replica of which
    // is live has none yet).
    let announced = |name: &str| view.topic(name).is_some();
    response.topics = match requested {
        None => broker
            .topics()
            .all()
            .into_iter()
            .filter(|(name, _)| announced(name))
            .map(|(name, t)| topic_entry(&view, &name, Ok(t), version))
            .collect(),
        Some(names) => names
            .into_iter()
            .map(|name| {
                let found = if validate_topic_name(&name).is_err() {
                    // As Kafka: a name no topic can have, created or not.
                    Err(ResponseError::InvalidTopicException)
                } else if let Some(t) = broker.topics().get(&name) {
                    Some(t)
                        .filter(|_| announced(&name))
                        .ok_or(ResponseError::UnknownTopicOrPartition)
                } else if auto_create {
                    broker.topics().get_or_create(&name)
                } else {
                    broker
                        .topics()
                        .get(&name)
                        .filter(|_| announced(&name))
                        .ok_or(ResponseError::UnknownTopicOrPartition)
                };
                topic_entry(&view, &name, found, version)
            })
            .collect(),
    };
    response.topics.extend(unknown_ids.into_iter().map(|id| {
        let mut entry = MetadataResponseTopic::default();
        entry.topic_id = id;
        entry.error_code = ResponseError::UnknownTopicId.code();
        entry
    }));
    response
}

fn topic_entry(
    view: &ClusterView,
    name: &str,
    topic: Result<Topic, ResponseError>,
    version: i16,
) -> MetadataResponseTopic {
    let mut entry = MetadataResponseTopic::default();
    entry.name = Some(TopicName(str_bytes(name)));
    match topic {
        Err(e) => entry.error_code = e.code(),
        Ok(t) => {
            if version >= 10 {
                entry.topic_id = t.id;
            }
            if version >= 1 {
                entry.is_internal = super::is_internal_topic(name);
            }
            let partitions = view.topic(name);
            entry.partitions = (0..t.partitions)
                .map(|p| partition_entry(view, partitions, p, version))
                .collect();
        }
    }
    entry
}

/// One partition's entry: its leadership as the view has it.
fn partition_entry(
    view: &ClusterView,
    topic: Option<&TopicView>,
    partition: u32,
    version: i16,
) -> MetadataResponsePartition {
    let mut part = MetadataResponsePartition::default();
    part.partition_index = partition as i32;
    let Some(record) = topic.and_then(|t| t.partitions.get(&partition)) else {
        part.error_code = ResponseError::LeaderNotAvailable.code();
        part.leader_id = BrokerId(-1);
        return part;
    };
    let ids = |list: &[i32]| list.iter().map(|&b| BrokerId(b)).collect::<Vec<_>>();
    part.leader_id = BrokerId(record.state.leader);
    if record.state.leader < 0 || !view.brokers.contains_key(&record.state.leader) {
        part.error_code = ResponseError::LeaderNotAvailable.code();
    }
    if version >= 7 {
        part.leader_epoch = record.state.leader_epoch;
    }
    part.replica_nodes = ids(&record.replicas);
    part.isr_nodes = ids(&record.state.isr);
    if version >= 5 {
        // Dead brokers' replicas and those in failed log directories
        // (collected straight into the answer: none, the usual case,
        // allocates nothing).
        let failed = topic.and_then(|t| t.offline_replicas.get(&partition));
        part.offline_replicas = record
            .replicas
            .iter()
            .filter(|r| !view.brokers.contains_key(r) || failed.is_some_and(|f| f.contains(r)))
            .map(|&r| BrokerId(r))
            .collect();
    }
    part
}
