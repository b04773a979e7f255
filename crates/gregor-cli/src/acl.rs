//! `gregor acl add|list|remove`: ACLs through the admin client
//! (CreateAcls, DescribeAcls, DeleteAcls), as text like `kafka-acls`'s or
//! `--json`.

use anyhow::{bail, Context};
use gregor_auth::acl::{
    AccessControlEntry, AccessControlEntryFilter, AclBinding, AclBindingFilter, AclOperation, AclPermissionType,
    PatternType, ResourcePattern, ResourcePatternFilter, ResourceType, CLUSTER_NAME,
};
use gregor_client::Admin;
use serde_json::json;

use crate::output::report;

/// Flags of `gregor acl`.
#[derive(Debug, clap::Args)]
pub struct AclArgs {
    /// Brokers to reach the cluster through.
    #[arg(long, global = true, default_value = "127.0.0.1:9092")]
    pub bootstrap_server: String,
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub action: AclAction,
}

/// Which ACLs (for `list` and `remove` every flag left out matches any).
#[derive(Debug, Clone, clap::Args)]
pub struct AclSpec {
    /// The principal, `User:alice` (`User:*`: every principal).
    #[arg(long)]
    pub principal: Option<String>,
    /// The client host, an IP address or `*`.
    #[arg(long)]
    pub host: Option<String>,
    /// The operation: Read, Write, Create, Delete, Alter, Describe,
    /// ClusterAction, DescribeConfigs, AlterConfigs, IdempotentWrite, All.
    #[arg(long)]
    pub operation: Option<String>,
    /// The resource type: topic, group, cluster, transactional-id,
    /// delegation-token, user.
    #[arg(long = "resource-type")]
    pub resource_type: Option<String>,
    /// The resource name (`*`: every name; the cluster's is implied).
    #[arg(long = "resource-name")]
    pub resource_name: Option<String>,
    /// literal or prefixed (list/remove: also any, match).
    #[arg(long = "pattern-type")]
    pub pattern_type: Option<String>,
    /// Deny instead of allow.
    #[arg(long)]
    pub deny: bool,
}

/// What to do with ACLs.
#[derive(Debug, clap::Subcommand)]
pub enum AclAction {
    /// Add an ACL (allow unless --deny; host `*` and pattern literal unless given).
    Add(AclSpec),
    /// List the ACLs matching.
    List(AclSpec),
    /// Remove the ACLs matching.
    Remove(AclSpec),
}

fn parsed<T>(what: &str, value: &str, parse: fn(&str) -> Option<T>) -> anyhow::Result<T> {
    parse(value).with_context(|| format!("unknown {what} {value:?}"))
}

fn binding(spec: &AclSpec) -> anyhow::Result<AclBinding> {
    let (Some(principal), Some(operation), Some(resource_type)) =
        (&spec.principal, &spec.operation, &spec.resource_type)
    else {
        bail!("add needs --principal, --operation and --resource-type");
    };
    let resource_type = parsed("resource type", resource_type, ResourceType::parse)?;
    let name = match (&spec.resource_name, resource_type) {
        (Some(name), _) => name.clone(),
        (None, ResourceType::Cluster) => CLUSTER_NAME.to_string(),
        (None, _) => bail!("add needs --resource-name"),
    };
    Ok(AclBinding {
        pattern: ResourcePattern {
            resource_type,
            name,
            pattern_type: parsed(
                "pattern type",
                spec.pattern_type.as_deref().unwrap_or("literal"),
                PatternType::parse,
            )?,
        },
        entry: AccessControlEntry {
            principal: principal.parse().map_err(|e| anyhow::anyhow!("{e}"))?,
            host: spec.host.clone().unwrap_or_else(|| "*".into()),
            operation: parsed("operation", operation, AclOperation::parse)?,
            permission: if spec.deny {
                AclPermissionType::Deny
            } else {
                AclPermissionType::Allow
            },
        },
    })
}

