//! Per-resource checks of the config APIs: DescribeConfigs and
//! AlterConfigs/IncrementalAlterConfigs on each topic, on the cluster for
//! brokers and broker loggers (TOPIC_ or CLUSTER_AUTHORIZATION_FAILED).

use kafka_protocol::messages::*;

use super::topics::Merge;
use super::{take_refused, Access};
use gregor_auth::acl::AclOperation as Op;

const TOPIC: i16 = 29; // TOPIC_AUTHORIZATION_FAILED
const CLUSTER: i16 = 31; // CLUSTER_AUTHORIZATION_FAILED

fn nothing<R>() -> Merge<R> {
    Box::new(|_| {})
}

/// The operation on a config resource (topic 2, broker 4, broker logger
/// 8) and the error when it is refused.
fn config_allowed(access: &Access, resource_type: i8, name: &str, operation: Op) -> Result<(), i16> {
    match resource_type {
        2 if !access.topic(operation, name) => Err(TOPIC),
        4 | 8 if !access.cluster(operation) => Err(CLUSTER),
        _ => Ok(()),
    }
}

/// DescribeConfigs: DescribeConfigs on each topic, on the cluster for
/// brokers.
pub fn describe_configs(access: &Access, request: &mut DescribeConfigsRequest) -> Merge<DescribeConfigsResponse> {
    if !access.enabled() {
        return nothing();
    }
    let refused = take_refused(
        &mut request.resources,
        |r| format!("{}\u{0}{}", r.resource_type, r.resource_name),
        |key| {
            let (kind, name) = key.split_once('\u{0}').unwrap_or_default();
            config_allowed(access, kind.parse().unwrap_or(0), name, Op::DescribeConfigs).is_ok()
        },
    );
    let errors: Vec<_> = refused
        .into_iter()
        .map(|r| {
            let mut result = describe_configs_response::DescribeConfigsResult::default();
            result.error_code = if r.resource_type == 2 { TOPIC } else { CLUSTER };
            result.resource_type = r.resource_type;
            result.resource_name = r.resource_name;
            result
        })
        .collect();
    Box::new(move |response| response.results.extend(errors))
}

/// AlterConfigs: AlterConfigs on each topic, on the cluster for brokers.
pub fn alter_configs(access: &Access, request: &mut AlterConfigsRequest) -> Merge<AlterConfigsResponse> {
    if !access.enabled() {
        return nothing();
    }
    let refused = take_refused(
        &mut request.resources,
        |r| format!("{}\u{0}{}", r.resource_type, r.resource_name),
        |key| {
            let (kind, name) = key.split_once('\u{0}').unwrap_or_default();
            config_allowed(access, kind.parse().unwrap_or(0), name, Op::AlterConfigs).is_ok()
        },
    );
    let errors: Vec<_> = refused
        .into_iter()
        .map(|r| {
            let mut result = alter_configs_response::AlterConfigsResourceResponse::default();
            result.error_code = if r.resource_type == 2 { TOPIC } else { CLUSTER };
            result.resource_type = r.resource_type;
            result.resource_name = r.resource_name;
            result
        })
        .collect();
    Box::new(move |response| response.responses.extend(errors))
}

/// IncrementalAlterConfigs: as AlterConfigs.
pub fn incremental_alter_configs(
    access: &Access,
    request: &mut IncrementalAlterConfigsRequest,
) -> Merge<IncrementalAlterConfigsResponse> {
    if !access.enabled() {
        return nothing();
    }
    let refused = take_refused(
        &mut request.resources,
        |r| format!("{}\u{0}{}", r.resource_type, r.resource_name),
        |key| {
            let (kind, name) = key.split_once('\u{0}').unwrap_or_default();
            config_allowed(access, kind.parse().unwrap_or(0), name, Op::AlterConfigs).is_ok()
        },
    );
    let errors: Vec<_> = refused
        .into_iter()
        .map(|r| {
            let mut result = incremental_alter_configs_response::AlterConfigsResourceResponse::default();
            result.error_code = if r.resource_type == 2 { TOPIC } else { CLUSTER };
            result.resource_type = r.resource_type;
            result.resource_name = r.resource_name;
            result
        })
        .collect();
    Box::new(move |response| response.responses.extend(errors))
}
