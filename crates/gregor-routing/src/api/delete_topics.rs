//! DeleteTopics: remove topics and their logs.

use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{DeleteTopicsRequest, DeleteTopicsResponse, TopicName};

use gregor_broker::Broker;

/// Answers a DeleteTopics request (names in `topic_names` up to v5, in
/// `topics` from v6).
pub fn handle(broker: &Broker, request: DeleteTopicsRequest) -> DeleteTopicsResponse {
    let mut names: Vec<TopicName> = request.topic_names;
    names.extend(request.topics.into_iter().filter_map(|t| t.name));
    let mut response = DeleteTopicsResponse::default();
    for name in names {
        let mut result = DeletableTopicResult::default();
        if let Err(e) = broker.delete_topic(name.0.as_str()) {
            result.error_code = e.code();
        }
        result.name = Some(name);
        response.responses.push(result);
    }
    response
}
