//! Where ACLs are kept: Kafka's `/kafka-acl` paths in coordination (see
//! `gregor_coord::acls`), behind the authorizer's [`AclStore`].

use std::sync::Arc;

use gregor_auth::acl::{AclSet, AclStore, ResourcePattern};
use gregor_coord::acls::KafkaAcls;
use gregor_coord::Coordinator;
use tokio::runtime::Handle;

/// ACLs in coordination (embedded store or ZooKeeper).
pub struct CoordinatedAclStore {
    coordinator: Arc<dyn Coordinator>,
    runtime: Handle,
}

impl CoordinatedAclStore {
    /// A store over `coordinator`, run on `runtime` (block on it from
    /// other threads only).
    pub fn new(coordinator: Arc<dyn Coordinator>, runtime: Handle) -> Self {
        Self { coordinator, runtime }
    }

    fn stored(&self) -> KafkaAcls<'_> {
        KafkaAcls::new(self.coordinator.as_ref())
    }
}

impl AclStore for CoordinatedAclStore {
    fn all(&self) -> Result<Vec<(ResourcePattern, AclSet)>, String> {
        self.runtime.block_on(self.stored().all()).map_err(|e| e.to_string())
    }

    fn acls(&self, pattern: &ResourcePattern) -> Result<AclSet, String> {
        self.runtime
            .block_on(self.stored().acls(pattern))
            .map(|(acls, _)| acls)
            .map_err(|e| e.to_string())
    }

    fn update(&self, pattern: &ResourcePattern, change: &dyn Fn(&AclSet) -> AclSet) -> Result<AclSet, String> {
        self.runtime
            .block_on(self.stored().update(pattern, change))
            .map_err(|e| e.to_string())
    }
}
