//! The authorizer: Kafka's `AclAuthorizer` decisions over a cache of every
//! ACL, kept current from an [`AclStore`] (coordination).
//!
//! The rules, as Kafka 3.9's: a super user may do anything; otherwise the
//! ACLs that apply to a resource are those on its literal name, on the
//! literal `*` of its type and on every PREFIXED pattern its name starts
//! with. With none of them, `allow.everyone.if.no.acl.found` decides.
//! Otherwise a Deny entry for the principal (or `User:*`), the client's
//! host (or `*`) and the operation (or All) refuses, whatever allows; and
//! without one, an Allow entry is needed — for the operation, All, or an
//! operation that implies it (Read, Write, Delete and Alter imply
//! Describe; AlterConfigs implies DescribeConfigs). Implied operations
//! only ever allow: a Deny of Read does not deny Describe.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, OnceLock};

use parking_lot::RwLock;

use super::types::{
    AccessControlEntry, AclBinding, AclBindingFilter, AclOperation, AclPermissionType, PatternType, ResourcePattern,
    ResourceType, WILDCARD_HOST, WILDCARD_RESOURCE,
};
use crate::{KafkaPrincipal, Session};

/// Kafka's ZooKeeper-mode authorizer class name.
pub const ACL_AUTHORIZER: &str = "kafka.security.authorizer.AclAuthorizer";
/// Kafka's KRaft authorizer class name (accepted as the same authorizer).
pub const STANDARD_AUTHORIZER: &str = "org.apache.kafka.metadata.authorizer.StandardAuthorizer";

/// The authorizer's settings (Kafka's names).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthorizerConfig {
    /// `authorizer.class.name` set to Kafka's authorizer: ACLs are checked.
    /// Off (the default), every request is allowed and the ACL APIs answer
    /// SECURITY_DISABLED.
    pub enabled: bool,
    /// `super.users`: principals allowed everything.
    pub super_users: Vec<KafkaPrincipal>,
    /// `allow.everyone.if.no.acl.found`.
    pub allow_everyone_if_no_acl_found: bool,
}

impl AuthorizerConfig {
    /// The settings from Kafka's properties: `authorizer.class.name`
    /// (empty: off; Kafka's AclAuthorizer, StandardAuthorizer or `acl`:
    /// on), `super.users` (`User:a;User:b`) and
    /// `allow.everyone.if.no.acl.found`.
    pub fn from_properties(class_name: &str, super_users: &str, allow_everyone: bool) -> Result<Self, String> {
        let enabled = match class_name.trim() {
            "" => false,
            ACL_AUTHORIZER | STANDARD_AUTHORIZER | "acl" => true,
            other => {
                return Err(format!(
                    "authorizer.class.name {other:?} is not supported: use {ACL_AUTHORIZER} or {STANDARD_AUTHORIZER}"
                ))
            }
        };
        let super_users = super_users
            .split(';')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| s.parse::<KafkaPrincipal>().map_err(|e| format!("super.users: {e}")))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            enabled,
            super_users,
            allow_everyone_if_no_acl_found: allow_everyone,
        })
    }
}

/// Why an ACL could not be created or deleted (each maps to a Kafka error).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AclError {
    /// INVALID_REQUEST: the binding or filter is not valid.
    #[error("{0}")]
    Invalid(String),
    /// UNKNOWN_SERVER_ERROR: the store failed.
    #[error("{0}")]
    Store(String),
}

/// The ACLs of one pattern, changed as a whole.
pub type AclSet = BTreeSet<AccessControlEntry>;

/// Where ACLs are kept (Kafka's `/kafka-acl` paths in coordination).
/// Called from handler threads, so an implementation may block.
pub trait AclStore: Send + Sync {
    /// Every pattern with its ACLs.
    fn all(&self) -> Result<Vec<(ResourcePattern, AclSet)>, String>;
    /// One pattern's ACLs (empty when it has none).
    fn acls(&self, pattern: &ResourcePattern) -> Result<AclSet, String>;
    /// Replaces one pattern's ACLs with `change(current)`, atomically
    /// against other writers, and tells every broker; returns the new set.
    fn update(&self, pattern: &ResourcePattern, change: &dyn Fn(&AclSet) -> AclSet) -> Result<AclSet, String>;
}

/// Kafka's ACL authorizer.
pub struct Authorizer {
    config: AuthorizerConfig,
    cache: RwLock<BTreeMap<ResourcePattern, AclSet>>,
    store: OnceLock<Arc<dyn AclStore>>,
}

impl Authorizer {
    /// An authorizer with no ACLs yet.
    pub fn new(config: AuthorizerConfig) -> Self {
        Self {
            config,
            cache: RwLock::default(),
            store: OnceLock::new(),
        }
    }

    /// Whether ACLs are checked (`authorizer.class.name` is set).
    pub fn is_enabled(&self) -> bool {
        self.config.enabled
    }

