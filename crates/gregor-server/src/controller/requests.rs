//! The controller's requests to brokers, built from partition records:
//! LeaderAndIsr, UpdateMetadata and StopReplica in the ZooKeeper-era
//! codec.

use std::collections::{BTreeMap, BTreeSet};

use gregor_coord::kafka::{BrokerRegistration, RegisteredEndpoint};
use gregor_log::TopicPartition;
use gregor_replication::PartitionRecord;
use kafka_protocol_zk::messages as zk;
use kafka_protocol_zk::protocol::StrBytes;

/// A request for one broker, already built.
#[derive(Debug, Clone)]
pub(super) enum BrokerRequest {
    /// Leaders, epochs and ISRs of partitions the broker holds.
    LeaderAndIsr(zk::LeaderAndIsrRequest),
    /// The cluster view.
    UpdateMetadata(zk::UpdateMetadataRequest),
    /// Partitions to stop replicating (and delete, when their topic is gone).
    StopReplica(zk::StopReplicaRequest),
}

/// Sets the fields both requests' partition states share (different
/// codec types with the same field names).
macro_rules! fill_partition_state {
    ($state:ident, $tp:expr, $record:expr) => {
        $state.partition_index = $tp.partition as i32;
        $state.controller_epoch = $record.state.controller_epoch;
        $state.leader = zk::BrokerId($record.state.leader);
        $state.leader_epoch = $record.state.leader_epoch;
        $state.isr = $record.state.isr.iter().map(|&b| zk::BrokerId(b)).collect();
        $state.replicas = $record.replicas.iter().map(|&b| zk::BrokerId(b)).collect();
    };
}

/// Partition states grouped into one topic state per topic (in name
/// order), built by `topic_state` from the name and its partitions'.
fn by_topic<'a, S, T>(
    states: impl Iterator<Item = (&'a TopicPartition, S)>,
    topic_state: impl Fn(zk::TopicName, Vec<S>) -> T,
) -> Vec<T> {
    let mut grouped: BTreeMap<&str, Vec<S>> = BTreeMap::new();
    for (tp, state) in states {
        grouped.entry(&tp.topic).or_default().push(state);
    }
    grouped
        .into_iter()
        .map(|(topic, states)| topic_state(zk::TopicName(StrBytes::from_string(topic.to_string())), states))
        .collect()
}

/// LeaderAndIsr's version between brokers.
pub(super) const LEADER_AND_ISR_VERSION: i16 = 4;
/// UpdateMetadata's version between brokers.
pub(super) const UPDATE_METADATA_VERSION: i16 = 6;
/// StopReplica's version between brokers.
pub(super) const STOP_REPLICA_VERSION: i16 = 3;

/// Where brokers reach the broker of `registration`: its endpoint of the
/// inter-broker listener `listener` (its first endpoint when it has none
/// by that name, as a broker configured otherwise would register).
pub(crate) fn inter_broker_endpoint(registration: &BrokerRegistration, listener: &str) -> Option<RegisteredEndpoint> {
    registration
        .endpoint(listener)
        .or_else(|| registration.registered_endpoints().into_iter().next())
}

/// Kafka's id of a security protocol (UpdateMetadata's endpoints).
fn security_protocol_id(name: &str) -> i16 {
    match name {
        "SSL" => 1,
        "SASL_PLAINTEXT" => 2,
        "SASL_SSL" => 3,
        _ => 0,
    }
}

/// The inter-broker endpoints of the leaders among `partitions`.
fn live_leaders(
    registrations: &BTreeMap<i32, BrokerRegistration>,
    partitions: &[(TopicPartition, PartitionRecord)],
    listener: &str,
) -> Vec<zk::leader_and_isr_request::LeaderAndIsrLiveLeader> {
    let leaders: BTreeSet<i32> = partitions.iter().map(|(_, r)| r.state.leader).collect();
    leaders
        .into_iter()
        .filter_map(|id| {
            let endpoint = inter_broker_endpoint(registrations.get(&id)?, listener)?;
            let mut l = zk::leader_and_isr_request::LeaderAndIsrLiveLeader::default();
            l.broker_id = zk::BrokerId(id);
            l.host_name = StrBytes::from_string(endpoint.host);
            l.port = i32::from(endpoint.port);
            Some(l)
        })
        .collect()
}

