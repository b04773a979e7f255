//! StopReplica: the controller telling this broker to stop replicating
//! partitions, deleting the topic's logs when it is gone (leader epoch
//! -2, as Kafka sends for deletion) or one partition's log when a
//! reassignment moved the replica away.

use gregor_broker::Broker;
use gregor_log::TopicPartition;
use kafka_protocol_zk::messages::stop_replica_response::StopReplicaPartitionError;
use kafka_protocol_zk::messages::{StopReplicaRequest, StopReplicaResponse};

use super::controller_request::{answer, partition_index};

/// The leader epoch of a StopReplica for a deleted topic (Kafka's
/// `EpochDuringDelete`).
const TOPIC_DELETED: i32 = -2;

/// Stops replicating partitions; with `delete_partition` their logs are
/// deleted (the whole topic's when it is gone).
pub fn handle(broker: &Broker, request: StopReplicaRequest) -> StopReplicaResponse {
    let epoch = request.controller_epoch;
    answer(
        broker,
        epoch,
        request.broker_epoch,
        |replicas, response: &mut StopReplicaResponse| {
            for topic in request.topic_states {
                let name = topic.topic_name.0.to_string();
                let mut deleted = false;
                for state in &topic.partition_states {
                    let mut error = StopReplicaPartitionError::default();
                    error.topic_name = topic.topic_name.clone();
                    error.partition_index = state.partition_index;
                    let topic_gone = state.delete_partition && state.leader_epoch == TOPIC_DELETED;
                    if let Some(p) = partition_index(state.partition_index) {
                        let tp = TopicPartition::new(&name, p);
                        replicas.stop_replica(&tp);
                        if state.delete_partition && !topic_gone {
                            match broker.delete_partition(&tp) {
                                Ok(()) => tracing::info!(partition = %tp, "replica moved away: log deleted"),
                                Err(e) => {
                                    tracing::error!(partition = %tp, "deleting the log failed: {e:?}");
                                    error.error_code = e.code();
                                }
                            }
                        }
                    }
                    deleted |= topic_gone;
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
        },
    )
}
