//! Fetch: whole batches from each partition, up to the high watermark,
//! waiting up to `max_wait_ms` for `min_bytes`.

use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::{FetchRequest, FetchResponse};

use crate::broker::Broker;
use crate::error::code_for;

/// Answers a Fetch request, waiting for data as the request allows.
pub async fn handle(broker: &Broker, request: FetchRequest, version: i16) -> FetchResponse {
    let deadline = Instant::now() + Duration::from_millis(request.max_wait_ms.max(0) as u64);
    loop {
        // Register for appends before reading, so none slips in between.
        let appended = broker.appended();
        tokio::pin!(appended);
        appended.as_mut().enable();
        let (response, bytes) = read_once(broker, &request, version);
        let now = Instant::now();
        if bytes >= request.min_bytes.max(1) as usize || now >= deadline || has_error(&response) {
            return response;
        }
        let _ = tokio::time::timeout(deadline - now, appended).await;
    }
}

fn has_error(response: &FetchResponse) -> bool {
    response
        .responses
        .iter()
        .flat_map(|t| &t.partitions)
        .any(|p| p.error_code != 0)
}

fn read_once(broker: &Broker, request: &FetchRequest, version: i16) -> (FetchResponse, usize) {
    let mut response = FetchResponse::default();
    let mut total = 0usize;
    let max_bytes = request.max_bytes.max(0) as usize;
    for topic in &request.topics {
        let name = topic.topic.0.to_string();
        let mut topic_response = FetchableTopicResponse::default();
        topic_response.topic = topic.topic.clone();
        for partition in &topic.partitions {
            let mut p = PartitionData::default();
            p.partition_index = partition.partition;
            p.high_watermark = -1;
            p.last_stable_offset = -1;
            p.log_start_offset = -1;
            match broker.log(&name, partition.partition) {
                None => p.error_code = ResponseError::UnknownTopicOrPartition.code(),
                Some(log) => {
                    let hw = log.high_watermark();
                    p.high_watermark = hw as i64;
                    p.last_stable_offset = hw as i64;
                    if version >= 5 {
                        p.log_start_offset = log.log_start_offset() as i64;
                    }
                    // The first partition with data returns at least one batch.
                    let room = max_bytes.saturating_sub(total);
                    let limit = (partition.partition_max_bytes.max(0) as usize).min(room);
                    let offset = u64::try_from(partition.fetch_offset).unwrap_or(u64::MAX);
                    match log.read_bounded(offset, limit as u64, hw, total == 0) {
                        Ok(read) => {
                            if let Some(region) = read.region {
                                match region.read_to_vec() {
                                    Ok(bytes) => {
                                        total += bytes.len();
                                        p.records = Some(Bytes::from(bytes));
                                    }
                                    Err(_) => p.error_code = ResponseError::KafkaStorageError.code(),
                                }
                            }
                        }
                        Err(e) => p.error_code = code_for(&e),
                    }
                }
            }
            topic_response.partitions.push(p);
        }
        response.responses.push(topic_response);
    }
    (response, total)
}
