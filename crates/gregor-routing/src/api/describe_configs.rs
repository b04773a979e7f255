//! DescribeConfigs: a topic's effective settings or a broker's properties
//! (what admin tools show), each with its value, type and where the value
//! comes from; with `include_synonyms` (v1+), Kafka's synonyms.
//!
//! - TOPIC: every topic-level property of gregor-log's table; synonyms are
//!   the topic's override, then the broker property the default comes from
//!   (`log.cleanup.policy=delete`).
//! - BROKER (this broker's id): every property of the server's
//!   configuration (`BrokerConfig::properties`) and the broker-level
//!   defaults of the topic properties, as Kafka's `createBrokerConfigEntry`:
//!   STATIC_BROKER_CONFIG when the configuration sets it, else
//!   DEFAULT_CONFIG. All are read-only: gregor has no dynamic broker
//!   configs. The empty name (the cluster-wide dynamic defaults) has none;
//!   another broker's id is INVALID_REQUEST.
//! - BROKER_LOGGER: the root logger's level (the most verbose one the
//!   `RUST_LOG` filter lets through), read-only.

use std::collections::BTreeSet;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};

use super::config_resources::{broker_resource, BROKER, BROKER_LOGGER, TOPIC};
use super::str_bytes;
use gregor_broker::{Broker, Refusal};
use gregor_log::config::{ConfigType, TOPIC_PROPERTIES};

/// Kafka's ConfigSource values.
const DYNAMIC_TOPIC_CONFIG: i8 = 1;
const STATIC_BROKER_CONFIG: i8 = 4;
const DEFAULT_CONFIG: i8 = 5;
const DYNAMIC_BROKER_LOGGER_CONFIG: i8 = 6;
/// Broker properties whose Kafka default is null (another synonym, such as
/// `log.retention.hours`, holds it): Kafka lists no default synonym for them.
const NULL_BROKER_DEFAULTS: [&str; 4] = [
    "log.retention.ms",
    "log.roll.ms",
    "log.roll.jitter.ms",
    "log.flush.interval.ms",
];

/// One config entry before encoding.
struct Entry {
    name: String,
    value: Option<String>,
    read_only: bool,
    sensitive: bool,
    config_type: ConfigType,
    documentation: &'static str,
    /// Kafka's synonyms, most specific first (the first is the source).
    synonyms: Vec<DescribeConfigsSynonym>,
    /// The source when there is no synonym.
    source: i8,
}

/// How the request wants entries shown.
struct Shape {
    version: i16,
    synonyms: bool,
    documentation: bool,
}

/// Answers a DescribeConfigs request.
pub fn handle(broker: &Broker, request: DescribeConfigsRequest, version: i16) -> DescribeConfigsResponse {
    let shape = Shape {
        version,
        synonyms: version >= 1 && request.include_synonyms,
        documentation: request.include_documentation,
    };
    let mut response = DescribeConfigsResponse::default();
    for resource in request.resources {
        let mut result = DescribeConfigsResult::default();
        result.resource_type = resource.resource_type;
        result.resource_name = resource.resource_name.clone();
        match describe(broker, &resource) {
            Ok(entries) => {
                // As Kafka: no keys (null or empty) means every config.
                let wanted: Option<BTreeSet<String>> = resource
                    .configuration_keys
                    .filter(|keys| !keys.is_empty())
                    .map(|keys| keys.iter().map(|k| k.to_string()).collect());
                result.configs = entries
                    .into_iter()
                    .filter(|e| wanted.as_ref().is_none_or(|w| w.contains(&e.name)))
                    .map(|e| encode(e, &shape))
                    .collect();
            }
            Err((error, message)) => {
                result.error_code = error.code();
                result.error_message = message.map(|m| str_bytes(&m));
            }
        }
        response.results.push(result);
    }
    response
}

/// The entries of one resource.
fn describe(broker: &Broker, resource: &DescribeConfigsResource) -> Result<Vec<Entry>, Refusal> {
    let name = resource.resource_name.as_str();
    match resource.resource_type {
        TOPIC => topic_entries(broker, name),
        BROKER => match broker_resource(broker, name)? {
            None => Ok(Vec::new()),
            Some(_) => Ok(broker_entries(broker)),
        },
        BROKER_LOGGER => match broker_resource(broker, name)? {
            None => Err((
                ResponseError::InvalidRequest,
                Some("Broker id must not be empty".into()),
            )),
            Some(_) => Ok(vec![root_logger()]),
        },
        _ => Err((ResponseError::InvalidRequest, None)),
    }
}

