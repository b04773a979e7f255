//! Produce: append each partition's record batches to its log.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};

use crate::broker::Broker;
use crate::error::code_for;

/// Appends the request's batches; `None` for `acks=0` (no response is sent).
pub fn handle(broker: &Broker, request: ProduceRequest, version: i16) -> Option<ProduceResponse> {
    let mut response = ProduceResponse::default();
    let mut appended = false;
    for topic in request.topic_data {
        let name = topic.name.0.to_string();
        let known = broker.topic_or_create(&name);
        let mut topic_response = TopicProduceResponse::default();
        topic_response.name = topic.name.clone();
        for partition in topic.partition_data {
            let mut p = PartitionProduceResponse::default();
            p.index = partition.index;
            p.base_offset = -1;
            p.log_append_time_ms = -1;
            p.log_start_offset = -1;
            let log = known.as_ref().ok().and_then(|_| broker.log(&name, partition.index));
            match (log, partition.records) {
                (None, _) => p.error_code = ResponseError::UnknownTopicOrPartition.code(),
                (Some(_), None) => p.error_code = ResponseError::InvalidRecord.code(),
                (Some(log), Some(records)) => {
                    // The log stamps offsets into the batches: one copy out of the request.
                    let mut bytes = records.to_vec();
                    match log.append(&mut bytes, 0) {
                        Ok(info) => {
                            appended = true;
                            p.base_offset = info.first_offset as i64;
                            p.log_append_time_ms = info.log_append_time.unwrap_or(-1);
                            if version >= 5 {
                                p.log_start_offset = info.log_start_offset as i64;
                            }
                        }
                        Err(e) => {
                            tracing::debug!(topic = name, partition = partition.index, "append refused: {e}");
                            p.error_code = code_for(&e);
                        }
                    }
                }
            }
            topic_response.partition_responses.push(p);
        }
        response.responses.push(topic_response);
    }
    if appended {
        broker.notify_appended();
    }
    (request.acks != 0).then_some(response)
}
