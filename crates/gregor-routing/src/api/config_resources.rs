//! What the config APIs (DescribeConfigs, AlterConfigs,
//! IncrementalAlterConfigs) share: Kafka's resource types, which broker a
//! BROKER resource names (for describing and for altering, whose messages
//! differ as in Kafka).

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
    let me = broker.config().node_id;
    named_broker(me, name, &format!("{me} or empty string"), "Broker")
}

/// Which BROKER resource an alter names (Kafka's
/// `ConfigAdminManager.validateResourceNameIsCurrentNodeId`): `None` for the cluster-wide defaults (the
/// empty name), this broker's id, or INVALID_REQUEST for another id (the
/// client sends a broker's configs to that broker) or a name that is not
/// one.
pub(crate) fn altered_broker(broker: &Broker, name: &str) -> Result<Option<i32>, Refusal> {
    let me = broker.config().node_id;
    named_broker(me, name, &me.to_string(), "Node")
}

/// `None` for the empty name, `Some(me)` for this broker's id, otherwise
/// INVALID_REQUEST in Kafka's words (`expected` and `kind` are where the
/// describe and alter messages differ).
fn named_broker(me: i32, name: &str, expected: &str, kind: &str) -> Result<Option<i32>, Refusal> {
    if name.is_empty() {
        return Ok(None);
    }
    match name.parse::<i32>() {
        Ok(id) if id == me => Ok(Some(id)),
        Ok(_) => Err(invalid_request(format!(
            "Unexpected broker id, expected {expected}, but received {name}"
        ))),
        Err(_) => Err(invalid_request(format!(
            "{kind} id must be an integer, but it is: {name}"
        ))),
    }
}

/// Each resource of an alter request answered by `alter`, which is told
/// whether the resource appears more than once (Kafka refuses those);
/// `key` names a resource by (type, name).
pub(crate) fn alter_each<R>(
    resources: &[R],
    key: impl Fn(&R) -> (i8, &str),
    mut alter: impl FnMut(&R, bool) -> Result<(), Refusal>,
) -> Vec<Result<(), Refusal>> {
    let keys: Vec<(i8, &str)> = resources.iter().map(key).collect();
    resources
        .iter()
        .zip(repeated_resources(&keys))
        .map(|(resource, repeated)| alter(resource, repeated))
        .collect()
}

/// Kafka's checks of one resource of an alter request before anything
/// else (`ConfigAdminManager.preprocess`, for every resource type): it
/// must appear once in the request (`repeated`), name each config once,
/// and give every config in `nulls` a value (a null is not the empty
/// value).
pub(crate) fn preprocess(repeated: bool, names: &[&str], nulls: &[&str]) -> Result<(), Refusal> {
    if repeated {
        return Err(invalid_request("Each resource must appear at most once.".into()));
    }
    if names.iter().enumerate().any(|(i, n)| names[..i].contains(n)) {
        return Err(invalid_request("Error due to duplicate config keys".into()));
    }
    if nulls.is_empty() {
        return Ok(());
    }
    Err(invalid_request(format!(
        "Null value not supported for : {}",
        nulls.join(", ")
    )))
}

/// Whether each resource of a request, named by (type, name), appears
/// more than once in it.
fn repeated_resources(resources: &[(i8, &str)]) -> Vec<bool> {
    resources
        .iter()
        .map(|r| resources.iter().filter(|o| *o == r).count() > 1)
        .collect()
}

/// INVALID_REQUEST with `message`.
pub(crate) fn invalid_request(message: String) -> Refusal {
    (ResponseError::InvalidRequest, Some(message))
}