    /// The settings.
    pub fn config(&self) -> &AuthorizerConfig {
        &self.config
    }

    /// Where ACLs are kept; loads every ACL recorded there. Blocks.
    pub fn attach_store(&self, store: Arc<dyn AclStore>) -> Result<(), String> {
        let all = store.all()?;
        let _ = self.store.set(store);
        let mut cache = self.cache.write();
        cache.clear();
        cache.extend(all.into_iter().filter(|(_, acls)| !acls.is_empty()));
        Ok(())
    }

    /// Re-reads one pattern's ACLs (a change notification named it).
    pub fn reload(&self, pattern: &ResourcePattern) -> Result<(), String> {
        let Some(store) = self.store.get() else { return Ok(()) };
        let acls = store.acls(pattern)?;
        self.set_cached(pattern, acls);
        Ok(())
    }

    fn set_cached(&self, pattern: &ResourcePattern, acls: AclSet) {
        let mut cache = self.cache.write();
        if acls.is_empty() {
            cache.remove(pattern);
        } else {
            cache.insert(pattern.clone(), acls);
        }
    }

    /// Whether `session` may do `operation` on the resource `name` of
    /// `resource_type`. Always true when the authorizer is off.
    pub fn authorize(
        &self,
        session: &Session,
        operation: AclOperation,
        resource_type: ResourceType,
        name: &str,
    ) -> bool {
        if !self.config.enabled || self.is_super_user(&session.principal) {
            return true;
        }
        let host = host_of(session);
        let cache = self.cache.read();
        // Kafka's `matchingAcls`: the literal name, the type's `*`, and
        // every prefix of the name as a PREFIXED pattern — each a lookup.
        let mut patterns = vec![ResourcePattern::literal(resource_type, name)];
        if name != WILDCARD_RESOURCE {
            patterns.push(ResourcePattern::literal(resource_type, WILDCARD_RESOURCE));
        }
        patterns.extend(
            name.char_indices()
                .map(|(i, c)| ResourcePattern::prefixed(resource_type, &name[..i + c.len_utf8()])),
        );
        let acls: Vec<&AccessControlEntry> = patterns
            .iter()
            .filter_map(|p| cache.get(p))
            .flat_map(|acls| acls.iter())
            .collect();
        if acls.is_empty() {
            return self.config.allow_everyone_if_no_acl_found;
        }
        let principal = &session.principal;
        let denied = acls
            .iter()
            .any(|acl| acl.applies(principal, &host, operation, AclPermissionType::Deny));
        !denied
            && operation.allowed_by().iter().any(|allowing| {
                acls.iter()
                    .any(|acl| acl.applies(principal, &host, *allowing, AclPermissionType::Allow))
            })
    }

    /// Whether `session` may do `operation` on at least one resource of
    /// `resource_type` (Kafka's `authorizeByResourceType`: an Allow on some
    /// literal or prefix that no Deny dominates; no implied operations).
    pub fn authorize_by_resource_type(
        &self,
        session: &Session,
        operation: AclOperation,
        resource_type: ResourceType,
    ) -> bool {
        if !self.config.enabled || self.is_super_user(&session.principal) {
            return true;
        }
        let host = host_of(session);
        let cache = self.cache.read();
        let names = |permission: AclPermissionType, pattern_type: PatternType| -> BTreeSet<&str> {
            cache
                .iter()
                .filter(|(p, acls)| {
                    p.resource_type == resource_type
                        && p.pattern_type == pattern_type
                        && acls
                            .iter()
                            .any(|acl| acl.applies(&session.principal, &host, operation, permission))
                })
                .map(|(p, _)| p.name.as_str())
                .collect()
        };
        let deny_literals = names(AclPermissionType::Deny, PatternType::Literal);
        if deny_literals.contains(WILDCARD_RESOURCE) {
            return false;
        }
        if self.config.allow_everyone_if_no_acl_found {
            return true;
        }
        let deny_prefixes = names(AclPermissionType::Deny, PatternType::Prefixed);
        let allow_literals = names(AclPermissionType::Allow, PatternType::Literal);
        let allow_prefixes = names(AclPermissionType::Allow, PatternType::Prefixed);
        let dominated = |name: &str| {
            name.char_indices()
                .map(|(i, c)| &name[..i + c.len_utf8()])
                .any(|prefix| deny_prefixes.contains(prefix))
        };
        allow_prefixes.iter().any(|p| !dominated(p))
            || allow_literals
                .iter()
                .any(|l| *l == WILDCARD_RESOURCE || (!deny_literals.contains(l) && !dominated(l)))
    }

    fn is_super_user(&self, principal: &KafkaPrincipal) -> bool {
        self.config.super_users.contains(principal)
    }

