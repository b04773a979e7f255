//! Dynamic configs of entities other than topics, in Kafka's layout:
//! `/config/<type>/<name>` holds `{"version":1,"config":{…}}` and a
//! change is announced by a `/config/changes/config_change_<seq>` node
//! naming `<type>/<name>` (Kafka's `AdminZkClient.changeEntityConfig`).
//!
//! ```text
//! /config/brokers/<id>          one broker's dynamic configs
//! /config/brokers/<default>     the cluster-wide defaults of every broker
//! ```

use std::collections::BTreeMap;

use super::{from_json, to_json, ConfigChange, KafkaMetadata, TopicConfig, CONFIG_CHANGES};
use crate::error::{CoordError, Result};
use crate::types::CreateMode;

/// `/config/brokers`
pub const BROKER_CONFIGS: &str = "/config/brokers";
/// The entity name of cluster-wide defaults (Kafka's `<default>`).
pub const DEFAULT_ENTITY: &str = "<default>";

/// The entity path (`brokers/<id>`, `brokers/<default>`) of a broker's
/// dynamic configs; `None`: the cluster-wide defaults.
pub fn broker_entity(broker: Option<i32>) -> String {
    match broker {
        Some(id) => format!("brokers/{id}"),
        None => format!("brokers/{DEFAULT_ENTITY}"),
    }
}

impl KafkaMetadata<'_> {
    /// The configs of entity `entity_path` (`brokers/0`); none when the
    /// node does not exist.
    pub async fn entity_config(&self, entity_path: &str) -> Result<BTreeMap<String, String>> {
        let path = format!("/config/{entity_path}");
        match self.coord.get(&path).await {
            // A node kept only for the nodes below it (client quotas).
            Ok((data, _)) if data.is_empty() => Ok(BTreeMap::new()),
            Ok((data, _)) => Ok(from_json::<TopicConfig>(&path, &data)?.config),
            Err(CoordError::NoNode(_)) => Ok(BTreeMap::new()),
            Err(e) => Err(e),
        }
    }

    /// Makes `config` the whole of entity `entity_path`'s configs (the
    /// node is created with its parents if needed) and tells every broker
    /// with a `/config/changes` notification.
    pub async fn set_entity_config(&self, entity_path: &str, config: &BTreeMap<String, String>) -> Result<()> {
        self.write_entity_config(entity_path, config).await?;
        self.announce_config_change(entity_path).await
    }

    /// Writes entity `entity_path`'s configs (the node created with its
    /// parents if needed), without announcing the change.
    pub async fn write_entity_config(&self, entity_path: &str, config: &BTreeMap<String, String>) -> Result<()> {
        let path = format!("/config/{entity_path}");
        let data = to_json(&TopicConfig {
            version: 1,
            config: config.clone(),
        });
        match self.coord.set(&path, &data, None).await {
            Ok(_) => {}
            Err(CoordError::NoNode(_)) => {
                if let Some((parent, _)) = path.rsplit_once('/') {
                    self.coord.create_all(parent).await?;
                }
                match self.coord.create(&path, &data, CreateMode::Persistent).await {
                    Ok(_) => {}
                    // Created meanwhile by another broker: ours is the newer.
                    Err(CoordError::NodeExists(_)) => {
                        self.coord.set(&path, &data, None).await?;
                    }
                    Err(e) => return Err(e),
                }
            }
            Err(e) => return Err(e),
        }
        Ok(())
    }

    /// Tells every broker that entity `entity_path`'s configs changed (a
    /// `/config/changes/config_change_<seq>` notification).
    pub async fn announce_config_change(&self, entity_path: &str) -> Result<()> {
        let change = ConfigChange {
            version: 2,
            entity_path: entity_path.to_string(),
        };
        self.coord.create_all(CONFIG_CHANGES).await?;
        self.coord
            .create(
                &format!("{CONFIG_CHANGES}/config_change_"),
                &to_json(&change),
                CreateMode::PersistentSequential,
            )
            .await?;
        Ok(())
    }

    /// The config change notifications after `seen` (their node names, in
    /// order) with the entity path each names (`topics/t`, `brokers/0`;
    /// `None` when gone or unreadable).
    pub async fn config_notifications_after(&self, seen: Option<&str>) -> Result<Vec<(String, Option<String>)>> {
        let mut out = Vec::new();
        for child in self.coord.children(CONFIG_CHANGES).await? {
            if seen.is_some_and(|s| child.as_str() <= s) {
                continue;
            }
            let path = format!("{CONFIG_CHANGES}/{child}");
            let entity = match self.coord.get(&path).await {
                Ok((data, _)) => from_json::<ConfigChange>(&path, &data).ok().map(|c| c.entity_path),
                Err(CoordError::NoNode(_)) => None,
                Err(e) => return Err(e),
            };
            out.push((child, entity));
        }
        Ok(out)
    }

    /// Deletes the config change notification `name` (purged once old,
    /// as Kafka's `ZkNodeChangeNotificationListener` does); gone already
    /// is fine (another broker purged it).
    pub async fn delete_config_notification(&self, name: &str) -> Result<()> {
        match self.coord.delete(&format!("{CONFIG_CHANGES}/{name}"), None).await {
            Ok(()) | Err(CoordError::NoNode(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::{EmbeddedCoordinator, EmbeddedStore};

    #[tokio::test]
    async fn broker_configs_are_stored_at_kafkas_paths_and_announced() {
        let store = EmbeddedStore::in_memory();
        let coord = EmbeddedCoordinator::connect(&store, Duration::from_secs(6));
        let meta = KafkaMetadata::new(&coord);
        meta.ensure_layout().await.unwrap();
        assert!(meta.entity_config(&broker_entity(Some(0))).await.unwrap().is_empty());
        let config = BTreeMap::from([("log.retention.ms".to_string(), "5000".to_string())]);
        meta.set_entity_config(&broker_entity(None), &config).await.unwrap();
        meta.set_entity_config(&broker_entity(Some(3)), &BTreeMap::new())
            .await
            .unwrap();
        let (data, _) = crate::Coordinator::get(&coord, "/config/brokers/<default>")
            .await
            .unwrap();
        assert_eq!(
            String::from_utf8(data).unwrap(),
            r#"{"version":1,"config":{"log.retention.ms":"5000"}}"#
        );
        assert_eq!(meta.entity_config("brokers/<default>").await.unwrap(), config);
        let notes = meta.config_notifications_after(None).await.unwrap();
        let entities: Vec<_> = notes.iter().map(|(_, e)| e.clone().unwrap()).collect();
        assert_eq!(entities, ["brokers/<default>", "brokers/3"]);
        let after_first = meta.config_notifications_after(Some(&notes[0].0)).await.unwrap();
        assert_eq!(after_first.len(), 1);
        meta.delete_config_notification(&notes[0].0).await.unwrap();
        meta.delete_config_notification(&notes[0].0).await.unwrap();
        assert_eq!(meta.config_notifications_after(None).await.unwrap().len(), 1);
    }
}
