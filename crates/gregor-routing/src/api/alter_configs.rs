//! AlterConfigs, the legacy form (kafka-python's admin and older tools):
//! the configs given become a resource's whole dynamic config — a
//! topic's overrides not named are removed, unlike IncrementalAlterConfigs.
//!
//! As Kafka 3.9: first, for every resource type, `ConfigAdminManager`'s
//! checks (a resource named twice, a config named twice, a null value:
//! INVALID_REQUEST); then (`ZkAdminManager.alterConfigs`) a topic
//! resource is checked like IncrementalAlterConfigs' (the same code: an
//! unknown topic is UNKNOWN_TOPIC_OR_PARTITION, a bad value
//! INVALID_CONFIG, the empty name INVALID_REQUEST) and, unless
//! `validate_only`, recorded and applied by every broker; a BROKER
//! resource naming another broker is INVALID_REQUEST, else the configs
//! become its whole dynamic config (what `kafka-configs --entity-type
//! brokers --alter` sends), checked as Kafka 3.9's `ConfigAdminManager`
//! checks them (a static property or a bad value: INVALID_REQUEST);
//! other resource types are INVALID_REQUEST.

use std::collections::BTreeMap;

use kafka_protocol::messages::alter_configs_request::AlterConfigsResource;
use kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{AlterConfigsRequest, AlterConfigsResponse};

use super::config_resources::{alter_each, altered_broker, invalid_request, preprocess, BROKER, TOPIC};
use super::str_bytes;
use gregor_broker::{Broker, Refusal};

/// Answers an AlterConfigs request.
pub fn handle(broker: &Broker, request: AlterConfigsRequest) -> AlterConfigsResponse {
    let mut response = AlterConfigsResponse::default();
    let outcomes = alter_each(
        &request.resources,
        |r| (r.resource_type, r.resource_name.as_str()),
        |r, repeated| alter(broker, r, repeated, request.validate_only),
    );
    for (resource, outcome) in request.resources.iter().zip(outcomes) {
        let mut result = AlterConfigsResourceResponse::default();
        result.resource_type = resource.resource_type;
        result.resource_name = resource.resource_name.clone();
        // Null unless refused, as Kafka answers (the codec's default is "").
        result.error_message = None;
        if let Err((error, message)) = outcome {
            result.error_code = error.code();
            result.error_message = message.map(|m| str_bytes(&m));
        }
        response.responses.push(result);
    }
    response
}

/// Replaces one resource's configs (or only checks them).
fn alter(broker: &Broker, resource: &AlterConfigsResource, repeated: bool, validate_only: bool) -> Result<(), Refusal> {
    let name = resource.resource_name.as_str();
    let names: Vec<&str> = resource.configs.iter().map(|c| c.name.as_str()).collect();
    let nulls: Vec<&str> = resource
        .configs
        .iter()
        .filter(|c| c.value.is_none())
        .map(|c| c.name.as_str())
        .collect();
    preprocess(repeated, &names, &nulls)?;
    let configs: BTreeMap<String, String> = resource
        .configs
        .iter()
        .filter_map(|c| Some((c.name.to_string(), c.value.as_ref()?.to_string())))
        .collect();
    match resource.resource_type {
        TOPIC if name.is_empty() => Err(invalid_request("Default topic resources are not allowed.".into())),
        TOPIC if validate_only => broker.topics().check_overrides(name, &configs),
        TOPIC => broker.replace_topic_config(name, configs),
        BROKER => {
            let target = altered_broker(broker, name)?;
            broker.replace_broker_config(target, configs, validate_only)
        }
        other => Err(invalid_request(format!(
            "AlterConfigs is only supported for topics and brokers, but resource type is {}",
            resource_type_name(other)
        ))),
    }
}

/// Kafka's name of a ConfigResource.Type id.
fn resource_type_name(id: i8) -> &'static str {
    match id {
        8 => "BROKER_LOGGER",
        16 => "CLIENT_METRICS",
        _ => "UNKNOWN",
    }
}
