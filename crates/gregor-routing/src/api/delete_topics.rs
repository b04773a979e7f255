//! DeleteTopics: marks topics for deletion; as Kafka, the answer waits
//! (up to the request's `timeout_ms`) until the controller had this
//! broker forget each topic — its replicas elsewhere are deleted by then,
//! or when their brokers return — and topics still known then get
//! REQUEST_TIMED_OUT.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{DeleteTopicsRequest, DeleteTopicsResponse, TopicName};

use gregor_broker::Broker;

/// How often a waiting DeleteTopics looks at the topics this broker knows.
const POLL: Duration = Duration::from_millis(10);

/// Answers a DeleteTopics request (names in `topic_names` up to v5, in
/// `topics` from v6) once the topics are gone here (or its timeout
/// passes).
pub fn handle(broker: &Arc<Broker>, request: DeleteTopicsRequest) -> impl Future<Output = DeleteTopicsResponse> {
    let deadline = Instant::now() + Duration::from_millis(request.timeout_ms.max(0) as u64);
    let mut names: Vec<TopicName> = request.topic_names;
    names.extend(request.topics.into_iter().filter_map(|t| t.name));
    let mut response = DeleteTopicsResponse::default();
    let mut waiting = Vec::new();
    for name in names {
        let mut result = DeletableTopicResult::default();
        match broker.delete_topic(name.0.as_str()) {
            Err(e) => result.error_code = e.code(),
            Ok(()) => waiting.push(response.responses.len()),
        }
        result.name = Some(name);
        response.responses.push(result);
    }
    let broker = broker.clone();
    async move {
        loop {
            waiting.retain(|&i| {
                let name = response.responses[i].name.as_ref().map(|n| n.0.to_string());
                name.is_some_and(|n| broker.topics().get(&n).is_some())
            });
            if waiting.is_empty() {
                return response;
            }
            if Instant::now() >= deadline {
                for i in waiting {
                    response.responses[i].error_code = ResponseError::RequestTimedOut.code();
                }
                return response;
            }
            tokio::time::sleep(POLL).await;
        }
    }
}
