//! DescribeConfigs: a topic's effective settings (what admin tools show).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_configs_response::{DescribeConfigsResourceResult, DescribeConfigsResult};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};

use super::str_bytes;
use gregor_broker::{topic_config, Broker};

const TOPIC: i8 = 2;
const BROKER: i8 = 4;
/// Kafka's ConfigSource values.
const DYNAMIC_TOPIC_CONFIG: i8 = 1;
const DEFAULT_CONFIG: i8 = 5;

/// The topic-level names and values of a log configuration.
fn entries(config: &gregor_log::LogConfig) -> Vec<(&'static str, String)> {
    let policy = match config.cleanup_policy {
        gregor_log::CleanupPolicy::Delete => "delete",
        gregor_log::CleanupPolicy::Compact => "compact",
        gregor_log::CleanupPolicy::CompactDelete => "compact,delete",
    };
    let timestamp_type = match config.message_timestamp_type {
        gregor_log::MessageTimestampType::CreateTime => "CreateTime",
        gregor_log::MessageTimestampType::LogAppendTime => "LogAppendTime",
    };
    vec![
        ("cleanup.policy", policy.to_string()),
        ("delete.retention.ms", config.delete_retention_ms.to_string()),
        ("flush.messages", config.flush_messages.to_string()),
        ("flush.ms", config.flush_ms.to_string()),
        ("index.interval.bytes", config.index_interval_bytes.to_string()),
        ("max.compaction.lag.ms", config.max_compaction_lag_ms.to_string()),
        ("max.message.bytes", config.max_message_bytes.to_string()),
        ("message.timestamp.type", timestamp_type.to_string()),
        (
            "min.cleanable.dirty.ratio",
            config.min_cleanable_dirty_ratio.to_string(),
        ),
        ("min.compaction.lag.ms", config.min_compaction_lag_ms.to_string()),
        ("retention.bytes", config.retention_bytes.to_string()),
        ("retention.ms", config.retention_ms.to_string()),
        ("segment.bytes", config.segment_bytes.to_string()),
        ("segment.index.bytes", config.segment_index_bytes.to_string()),
        ("segment.ms", config.segment_ms.to_string()),
    ]
}

/// Answers a DescribeConfigs request (topics; brokers get an empty list).
pub fn handle(broker: &Broker, request: DescribeConfigsRequest) -> DescribeConfigsResponse {
    let mut response = DescribeConfigsResponse::default();
    for resource in request.resources {
        let mut result = DescribeConfigsResult::default();
        result.resource_type = resource.resource_type;
        result.resource_name = resource.resource_name.clone();
        let name = resource.resource_name.to_string();
        match resource.resource_type {
            TOPIC => match broker.topics().get(&name) {
                None => result.error_code = ResponseError::UnknownTopicOrPartition.code(),
                Some(topic) => match topic_config(&broker.config().default_log_config, &topic.overrides) {
                    Err(message) => {
                        result.error_code = ResponseError::InvalidConfig.code();
                        result.error_message = Some(str_bytes(&message));
                    }
                    Ok(config) => {
                        let wanted: Option<Vec<String>> = resource
                            .configuration_keys
                            .map(|keys| keys.iter().map(|k| k.to_string()).collect());
                        // The log's settings, then overrides that are not
                        // the log's (replication: min.insync.replicas, …).
                        let log_entries = entries(&config);
                        let others = topic
                            .overrides
                            .iter()
                            .filter(|(k, _)| !log_entries.iter().any(|(e, _)| e == k))
                            .map(|(k, v)| (k.as_str(), v.clone()));
                        let all: Vec<(&str, String)> = log_entries.iter().cloned().chain(others).collect();
                        for (key, value) in all {
                            if wanted.as_ref().is_some_and(|w| !w.iter().any(|k| k == key)) {
                                continue;
                            }
                            let mut entry = DescribeConfigsResourceResult::default();
                            entry.name = str_bytes(key);
                            entry.value = Some(str_bytes(&value));
                            entry.config_source = if topic.overrides.contains_key(key) {
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