/// LeaderAndIsr for `partitions`, from controller `local`, to the broker
/// of `broker_epoch`; leaders named by their endpoints of the inter-broker
/// `listener`.
pub(super) fn leader_and_isr(
    local: i32,
    controller_epoch: i32,
    broker_epoch: i64,
    partitions: &[(TopicPartition, PartitionRecord)],
    registrations: &BTreeMap<i32, BrokerRegistration>,
    listener: &str,
) -> BrokerRequest {
    let mut request = zk::LeaderAndIsrRequest::default();
    request.controller_id = zk::BrokerId(local);
    request.controller_epoch = controller_epoch;
    request.broker_epoch = broker_epoch;
    let states = partitions.iter().map(|(tp, record)| {
        let mut s = zk::leader_and_isr_request::LeaderAndIsrPartitionState::default();
        fill_partition_state!(s, tp, record);
        s.partition_epoch = record.version;
        (tp, s)
    });
    request.topic_states = by_topic(states, |topic_name, partition_states| {
        let mut t = zk::leader_and_isr_request::LeaderAndIsrTopicState::default();
        t.topic_name = topic_name;
        t.partition_states = partition_states;
        t
    });
    request.live_leaders = live_leaders(registrations, partitions, listener);
    BrokerRequest::LeaderAndIsr(request)
}

/// UpdateMetadata: `partitions` and the `live` brokers, from controller
/// `local`, to the broker of `broker_epoch`. A partition's offline
/// replicas are those on brokers not live and those `offline` names (in a
/// failed log directory).
pub(super) fn update_metadata(
    local: i32,
    controller_epoch: i32,
    broker_epoch: i64,
    (live, offline): (&[i32], &BTreeMap<TopicPartition, Vec<i32>>),
    partitions: &[(TopicPartition, PartitionRecord)],
    registrations: &BTreeMap<i32, BrokerRegistration>,
) -> BrokerRequest {
    let mut request = zk::UpdateMetadataRequest::default();
    request.controller_id = zk::BrokerId(local);
    request.controller_epoch = controller_epoch;
    request.broker_epoch = broker_epoch;
    let states = partitions.iter().map(|(tp, record)| {
        let mut s = zk::update_metadata_request::UpdateMetadataPartitionState::default();
        fill_partition_state!(s, tp, record);
        s.zk_version = record.version;
        let failed_dirs = offline.get(tp);
        s.offline_replicas = record
            .replicas
            .iter()
            .filter(|r| !live.contains(r) || failed_dirs.is_some_and(|f| f.contains(r)))
            .map(|&b| zk::BrokerId(b))
            .collect();
        (tp, s)
    });
    request.topic_states = by_topic(states, |topic_name, partition_states| {
        let mut t = zk::update_metadata_request::UpdateMetadataTopicState::default();
        t.topic_name = topic_name;
        t.partition_states = partition_states;
        t
    });
    request.live_brokers = live
        .iter()
        .filter_map(|id| {
            let r = registrations.get(id)?;
            let mut b = zk::update_metadata_request::UpdateMetadataBroker::default();
            b.id = zk::BrokerId(*id);
            // Every listener: each client is answered with its own.
            b.endpoints = r
                .registered_endpoints()
                .into_iter()
                .map(|e| {
                    let mut endpoint = zk::update_metadata_request::UpdateMetadataEndpoint::default();
                    endpoint.host = StrBytes::from_string(e.host);
                    endpoint.port = i32::from(e.port);
                    endpoint.security_protocol = security_protocol_id(&e.security_protocol);
                    endpoint.listener = StrBytes::from_string(e.listener);
                    endpoint
                })
                .collect();
            b.rack = r.rack.clone().map(StrBytes::from_string);
            Some(b)
        })
        .collect();
    BrokerRequest::UpdateMetadata(request)
}

/// What a StopReplica does with the partitions' logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum StopMode {
    /// Their topic is gone: delete them (leader epoch -2, as Kafka sends).
    DeleteTopic,
    /// A reassignment moved these replicas away: delete them.
    DeleteReplica,
    /// The broker is shutting down: stop following, keep the logs.
    Keep,
}

/// StopReplica for `partitions` (each with the leader epoch it stops
/// at), from controller `local`, to the broker of `broker_epoch`.
pub(super) fn stop_replica(
    local: i32,
    controller_epoch: i32,
    broker_epoch: i64,
    partitions: &[(TopicPartition, i32)],
    mode: StopMode,
) -> BrokerRequest {
    let mut request = zk::StopReplicaRequest::default();
    request.controller_id = zk::BrokerId(local);
    request.controller_epoch = controller_epoch;
    request.broker_epoch = broker_epoch;
    let states = partitions.iter().map(|(tp, leader_epoch)| {
        let mut s = zk::stop_replica_request::StopReplicaPartitionState::default();
        s.partition_index = tp.partition as i32;
        s.delete_partition = mode != StopMode::Keep;
        s.leader_epoch = if mode == StopMode::DeleteTopic {
            -2
        } else {
            *leader_epoch
        };
        (tp, s)
    });
    request.topic_states = by_topic(states, |topic_name, partition_states| {
        let mut t = zk::stop_replica_request::StopReplicaTopicState::default();
        t.topic_name = topic_name;
        t.partition_states = partition_states;
        t
    });
    BrokerRequest::StopReplica(request)
}