    /// Adds bindings (CreateAcls): each result in the order given.
    pub fn create_acls(&self, bindings: Vec<AclBinding>) -> Vec<Result<(), AclError>> {
        let mut results: Vec<Result<(), AclError>> = vec![Ok(()); bindings.len()];
        let mut by_pattern: BTreeMap<ResourcePattern, Vec<(usize, AccessControlEntry)>> = BTreeMap::new();
        for (i, binding) in bindings.into_iter().enumerate() {
            match validate(&binding) {
                Ok(()) => by_pattern.entry(binding.pattern).or_default().push((i, binding.entry)),
                Err(e) => results[i] = Err(e),
            }
        }
        for (pattern, entries) in by_pattern {
            let added: AclSet = entries.iter().map(|(_, e)| e.clone()).collect();
            let outcome = self.update(&pattern, &|current| current.union(&added).cloned().collect());
            if let Err(e) = outcome {
                for (i, _) in &entries {
                    results[*i] = Err(e.clone());
                }
            }
        }
        results
    }

    /// Removes the bindings each filter matches (DeleteAcls): per filter,
    /// the bindings it removed, or the error.
    pub fn delete_acls(&self, filters: &[AclBindingFilter]) -> Vec<Result<Vec<AclBinding>, AclError>> {
        let mut patterns: BTreeSet<ResourcePattern> = self.cache.read().keys().cloned().collect();
        // A filter naming one pattern exactly reaches it even if this
        // broker has not heard of its ACLs yet, as Kafka's.
        patterns.extend(filters.iter().filter_map(|f| f.pattern.exact_pattern()));
        let mut results: Vec<Result<Vec<AclBinding>, AclError>> = vec![Ok(Vec::new()); filters.len()];
        for pattern in patterns {
            let matching: Vec<usize> = (0..filters.len())
                .filter(|i| filters[*i].pattern.matches(&pattern))
                .collect();
            if matching.is_empty() {
                continue;
            }
            let removed = RwLock::new(Vec::<(usize, AclBinding)>::new());
            let outcome = self.update(&pattern, &|current| {
                let mut removed = removed.write();
                removed.clear();
                current
                    .iter()
                    .filter(|entry| {
                        let binding = AclBinding {
                            pattern: pattern.clone(),
                            entry: (*entry).clone(),
                        };
                        match matching.iter().find(|i| filters[**i].matches(&binding)) {
                            Some(i) => {
                                removed.push((*i, binding));
                                false
                            }
                            None => true,
                        }
                    })
                    .cloned()
                    .collect()
            });
            for (i, binding) in removed.into_inner() {
                match (&outcome, &mut results[i]) {
                    (Ok(_), Ok(list)) => list.push(binding),
                    (Err(e), slot) => *slot = Err(e.clone()),
                    _ => {}
                }
            }
        }
        results
    }

    /// The bindings a filter matches (DescribeAcls).
    pub fn acls(&self, filter: &AclBindingFilter) -> Vec<AclBinding> {
        self.cache
            .read()
            .iter()
            .flat_map(|(pattern, acls)| {
                acls.iter().map(|entry| AclBinding {
                    pattern: pattern.clone(),
                    entry: entry.clone(),
                })
            })
            .filter(|binding| filter.matches(binding))
            .collect()
    }

    fn update(&self, pattern: &ResourcePattern, change: &dyn Fn(&AclSet) -> AclSet) -> Result<(), AclError> {
        let acls = match self.store.get() {
            Some(store) => store.update(pattern, change).map_err(AclError::Store)?,
            None => change(self.cache.read().get(pattern).unwrap_or(&AclSet::new())),
        };
        self.set_cached(pattern, acls);
        Ok(())
    }
}

/// The client's address as an ACL host (`*` matches any).
fn host_of(session: &Session) -> String {
    session
        .client_address
        .map(|ip| ip.to_string())
        .unwrap_or_else(|| WILDCARD_HOST.to_string())
}

/// Kafka's checks of a binding to create: a specific pattern and entry,
/// a non-empty name, `kafka-cluster` for the cluster, no `/` in the name.
fn validate(binding: &AclBinding) -> Result<(), AclError> {
    let (pattern, entry) = (&binding.pattern, &binding.entry);
    if !pattern.is_specific() || entry.operation == AclOperation::Any || entry.permission == AclPermissionType::Any {
        return Err(AclError::Invalid("ACL binding contains unknown elements".into()));
    }
    if pattern.resource_type == ResourceType::Cluster && pattern.name != super::types::CLUSTER_NAME {
        return Err(AclError::Invalid(format!(
            "The only valid name for the CLUSTER resource is {}",
            super::types::CLUSTER_NAME
        )));
    }
    if pattern.name.is_empty() {
        return Err(AclError::Invalid("Invalid empty resource name".into()));
    }
    if pattern.name.contains('/') {
        return Err(AclError::Invalid(format!(
            "ACL binding contains invalid resource name: {}",
            pattern.name
        )));
    }
    Ok(())
}
