//! Per-resource checks of the config APIs: DescribeConfigs and
//! AlterConfigs/IncrementalAlterConfigs on each topic, on the cluster for
//! brokers and broker loggers (TOPIC_ or CLUSTER_AUTHORIZATION_FAILED).

use kafka_protocol::messages::*;

use super::{nothing, take_refused, Access, Merge};
use gregor_auth::acl::AclOperation as Op;

const TOPIC: i16 = 29; // TOPIC_AUTHORIZATION_FAILED
const CLUSTER: i16 = 31; // CLUSTER_AUTHORIZATION_FAILED

/// Whether `operation` is allowed on a config resource (topic 2, broker
/// 4, broker logger 8).
fn allowed(access: &Access, resource_type: i8, name: &str, operation: Op) -> bool {
    match resource_type {
        2 => access.topic(operation, name),
        4 | 8 => access.cluster(operation),
        _ => true,
    }
}

/// The error of a refused config resource.
fn refusal(resource_type: i8) -> i16 {
    if resource_type == 2 {
        TOPIC
    } else {
        CLUSTER
    }
}

/// DescribeConfigs: DescribeConfigs on each topic, on the cluster for
/// brokers.
pub fn describe_configs(access: &Access, request: &mut DescribeConfigsRequest) -> Merge<DescribeConfigsResponse> {
    if !access.enabled() {
        return nothing();
    }
    let refused = take_refused(&mut request.resources, |r| {
        allowed(access, r.resource_type, &r.resource_name, Op::DescribeConfigs)
    });
    Box::new(move |response| {
        response.results.extend(refused.into_iter().map(|r| {
            describe_configs_response::DescribeConfigsResult::default()
                .with_error_code(refusal(r.resource_type))
                .with_resource_type(r.resource_type)
                .with_resource_name(r.resource_name)
        }))
    })
}

/// AlterConfigs: AlterConfigs on each topic, on the cluster for brokers.
pub fn alter_configs(access: &Access, request: &mut AlterConfigsRequest) -> Merge<AlterConfigsResponse> {
    if !access.enabled() {
        return nothing();
    }
    let refused = take_refused(&mut request.resources, |r| {
        allowed(access, r.resource_type, &r.resource_name, Op::AlterConfigs)
    });
    Box::new(move |response| {
        response.responses.extend(refused.into_iter().map(|r| {
            alter_configs_response::AlterConfigsResourceResponse::default()
                .with_error_code(refusal(r.resource_type))
                .with_resource_type(r.resource_type)
                .with_resource_name(r.resource_name)
        }))
    })
}

/// IncrementalAlterConfigs: as AlterConfigs.
pub fn incremental_alter_configs(
    access: &Access,
    request: &mut IncrementalAlterConfigsRequest,
) -> Merge<IncrementalAlterConfigsResponse> {
    if !access.enabled() {
        return nothing();
    }
    let refused = take_refused(&mut request.resources, |r| {
        allowed(access, r.resource_type, &r.resource_name, Op::AlterConfigs)
    });
    Box::new(move |response| {
        response.responses.extend(refused.into_iter().map(|r| {
            incremental_alter_configs_response::AlterConfigsResourceResponse::default()
                .with_error_code(refusal(r.resource_type))
                .with_resource_type(r.resource_type)
                .with_resource_name(r.resource_name)
        }))
    })
}
