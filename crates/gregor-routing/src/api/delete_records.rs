//! DeleteRecords: moves a partition's log start offset up to the offset
//! asked for (-1: the high watermark), so the records below it can no
//! longer be read and whole segments below it are deleted. Kafka Streams
//! purges its repartition topics this way once their records are
//! committed.
//!
//! As Kafka: the partition's leader answers (NOT_LEADER_OR_FOLLOWER
//! elsewhere); internal topics are refused (INVALID_TOPIC_EXCEPTION), so
//! is a topic whose `cleanup.policy` does not include `delete`
//! (POLICY_VIOLATION); an offset past the high watermark, or below -1, is
//! OFFSET_OUT_OF_RANGE; an offset below the log start changes nothing. The
//! answer's low watermark is the leader's new log start offset: unlike
//! Kafka, the leader does not wait for its followers to move theirs, which
//! they do on their next fetch (the fetch response carries the leader's log
//! start offset).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::delete_records_response::{DeleteRecordsPartitionResult, DeleteRecordsTopicResult};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};

use gregor_broker::errors::code_for;
use gregor_broker::Broker;

/// The offset meaning "up to the high watermark".
const HIGH_WATERMARK: i64 = -1;

/// Answers a DeleteRecords request (disk work: handler threads only).
pub fn handle(broker: &Broker, request: DeleteRecordsRequest) -> DeleteRecordsResponse {
    let mut response = DeleteRecordsResponse::default();
    for topic in request.topics {
        let name = topic.name.0.to_string();
        let internal = name == gregor_group::OFFSETS_TOPIC || name == gregor_transaction::TRANSACTION_STATE_TOPIC;
        let mut t = DeleteRecordsTopicResult::default();
        t.name = topic.name.clone();
        for partition in topic.partitions {
            let mut p = DeleteRecordsPartitionResult::default();
            p.partition_index = partition.partition_index;
            p.low_watermark = -1;
            match delete(broker, &name, internal, partition.partition_index, partition.offset) {
                Ok(low_watermark) => p.low_watermark = low_watermark,
                Err(code) => p.error_code = code,
            }
            t.partitions.push(p);
        }
        response.topics.push(t);
    }
    response
}

/// Deletes the records of one partition below `offset`: the new log start
/// offset, or the error code to answer.
fn delete(broker: &Broker, topic: &str, internal: bool, partition: i32, offset: i64) -> Result<i64, i16> {
    let (log, high_watermark) = broker.readable_log(topic, partition, None).map_err(|e| e.code())?;
    if internal {
        return Err(ResponseError::InvalidTopicException.code());
    }
    if !log.config().cleanup_policy.deletes() {
        return Err(ResponseError::PolicyViolation.code());
    }
    let before = match offset {
        HIGH_WATERMARK => high_watermark,
        o => u64::try_from(o).map_err(|_| ResponseError::OffsetOutOfRange.code())?,
    };
    if before > high_watermark {
        return Err(ResponseError::OffsetOutOfRange.code());
    }
    match log.delete_records(before) {
        Ok(start) => Ok(i64::try_from(start).unwrap_or(i64::MAX)),
        Err(e) => {
            tracing::warn!(topic, partition, "DeleteRecords failed: {e}");
            Err(code_for(&e))
        }
    }
}
