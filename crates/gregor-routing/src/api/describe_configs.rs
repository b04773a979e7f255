//! DescribeConfigs: a topic's effective settings or a broker's properties
//! (what admin tools show), each with its value, type and where the value
//! comes from; with `include_synonyms` (v1+), Kafka's synonyms.
//!
//! - TOPIC: every topic-level property of gregor-log's table; synonyms are
//!   the topic's override, then the broker property the default comes from
//!   (`log.cleanup.policy=delete`).
//! - BROKER (this broker's id): every property of the server's
//!   configuration (`BrokerConfig::properties`), the broker-level
//!   defaults of the topic properties and the throttled replication rates
//!   when set, as Kafka's `createBrokerConfigEntry`: the value in force and
//!   its synonyms most specific first — DYNAMIC_BROKER_CONFIG,
//!   DYNAMIC_DEFAULT_BROKER_CONFIG, STATIC_BROKER_CONFIG, DEFAULT_CONFIG;
//!   read-only unless dynamic. The empty name lists the cluster-wide
//!   dynamic defaults (DYNAMIC_DEFAULT_BROKER_CONFIG only); another
//!   broker's id is INVALID_REQUEST.
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
use gregor_broker::{Broker, DynamicLayers, Refusal, REPLICATION_THROTTLED_RATES};
use gregor_log::config::{ConfigType, TOPIC_PROPERTIES};

/// Kafka's ConfigSource values.
const DYNAMIC_TOPIC_CONFIG: i8 = 1;
const DYNAMIC_BROKER_CONFIG: i8 = 2;
const DYNAMIC_DEFAULT_BROKER_CONFIG: i8 = 3;
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
/// The synonym holding the default of each of [`NULL_BROKER_DEFAULTS`]
/// (Kafka's `brokerConfigSynonyms`), listed after the property's own
/// synonyms when it has any.
const NULL_DEFAULT_FALLBACKS: [(&str, &str, &str); 4] = [
    ("log.retention.ms", "log.retention.hours", "168"),
    ("log.roll.ms", "log.roll.hours", "168"),
    ("log.roll.jitter.ms", "log.roll.jitter.hours", "0"),
    (
        "log.flush.interval.ms",
        "log.flush.scheduler.interval.ms",
        "9223372036854775807",
    ),
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
            None => Ok(cluster_default_entries(broker)),
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
    let layers = broker.dynamic_config().layers();
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
                let default = property.value_of(&broker.config().default_log_config);
                synonyms.extend(broker_synonyms(broker, &layers, server, Some(&default), true));
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
/// defaults of topic properties it does not list, then the throttled
/// replication rates set dynamically; by name.
fn broker_entries(broker: &Broker) -> Vec<Entry> {
    let config = broker.config();
    let dynamic = broker.dynamic_config();
    let layers = dynamic.layers();
    let mut entries: Vec<Entry> = config
        .properties
        .iter()
        .map(|p| {
            let value = layers.get(p.name).cloned().or_else(|| p.value.clone());
            Entry {
                name: p.name.to_string(),
                synonyms: broker_synonyms(broker, &layers, p.name, p.value.as_ref(), true),
                value,
                read_only: !dynamic.is_dynamic(p.name),
                sensitive: false,
                config_type: p.config_type,
                documentation: p.documentation,
                source: DEFAULT_CONFIG,
            }
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
        let default = property.value_of(&config.default_log_config);
        let value = layers
            .get(server)
            .cloned()
            .or_else(|| (!NULL_BROKER_DEFAULTS.contains(&server)).then(|| default.clone()));
        entries.push(Entry {
            name: server.to_string(),
            synonyms: broker_synonyms(broker, &layers, server, Some(&default), true),
            value,
            read_only: !dynamic.is_dynamic(server),
            sensitive: property.sensitive,
            config_type: property.config_type,
            documentation: property.doc,
            source: DEFAULT_CONFIG,
        });
    }
    for (name, documentation) in REPLICATION_THROTTLED_RATES {
        if let Some(value) = layers.get(name) {
            entries.push(Entry {
                name: name.to_string(),
                value: Some(value.clone()),
                read_only: false,
                sensitive: false,
                config_type: ConfigType::Long,
                documentation,
                synonyms: broker_synonyms(broker, &layers, name, None, true),
                source: DEFAULT_CONFIG,
            });
        }
    }
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    entries
}

/// The cluster-wide dynamic defaults (the BROKER resource with the empty
/// name), as Kafka lists them: only what is set, each from
/// DYNAMIC_DEFAULT_BROKER_CONFIG.
fn cluster_default_entries(broker: &Broker) -> Vec<Entry> {
    let layers = broker.dynamic_config().layers();
    layers
        .cluster_default
        .iter()
        .map(|(name, value)| {
            let (config_type, documentation) = describe_type(broker, name);
            Entry {
                name: name.clone(),
                value: Some(value.clone()),
                read_only: false,
                sensitive: false,
                config_type,
                documentation,
                synonyms: broker_synonyms(broker, &layers, name, None, false),
                source: DYNAMIC_DEFAULT_BROKER_CONFIG,
            }
        })
        .collect()
}

/// The type and documentation of broker property `name`.
fn describe_type(broker: &Broker, name: &str) -> (ConfigType, &'static str) {
    if let Some(p) = broker.config().properties.iter().find(|p| p.name == name) {
        return (p.config_type, p.documentation);
    }
    if let Some(p) = TOPIC_PROPERTIES.iter().find(|p| p.server_default == Some(name)) {
        return (p.config_type, p.doc);
    }
    let rate = REPLICATION_THROTTLED_RATES.iter().find(|(n, _)| *n == name);
    (ConfigType::Long, rate.map_or("", |(_, doc)| doc))
}

/// Kafka's synonyms of broker property `name` (its `configSynonyms`): this
/// broker's dynamic value (DYNAMIC_BROKER_CONFIG), the cluster-wide one
/// (DYNAMIC_DEFAULT_BROKER_CONFIG), the configuration's value when it sets
/// the property (STATIC_BROKER_CONFIG), then the built-in default unless
/// null (DEFAULT_CONFIG). A property the server does not describe has only
/// its default, `default`. Without `per_broker` (describing the
/// cluster-wide defaults) only the DYNAMIC_DEFAULT_BROKER_CONFIG one.
fn broker_synonyms(
    broker: &Broker,
    layers: &DynamicLayers,
    name: &str,
    default: Option<&String>,
    per_broker: bool,
) -> Vec<DescribeConfigsSynonym> {
    let mut out = Vec::new();
    if per_broker {
        if let Some(value) = layers.per_broker.get(name) {
            out.push(synonym(name, Some(value), DYNAMIC_BROKER_CONFIG));
        }
    }
    if let Some(value) = layers.cluster_default.get(name) {
        out.push(synonym(name, Some(value), DYNAMIC_DEFAULT_BROKER_CONFIG));
    }
    if !per_broker {
        return out;
    }
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
        None => out.extend(default.map(|v| synonym(name, Some(v), DEFAULT_CONFIG))),
    }
    // Kafka lists the synonyms of every name the property has and drops
    // those before the first of its own name: a null default's fallback
    // (`log.retention.hours`) shows only after one of its own.
    if !out.is_empty() {
        if let Some((_, fallback, value)) = NULL_DEFAULT_FALLBACKS.iter().find(|(n, _, _)| *n == name) {
            out.push(synonym(fallback, Some(&value.to_string()), DEFAULT_CONFIG));
        }
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
