//! CreateTopics: partitions with a replication factor and config overrides.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse};

use super::str_bytes;
use gregor_broker::{validate_topic_name, Broker};

/// Answers a CreateTopics request.
pub fn handle(broker: &Broker, request: CreateTopicsRequest) -> CreateTopicsResponse {
    let mut response = CreateTopicsResponse::default();
    for topic in request.topics {
        let name = topic.name.0.to_string();
        let mut result = CreatableTopicResult::default();
        result.name = topic.name.clone();
        let partitions = if topic.num_partitions < 0 {
            broker.config().num_partitions
        } else {
            topic.num_partitions as u32
        };
        result.num_partitions = partitions as i32;
        let replication = u16::try_from(topic.replication_factor).ok();
        result.replication_factor = replication.unwrap_or(broker.config().default_replication_factor) as i16;
        let overrides: std::collections::BTreeMap<String, String> = topic
            .configs
            .iter()
            .map(|c| {
                (
                    c.name.to_string(),
                    c.value.as_ref().map(|v| v.to_string()).unwrap_or_default(),
                )
            })
            .collect();
        let outcome = validate_topic_name(&name)
            .map_err(|e| (e, None))
            .and_then(|_| match topic.replication_factor {
                // The catalog checks it against the live brokers.
                -1 | 1.. => Ok(()),
                _ => Err((
                    ResponseError::InvalidReplicationFactor,
                    Some("Replication factor must be larger than 0, or -1 to use the default value.".to_string()),
                )),
            })
            .and_then(|_| {
                broker
                    .topics()
                    .log_config(&overrides)
                    .map(|_| ())
                    .map_err(|m| (ResponseError::InvalidConfig, Some(m)))
            })
            .and_then(|_| {
                if !request.validate_only {
                    broker
                        .topics()
                        .create(&name, partitions, replication, overrides)
                        .map(|_| ())
                } else if broker.topics().get(&name).is_some() {
                    Err((ResponseError::TopicAlreadyExists, None))
                } else {
                    Ok(())
                }
            });
        if let Err((error, message)) = outcome {
            result.error_code = error.code();
            result.error_message = message.map(|m| str_bytes(&m));
        }
        response.topics.push(result);
    }
    response
}
