//! The ISR writer: records the ISR changes this broker's leaders queue
//! (expansions as followers catch up, shrinks as they lag) in their
//! partition state nodes with a conditional write, tells the controller
//! through `/isr_change_notification`, and reports each outcome back to
//! the replica manager — off the request path, so a follower's fetch never
//! waits on coordination.

use std::sync::Arc;

use gregor_broker::ReplicaManager;
use gregor_coord::kafka::KafkaMetadata;
use gregor_coord::{CoordError, Coordinator};
use tokio::sync::watch;

use crate::coordination::to_recorded;

/// Writes queued ISR changes until `stop` turns true.
pub fn spawn(
    coordinator: Arc<dyn Coordinator>,
    replicas: Arc<ReplicaManager>,
    stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(write_until_stopped(coordinator, replicas, stop))
}

async fn write_until_stopped(
    coordinator: Arc<dyn Coordinator>,
    replicas: Arc<ReplicaManager>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        for update in replicas.take_isr_updates() {
            let written = KafkaMetadata::new(coordinator.as_ref())
                .write_isr(
                    &update.partition.topic,
                    update.partition.partition as i32,
                    &to_recorded(&update.state),
                    update.expected_version,
                )
                .await;
            let version = match written {
                Ok(version) => Some(version),
                Err(CoordError::BadVersion(_) | CoordError::NoNode(_)) => None,
                Err(e) => {
                    tracing::warn!(partition = %update.partition, "recording the ISR failed: {e}");
                    None
                }
            };
            let replicas = replicas.clone();
            // The replica manager's locks are held across log work: off the runtime.
            let _ = tokio::task::spawn_blocking(move || replicas.isr_update_done(update, version)).await;
        }
        tokio::select! {
            _ = replicas.isr_updates_queued() => {}
            _ = stop.changed() => return,
        }
    }
}
