//! IncrementalAlterConfigs: set or delete a topic's config overrides
//! (recorded in the cluster's catalog; every broker applies them);
//! `validate_only` checks them the same way. A BROKER resource (this
//! broker's id, or the empty name for the cluster-wide defaults) changes
//! the dynamic broker configs recorded for it, as Kafka does: the recorded
//! ones with the changes made, checked as a whole.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::incremental_alter_configs_request::AlterConfigsResource;
use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse};

use super::config_resources::{alter_each, altered_broker, preprocess, BROKER, TOPIC};
use super::str_bytes;
use gregor_broker::{Broker, Refusal};

/// A config to set (`Some`) or delete (`None`).
type Change = (String, Option<String>);
const SET: i8 = 0;
const DELETE: i8 = 1;

/// Answers an IncrementalAlterConfigs request (topics and brokers; SET and DELETE).
pub fn handle(broker: &Broker, request: IncrementalAlterConfigsRequest) -> IncrementalAlterConfigsResponse {
    let mut response = IncrementalAlterConfigsResponse::default();
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

/// Changes one resource's configs, or with `validate_only` checks them
/// exactly as the change would and changes nothing.
fn alter(broker: &Broker, resource: &AlterConfigsResource, repeated: bool, validate_only: bool) -> Result<(), Refusal> {
    let names: Vec<&str> = resource.configs.iter().map(|c| c.name.as_str()).collect();
    let nulls: Vec<&str> = resource
        .configs
        .iter()
        .filter(|c| c.config_operation != DELETE && c.value.is_none())
        .map(|c| c.name.as_str())
        .collect();
    preprocess(repeated, &names, &nulls)?;
    let changes = resource
        .configs
        .iter()
        .map(|c| match (c.config_operation, &c.value) {
            (SET, Some(value)) => Ok((c.name.to_string(), Some(value.to_string()))),
            (DELETE, _) => Ok((c.name.to_string(), None)),
            _ => Err((
                ResponseError::InvalidRequest,
                Some(format!("{}: only SET and DELETE are supported", c.name)),
            )),
        })
        .collect::<Result<Vec<Change>, Refusal>>()?;
    let name = resource.resource_name.as_str();
    match resource.resource_type {
        TOPIC if validate_only => broker.topics().altered(name, &changes).map(|_| ()),
        TOPIC => broker.alter_topic_config(name, &changes),
        BROKER => {
            let target = altered_broker(broker, name)?;
            let mut configs = broker.recorded_broker_config(target)?;
            for (key, value) in changes {
                match value {
                    Some(v) => configs.insert(key, v),
                    None => configs.remove(&key),
                };
            }
            broker.replace_broker_config(target, configs, validate_only)
        }
        _ => Err((
            ResponseError::InvalidRequest,
            Some("only topic and broker configs can be changed".to_string()),
        )),
    }
}
