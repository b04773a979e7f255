//! StopReplica: the controller telling this broker to stop replicating
//! partitions, deleting their logs when their topic is gone.

use gregor_broker::Broker;
use gregor_log::TopicPartition;
use kafka_protocol_zk::messages::stop_replica_response::StopReplicaPartitionError;
use kafka_protocol_zk::messages::{StopReplicaRequest, StopReplicaResponse};

use super::controller_request::{answer, partition_index};

/// Stops replicating partitions; with `delete_partition` their topic is
/// gone and the logs are deleted.
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
        },
    )
}
