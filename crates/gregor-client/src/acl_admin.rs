//! ACLs through the admin client: CreateAcls, DescribeAcls, DeleteAcls
//! (what `kafka-acls --bootstrap-server` uses).

use gregor_auth::acl::{
    AccessControlEntry, AclBinding, AclBindingFilter, AclOperation, AclPermissionType, PatternType, ResourcePattern,
    ResourceType,
};
use kafka_protocol::messages::{
    create_acls_request, delete_acls_request, CreateAclsRequest, DeleteAclsRequest, DescribeAclsRequest,
};
use kafka_protocol::protocol::StrBytes;

use crate::admin::{check, Admin};
use crate::ClientError;

fn text(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

fn binding_of(
    resource: (i8, &str, i8),
    principal: &str,
    host: &str,
    operation: i8,
    permission: i8,
) -> Result<AclBinding, ClientError> {
    let unknown = || ClientError::Protocol(format!("an ACL with unknown codes for {}", resource.1));
    Ok(AclBinding {
        pattern: ResourcePattern {
            resource_type: ResourceType::from_code(resource.0).ok_or_else(unknown)?,
            name: resource.1.to_string(),
            pattern_type: PatternType::from_code(resource.2).ok_or_else(unknown)?,
        },
        entry: AccessControlEntry {
            principal: principal.parse().map_err(|e| ClientError::Protocol(format!("{e}")))?,
            host: host.to_string(),
            operation: AclOperation::from_code(operation).ok_or_else(unknown)?,
            permission: AclPermissionType::from_code(permission).ok_or_else(unknown)?,
        },
    })
}

impl Admin {
    /// Creates the bindings; the first refusal is the error.
    pub async fn create_acls(&mut self, bindings: &[AclBinding]) -> Result<(), ClientError> {
        let mut request = CreateAclsRequest::default();
        request.creations = bindings
            .iter()
            .map(|b| {
                let mut c = create_acls_request::AclCreation::default();
                c.resource_type = b.pattern.resource_type.code();
                c.resource_name = text(&b.pattern.name);
                c.resource_pattern_type = b.pattern.pattern_type.code();
                c.principal = text(&b.entry.principal.to_string());
                c.host = text(&b.entry.host);
                c.operation = b.entry.operation.code();
                c.permission_type = b.entry.permission.code();
                c
            })
            .collect();
        let response = self.connection.send(request, 2).await?;
        for result in &response.results {
            check(result.error_code, result.error_message.as_ref())?;
        }
        Ok(())
    }

    /// The bindings a filter matches.
    pub async fn describe_acls(&mut self, filter: &AclBindingFilter) -> Result<Vec<AclBinding>, ClientError> {
        let mut request = DescribeAclsRequest::default();
        request.resource_type_filter = filter.pattern.resource_type.code();
        request.resource_name_filter = filter.pattern.name.as_deref().map(text);
        request.pattern_type_filter = filter.pattern.pattern_type.code();
        request.principal_filter = filter.entry.principal.as_deref().map(text);
        request.host_filter = filter.entry.host.as_deref().map(text);
        request.operation = filter.entry.operation.code();
        request.permission_type = filter.entry.permission.code();
        let response = self.connection.send(request, 2).await?;
        check(response.error_code, response.error_message.as_ref())?;
        let mut out = Vec::new();
        for resource in &response.resources {
            for acl in &resource.acls {
                out.push(binding_of(
                    (resource.resource_type, &resource.resource_name, resource.pattern_type),
                    &acl.principal,
                    &acl.host,
                    acl.operation,
                    acl.permission_type,
                )?);
            }
        }
        Ok(out)
    }

    /// Deletes what the filter matches; returns the deleted bindings.
    pub async fn delete_acls(&mut self, filter: &AclBindingFilter) -> Result<Vec<AclBinding>, ClientError> {
        let mut f = delete_acls_request::DeleteAclsFilter::default();
        f.resource_type_filter = filter.pattern.resource_type.code();
        f.resource_name_filter = filter.pattern.name.as_deref().map(text);
        f.pattern_type_filter = filter.pattern.pattern_type.code();
        f.principal_filter = filter.entry.principal.as_deref().map(text);
        f.host_filter = filter.entry.host.as_deref().map(text);
        f.operation = filter.entry.operation.code();
        f.permission_type = filter.entry.permission.code();
        let mut request = DeleteAclsRequest::default();
        request.filters = vec![f];
        let response = self.connection.send(request, 2).await?;
        let mut out = Vec::new();
        for result in &response.filter_results {
            check(result.error_code, result.error_message.as_ref())?;
            for acl in &result.matching_acls {
                out.push(binding_of(
                    (acl.resource_type, &acl.resource_name, acl.pattern_type),
                    &acl.principal,
                    &acl.host,
                    acl.operation,
                    acl.permission_type,
                )?);
            }
        }
        Ok(out)
    }
}
