//! ACLs at Kafka's ZooKeeper paths, over any [`Coordinator`], in Kafka's
//! JSON (so a ZooKeeper shared with Kafka 3.9 brokers holds one set of
//! ACLs both read):
//!
//! ```text
//! /kafka-acl/<ResourceType>/<name>                    LITERAL patterns
//! /kafka-acl-extended/prefixed/<ResourceType>/<name>  PREFIXED patterns
//!     {"version":1,"acls":[{"principal":"User:alice","permissionType":"Allow","operation":"Read","host":"*"}]}
//! /kafka-acl-changes/acl_changes_<seq>                TOPIC:<name>
//! /kafka-acl-extended-changes/acl_changes_<seq>       {"version":1,"resourceType":"TOPIC","name":…,"patternType":"PREFIXED"}
//! ```
//!
//! A pattern's node is written with compare-and-set (a concurrent writer
//! makes the change run again on what it wrote), removed when its last
//! ACL goes, and every write announced by a change notification.

use gregor_auth::acl::json::{
    decode_acls, decode_extended_change, decode_literal_change, encode_acls, encode_change, specific_type,
};
use gregor_auth::acl::{AclSet, PatternType, ResourcePattern};

use crate::coordinator::Coordinator;
use crate::error::{CoordError, Result};
use crate::types::CreateMode;

/// `/kafka-acl`: LITERAL patterns.
pub const LITERAL_ACLS: &str = "/kafka-acl";
/// `/kafka-acl-extended/prefixed`: PREFIXED patterns.
pub const PREFIXED_ACLS: &str = "/kafka-acl-extended/prefixed";
/// `/kafka-acl-changes`: notifications of LITERAL changes.
pub const LITERAL_ACL_CHANGES: &str = "/kafka-acl-changes";
/// `/kafka-acl-extended-changes`: notifications of PREFIXED changes.
pub const EXTENDED_ACL_CHANGES: &str = "/kafka-acl-extended-changes";
/// The name prefix of a change notification node.
pub const ACL_CHANGE_PREFIX: &str = "acl_changes_";

/// The node of a pattern's ACLs.
pub fn acl_path(pattern: &ResourcePattern) -> String {
    let root = match pattern.pattern_type {
        PatternType::Prefixed => PREFIXED_ACLS,
        _ => LITERAL_ACLS,
    };
    format!("{root}/{}/{}", pattern.resource_type.name(), pattern.name)
}

/// Where the change notifications of a pattern type go.
pub fn changes_path(pattern_type: PatternType) -> &'static str {
    match pattern_type {
        PatternType::Prefixed => EXTENDED_ACL_CHANGES,
        _ => LITERAL_ACL_CHANGES,
    }
}

/// ACLs in coordination.
pub struct KafkaAcls<'a> {
    coord: &'a dyn Coordinator,
}

impl<'a> KafkaAcls<'a> {
    /// Works through `coord`.
    pub fn new(coord: &'a dyn Coordinator) -> Self {
        Self { coord }
    }

    /// Every pattern with ACLs; unreadable nodes (an unknown type, bad
    /// JSON) are skipped with a warning, as Kafka skips them.
    pub async fn all(&self) -> Result<Vec<(ResourcePattern, AclSet)>> {
        let mut out = Vec::new();
        for (root, pattern_type) in [
            (LITERAL_ACLS, PatternType::Literal),
            (PREFIXED_ACLS, PatternType::Prefixed),
        ] {
            for kind in self.children(root).await? {
                let Ok(resource_type) = specific_type(&kind) else {
                    tracing::warn!("ignoring ACLs of unknown resource type {kind:?} under {root}");
                    continue;
                };
                for name in self.children(&format!("{root}/{kind}")).await? {
                    let pattern = ResourcePattern {
                        resource_type,
                        name,
                        pattern_type,
                    };
                    match self.acls(&pattern).await {
                        Ok((acls, _)) if !acls.is_empty() => out.push((pattern, acls)),
                        Ok(_) => {}
                        Err(CoordError::Other(e)) => tracing::warn!("ignoring the ACLs of {pattern}: {e}"),
                        Err(e) => return Err(e),
                    }
                }
            }
        }
        Ok(out)
    }

    /// One pattern's ACLs and its node's version (`None`: no node).
    pub async fn acls(&self, pattern: &ResourcePattern) -> Result<(AclSet, Option<i32>)> {
        let path = acl_path(pattern);
        match self.coord.get(&path).await {
            Ok((data, stat)) => Ok((
                decode_acls(&data).map_err(|e| CoordError::Other(format!("{path}: {e}")))?,
                Some(stat.version),
            )),
            Err(CoordError::NoNode(_)) => Ok((AclSet::new(), None)),
            Err(e) => Err(e),
        }
    }

