//! UpdateMetadata: the controller telling this broker where every
//! partition is led and which brokers are alive (the cluster view Metadata
//! answers from).

use std::collections::BTreeMap;

use gregor_broker::{Broker, BrokerEndpoint};
use gregor_log::TopicPartition;
use kafka_protocol_zk::messages::{UpdateMetadataRequest, UpdateMetadataResponse};

use super::controller_request::{answer, partition_index, record};

/// Replaces the cluster view Metadata answers from.
pub fn handle(broker: &Broker, request: UpdateMetadataRequest) -> UpdateMetadataResponse {
    let epoch = request.controller_epoch;
    answer(
        broker,
        epoch,
        request.broker_epoch,
        |replicas, _: &mut UpdateMetadataResponse| {
            // Every listener's endpoint; brokers connect to each other
            // through the inter-broker listener (as Kafka's metadata cache
            // picks it), the first endpoint when none has its name.
            let inter_broker = &broker.config().inter_broker_listener;
            let brokers: BTreeMap<i32, BrokerEndpoint> = request
                .live_brokers
                .iter()
                .filter_map(|b| {
                    let listeners: BTreeMap<String, (String, u16)> = b
                        .endpoints
                        .iter()
                        .filter_map(|e| {
                            Some((
                                e.listener.to_string(),
                                (e.host.to_string(), u16::try_from(e.port).ok()?),
                            ))
                        })
                        .collect();
                    let first = b.endpoints.first()?;
                    let (host, port) = listeners
                        .get(inter_broker.as_str())
                        .cloned()
                        .or_else(|| Some((first.host.to_string(), u16::try_from(first.port).ok()?)))?;
                    Some((
                        b.id.0,
                        BrokerEndpoint {
                            host,
                            port,
                            rack: b.rack.as_ref().map(|r| r.to_string()),
                            listeners,
                        },
                    ))
                })
                .collect();
            let mut partitions = Vec::new();
            let mut offline = Vec::new();
            for topic in request.topic_states {
                let name = topic.topic_name.0.to_string();
                for state in topic.partition_states {
                    let Some(p) = partition_index(state.partition_index) else {
                        continue;
                    };
                    let replicas = state.offline_replicas.iter().map(|b| b.0).collect();
                    offline.push((TopicPartition::new(&name, p), replicas));
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
                if broker.topics().get(&name).is_none() {
                    // Created on another broker: learn it (id, config) now.
                    if let Err(e) = broker.topics().learn(&name) {
                        tracing::debug!(topic = %name, "not learnt yet: {e}");
                    }
                }
            }
            replicas.update_view(request.controller_id.0, brokers, partitions);
            replicas.update_offline_replicas(offline);
        },
    )
}
