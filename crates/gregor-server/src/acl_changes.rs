//! ACL changes made on any broker (or by a Kafka broker sharing the
//! ZooKeeper) reach this one at once: a watch on each of Kafka's two
//! change paths (`/kafka-acl-changes` for LITERAL patterns,
//! `/kafka-acl-extended-changes` for PREFIXED ones) re-reads each named
//! pattern's ACLs into the authorizer. The shape of the config and quota
//! watchers; old notifications are purged with the same
//! [`NotificationPurge`] as Kafka's `ZkNodeChangeNotificationListener`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use gregor_broker::Broker;
use gregor_coord::acls::{KafkaAcls, EXTENDED_ACL_CHANGES, LITERAL_ACL_CHANGES};
use gregor_coord::Coordinator;
use tokio::sync::watch;

use crate::config_changes::{NotificationPurge, NOTIFICATION_EXPIRY};

/// Follows both ACL change paths until `stop` turns true.
pub fn spawn(
    coordinator: Arc<dyn Coordinator>,
    broker: Arc<Broker>,
    stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let literal = follow(coordinator.clone(), broker.clone(), LITERAL_ACL_CHANGES, stop.clone());
        let extended = follow(coordinator, broker, EXTENDED_ACL_CHANGES, stop);
        tokio::join!(literal, extended);
    })
}

async fn follow(
    coordinator: Arc<dyn Coordinator>,
    broker: Arc<Broker>,
    root: &'static str,
    mut stop: watch::Receiver<bool>,
) {
    // What exists now the authorizer read when it attached its store.
    let mut seen = KafkaAcls::new(coordinator.as_ref())
        .changes_after(root, None)
        .await
        .ok()
        .and_then(|changes| changes.last().map(|(name, _)| name.clone()));
    let mut purge = NotificationPurge::new(NOTIFICATION_EXPIRY);
    loop {
        if let Err(e) = coordinator.create_all(root).await {
            tracing::debug!("creating {root}: {e}");
        }
        let (children, watch) = match coordinator.children_and_watch(root).await {
            Ok(found) => found,
            Err(e) => {
                tracing::debug!("watching ACL changes at {root}: {e}");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                    _ = stop.changed() => return,
                }
            }
        };
        let acls = KafkaAcls::new(coordinator.as_ref());
        for (name, pattern) in acls.changes_after(root, seen.as_deref()).await.unwrap_or_default() {
            seen = Some(name);
            let Some(pattern) = pattern else { continue };
            let broker = broker.clone();
            let reloaded = tokio::task::spawn_blocking(move || broker.authorizer().reload(&pattern)).await;
            if let Ok(Err(e)) = reloaded {
                tracing::warn!("applying an ACL change: {e}");
            }
        }
        for expired in purge.expired(&children, Instant::now()) {
            if let Err(e) = acls.delete_change(root, &expired).await {
                tracing::debug!("purging ACL change {expired}: {e}");
            }
        }
        tokio::select! {
            _ = watch => {}
            _ = stop.changed() => return,
        }
    }
}
