//! CreatePartitions: grow a topic's partition count.

use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse};

use super::str_bytes;
use gregor_broker::Broker;

/// Answers a CreatePartitions request.
pub fn handle(broker: &Broker, request: CreatePartitionsRequest) -> CreatePartitionsResponse {
    let mut response = CreatePartitionsResponse::default();
    for topic in request.topics {
        let mut result = CreatePartitionsTopicResult::default();
        result.name = topic.name.clone();
        let count = u32::try_from(topic.count).unwrap_or(0);
        let outcome = if request.validate_only {
            match broker.topics().get(topic.name.0.as_str()) {
                None => Err((kafka_protocol::error::ResponseError::UnknownTopicOrPartition, None)),
                Some(t) if count <= t.partitions => {
                    Err((kafka_protocol::error::ResponseError::InvalidPartitions, None))
                }
                Some(_) => Ok(()),
            }
        } else {
            let given = topic.assignments.map(|a| {
                a.into_iter()
                    .map(|p| p.broker_ids.into_iter().map(|b| b.0).collect())
                    .collect()
            });
            broker.topics().grow(topic.name.0.as_str(), count, given)
        };
        if let Err((error, message)) = outcome {
            result.error_code = error.code();
            result.error_message = message.map(|m| str_bytes(&m));
        }
        response.results.push(result);
    }
    response
}
