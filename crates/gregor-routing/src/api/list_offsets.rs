//! ListOffsets: earliest (-2), latest (-1), the record with the largest
//! timestamp (-3, v7+), the earliest local offset (-4, v8+: the log start
//! here, where nothing is tiered), the latest tiered offset (-5, v9+: none
//! here), or the first offset at or after a timestamp. As Kafka, a lookup
//! by timestamp only finds records a consumer may read (below the high
//! watermark). From v4 each answer carries the leader epoch of its offset
//! (the current one for the latest offset). At `read_committed` (v2+) the
//! latest offset is the last stable offset.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::list_offsets_response::{ListOffsetsPartitionResponse, ListOffsetsTopicResponse};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};

use gregor_broker::errors::code_for;
use gregor_broker::Broker;
use gregor_log::LogError;

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
const EARLIEST_LOCAL: i64 = -4;
const LATEST_TIERED: i64 = -5;
/// `isolation_level` of a client that reads only committed transactions.
const READ_COMMITTED: i8 = 1;

/// Answers a ListOffsets request.
pub fn handle(broker: &Broker, request: ListOffsetsRequest, version: i16) -> ListOffsetsResponse {
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
                Ok((log, hw)) => {
                    // A read_committed client's end is the last stable offset.
                    let end = if request.isolation_level == READ_COMMITTED {
                        log.last_stable_offset().min(hw)
                    } else {
                        hw
                    };
                    match partition.timestamp {
                        LATEST => p.offset = end as i64,
                        EARLIEST => p.offset = log.log_start_offset() as i64,
                        EARLIEST_LOCAL if version >= 8 => p.offset = log.log_start_offset() as i64,
                        LATEST_TIERED if version >= 9 => {}
                        MAX_TIMESTAMP if version >= 7 => found(&mut p, log.max_timestamp_offset(), end),
                        ts if ts < 0 => p.error_code = ResponseError::UnsupportedVersion.code(),
                        ts => found(&mut p, log.offset_for_timestamp(ts), end),
                    }
                    if version >= 4 && p.offset >= 0 {
                        p.leader_epoch = if partition.timestamp == LATEST {
                            let tp = broker.topics().known_partition(&name, partition.partition_index).ok();
                            tp.and_then(|tp| broker.replicas().leader_epoch(&tp)).unwrap_or(-1)
                        } else {
                            log.epoch_for_offset(p.offset as u64).unwrap_or(-1)
                        };
                    }
                }
            }
            t.partitions.push(p);
        }
        response.topics.push(t);
    }
    response
}

/// Answers with a timestamp lookup's record if a consumer may read it.
fn found(p: &mut ListOffsetsPartitionResponse, lookup: Result<Option<(u64, i64)>, LogError>, hw: u64) {
    match lookup {
        Ok(Some((offset, timestamp))) if offset < hw => {
            p.offset = offset as i64;
            p.timestamp = timestamp;
        }
        Ok(_) => {}
        Err(e) => p.error_code = code_for(&e),
    }
}
