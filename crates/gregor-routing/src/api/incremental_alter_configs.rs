//! IncrementalAlterConfigs: set or delete a topic's config overrides
//! (recorded in the cluster's catalog; every broker applies them);
//! `validate_only` checks them the same way. A BROKER resource (this
//! broker's id, or the empty name for the cluster-wide defaults) changes
//! the dynamic broker configs recorded for it, as Kafka does: the recorded
//! ones with the changes made, checked as a whole.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse};

use super::config_resources::{altered_broker, refuse_nulls, BROKER, TOPIC};
use super::str_bytes;
use gregor_broker::Broker;

/// A config to set (`Some`) or delete (`None`).
type Change = (String, Option<String>);
/// A refusal: the error and its message.
type Refusal = (ResponseError, Option<String>);
const SET: i8 = 0;
const DELETE: i8 = 1;

/// Answers an IncrementalAlterConfigs request (topics and brokers; SET and DELETE).
pub fn handle(broker: &Broker, request: IncrementalAlterConfigsRequest) -> IncrementalAlterConfigsResponse {
    let mut response = IncrementalAlterConfigsResponse::default();
    for resource in request.resources {
        let mut result = AlterConfigsResourceResponse::default();
        result.resource_type = resource.resource_type;
        result.resource_name = resource.resource_name.clone();
        let name = resource.resource_name.to_string();
        let changes: Result<Vec<Change>, Refusal> = resource
            .configs
            .iter()
            .map(|c| match c.config_operation {
                SET => Ok((
                    c.name.to_string(),
                    Some(c.value.as_ref().map(|v| v.to_string()).unwrap_or_default()),
                )),
                DELETE => Ok((c.name.to_string(), None)),
                _ => Err((
                    ResponseError::InvalidRequest,
                    Some(format!("{}: only SET and DELETE are supported", c.name)),
                )),
            })
            .collect();
        let outcome = match resource.resource_type {
            TOPIC => changes.and_then(|changes| {
                if request.validate_only {
                    broker.topics().altered(&name, &changes).map(|_| ())
                } else {
                    broker.alter_topic_config(&name, &changes)
                }
            }),
            BROKER => changes.and_then(|changes| {
                let target = altered_broker(broker, &name)?;
                let nulls: Vec<&str> = resource
                    .configs
                    .iter()
                    .filter(|c| c.config_operation != DELETE && c.value.is_none())
                    .map(|c| c.name.as_str())
                    .collect();
                refuse_nulls(&nulls)?;
                let mut configs = broker.recorded_broker_config(target)?;
                for (key, value) in changes {
                    match value {
                        Some(v) => configs.insert(key, v),
                        None => configs.remove(&key),
                    };
                }
                broker.replace_broker_config(target, configs, request.validate_only)
            }),
            _ => Err((
                ResponseError::InvalidRequest,
                Some("only topic and broker configs can be changed".to_string()),
            )),
        };
        if let Err((error, message)) = outcome {
            result.error_code = error.code();
            result.error_message = message.map(|m| str_bytes(&m));
        }
        response.responses.push(result);
    }
    response
}
