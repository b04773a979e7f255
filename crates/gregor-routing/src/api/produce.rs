//! Produce: append each partition's record batches to its log; with
//! `acks=all` in a cluster, answer once every in-sync replica has them.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use gregor_log::TopicPartition;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};

use gregor_broker::errors::replication_error;
use gregor_broker::Broker;

/// A produce waiting for its replicas: resolves with the response.
pub type DelayedProduce = Pin<Box<dyn Future<Output = ProduceResponse> + Send>>;

/// How a Produce request is answered.
pub enum ProduceOutcome {
    /// At once.
    Respond(ProduceResponse),
    /// Not at all (`acks=0`).
    NoResponse,
    /// When the replicas have the records (`acks=all`), or the timeout.
    Delayed(DelayedProduce),
}

const ACKS_ALL: i16 = -1;

/// Appends the request's batches and answers as `acks` asks (-1, 0 or 1;
/// anything else is INVALID_REQUIRED_ACKS for every partition, nothing
/// written, as Kafka answers).
pub fn handle(broker: &Broker, request: ProduceRequest, version: i16) -> ProduceOutcome {
    if !matches!(request.acks, -1..=1) {
        return ProduceOutcome::Respond(refuse_all(&request, ResponseError::InvalidRequiredAcks));
    }
    let acks_all = request.acks == ACKS_ALL;
    let mut response = ProduceResponse::default();
    let mut waiting: Vec<(TopicPartition, u64)> = Vec::new();
    for topic in request.topic_data {
        let name = topic.name.0.to_string();
        let known = broker.topics().get_or_create(&name);
        let mut topic_response = TopicProduceResponse::default();
        topic_response.name = topic.name.clone();
        for partition in topic.partition_data {
            let mut p = PartitionProduceResponse::default();
            p.index = partition.index;
            p.base_offset = -1;
            p.log_append_time_ms = -1;
            p.log_start_offset = -1;
            match (&known, partition.records) {
                (Err(e), _) => p.error_code = e.code(),
                (Ok(_), None) => p.error_code = ResponseError::InvalidRecord.code(),
                (Ok(_), Some(records)) => {
                    // The log stamps offsets into the batches: one copy out of the request.
                    let mut bytes = records.to_vec();
                    match broker.append(&name, partition.index, &mut bytes, acks_all) {
                        Ok(done) => {
                            p.base_offset = done.info.first_offset as i64;
                            p.log_append_time_ms = done.info.log_append_time.unwrap_or(-1);
                            if version >= 5 {
                                p.log_start_offset = done.info.log_start_offset as i64;
                            }
                            if let Some(Err(e)) = done.acked {
                                p.error_code = replication_error(e).code();
                            }
                            if let Some(required) = done.waiting_for {
                                let index = u32::try_from(partition.index).unwrap_or_default();
                                waiting.push((TopicPartition::new(&name, index), required));
                            }
                        }
                        Err((e, message)) => {
                            tracing::debug!(topic = name, partition = partition.index, "append refused: {message}");
                            p.error_code = e.code();
                        }
                    }
                }
            }
            topic_response.partition_responses.push(p);
        }
        response.responses.push(topic_response);
    }
    if request.acks == 0 {
        return ProduceOutcome::NoResponse;
    }
    if waiting.is_empty() {
        return ProduceOutcome::Respond(response);
    }
    let replicas = broker.replicas();
    let timeout_ms = u64::try_from(request.timeout_ms).unwrap_or(0);
    let acked = replicas.wait_for_acks(waiting, timeout_ms);
    ProduceOutcome::Delayed(Box::pin(async move {
        // The purgatory expires the request; the timer here is a backstop.
        let outcomes = tokio::time::timeout(Duration::from_millis(timeout_ms + 1_000), acked)
            .await
            .ok()
            .and_then(Result::ok);
        for topic in &mut response.responses {
            for p in &mut topic.partition_responses {
                let tp = TopicPartition::new(topic.name.0.as_str(), u32::try_from(p.index).unwrap_or_default());
                let outcome = match &outcomes {
                    Some(list) => list.iter().find(|(t, _)| *t == tp).map(|(_, o)| *o),
                    None => Some(Err(gregor_replication::ReplicationError::RequestTimedOut)),
                };
                if let Some(Err(e)) = outcome {
                    p.error_code = replication_error(e).code();
                }
            }
        }
        response
    }))
}

/// The same error for every partition of `request`.
fn refuse_all(request: &ProduceRequest, error: ResponseError) -> ProduceResponse {
    let mut response = ProduceResponse::default();
    for topic in &request.topic_data {
        let mut t = TopicProduceResponse::default();
        t.name = topic.name.clone();
        for partition in &topic.partition_data {
            let mut p = PartitionProduceResponse::default();
            p.index = partition.index;
            p.error_code = error.code();
            p.base_offset = -1;
            p.log_append_time_ms = -1;
            p.log_start_offset = -1;
            t.partition_responses.push(p);
        }
        response.responses.push(t);
    }
    response
}
