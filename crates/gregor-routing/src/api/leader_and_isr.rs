//! LeaderAndIsr: the controller telling this broker which partitions it
//! leads or follows, with their epochs and ISRs.

use gregor_broker::errors::replication_error;
use gregor_broker::{Broker, BrokerEndpoint};
use gregor_group::OFFSETS_TOPIC;
use gregor_log::TopicPartition;
use gregor_replication::RoleChange;
use gregor_transaction::TRANSACTION_STATE_TOPIC;
use kafka_protocol::error::ResponseError;
use kafka_protocol_zk::messages::leader_and_isr_response::LeaderAndIsrPartitionError;
use kafka_protocol_zk::messages::{LeaderAndIsrRequest, LeaderAndIsrResponse};

use super::controller_request::{answer, partition_index, record};

/// Applies each partition's leader, epoch and ISR.
pub fn handle(broker: &Broker, request: LeaderAndIsrRequest) -> LeaderAndIsrResponse {
    let epoch = request.controller_epoch;
    answer(
        broker,
        epoch,
        request.broker_epoch,
        |replicas, response: &mut LeaderAndIsrResponse| {
            for leader in &request.live_leaders {
                let endpoint = BrokerEndpoint {
                    host: leader.host_name.to_string(),
                    port: u16::try_from(leader.port).unwrap_or_default(),
                    ..BrokerEndpoint::default()
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
                            let tp = TopicPartition::new(&name, p);
                            let logs = broker.logs();
                            // Its log directory failed, or it has no log here
                            // while a directory is offline (it may be in that
                            // one: an empty log elsewhere could be elected and
                            // lose what the replica held — Kafka's
                            // `getOrCreateLog` refuses the same): the
                            // controller takes this replica as offline.
                            let missing_maybe_offline = logs.get(&tp).is_none() && !logs.offline_dirs().is_empty();
                            if broker.replicas().is_offline(&tp) || logs.is_offline(&tp) || missing_maybe_offline {
                                return Err(ResponseError::KafkaStorageError);
                            }
                            let log = broker.topics().partition_log(&name, p).map_err(|e| {
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
                            let change = replicas
                                .become_leader_or_follower(&tp, &record, log, broker.min_insync_replicas(&name))
                                .map_err(replication_error)?;
                            if name == OFFSETS_TOPIC && change != RoleChange::Unchanged {
                                let leads = change == RoleChange::BecameLeader;
                                if let Err(e) = broker.groups().partition_changed(p, leads, broker.now_ms()) {
                                    tracing::error!(partition = p, "loading the groups of {OFFSETS_TOPIC} failed: {e}");
                                }
                            }
                            if name == TRANSACTION_STATE_TOPIC {
                                // The coordinator epoch is the leader epoch.
                                let led = (state.leader == replicas.local()).then_some(state.leader_epoch);
                                if let Err(e) = broker.transactions().partition_led(p, led) {
                                    tracing::error!(partition = p, "loading {TRANSACTION_STATE_TOPIC} failed: {e}");
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
        },
    )
}
