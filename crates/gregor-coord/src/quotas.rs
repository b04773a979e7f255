//! Client quota configs at Kafka's paths, over any [`Coordinator`]:
//!
//! ```text
//! /config/users/<user>                         {"version":1,"config":{"producer_byte_rate":"1024"}}
//! /config/users/<user>/clients/<client-id>     the same shape
//! /config/clients/<client-id>                  the same shape
//! ```
//!
//! Names are sanitized by the caller (`<default>` for the defaults); an
//! entity is named by its path below `/config` (`users/alice/clients/app`),
//! which is also the `entity_path` of its `/config/changes` notification.

use std::collections::BTreeMap;

use crate::coordinator::Coordinator;
use crate::error::{CoordError, Result};
use crate::kafka::KafkaMetadata;

/// `/config/users`
pub const USER_CONFIGS: &str = "/config/users";
/// `/config/clients`
pub const CLIENT_CONFIGS: &str = "/config/clients";

/// Client quota configs in coordination.
pub struct ClientQuotaConfigs<'a> {
    coord: &'a dyn Coordinator,
}

impl<'a> ClientQuotaConfigs<'a> {
    /// Works through `coord`.
    pub fn new(coord: &'a dyn Coordinator) -> Self {
        Self { coord }
    }

    /// An entity's config (`entity_path` as `users/<u>`); empty when the
    /// node is missing or holds no config.
    pub async fn config(&self, entity_path: &str) -> Result<BTreeMap<String, String>> {
        KafkaMetadata::new(self.coord).entity_config(entity_path).await
    }

    /// Every entity with a non-empty config: (entity path, config).
    pub async fn all(&self) -> Result<Vec<(String, BTreeMap<String, String>)>> {
        let mut paths = Vec::new();
        for user in self.children(USER_CONFIGS).await? {
            paths.push(format!("users/{user}"));
            for client in self.children(&format!("{USER_CONFIGS}/{user}/clients")).await? {
                paths.push(format!("users/{user}/clients/{client}"));
            }
        }
        for client in self.children(CLIENT_CONFIGS).await? {
            paths.push(format!("clients/{client}"));
        }
        let mut out = Vec::new();
        for path in paths {
            let config = self.config(&path).await?;
            if !config.is_empty() {
                out.push((path, config));
            }
        }
        Ok(out)
    }

    async fn children(&self, path: &str) -> Result<Vec<String>> {
        match self.coord.children(path).await {
            Ok(children) => Ok(children),
            Err(CoordError::NoNode(_)) => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    /// Makes `config` an entity's whole config and tells every broker (a
    /// `/config/changes` notification). An empty config removes the node
    /// when nothing lies below it, as Kafka keeps quota nodes from piling up.
    pub async fn set(&self, entity_path: &str, config: &BTreeMap<String, String>) -> Result<()> {
        let path = format!("/config/{entity_path}");
        if config.is_empty() {
            self.remove_if_bare(&path).await?;
            // A user/client node's parents (`clients`, the user) go too
            // when they are left bare.
            if let Some((user, _)) = entity_path
                .strip_prefix("users/")
                .and_then(|p| p.split_once("/clients/"))
            {
                let user_path = format!("{USER_CONFIGS}/{user}");
                self.remove_if_bare(&format!("{user_path}/clients")).await?;
                if self.config(&format!("users/{user}")).await?.is_empty() {
                    self.remove_if_bare(&user_path).await?;
                }
            }
        } else {
            KafkaMetadata::new(self.coord)
                .write_entity_config(entity_path, config)
                .await?;
        }
        KafkaMetadata::new(self.coord).announce_config_change(entity_path).await
    }

    async fn remove_if_bare(&self, path: &str) -> Result<()> {
        match self.coord.children(path).await {
            Ok(children) if children.is_empty() => match self.coord.delete(path, None).await {
                Ok(()) | Err(CoordError::NoNode(_)) | Err(CoordError::NotEmpty(_)) => Ok(()),
                Err(e) => Err(e),
            },
            Ok(_) | Err(CoordError::NoNode(_)) => {
                // Children remain: keep the node, without its config.
                match self.coord.set(path, b"", None).await {
                    Ok(_) | Err(CoordError::NoNode(_)) => Ok(()),
                    Err(e) => Err(e),
                }
            }
            Err(e) => Err(e),
        }
    }

    /// The quota entities (`users/…`, `clients/…`) named by the change
    /// notifications after `seen`, with each notification's node name,
    /// in order; other notifications give `None`.
    pub async fn changes_after(&self, seen: Option<&str>) -> Result<Vec<(String, Option<String>)>> {
        let quota = |p: &String| p.starts_with("users/") || p.starts_with("clients/");
        Ok(KafkaMetadata::new(self.coord)
            .config_notifications_after(seen)
            .await?
            .into_iter()
            .map(|(name, entity)| (name, entity.filter(quota)))
            .collect())
    }
}
