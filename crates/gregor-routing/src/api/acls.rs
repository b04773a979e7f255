//! CreateAcls, DescribeAcls and DeleteAcls, as Kafka 3.9's `AclApis`:
//! with no authorizer configured each answers SECURITY_DISABLED; creating
//! and deleting need Alter on the cluster, describing needs Describe
//! (CLUSTER_AUTHORIZATION_FAILED otherwise). A binding Kafka would refuse
//! (the cluster named other than `kafka-cluster`, an empty name, a `/` in
//! it, an unknown or ANY element) gets INVALID_REQUEST; the others are
//! created. Deleting reports, per filter, every binding it removed.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_acls_response::AclCreationResult;
use kafka_protocol::messages::delete_acls_response::{DeleteAclsFilterResult, DeleteAclsMatchingAcl};
use kafka_protocol::messages::describe_acls_response::{AclDescription, DescribeAclsResource};
use kafka_protocol::messages::{
    CreateAclsRequest, CreateAclsResponse, DeleteAclsRequest, DeleteAclsResponse, DescribeAclsRequest,
    DescribeAclsResponse,
};
use kafka_protocol::protocol::StrBytes;

use super::str_bytes;
use crate::authorize::Access;
use gregor_auth::acl::{
    AccessControlEntry, AccessControlEntryFilter, AclBinding, AclBindingFilter, AclError, AclOperation,
    AclPermissionType, PatternType, ResourcePattern, ResourcePatternFilter, ResourceType,
};
use gregor_broker::Broker;

const DISABLED: &str = "No Authorizer is configured.";
const NOT_AUTHORIZED: &str = "Request is not authorized.";

/// Why the whole request is refused, if it is: no authorizer, or the
/// principal may not do `operation` on the cluster.
fn refusal(broker: &Broker, access: &Access, operation: AclOperation) -> Option<(i16, &'static str)> {
    if !broker.authorizer().is_enabled() {
        Some((ResponseError::SecurityDisabled.code(), DISABLED))
    } else if !access.cluster(operation) {
        Some((ResponseError::ClusterAuthorizationFailed.code(), NOT_AUTHORIZED))
    } else {
        None
    }
}

/// Answers a CreateAcls request.
pub fn create(broker: &Broker, access: &Access, request: CreateAclsRequest) -> CreateAclsResponse {
    let mut response = CreateAclsResponse::default();
    if let Some((code, message)) = refusal(broker, access, AclOperation::Alter) {
        response.results = request.creations.iter().map(|_| failed(code, message)).collect();
        return response;
    }
    let mut slots = Vec::with_capacity(request.creations.len());
    let mut valid = Vec::new();
    for creation in &request.creations {
        let pattern =
            ResourceType::from_code(creation.resource_type).zip(PatternType::from_code(creation.resource_pattern_type));
        let entry = entry(
            &creation.principal,
            &creation.host,
            creation.operation,
            creation.permission_type,
        );
        match (pattern, entry) {
            (Some((resource_type, pattern_type)), Ok(entry)) => {
                slots.push(Ok(valid.len()));
                valid.push(AclBinding {
                    pattern: ResourcePattern {
                        resource_type,
                        name: creation.resource_name.to_string(),
                        pattern_type,
                    },
                    entry,
                });
            }
            (None, _) => slots.push(Err("ACL binding contains unknown elements".to_string())),
            (_, Err(message)) => slots.push(Err(message)),
        }
    }
    let created = broker.authorizer().create_acls(valid);
    response.results = slots
        .into_iter()
        .map(|slot| match slot {
            Ok(i) => match &created[i] {
                Ok(()) => AclCreationResult::default(),
                Err(e) => acl_error(e),
            },
            Err(message) => failed(ResponseError::InvalidRequest.code(), &message),
        })
        .collect();
    response
}

/// Answers a DescribeAcls request.
pub fn describe(broker: &Broker, access: &Access, request: DescribeAclsRequest) -> DescribeAclsResponse {
    let mut response = DescribeAclsResponse::default();
    if let Some((code, message)) = refusal(broker, access, AclOperation::Describe) {
        response.error_code = code;
        response.error_message = Some(str_bytes(message));
        return response;
    }
    let filter = filter(
        request.resource_type_filter,
        request.resource_name_filter.as_ref(),
        request.pattern_type_filter,
        request.principal_filter.as_ref(),
        request.host_filter.as_ref(),
        request.operation,
        request.permission_type,
    );
    let filter = match filter {
        Ok(filter) => filter,
        Err(message) => {
            response.error_code = ResponseError::InvalidRequest.code();
            response.error_message = Some(str_bytes(&message));
            return response;
        }
    };
    let mut resources: Vec<DescribeAclsResource> = Vec::new();
    for binding in broker.authorizer().acls(&filter) {
        let p = &binding.pattern;
        let same = |r: &DescribeAclsResource| {
            r.resource_type == p.resource_type.code()
                && r.pattern_type == p.pattern_type.code()
                && *r.resource_name == *p.name
        };
        let index = match resources.iter().position(same) {
            Some(i) => i,
            None => {
                let mut resource = DescribeAclsResource::default();
                resource.resource_type = p.resource_type.code();
                resource.resource_name = str_bytes(&p.name);
                resource.pattern_type = p.pattern_type.code();
                resources.push(resource);
                resources.len() - 1
            }
        };
        let e = &binding.entry;
        let mut acl = AclDescription::default();
        acl.principal = str_bytes(&e.principal.to_string());
        acl.host = str_bytes(&e.host);
        acl.operation = e.operation.code();
        acl.permission_type = e.permission.code();
        resources[index].acls.push(acl);
    }
    response.resources = resources;
    response
}

