//! Failed log directories, as Kafka's ZooKeeper-era controller handles
//! them: a broker announces one with `/log_dir_event_notification`; the
//! controller sends it LeaderAndIsr for every replica it holds; the
//! partitions it answers KAFKA_STORAGE_ERROR for (in that answer or any
//! other) have their replica there marked offline — new leaders among the
//! other in-sync replicas, the replica out of the ISRs, Metadata listing it
//! in `offline_replicas` — until the broker registers again.

use gregor_coord::CoordError;
use gregor_log::TopicPartition;
use gregor_replication::Controller;

use super::ActiveController;

/// A broker's answer naming replicas in an offline log directory:
/// (broker, partitions).
pub(super) type OfflineReplicas = (i32, Vec<TopicPartition>);

impl ActiveController {
    /// Reads (and deletes) the pending log dir events and asks each broker
    /// named which of its replicas are offline.
    pub(super) async fn log_dir_events(
        &mut self,
        controller: &mut Controller<TopicPartition>,
    ) -> Result<(), CoordError> {
        let mut commands = Vec::new();
        for broker in self.meta().take_log_dir_events().await? {
            tracing::warn!(
                broker,
                "a log directory of the broker failed: asking which replicas are offline"
            );
            commands.extend(controller.log_dir_failed(broker));
        }
        self.execute(controller, commands).await
    }

    /// `broker` answered KAFKA_STORAGE_ERROR for `partitions`.
    pub(super) async fn replicas_offline(
        &mut self,
        controller: &mut Controller<TopicPartition>,
        (broker, partitions): OfflineReplicas,
    ) -> Result<(), CoordError> {
        let named = format!("{partitions:?}");
        let commands = controller.replicas_offline(broker, partitions);
        if !commands.is_empty() {
            tracing::warn!(broker, partitions = %named, "replicas offline (log directory failed)");
        }
        self.execute(controller, commands).await
    }
}
