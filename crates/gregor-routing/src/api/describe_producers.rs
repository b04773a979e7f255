//! DescribeProducers (KIP-664): the producers a partition's leader knows —
//! epoch, last sequence and timestamp, the coordinator epoch of their last
//! marker, and where their open transaction starts.

use kafka_protocol::messages::describe_producers_response::{PartitionResponse, ProducerState, TopicResponse};
use kafka_protocol::messages::{DescribeProducersRequest, DescribeProducersResponse, ProducerId};

use gregor_broker::Broker;

/// Answers a DescribeProducers request.
pub fn handle(broker: &Broker, request: DescribeProducersRequest) -> DescribeProducersResponse {
    let mut response = DescribeProducersResponse::default();
    for topic in request.topics {
        let mut t = TopicResponse::default();
        t.name = topic.name.clone();
        for index in topic.partition_indexes {
            let mut p = PartitionResponse::default();
            p.partition_index = index;
            match broker.readable_log(&topic.name.0, index, None) {
                Err(e) => p.error_code = e.code(),
                Ok((log, _)) => {
                    for (id, entry) in log.producer_states().iter() {
                        let mut state = ProducerState::default();
                        state.producer_id = ProducerId(id);
                        state.producer_epoch = i32::from(entry.epoch);
                        state.last_sequence = entry.last_sequence();
                        state.last_timestamp = entry.last_timestamp;
                        state.coordinator_epoch = entry.coordinator_epoch;
                        state.current_txn_start_offset = entry.current_txn_first_offset.map_or(-1, |o| o as i64);
                        p.active_producers.push(state);
                    }
                }
            }
            t.partitions.push(p);
        }
        response.topics.push(t);
    }
    response
}
