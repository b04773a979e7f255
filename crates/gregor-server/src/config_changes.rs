//! Config changes made on any broker reach this one: a watch on
//! `/config/changes` (Kafka's notification nodes) re-reads the changed
//! entity's configs and applies them — a topic's overrides to the local
//! logs, this broker's or the cluster-wide dynamic broker configs
//! (`brokers/<id>`, `brokers/<default>`) to the broker. One function per
//! entity type.
//!
//! Notifications are purged once older than 15 minutes, as Kafka's
//! `ZkNodeChangeNotificationListener` does when it processes them. The
//! coordination stat gregor keeps has no creation time, so a
//! notification's age is counted from when this broker first saw it: the
//! same for notifications made while it runs, at most 15 minutes more for
//! those it found at start.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use gregor_broker::Broker;
use gregor_coord::kafka::{KafkaMetadata, CONFIG_CHANGES, DEFAULT_ENTITY};
use gregor_coord::Coordinator;
use tokio::sync::watch;

/// Kafka's `changeExpirationMs`: notifications older than this are deleted.
pub const NOTIFICATION_EXPIRY: Duration = Duration::from_secs(15 * 60);

/// Follows config change notifications until `stop` turns true.
pub fn spawn(
    coordinator: Arc<dyn Coordinator>,
    broker: Arc<Broker>,
    stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    spawn_with_expiry(coordinator, broker, stop, NOTIFICATION_EXPIRY)
}

/// [`spawn`] with notifications purged after `expiry`.
pub fn spawn_with_expiry(
    coordinator: Arc<dyn Coordinator>,
    broker: Arc<Broker>,
    mut stop: watch::Receiver<bool>,
    expiry: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        // What exists now is already in the catalog this broker read.
        let mut seen = KafkaMetadata::new(coordinator.as_ref())
            .config_notifications_after(None)
            .await
            .ok()
            .and_then(|changes| changes.last().map(|(name, _)| name.clone()));
        // Dynamic broker configs recorded after the broker read them at
        // start but before `seen` are in no notification left to see.
        apply_broker_change(&broker, DEFAULT_ENTITY).await;
        let mut purge = NotificationPurge::new(expiry);
        loop {
            let (children, watch) = match coordinator.children_and_watch(CONFIG_CHANGES).await {
                Ok(found) => found,
                Err(e) => {
                    tracing::debug!("watching config changes: {e}");
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                        _ = stop.changed() => return,
                    }
                }
            };
            let meta = KafkaMetadata::new(coordinator.as_ref());
            let changes = meta
                .config_notifications_after(seen.as_deref())
                .await
                .unwrap_or_default();
            for (name, entity) in changes {
                seen = Some(name);
                let Some(entity) = entity else { continue };
                if let Some(topic) = entity.strip_prefix("topics/") {
                    apply_topic_change(&broker, topic).await;
                } else if let Some(name) = entity.strip_prefix("brokers/") {
                    apply_broker_change(&broker, name).await;
                }
            }
            for expired in purge.expired(&children, Instant::now()) {
                if let Err(e) = meta.delete_config_notification(&expired).await {
                    tracing::debug!("purging config change {expired}: {e}");
                }
            }
            tokio::select! {
                _ = watch => {}
                _ = stop.changed() => return,
            }
        }
    })
}

/// A topic's overrides changed: re-read and applied to its local logs.
async fn apply_topic_change(broker: &Arc<Broker>, topic: &str) {
    let (broker, topic) = (broker.clone(), topic.to_string());
    let applied = tokio::task::spawn_blocking(move || broker.refresh_topic_config(&topic)).await;
    if let Ok(Err(e)) = applied {
        tracing::warn!("applying a topic config change: {e}");
    }
}

/// Dynamic broker configs changed (`name`: a broker id or `<default>`):
/// re-read and applied when they are this broker's or the cluster's.
async fn apply_broker_change(broker: &Arc<Broker>, name: &str) {
    if name != DEFAULT_ENTITY && name.parse::<i32>().ok() != Some(broker.config().node_id) {
        return;
    }
    let broker = broker.clone();
    let applied = tokio::task::spawn_blocking(move || broker.refresh_broker_config()).await;
    if let Ok(Err(e)) = applied {
        tracing::warn!("applying a broker config change: {e}");
    }
}

/// Which notifications are old enough to purge: each is timed from when
/// it was first seen.
pub struct NotificationPurge {
    expiry: Duration,
    first_seen: HashMap<String, Instant>,
}

impl NotificationPurge {
    /// Purging after `expiry`.
    pub fn new(expiry: Duration) -> Self {
        Self {
            expiry,
            first_seen: HashMap::new(),
        }
    }

