//! OffsetForLeaderEpoch: where a leader epoch ends in this leader's log —
//! followers truncate to it after a leader change, consumers check their
//! position against it.

use kafka_protocol::messages::offset_for_leader_epoch_response::{EpochEndOffset, OffsetForLeaderTopicResult};
use kafka_protocol::messages::{OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};

use gregor_broker::Broker;

/// Answers an OffsetForLeaderEpoch request.
pub fn handle(broker: &Broker, request: OffsetForLeaderEpochRequest) -> OffsetForLeaderEpochResponse {
    let mut response = OffsetForLeaderEpochResponse::default();
    for topic in request.topics {
        let name = topic.topic.0.to_string();
        let mut t = OffsetForLeaderTopicResult::default();
        t.topic = topic.topic.clone();
        for partition in topic.partitions {
            let mut p = EpochEndOffset::default();
            p.partition = partition.partition;
            p.leader_epoch = -1;
            p.end_offset = -1;
            let current = (partition.current_leader_epoch >= 0).then_some(partition.current_leader_epoch);
            match broker.readable_log(&name, partition.partition, current) {
                Err(e) => p.error_code = e.code(),
                Ok((log, _)) => {
                    if let Some((epoch, end)) = log.end_offset_for_epoch(partition.leader_epoch) {
                        p.leader_epoch = epoch;
                        p.end_offset = end as i64;
                    }
                }
            }
            t.partitions.push(p);
        }
        response.topics.push(t);
    }
    response
}
