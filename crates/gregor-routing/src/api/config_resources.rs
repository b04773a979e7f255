//! What the config APIs (DescribeConfigs, AlterConfigs,
//! IncrementalAlterConfigs) share: Kafka's resource types, which broker a
//! BROKER resource names, and the refusal of broker config changes —
//! gregor has no dynamic broker configs, so every name is one Kafka's
//! `DynamicBrokerConfig.validateConfigs` refuses ("Cannot update these
//! configs dynamically").

use kafka_protocol::error::ResponseError;

use gregor_broker::{Broker, Refusal};

/// ConfigResource.Type TOPIC.
pub(crate) const TOPIC: i8 = 2;
/// ConfigResource.Type BROKER.
pub(crate) const BROKER: i8 = 4;
/// ConfigResource.Type BROKER_LOGGER.
pub(crate) const BROKER_LOGGER: i8 = 8;

/// Which broker a BROKER resource names: `None` for the cluster-wide
/// default (an empty name), this broker's id, or — as Kafka's
/// `resourceNameToBrokerId` — INVALID_REQUEST for another id or a name
/// that is not one.
pub(crate) fn broker_resource(broker: &Broker, name: &str) -> Result<Option<i32>, Refusal> {
    if name.is_empty() {
        return Ok(None);
    }
    let me = broker.config().node_id;
    match name.parse::<i32>() {
        Ok(id) if id == me => Ok(Some(id)),
        Ok(_) => Err(invalid_request(format!(
            "Unexpected broker id, expected {me} or empty string, but received {name}"
        ))),
        Err(_) => Err(invalid_request(format!(
            "Broker id must be an integer, but it is: {name}"
        ))),
    }
}

/// A change of the configs `names` of BROKER resource `name`: refused as
/// Kafka refuses configs that cannot change dynamically (INVALID_CONFIG);
/// a change of nothing is accepted, as in Kafka.
pub(crate) fn change_broker_configs<'a>(
    broker: &Broker,
    name: &str,
    names: impl IntoIterator<Item = &'a str>,
) -> Result<(), Refusal> {
    broker_resource(broker, name)?;
    let names: Vec<&str> = names.into_iter().collect();
    if names.is_empty() {
        return Ok(());
    }
    Err((
        ResponseError::InvalidConfig,
        Some(format!(
            "Invalid config value for resource ConfigResource(type=BROKER, name='{name}'): \
             Cannot update these configs dynamically: Set({})",
            names.join(", ")
        )),
    ))
}

/// INVALID_REQUEST with `message`.
pub(crate) fn invalid_request(message: String) -> Refusal {
    (ResponseError::InvalidRequest, Some(message))
}