    /// Of the notifications now in coordination, `present`, those seen
    /// longer than the expiry before `now` (forgotten: the caller deletes
    /// them). Those gone from `present` are forgotten too.
    pub fn expired(&mut self, present: &[String], now: Instant) -> Vec<String> {
        self.first_seen.retain(|name, _| present.contains(name));
        let mut expired = Vec::new();
        for name in present {
            let seen = *self.first_seen.entry(name.clone()).or_insert(now);
            if now.saturating_duration_since(seen) > self.expiry {
                expired.push(name.clone());
            }
        }
        for name in &expired {
            self.first_seen.remove(name);
        }
        expired
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notifications_are_purged_once_older_than_the_expiry() {
        let mut purge = NotificationPurge::new(NOTIFICATION_EXPIRY);
        let start = Instant::now();
        let names = |ns: &[&str]| ns.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        assert!(purge.expired(&names(&["c1"]), start).is_empty());
        let later = start + Duration::from_secs(10 * 60);
        assert!(purge.expired(&names(&["c1", "c2"]), later).is_empty());
        // 15 minutes is not older than 15 minutes; a moment more is.
        assert!(purge
            .expired(&names(&["c1", "c2"]), start + NOTIFICATION_EXPIRY)
            .is_empty());
        let c1_old = start + NOTIFICATION_EXPIRY + Duration::from_secs(1);
        assert_eq!(purge.expired(&names(&["c1", "c2"]), c1_old), ["c1"]);
        // c2 was first seen 10 minutes in.
        assert!(purge
            .expired(&names(&["c2"]), start + Duration::from_secs(24 * 60))
            .is_empty());
        assert_eq!(
            purge.expired(&names(&["c2"]), start + Duration::from_secs(26 * 60)),
            ["c2"]
        );
        // A name that went (purged by another broker) is forgotten.
        assert!(purge.expired(&names(&["c3"]), c1_old).is_empty());
        assert!(purge.first_seen.keys().all(|n| n == "c3"));
    }

    /// A broker over in-memory coordination with topic `t`'s one
    /// partition log; the coordinator too.
    async fn broker_over_coordination(dir: &std::path::Path) -> (Arc<dyn Coordinator>, Arc<Broker>) {
        use gregor_broker::{BrokerConfig, CoordinatedCatalog, ReplicaManager};
        use gregor_coord::kafka::BrokerRegistration;
        use gregor_coord::{EmbeddedCoordinator, EmbeddedStore};
        use gregor_log::{Clock, LogManager, LogManagerConfig, SystemClock};

        let coordinator: Arc<dyn Coordinator> = Arc::new(EmbeddedCoordinator::connect(
            &EmbeddedStore::in_memory(),
            Duration::from_secs(6),
        ));
        let meta = KafkaMetadata::new(coordinator.as_ref());
        meta.ensure_layout().await.unwrap();
        meta.register_broker(0, &BrokerRegistration::plaintext("127.0.0.1", 9092, None))
            .await
            .unwrap();
        let catalog = Arc::new(CoordinatedCatalog::new(
            coordinator.clone(),
            tokio::runtime::Handle::current(),
            0,
        ));
        let logs = Arc::new(LogManager::open(LogManagerConfig::new(vec![dir.to_path_buf()])).unwrap());
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let replicas = Arc::new(ReplicaManager::new(0, Default::default(), clock.clone()));
        let broker = tokio::task::spawn_blocking(move || {
            let broker = Broker::open(
                BrokerConfig::default(),
                Default::default(),
                logs,
                catalog,
                replicas,
                clock,
            )
            .unwrap();
            broker.topics().create("t", 1, None, Default::default()).unwrap();
            broker.topics().partition_log("t", 0).unwrap();
            Arc::new(broker)
        })
        .await
        .unwrap();
        (coordinator, broker)
    }

    async fn eventually(
        what: &str,
        mut check: impl FnMut() -> std::pin::Pin<Box<dyn std::future::Future<Output = bool> + Send>>,
    ) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !check().await {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_cluster_default_recorded_elsewhere_applies_here_and_old_notifications_go() {
        let dir = tempfile::tempdir().unwrap();
        let (coordinator, broker) = broker_over_coordination(dir.path()).await;
        let (stop, stopped) = watch::channel(false);
        let watcher = spawn_with_expiry(coordinator.clone(), broker.clone(), stopped, Duration::from_millis(300));
        let meta = KafkaMetadata::new(coordinator.as_ref());
        // Recorded as another broker records it: only the notification
        // tells this one.
        let config = std::collections::BTreeMap::from([("log.retention.ms".to_string(), "5000".to_string())]);
        meta.set_entity_config("brokers/<default>", &config).await.unwrap();
        let log = broker.topics().log("t", 0).unwrap();
        let b = broker.clone();
        eventually("the default applied", move || {
            let applied = b
                .dynamic_config()
                .layers()
                .cluster_default
                .contains_key("log.retention.ms");
            Box::pin(std::future::ready(applied))
        })
        .await;
        assert_eq!(log.config().retention_ms, 5000, "a topic without an override follows");
        let first = meta.config_notifications_after(None).await.unwrap()[0].0.clone();
        // Another broker's config: not applied here; its notification
        // makes the watcher look again, and the first is old by then.
        tokio::time::sleep(Duration::from_millis(400)).await;
        meta.set_entity_config("brokers/7", &config).await.unwrap();
        let c = coordinator.clone();
        eventually("the old notification purged", move || {
            let c = c.clone();
            let first = first.clone();
            Box::pin(async move {
                let left = KafkaMetadata::new(c.as_ref())
                    .config_notifications_after(None)
                    .await
                    .unwrap();
                left.len() == 1 && left[0].0 != first
            })
        })
        .await;
        assert!(broker.dynamic_config().layers().per_broker.is_empty());
        let _ = stop.send(true);
        let _ = watcher.await;
    }
}
