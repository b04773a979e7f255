//! Kafka's stored forms of ACLs: the JSON of a `/kafka-acl…/<type>/<name>`
//! node and the bodies of the change notifications
//! (`/kafka-acl-changes`: `TOPIC:name`; `/kafka-acl-extended-changes`:
//! `{"version":1,"resourceType":"TOPIC","name":…,"patternType":"PREFIXED"}`).

use serde_json::{json, Value};

use super::authorizer::AclSet;
use super::types::{AccessControlEntry, AclOperation, AclPermissionType, PatternType, ResourcePattern, ResourceType};

/// `{"version":1,"acls":[{"principal":…,"permissionType":"Allow","operation":"Read","host":"*"}]}`.
pub fn encode_acls(acls: &AclSet) -> Vec<u8> {
    let entries: Vec<Value> = acls
        .iter()
        .map(|acl| {
            json!({
                "principal": acl.principal.to_string(),
                "permissionType": acl.permission.name(),
                "operation": acl.operation.name(),
                "host": acl.host,
            })
        })
        .collect();
    json!({"version": 1, "acls": entries}).to_string().into_bytes()
}

/// Reads a node's ACLs (empty data: none), as Kafka's `AclEntry.fromBytes`.
pub fn decode_acls(bytes: &[u8]) -> Result<AclSet, String> {
    if bytes.is_empty() {
        return Ok(AclSet::new());
    }
    let value: Value = serde_json::from_slice(bytes).map_err(|e| format!("ACL node is not JSON: {e}"))?;
    if value.get("version").and_then(Value::as_i64) != Some(1) {
        return Err("ACL node of an unknown version".into());
    }
    let field = |item: &Value, key: &str| -> Result<String, String> {
        item.get(key)
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| format!("ACL entry without {key}"))
    };
    let mut acls = AclSet::new();
    for item in value.get("acls").and_then(Value::as_array).into_iter().flatten() {
        let principal = field(item, "principal")?.parse().map_err(|e| format!("{e}"))?;
        let permission = field(item, "permissionType")?;
        let operation = field(item, "operation")?;
        acls.insert(AccessControlEntry {
            principal,
            host: field(item, "host")?,
            operation: AclOperation::parse(&operation)
                .filter(|o| *o != AclOperation::Any)
                .ok_or_else(|| format!("unknown ACL operation {operation:?}"))?,
            permission: AclPermissionType::parse(&permission)
                .filter(|p| *p != AclPermissionType::Any)
                .ok_or_else(|| format!("unknown ACL permission {permission:?}"))?,
        });
    }
    Ok(acls)
}

/// The body of a change notification for `pattern`: `TYPE:name` for a
/// LITERAL pattern (Kafka's `LiteralAclChangeStore`), the extended JSON
/// event otherwise.
pub fn encode_change(pattern: &ResourcePattern) -> Vec<u8> {
    match pattern.pattern_type {
        PatternType::Literal => format!("{}:{}", pattern.resource_type.upper_name(), pattern.name).into_bytes(),
        _ => json!({
            "version": 1,
            "resourceType": pattern.resource_type.upper_name(),
            "name": pattern.name,
            "patternType": pattern.pattern_type.upper_name(),
        })
        .to_string()
        .into_bytes(),
    }
}

/// Reads a LITERAL change notification (`Type:name`).
pub fn decode_literal_change(bytes: &[u8]) -> Result<ResourcePattern, String> {
    let text = String::from_utf8_lossy(bytes);
    let (kind, name) = text
        .split_once(':')
        .ok_or_else(|| format!("expected ResourceType:ResourceName, got {text:?}"))?;
    let resource_type = specific_type(kind)?;
    Ok(ResourcePattern::literal(resource_type, name))
}

/// Reads an extended change notification.
pub fn decode_extended_change(bytes: &[u8]) -> Result<ResourcePattern, String> {
    let value: Value = serde_json::from_slice(bytes).map_err(|e| format!("ACL change event is not JSON: {e}"))?;
    let text = |key: &str| value.get(key).and_then(Value::as_str).unwrap_or_default().to_string();
    let pattern_type = PatternType::parse(&text("patternType"))
        .filter(|p| matches!(p, PatternType::Literal | PatternType::Prefixed))
        .ok_or_else(|| format!("ACL change event with pattern type {:?}", text("patternType")))?;
    Ok(ResourcePattern {
        resource_type: specific_type(&text("resourceType"))?,
        name: text("name"),
        pattern_type,
    })
}

/// A resource type by name, not `Any`.
pub fn specific_type(name: &str) -> Result<ResourceType, String> {
    ResourceType::parse(name)
        .filter(|t| *t != ResourceType::Any)
        .ok_or_else(|| format!("unknown resource type {name:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::KafkaPrincipal;

    #[test]
    fn reads_kafkas_node_json_and_writes_it_back() {
        let kafka = br#"{"version":1,"acls":[{"principal":"User:alice","permissionType":"Allow","operation":"Read","host":"*"},{"principal":"User:*","permissionType":"Deny","operation":"IdempotentWrite","host":"10.0.0.1"}]}"#;
        let acls = decode_acls(kafka).unwrap();
        assert_eq!(acls.len(), 2);
        assert!(acls.contains(&AccessControlEntry {
            principal: KafkaPrincipal::user("alice"),
            host: "*".into(),
            operation: AclOperation::Read,
            permission: AclPermissionType::Allow,
        }));
        assert_eq!(decode_acls(&encode_acls(&acls)).unwrap(), acls);
        assert!(String::from_utf8(encode_acls(&acls))
            .unwrap()
            .contains("\"operation\":\"IdempotentWrite\""));
        assert!(decode_acls(b"").unwrap().is_empty());
        assert!(decode_acls(br#"{"version":2,"acls":[]}"#).is_err());
        assert!(decode_acls(
            br#"{"version":1,"acls":[{"principal":"User:a","permissionType":"Allow","operation":"Fly","host":"*"}]}"#
        )
        .is_err());
    }

    #[test]
    fn change_notifications_read_back() {
        let literal = ResourcePattern::literal(ResourceType::TransactionalId, "tx:1");
        assert_eq!(encode_change(&literal), b"TRANSACTIONAL_ID:tx:1");
        assert_eq!(decode_literal_change(&encode_change(&literal)).unwrap(), literal);
        assert_eq!(
            decode_literal_change(b"Topic:orders").unwrap(),
            ResourcePattern::literal(ResourceType::Topic, "orders")
        );
        let prefixed = ResourcePattern::prefixed(ResourceType::Group, "app-");
        assert_eq!(decode_extended_change(&encode_change(&prefixed)).unwrap(), prefixed);
        assert!(decode_literal_change(b"nothing").is_err());
    }
}
