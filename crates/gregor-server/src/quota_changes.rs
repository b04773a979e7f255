//! Client quota and SCRAM credential changes made on any broker reach this
//! one: a watch on `/config/changes` (Kafka's notification nodes) re-reads
//! each changed `users/…` or `clients/…` entity's config and applies it at
//! once (a new password works on every broker at once).
//! Kept beside the topic config watcher (`config_changes.rs`) rather than
//! in it: each follows the notifications of its own entities.

use std::sync::Arc;
use std::time::Duration;

use gregor_broker::Broker;
use gregor_coord::kafka::CONFIG_CHANGES;
use gregor_coord::quotas::ClientQuotaConfigs;
use gregor_coord::Coordinator;
use tokio::sync::watch;

/// Follows quota change notifications until `stop` turns true.
pub fn spawn(
    coordinator: Arc<dyn Coordinator>,
    broker: Arc<Broker>,
    mut stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        // What exists now the broker read when it attached its store.
        let mut seen = ClientQuotaConfigs::new(coordinator.as_ref())
            .changes_after(None)
            .await
            .ok()
            .and_then(|changes| changes.last().map(|(name, _)| name.clone()));
        loop {
            let watch = match coordinator.children_and_watch(CONFIG_CHANGES).await {
                Ok((_, watch)) => watch,
                Err(e) => {
                    tracing::debug!("watching quota changes: {e}");
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                        _ = stop.changed() => return,
                    }
                }
            };
            let changes = ClientQuotaConfigs::new(coordinator.as_ref())
                .changes_after(seen.as_deref())
                .await
                .unwrap_or_default();
            for (name, entity) in changes {
                seen = Some(name);
                let Some(entity) = entity else { continue };
                let broker = broker.clone();
                // A user's node holds its quotas and its SCRAM credentials.
                let applied = tokio::task::spawn_blocking(move || {
                    broker.quotas().reload(&entity)?;
                    broker.scram_credentials().reload(&entity)
                })
                .await;
                if let Ok(Err(e)) = applied {
                    tracing::warn!("applying a client quota change: {e}");
                }
            }
            tokio::select! {
                _ = watch => {}
                _ = stop.changed() => return,
            }
        }
    })
}
