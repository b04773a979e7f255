//! Topic config changes made on any broker reach this one: a watch on
//! `/config/changes` (Kafka's notification nodes) re-reads the changed
//! topic's overrides and applies them to the local logs.

use std::sync::Arc;
use std::time::Duration;

use gregor_broker::Broker;
use gregor_coord::kafka::{KafkaMetadata, CONFIG_CHANGES};
use gregor_coord::Coordinator;
use tokio::sync::watch;

/// Follows config change notifications until `stop` turns true.
pub fn spawn(
    coordinator: Arc<dyn Coordinator>,
    broker: Arc<Broker>,
    mut stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        // What exists now is already in the catalog this broker read.
        let mut seen = KafkaMetadata::new(coordinator.as_ref())
            .config_changes_after(None)
            .await
            .ok()
            .and_then(|changes| changes.last().map(|(name, _)| name.clone()));
        loop {
            let watch = match coordinator.children_and_watch(CONFIG_CHANGES).await {
                Ok((_, watch)) => watch,
                Err(e) => {
                    tracing::debug!("watching config changes: {e}");
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                        _ = stop.changed() => return,
                    }
                }
            };
            let changes = KafkaMetadata::new(coordinator.as_ref())
                .config_changes_after(seen.as_deref())
                .await
                .unwrap_or_default();
            for (name, topic) in changes {
                seen = Some(name);
                let Some(topic) = topic else { continue };
                let broker = broker.clone();
                let applied = tokio::task::spawn_blocking(move || broker.refresh_topic_config(&topic)).await;
                if let Ok(Err(e)) = applied {
                    tracing::warn!("applying a topic config change: {e}");
                }
            }
            tokio::select! {
                _ = watch => {}
                _ = stop.changed() => return,
            }
        }
    })
}
