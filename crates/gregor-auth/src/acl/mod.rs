//! Kafka's ACLs: the model ([`types`]), the decisions ([`Authorizer`]) and
//! the stored forms ([`json`]).

mod authorizer;
pub mod json;
#[cfg(test)]
mod tests;
pub mod types;

pub use authorizer::{AclError, AclSet, AclStore, Authorizer, AuthorizerConfig, ACL_AUTHORIZER, STANDARD_AUTHORIZER};
pub use types::{
    operations_bit_set, AccessControlEntry, AccessControlEntryFilter, AclBinding, AclBindingFilter, AclOperation,
    AclPermissionType, PatternType, ResourcePattern, ResourcePatternFilter, ResourceType, CLUSTER_NAME, WILDCARD_HOST,
    WILDCARD_RESOURCE,
};