fn filter(spec: &AclSpec) -> anyhow::Result<AclBindingFilter> {
    let resource_type = match &spec.resource_type {
        Some(t) => parsed("resource type", t, ResourceType::parse)?,
        None => ResourceType::Any,
    };
    let name = spec
        .resource_name
        .clone()
        .or_else(|| (resource_type == ResourceType::Cluster).then(|| CLUSTER_NAME.to_string()));
    Ok(AclBindingFilter {
        pattern: ResourcePatternFilter {
            resource_type,
            name,
            pattern_type: parsed(
                "pattern type",
                spec.pattern_type.as_deref().unwrap_or("any"),
                PatternType::parse,
            )?,
        },
        entry: AccessControlEntryFilter {
            principal: spec.principal.clone(),
            host: spec.host.clone(),
            operation: match &spec.operation {
                Some(o) => parsed("operation", o, AclOperation::parse)?,
                None => AclOperation::Any,
            },
            permission: match (&spec.principal, spec.deny) {
                (_, true) => AclPermissionType::Deny,
                _ => AclPermissionType::Any,
            },
        },
    })
}

fn binding_json(b: &AclBinding) -> serde_json::Value {
    json!({
        "resource_type": b.pattern.resource_type.name(),
        "resource_name": b.pattern.name,
        "pattern_type": b.pattern.pattern_type.upper_name(),
        "principal": b.entry.principal.to_string(),
        "host": b.entry.host,
        "operation": b.entry.operation.name(),
        "permission": b.entry.permission.name(),
    })
}

/// Kafka's line: `(principal=User:alice, host=*, operation=READ, permissionType=ALLOW)`
/// under its `ResourcePattern(…)`.
fn binding_text(b: &AclBinding) -> String {
    format!(
        "{}: (principal={}, host={}, operation={}, permissionType={})",
        b.pattern,
        b.entry.principal,
        b.entry.host,
        b.entry.operation.upper_name(),
        b.entry.permission.upper_name()
    )
}

/// Runs the action; the output goes to stdout.
pub async fn run(args: AclArgs) -> anyhow::Result<()> {
    let mut admin = Admin::connect(&args.bootstrap_server)
        .await
        .with_context(|| format!("connecting to {}", args.bootstrap_server))?;
    let (verb, bindings) = match &args.action {
        AclAction::Add(spec) => {
            let b = binding(spec)?;
            admin.create_acls(std::slice::from_ref(&b)).await?;
            ("Added", vec![b])
        }
        AclAction::List(spec) => ("Current", admin.describe_acls(&filter(spec)?).await?),
        AclAction::Remove(spec) => ("Removed", admin.delete_acls(&filter(spec)?).await?),
    };
    let lines: Vec<String> = bindings.iter().map(binding_text).collect();
    report(
        args.json,
        json!(bindings.iter().map(binding_json).collect::<Vec<_>>()),
        &format!("{verb} ACLs:\n{}", lines.join("\n")),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(principal: &str, operation: &str, resource_type: &str, name: Option<&str>) -> AclSpec {
        AclSpec {
            principal: Some(principal.into()),
            host: None,
            operation: Some(operation.into()),
            resource_type: Some(resource_type.into()),
            resource_name: name.map(Into::into),
            pattern_type: None,
            deny: false,
        }
    }

    #[test]
    fn flags_make_kafkas_bindings() {
        let b = binding(&spec("User:alice", "idempotent-write", "cluster", None)).unwrap();
        assert_eq!(b.pattern.name, CLUSTER_NAME);
        assert_eq!(b.entry.operation, AclOperation::IdempotentWrite);
        assert_eq!(b.entry.host, "*");
        assert!(binding(&spec("alice", "Read", "topic", Some("t"))).is_err());
        assert!(binding(&spec("User:alice", "Fly", "topic", Some("t"))).is_err());
        assert!(binding(&spec("User:alice", "Read", "topic", None)).is_err());
    }
}
