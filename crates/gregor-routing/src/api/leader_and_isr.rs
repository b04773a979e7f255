//! LeaderAndIsr, StopReplica and UpdateMetadata: the controller telling
//! this broker which partitions it leads or follows, which to drop, and
//! where every partition is led.

use std::collections::BTreeMap;

use gregor_group::OFFSETS_TOPIC;
use gregor_log::TopicPartition;
use gregor_replication::{LeaderAndIsr, PartitionRecord, RoleChange};
use kafka_protocol::error::ResponseError;
use kafka_protocol_zk::messages::leader_and_isr_response::LeaderAndIsrPartitionError;
use kafka_protocol_zk::messages::stop_replica_response::StopReplicaPartitionError;
use kafka_protocol_zk::messages::{
    BrokerId, LeaderAndIsrRequest, LeaderAndIsrResponse, StopReplicaRequest, StopReplicaResponse,
    UpdateMetadataRequest, UpdateMetadataResponse,
};

use crate::broker::Broker;
use crate::error::replication_error;
use crate::replicas::{BrokerEndpoint, ReplicaManager};

fn cluster(broker: &Broker, controller_epoch: i32) -> Result<&ReplicaManager, ResponseError> {
    let replicas = broker.replicas().ok_or(ResponseError::UnknownServerError)?;
    replicas
        .check_controller_epoch(controller_epoch)
        .map_err(replication_error)?;
    Ok(replicas)
}

fn partition_index(p: i32) -> Option<u32> {
    u32::try_from(p).ok()
}

/// A partition's record from the fields both controller requests carry.
fn record(
    replicas: &[BrokerId],
    leader: BrokerId,
    leader_epoch: i32,
    isr: &[BrokerId],
    controller_epoch: i32,
    version: i32,
) -> PartitionRecord {
    PartitionRecord {
        replicas: replicas.iter().map(|b| b.0).collect(),
        state: LeaderAndIsr {
            leader: leader.0,
            leader_epoch,
            isr: isr.iter().map(|b| b.0).collect(),
            controller_epoch,
        },
        version,
    }
}

/// Applies each partition's leader, epoch and ISR.
pub fn leader_and_isr(broker: &Broker, request: LeaderAndIsrRequest) -> LeaderAndIsrResponse {
    let mut response = LeaderAndIsrResponse::default();
    let replicas = match cluster(broker, request.controller_epoch) {
        Ok(r) => r,
        Err(e) => {
            response.error_code = e.code();
            return response;
        }
    };
    for leader in &request.live_leaders {
        let endpoint = BrokerEndpoint {
            host: leader.host_name.to_string(),
            port: u16::try_from(leader.port).unwrap_or_default(),
            rack: None,
        };
        replicas.learn_endpoint(leader.broker_id.0, endpoint);
    }
    for topic in request.topic_states {
        let name = topic.topic_name.0.to_string();
        for state in topic.partition_states {
            let mut error = LeaderAndIsrPartitionError::default();
            error.topic_name = topic.topic_name.clone();
            error.partition_index = state.partition_index;
            let outcome = partition_index(state.partition_index)
                .ok_or(ResponseError::UnknownTopicOrPartition)
                .and_then(|p| {
                    let log = broker.replica_log(&name, p).map_err(|e| {
                        tracing::error!(topic = %name, partition = p, "cannot open the replica's log: {e}");
                        ResponseError::KafkaStorageError
                    })?;
                    let record = record(
                        &state.replicas,
                        state.leader,
                        state.leader_epoch,
                        &state.isr,
                        state.controller_epoch,
                        state.partition_epoch,
                    );
                    let tp = TopicPartition::new(&name, p);
                    let change = replicas
                        .become_leader_or_follower(&tp, &record, log, broker.min_insync_replicas(&name))
                        .map_err(replication_error)?;
                    if name == OFFSETS_TOPIC && change != RoleChange::Unchanged {
                        let leads = change == RoleChange::BecameLeader;
                        if let Err(e) = broker.group_partition_changed(p, leads) {
                            tracing::error!(partition = p, "loading the groups of {OFFSETS_TOPIC} failed: {e}");
                        }
                    }
                    Ok(())
                });
            if let Err(e) = outcome {
                error.error_code = e.code();
            }
            response.partition_errors.push(error);
        }
    }
    response
}

/// Replaces the cluster view Metadata answers from.
pub fn update_metadata(broker: &Broker, request: UpdateMetadataRequest) -> UpdateMetadataResponse {
    let mut response = UpdateMetadataResponse::default();
    let replicas = match cluster(broker, request.controller_epoch) {
        Ok(r) => r,
        Err(e) => {
            response.error_code = e.code();
            return response;
        }
    };
    let brokers: BTreeMap<i32, BrokerEndpoint> = request
        .live_brokers
        .iter()
        .filter_map(|b| {
            let endpoint = b.endpoints.first()?;
            Some((
                b.id.0,
                BrokerEndpoint {
                    host: endpoint.host.to_string(),
                    port: u16::try_from(endpoint.port).ok()?,
                    rack: b.rack.as_ref().map(|r| r.to_string()),
                },
            ))
        })
        .collect();
    let mut partitions = Vec::new();
    for topic in request.topic_states {
        let name = topic.topic_name.0.to_string();
        for state in topic.partition_states {
            let Some(p) = partition_index(state.partition_index) else {
                continue;
            };
            partitions.push((
                TopicPartition::new(&name, p),
                record(
                    &state.replicas,
                    state.leader,
                    state.leader_epoch,
                    &state.isr,
                    state.controller_epoch,
                    state.zk_version,
                ),
            ));
        }
        if broker.topic(&name).is_none() {
            // Created on another broker: learn it (id, config) now.
            if let Err(e) = broker.learn_topic(&name) {
                tracing::debug!(topic = %name, "not learnt yet: {e}");
            }
        }
    }
    replicas.update_view(request.controller_id.0, brokers, partitions);
    response
}

/// Stops replicating partitions; with `delete_partition` their topic is
/// gone and the logs are deleted.
pub fn stop_replica(broker: &Broker, request: StopReplicaRequest) -> StopReplicaResponse {
    let mut response = StopReplicaResponse::default();
    let replicas = match cluster(broker, request.controller_epoch) {
        Ok(r) => r,
        Err(e) => {
            response.error_code = e.code();
            return response;
        }
    };
    for topic in request.topic_states {
        let name = topic.topic_name.0.to_string();
        let mut deleted = false;
        for state in &topic.partition_states {
            let mut error = StopReplicaPartitionError::default();
            error.topic_name = topic.topic_name.clone();
            error.partition_index = state.partition_index;
            if let Some(p) = partition_index(state.partition_index) {
                replicas.stop_replica(&TopicPartition::new(&name, p));
            }
            deleted |= state.delete_partition;
            response.partition_errors.push(error);
        }
        if deleted {
            if let Err(e) = broker.forget_topic(&name) {
                tracing::error!(topic = %name, "deleting the topic's logs failed: {e:?}");
            } else {
                tracing::info!(topic = %name, "topic deleted by the controller");
            }
        }
    }
    response
}
