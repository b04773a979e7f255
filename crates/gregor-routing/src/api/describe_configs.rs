//! DescribeConfigs: a topic's effective settings (what admin tools show):
//! every topic-level property of gregor-log's table, with its value, type
//! and where the value comes from; with `include_synonyms` (v1+), Kafka's
//! synonyms: the topic's override, then the broker property the default
//! comes from (`log.cleanup.policy=delete`).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};

use super::str_bytes;
use gregor_broker::Broker;

const TOPIC: i8 = 2;
const BROKER: i8 = 4;
/// Kafka's ConfigSource values.
const DYNAMIC_TOPIC_CONFIG: i8 = 1;
const DEFAULT_CONFIG: i8 = 5;
/// Broker properties whose Kafka default is null (another synonym, such as
/// `log.retention.hours`, holds it): Kafka lists no default synonym for them.
const NULL_BROKER_DEFAULTS: [&str; 4] = [
    "log.retention.ms",
    "log.roll.ms",
    "log.roll.jitter.ms",
    "log.flush.interval.ms",
];

/// Answers a DescribeConfigs request (topics; brokers get an empty list).
pub fn handle(broker: &Broker, request: DescribeConfigsRequest, version: i16) -> DescribeConfigsResponse {
    let mut response = DescribeConfigsResponse::default();
    let resource_synonyms = request.include_synonyms;
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
                            let synonyms = synonyms(shown.name, topic.overrides.get(shown.name), broker);
                            entry.config_source = synonyms.first().map_or(DEFAULT_CONFIG, |s| s.source);
                            if version >= 1 && resource_synonyms {
                                entry.synonyms = synonyms;
                            }
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

/// Kafka's synonyms of a topic property: the topic's override, then the
/// broker property holding the default, with this broker's value of it.
fn synonyms(name: &str, overridden: Option<&String>, broker: &Broker) -> Vec<DescribeConfigsSynonym> {
    let synonym = |name: &str, value: &str, source: i8| {
        let mut s = DescribeConfigsSynonym::default();
        s.name = str_bytes(name);
        s.value = Some(str_bytes(value));
        s.source = source;
        s
    };
    let mut out = Vec::new();
    if let Some(value) = overridden {
        out.push(synonym(name, value, DYNAMIC_TOPIC_CONFIG));
    }
    let property = gregor_log::config::topic_property(name);
    if let Some((property, server)) = property.and_then(|p| Some((p, p.server_default?))) {
        if !NULL_BROKER_DEFAULTS.contains(&server) {
            let value = property.value_of(&broker.topics().defaults().log_config);
            out.push(synonym(server, &value, DEFAULT_CONFIG));
        }
    }
    out
}