fn topic_entries(broker: &Broker, name: &str) -> Result<Vec<Entry>, Refusal> {
    let topic = broker
        .topics()
        .get(name)
        .ok_or((ResponseError::UnknownTopicOrPartition, None))?;
    let config = broker
        .topics()
        .log_config(&topic.overrides)
        .map_err(|m| (ResponseError::InvalidConfig, Some(m)))?;
    Ok(config
        .describe()
        .into_iter()
        .map(|shown| {
            let mut synonyms = Vec::new();
            if let Some(value) = topic.overrides.get(shown.name) {
                synonyms.push(synonym(shown.name, Some(value), DYNAMIC_TOPIC_CONFIG));
            }
            let property = gregor_log::config::topic_property(shown.name);
            if let Some((property, server)) = property.and_then(|p| Some((p, p.server_default?))) {
                let in_force = property.value_of(&broker.topics().defaults().log_config);
                synonyms.extend(broker_synonyms(broker, server, Some(&in_force)));
            }
            Entry {
                name: shown.name.to_string(),
                value: Some(shown.value),
                read_only: shown.read_only,
                sensitive: shown.sensitive,
                config_type: shown.config_type,
                documentation: shown.documentation,
                synonyms,
                source: DEFAULT_CONFIG,
            }
        })
        .collect())
}

/// Every property of this broker: the server's, then the broker-level
/// defaults of topic properties it does not list; by name.
fn broker_entries(broker: &Broker) -> Vec<Entry> {
    let config = broker.config();
    let mut entries: Vec<Entry> = config
        .properties
        .iter()
        .map(|p| Entry {
            name: p.name.to_string(),
            value: p.value.clone(),
            read_only: true,
            sensitive: false,
            config_type: p.config_type,
            documentation: p.documentation,
            synonyms: broker_synonyms(broker, p.name, p.value.as_ref()),
            source: DEFAULT_CONFIG,
        })
        .collect();
    let mut seen: BTreeSet<String> = entries.iter().map(|e| e.name.clone()).collect();
    for property in TOPIC_PROPERTIES {
        let Some(server) = property.server_default else {
            continue;
        };
        if !seen.insert(server.to_string()) {
            continue;
        }
        let value = (!NULL_BROKER_DEFAULTS.contains(&server))
            .then(|| property.value_of(&broker.topics().defaults().log_config));
        entries.push(Entry {
            name: server.to_string(),
            synonyms: broker_synonyms(broker, server, value.as_ref()),
            value,
            read_only: true,
            sensitive: property.sensitive,
            config_type: property.config_type,
            documentation: property.doc,
            source: DEFAULT_CONFIG,
        });
    }
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    entries
}

/// Kafka's synonyms of broker property `name` (its `configSynonyms`): the
/// configuration's value when it sets the property (STATIC_BROKER_CONFIG),
/// then the built-in default unless null (DEFAULT_CONFIG). A property the
/// server does not describe has only its default, `in_force`.
fn broker_synonyms(broker: &Broker, name: &str, in_force: Option<&String>) -> Vec<DescribeConfigsSynonym> {
    let mut out = Vec::new();
    match broker.config().properties.iter().find(|p| p.name == name) {
        Some(p) => {
            if p.set {
                out.push(synonym(name, p.value.as_ref(), STATIC_BROKER_CONFIG));
            }
            if let Some(default) = p.default.as_ref().filter(|_| !NULL_BROKER_DEFAULTS.contains(&name)) {
                out.push(synonym(name, Some(default), DEFAULT_CONFIG));
            }
        }
        None if NULL_BROKER_DEFAULTS.contains(&name) => {}
        None => out.extend(in_force.map(|v| synonym(name, Some(v), DEFAULT_CONFIG))),
    }
    out
}

/// The root logger, as Kafka lists log4j's loggers.
fn root_logger() -> Entry {
    let level = tracing::level_filters::LevelFilter::current()
        .to_string()
        .to_uppercase();
    Entry {
        name: "root".to_string(),
        value: Some(level),
        read_only: true,
        sensitive: false,
        config_type: ConfigType::String,
        documentation: "The most verbose level the broker's log filter (RUST_LOG) lets through.",
        synonyms: Vec::new(),
        source: DYNAMIC_BROKER_LOGGER_CONFIG,
    }
}

fn synonym(name: &str, value: Option<&String>, source: i8) -> DescribeConfigsSynonym {
    let mut s = DescribeConfigsSynonym::default();
    s.name = str_bytes(name);
    s.value = value.map(|v| str_bytes(v));
    s.source = source;
    s
}

fn encode(entry: Entry, shape: &Shape) -> DescribeConfigsResourceResult {
    let mut out = DescribeConfigsResourceResult::default();
    out.name = str_bytes(&entry.name);
    out.value = entry.value.filter(|_| !entry.sensitive).map(|v| str_bytes(&v));
    out.read_only = entry.read_only;
    out.is_sensitive = entry.sensitive;
    out.config_source = entry.synonyms.first().map_or(entry.source, |s| s.source);
    if shape.version >= 3 {
        // Fields newer than the request's version stay at their defaults.
        out.config_type = entry.config_type.id();
        out.documentation = shape.documentation.then(|| str_bytes(entry.documentation));
    }
    if shape.synonyms {
        out.synonyms = entry.synonyms;
    }
    out
}