/// Answers a DeleteAcls request.
pub fn delete(broker: &Broker, access: &Access, request: DeleteAclsRequest) -> DeleteAclsResponse {
    let mut response = DeleteAclsResponse::default();
    let failed_filter = |code: i16, message: &str| {
        let mut result = DeleteAclsFilterResult::default();
        result.error_code = code;
        result.error_message = Some(str_bytes(message));
        result
    };
    if let Some((code, message)) = refusal(broker, access, AclOperation::Alter) {
        response.filter_results = request.filters.iter().map(|_| failed_filter(code, message)).collect();
        return response;
    }
    let parsed: Vec<Result<AclBindingFilter, String>> = request
        .filters
        .iter()
        .map(|f| {
            filter(
                f.resource_type_filter,
                f.resource_name_filter.as_ref(),
                f.pattern_type_filter,
                f.principal_filter.as_ref(),
                f.host_filter.as_ref(),
                f.operation,
                f.permission_type,
            )
        })
        .collect();
    let valid: Vec<AclBindingFilter> = parsed.iter().filter_map(|f| f.as_ref().ok().cloned()).collect();
    let mut deleted = broker.authorizer().delete_acls(&valid).into_iter();
    response.filter_results = parsed
        .into_iter()
        .map(|f| match f {
            Err(message) => failed_filter(ResponseError::InvalidRequest.code(), &message),
            Ok(_) => match deleted.next() {
                Some(Ok(bindings)) => {
                    let mut result = DeleteAclsFilterResult::default();
                    result.matching_acls = bindings.iter().map(matching_acl).collect();
                    result
                }
                Some(Err(e)) => {
                    let code = acl_error(&e).error_code;
                    failed_filter(code, &e.to_string())
                }
                None => failed_filter(ResponseError::UnknownServerError.code(), "no result"),
            },
        })
        .collect();
    response
}

fn matching_acl(binding: &AclBinding) -> DeleteAclsMatchingAcl {
    let mut acl = DeleteAclsMatchingAcl::default();
    acl.resource_type = binding.pattern.resource_type.code();
    acl.resource_name = str_bytes(&binding.pattern.name);
    acl.pattern_type = binding.pattern.pattern_type.code();
    acl.principal = str_bytes(&binding.entry.principal.to_string());
    acl.host = str_bytes(&binding.entry.host);
    acl.operation = binding.entry.operation.code();
    acl.permission_type = binding.entry.permission.code();
    acl
}

fn failed(code: i16, message: &str) -> AclCreationResult {
    let mut result = AclCreationResult::default();
    result.error_code = code;
    result.error_message = Some(str_bytes(message));
    result
}

fn acl_error(error: &AclError) -> AclCreationResult {
    match error {
        AclError::Invalid(m) => failed(ResponseError::InvalidRequest.code(), m),
        AclError::Store(m) => failed(ResponseError::UnknownServerError.code(), m),
    }
}

fn entry(principal: &StrBytes, host: &StrBytes, operation: i8, permission: i8) -> Result<AccessControlEntry, String> {
    let principal = principal.parse().map_err(|e| format!("{e}"))?;
    match (
        AclOperation::from_code(operation),
        AclPermissionType::from_code(permission),
    ) {
        (Some(operation), Some(permission)) => Ok(AccessControlEntry {
            principal,
            host: host.to_string(),
            operation,
            permission,
        }),
        _ => Err("ACL binding contains unknown elements".to_string()),
    }
}

#[allow(clippy::too_many_arguments)]
fn filter(
    resource_type: i8,
    name: Option<&StrBytes>,
    pattern_type: i8,
    principal: Option<&StrBytes>,
    host: Option<&StrBytes>,
    operation: i8,
    permission: i8,
) -> Result<AclBindingFilter, String> {
    let unknown = || "Filters contain UNKNOWN elements".to_string();
    Ok(AclBindingFilter {
        pattern: ResourcePatternFilter {
            resource_type: ResourceType::from_code(resource_type).ok_or_else(unknown)?,
            name: name.map(|n| n.to_string()),
            pattern_type: PatternType::from_code(pattern_type).ok_or_else(unknown)?,
        },
        entry: AccessControlEntryFilter {
            principal: principal.map(|p| p.to_string()),
            host: host.map(|h| h.to_string()),
            operation: AclOperation::from_code(operation).ok_or_else(unknown)?,
            permission: AclPermissionType::from_code(permission).ok_or_else(unknown)?,
        },
    })
}
