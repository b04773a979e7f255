//! Where quota configs are kept: Kafka's `/config/users` and
//! `/config/clients` in coordination.

use std::collections::BTreeMap;
use std::sync::Arc;

use gregor_coord::quotas::ClientQuotaConfigs;
use gregor_coord::Coordinator;
use tokio::runtime::Handle;

/// Entity paths with their configs (key → value as stored).
pub type StoredConfigs = Vec<(String, BTreeMap<String, String>)>;

/// The record of quota configs, by entity path (`users/<u>`,
/// `clients/<c>`, `users/<u>/clients/<c>`; names sanitized). Called from
/// handler threads, so an implementation may block.
pub trait QuotaStore: Send + Sync {
    /// Every entity with a config.
    fn all(&self) -> Result<StoredConfigs, String>;
    /// One entity's config (empty when it has none).
    fn config(&self, entity_path: &str) -> Result<BTreeMap<String, String>, String>;
    /// Replaces one entity's config (empty: removes it) and tells every
    /// broker.
    fn set(&self, entity_path: &str, config: &BTreeMap<String, String>) -> Result<(), String>;
}

/// Quota configs in coordination (embedded store or ZooKeeper).
pub struct CoordinatedQuotaStore {
    coordinator: Arc<dyn Coordinator>,
    runtime: Handle,
}

impl CoordinatedQuotaStore {
    /// A store over `coordinator`, run on `runtime` (block on it from
    /// other threads only).
    pub fn new(coordinator: Arc<dyn Coordinator>, runtime: Handle) -> Self {
        Self { coordinator, runtime }
    }

    fn configs(&self) -> ClientQuotaConfigs<'_> {
        ClientQuotaConfigs::new(self.coordinator.as_ref())
    }
}

impl QuotaStore for CoordinatedQuotaStore {
    fn all(&self) -> Result<StoredConfigs, String> {
        self.runtime.block_on(self.configs().all()).map_err(|e| e.to_string())
    }

    fn config(&self, entity_path: &str) -> Result<BTreeMap<String, String>, String> {
        self.runtime
            .block_on(self.configs().config(entity_path))
            .map_err(|e| e.to_string())
    }

    fn set(&self, entity_path: &str, config: &BTreeMap<String, String>) -> Result<(), String> {
        self.runtime
            .block_on(self.configs().set(entity_path, config))
            .map_err(|e| e.to_string())
    }
}
