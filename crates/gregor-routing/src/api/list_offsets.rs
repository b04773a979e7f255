//! ListOffsets: earliest (-2), latest (-1), or the first offset at or after
//! a timestamp.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::list_offsets_response::{ListOffsetsPartitionResponse, ListOffsetsTopicResponse};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};

use gregor_broker::errors::code_for;
use gregor_broker::Broker;

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;

/// Answers a ListOffsets request.
pub fn handle(broker: &Broker, request: ListOffsetsRequest) -> ListOffsetsResponse {
    let mut response = ListOffsetsResponse::default();
    for topic in request.topics {
        let name = topic.name.0.to_string();
        let mut t = ListOffsetsTopicResponse::default();
        t.name = topic.name.clone();
        for partition in topic.partitions {
            let mut p = ListOffsetsPartitionResponse::default();
            p.partition_index = partition.partition_index;
            p.timestamp = -1;
            p.offset = -1;
            let epoch = (partition.current_leader_epoch >= 0).then_some(partition.current_leader_epoch);
            match broker.readable_log(&name, partition.partition_index, epoch) {
                Err(e) => p.error_code = e.code(),
                Ok((log, hw)) => match partition.timestamp {
                    LATEST => p.offset = hw as i64,
                    EARLIEST => p.offset = log.log_start_offset() as i64,
                    ts if ts < 0 => p.error_code = ResponseError::UnsupportedVersion.code(),
                    ts => match log.offset_for_timestamp(ts) {
                        Ok(Some((offset, found_ts))) => {
                            p.offset = offset as i64;
                            p.timestamp = found_ts;
                        }
                        Ok(None) => {}
                        Err(e) => p.error_code = code_for(&e),
                    },
                },
            }
            t.partitions.push(p);
        }
        response.topics.push(t);
    }
    response
}
