//! DescribeConfigs: a topic's effective settings (what admin tools show):
//! every topic-level property of gregor-log's table, with its value, type
//! and where the value comes from.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_configs_response::{DescribeConfigsResourceResult, DescribeConfigsResult};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};

use super::str_bytes;
use gregor_broker::Broker;

const TOPIC: i8 = 2;
const BROKER: i8 = 4;
/// Kafka's ConfigSource values.
const DYNAMIC_TOPIC_CONFIG: i8 = 1;
const DEFAULT_CONFIG: i8 = 5;

/// Answers a DescribeConfigs request (topics; brokers get an empty list).
pub fn handle(broker: &Broker, request: DescribeConfigsRequest, version: i16) -> DescribeConfigsResponse {
    let mut response = DescribeConfigsResponse::default();
    for resource in request.resources {
        let mut result = DescribeConfigsResult::default();
        result.resource_type = resource.resource_type;
        result.resource_name = resource.resource_name.clone();
        let name = resource.resource_name.to_string();
        match resource.resource_type {
            TOPIC => match broker.topics().get(&name) {
                None => result.error_code = ResponseError::UnknownTopicOrPartition.code(),
                Some(topic) => match broker.topics().log_config(&topic.overrides) {
                    Err(message) => {
                        result.error_code = ResponseError::InvalidConfig.code();
                        result.error_message = Some(str_bytes(&message));
                    }
                    Ok(config) => {
                        let wanted: Option<Vec<String>> = resource
                            .configuration_keys
                            .map(|keys| keys.iter().map(|k| k.to_string()).collect());
                        for shown in config.describe() {
                            if wanted.as_ref().is_some_and(|w| !w.iter().any(|k| k == shown.name)) {
                                continue;
                            }
                            let mut entry = DescribeConfigsResourceResult::default();
                            entry.name = str_bytes(shown.name);
                            entry.value = (!shown.sensitive).then(|| str_bytes(&shown.value));
                            entry.read_only = shown.read_only;
                            entry.is_sensitive = shown.sensitive;
                            if version >= 3 {
                                // Fields newer than the request's version stay at their defaults.
                                entry.config_type = shown.config_type.id();
                                entry.documentation =
                                    request.include_documentation.then(|| str_bytes(shown.documentation));
                            }
                            entry.config_source = if topic.overrides.contains_key(shown.name) {
                                DYNAMIC_TOPIC_CONFIG
                            } else {
                                DEFAULT_CONFIG
                            };
                            result.configs.push(entry);
                        }
                    }
                },
            },
            BROKER => {}
            _ => result.error_code = ResponseError::InvalidRequest.code(),
        }
        response.results.push(result);
    }
    response
}