    /// Makes a pattern's ACLs `change(current)` (compare-and-set, retried
    /// on a concurrent write), then announces the change; returns the new
    /// set. Nothing is written when the set stays the same.
    pub async fn update(&self, pattern: &ResourcePattern, change: &dyn Fn(&AclSet) -> AclSet) -> Result<AclSet> {
        let path = acl_path(pattern);
        loop {
            let (current, version) = self.acls(pattern).await?;
            let next = change(&current);
            if next == current {
                return Ok(next);
            }
            let written = match (version, next.is_empty()) {
                (None, _) => {
                    if let Some((parent, _)) = path.rsplit_once('/') {
                        self.coord.create_all(parent).await?;
                    }
                    self.coord
                        .create(&path, &encode_acls(&next), CreateMode::Persistent)
                        .await
                        .map(|_| ())
                }
                (Some(version), true) => self.coord.delete(&path, Some(version)).await,
                (Some(version), false) => self
                    .coord
                    .set(&path, &encode_acls(&next), Some(version))
                    .await
                    .map(|_| ()),
            };
            match written {
                Ok(()) => {
                    self.announce(pattern).await?;
                    return Ok(next);
                }
                Err(CoordError::NodeExists(_) | CoordError::BadVersion(_) | CoordError::NoNode(_)) => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Tells every broker that a pattern's ACLs changed.
    pub async fn announce(&self, pattern: &ResourcePattern) -> Result<()> {
        let root = changes_path(pattern.pattern_type);
        self.coord.create_all(root).await?;
        self.coord
            .create(
                &format!("{root}/{ACL_CHANGE_PREFIX}"),
                &encode_change(pattern),
                CreateMode::PersistentSequential,
            )
            .await?;
        Ok(())
    }

    /// The change notifications under `root` (one of the two change
    /// paths) after `seen`: each node's name with the pattern it names
    /// (`None` when gone or unreadable), in order.
    pub async fn changes_after(
        &self,
        root: &str,
        seen: Option<&str>,
    ) -> Result<Vec<(String, Option<ResourcePattern>)>> {
        let mut out = Vec::new();
        for child in self.children(root).await? {
            if !child.starts_with(ACL_CHANGE_PREFIX) || seen.is_some_and(|s| child.as_str() <= s) {
                continue;
            }
            let pattern = match self.coord.get(&format!("{root}/{child}")).await {
                Ok((data, _)) if root == EXTENDED_ACL_CHANGES => decode_extended_change(&data).ok(),
                Ok((data, _)) => decode_literal_change(&data).ok(),
                Err(CoordError::NoNode(_)) => None,
                Err(e) => return Err(e),
            };
            out.push((child, pattern));
        }
        Ok(out)
    }

    /// Deletes the notification `name` under `root` (gone already is fine).
    pub async fn delete_change(&self, root: &str, name: &str) -> Result<()> {
        match self.coord.delete(&format!("{root}/{name}"), None).await {
            Ok(()) | Err(CoordError::NoNode(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn children(&self, path: &str) -> Result<Vec<String>> {
        match self.coord.children(path).await {
            Ok(children) => Ok(children),
            Err(CoordError::NoNode(_)) => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use gregor_auth::acl::{AccessControlEntry, AclOperation, AclPermissionType, ResourceType};
    use gregor_auth::KafkaPrincipal;

    use super::*;
    use crate::{EmbeddedCoordinator, EmbeddedStore};

    fn entry(user: &str, op: AclOperation) -> AccessControlEntry {
        AccessControlEntry {
            principal: KafkaPrincipal::user(user),
            host: "*".into(),
            operation: op,
            permission: AclPermissionType::Allow,
        }
    }

    #[tokio::test]
    async fn acls_live_at_kafkas_paths_and_every_change_is_announced() {
        let store = EmbeddedStore::in_memory();
        let coord = EmbeddedCoordinator::connect(&store, Duration::from_secs(6));
        let acls = KafkaAcls::new(&coord);
        let literal = ResourcePattern::literal(ResourceType::TransactionalId, "tx");
        let prefixed = ResourcePattern::prefixed(ResourceType::Topic, "orders-");
        let read = entry("alice", AclOperation::Read);
        let added = AclSet::from([read.clone()]);
        acls.update(&literal, &|c| c.union(&added).cloned().collect())
            .await
            .unwrap();
        acls.update(&prefixed, &|c| c.union(&added).cloned().collect())
            .await
            .unwrap();
        let (data, _) = coord.get("/kafka-acl/TransactionalId/tx").await.unwrap();
        assert_eq!(
            String::from_utf8(data).unwrap(),
            r#"{"acls":[{"host":"*","operation":"Read","permissionType":"Allow","principal":"User:alice"}],"version":1}"#
        );
        assert!(coord
            .exists("/kafka-acl-extended/prefixed/Topic/orders-")
            .await
            .unwrap()
            .is_some());
        assert_eq!(acls.all().await.unwrap().len(), 2);

        let literal_changes = acls.changes_after(LITERAL_ACL_CHANGES, None).await.unwrap();
        assert_eq!(literal_changes.len(), 1);
        assert_eq!(literal_changes[0].1.as_ref(), Some(&literal));
        let extended = acls.changes_after(EXTENDED_ACL_CHANGES, None).await.unwrap();
        assert_eq!(extended[0].1.as_ref(), Some(&prefixed));
        let seen = literal_changes[0].0.clone();

        // An unchanged set writes nothing; the last ACL gone removes the node.
        acls.update(&literal, &|c| c.clone()).await.unwrap();
        assert!(acls
            .changes_after(LITERAL_ACL_CHANGES, Some(&seen))
            .await
            .unwrap()
            .is_empty());
        acls.update(&literal, &|_| AclSet::new()).await.unwrap();
        assert!(coord.exists("/kafka-acl/TransactionalId/tx").await.unwrap().is_none());
        assert_eq!(
            acls.changes_after(LITERAL_ACL_CHANGES, Some(&seen))
                .await
                .unwrap()
                .len(),
            1
        );
    }
}
