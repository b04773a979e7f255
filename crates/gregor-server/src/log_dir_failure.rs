//! What the broker does when a log directory goes offline (Kafka's
//! `ReplicaManager.handleLogDirFailure`): the log manager announces the
//! directory once; its partitions stop being led and followed here and
//! answer KAFKA_STORAGE_ERROR; the controller is told through
//! `/log_dir_event_notification`, asks this broker which replicas are
//! offline (LeaderAndIsr, answered KAFKA_STORAGE_ERROR for them) and
//! elects other leaders. With every log directory offline the broker
//! stops, as Kafka halts ("Shutdown broker because all log dirs in … have
//! failed"); a restart with the disks repaired brings the directories
//! back, and the replicas catch up from their leaders.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use gregor_broker::Broker;
use gregor_coord::kafka::KafkaMetadata;
use gregor_coord::Coordinator;
use tokio::sync::watch;

/// Handles failed log directories until `stop` turns true.
pub fn spawn(
    coordinator: Arc<dyn Coordinator>,
    broker: Arc<Broker>,
    mut stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let failures = broker.logs().dir_failures();
        loop {
            let next = failures.clone();
            let wait = tokio::task::spawn_blocking(move || next.recv_timeout(Duration::from_millis(500)));
            let dir: PathBuf = tokio::select! {
                received = wait => match received {
                    Ok(Ok(dir)) => dir,
                    Ok(Err(crossbeam_channel::RecvTimeoutError::Timeout)) => continue,
                    _ => return,
                },
                _ = stop.changed() => return,
            };
            let taker = broker.clone();
            let offline_dir = dir.clone();
            let _ = tokio::task::spawn_blocking(move || taker.take_log_dir_offline(&offline_dir)).await;
            if broker.logs().all_dirs_offline() {
                let dirs: Vec<String> = broker
                    .logs()
                    .offline_dirs()
                    .into_iter()
                    .map(|(d, _)| d.display().to_string())
                    .collect();
                tracing::error!(
                    "Shutdown broker because all log dirs in {} have failed",
                    dirs.join(", ")
                );
                // As Kafka's `Exit.halt(1)`: nothing left to serve, and no
                // clean-shutdown marker may be written.
                std::process::exit(1);
            }
            propagate(coordinator.as_ref(), broker.config().node_id, &dir, &mut stop).await;
        }
    })
}

/// Writes the log dir event, retrying until coordination takes it.
async fn propagate(
    coordinator: &dyn Coordinator,
    broker: i32,
    dir: &std::path::Path,
    stop: &mut watch::Receiver<bool>,
) {
    loop {
        match KafkaMetadata::new(coordinator).propagate_log_dir_event(broker).await {
            Ok(()) => {
                tracing::info!(dir = %dir.display(), "told the controller of the failed log directory");
                return;
            }
            Err(e) => tracing::warn!(dir = %dir.display(), "announcing the failed log directory: {e}"),
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            _ = stop.changed() => return,
        }
    }
}
