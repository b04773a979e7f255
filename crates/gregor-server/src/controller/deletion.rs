//! Topic deletion as Kafka's controller does it: DeleteTopics (on any
//! broker) creates `/admin/delete_topics/<t>`; the controller takes the
//! topic's partitions out of its care and tells every live broker to stop
//! and delete them (StopReplica, leader epoch -2; a broker without a
//! replica just forgets the topic). Once every broker that holds a replica
//! has done so, the topic's nodes and the marker go. A replica's broker
//! that was down deletes when it returns; until then the marker stays (and
//! a new controller starts over from it).

use std::collections::BTreeSet;

use gregor_coord::CoordError;
use gregor_log::TopicPartition;
use gregor_replication::Controller;

use super::requests::{self, BrokerRequest, StopMode};
use super::ActiveController;

/// A topic being deleted.
#[derive(Debug, Clone)]
pub(super) struct Deletion {
    /// Its partitions.
    partitions: Vec<TopicPartition>,
    /// The brokers holding a replica that have not deleted it yet.
    pending: BTreeSet<i32>,
}

impl ActiveController {
    /// Starts deleting the topics marked for deletion that are not being
    /// deleted yet; a marker of a topic that is gone is removed.
    pub(super) async fn deletions_requested(
        &mut self,
        controller: &mut Controller<TopicPartition>,
    ) -> Result<(), CoordError> {
        let marked = self.meta().topics_marked_for_deletion().await?;
        for topic in marked {
            if self.deleting.contains_key(&topic) {
                continue;
            }
            let (partitions, pending) = take_topic(controller, &topic);
            if partitions.is_empty() && !self.topics.contains_key(&topic) {
                tracing::info!(%topic, "deletion asked for a topic that is gone: marker removed");
                self.meta().delete_topic(&topic).await?;
                continue;
            }
            tracing::info!(%topic, holders = ?pending, "deleting topic");
            self.deleting.insert(topic.clone(), Deletion { partitions, pending });
            let live: Vec<i32> = self.registrations.keys().copied().collect();
            for broker in live {
                self.stop_deleted(&topic, broker);
            }
        }
        self.finish_deletions().await
    }

    /// Asks `broker` to delete `topic`'s replicas (or just forget the
    /// topic); its answer counts once accepted.
    fn stop_deleted(&mut self, topic: &str, broker: i32) {
        let Some(deletion) = self.deleting.get(topic) else {
            return;
        };
        let request = self.deletion_request(broker, &deletion.partitions);
        let (deleted, topic) = (self.deleted.0.clone(), topic.to_string());
        let accepted = Box::new(move || {
            let _ = deleted.send((topic, broker));
        });
        self.send_then(broker, request, Some(accepted));
    }

    /// StopReplica deleting a deleted topic's `partitions` on `broker`.
    pub(super) fn deletion_request(&self, broker: i32, partitions: &[TopicPartition]) -> BrokerRequest {
        let stops: Vec<(TopicPartition, i32)> = partitions.iter().map(|tp| (tp.clone(), -2)).collect();
        requests::stop_replica(
            self.local(),
            self.epoch,
            self.broker_epoch(broker),
            &stops,
            StopMode::DeleteTopic,
        )
    }

    /// A broker deleted a topic's replicas.
    pub(super) async fn replicas_deleted(&mut self, topic: String, broker: i32) -> Result<(), CoordError> {
        if let Some(deletion) = self.deleting.get_mut(&topic) {
            deletion.pending.remove(&broker);
        }
        self.finish_deletions().await
    }

    /// Brokers back (or new): those that still hold replicas of a topic
    /// being deleted are asked again.
    pub(super) fn resume_deletions(&mut self, brokers: &[i32]) {
        let asks: Vec<(String, i32)> = self
            .deleting
            .iter()
            .flat_map(|(topic, d)| {
                brokers
                    .iter()
                    .filter(|b| d.pending.contains(b))
                    .map(|&b| (topic.clone(), b))
            })
            .collect();
        for (topic, broker) in asks {
            self.stop_deleted(&topic, broker);
        }
    }

    /// Whether `topic` is being deleted (its partitions must not come back
    /// from the rescan of the topics' nodes meanwhile).
    pub(super) fn is_deleting(&self, topic: &str) -> bool {
        self.deleting.contains_key(topic)
    }

    /// Removes the nodes of every topic all of whose replicas are deleted.
    async fn finish_deletions(&mut self) -> Result<(), CoordError> {
        let done: Vec<String> = self
            .deleting
            .iter()
            .filter(|(_, d)| d.pending.is_empty())
            .map(|(t, _)| t.clone())
            .collect();
        for topic in done {
            self.meta().delete_topic(&topic).await?;
            self.deleting.remove(&topic);
            self.topics.remove(&topic);
            tracing::info!(%topic, "topic deleted");
        }
        Ok(())
    }
}

/// Takes `topic`'s partitions out of the controller's care; returns them
/// and the brokers holding their replicas.
pub(super) fn take_topic(
    controller: &mut Controller<TopicPartition>,
    topic: &str,
) -> (Vec<TopicPartition>, BTreeSet<i32>) {
    let partitions: Vec<TopicPartition> = controller
        .partitions()
        .keys()
        .filter(|tp| tp.topic == topic)
        .cloned()
        .collect();
    let holders = partitions
        .iter()
        .filter_map(|tp| controller.partitions().get(tp))
        .flat_map(|r| r.replicas.iter().copied())
        .collect();
    for tp in &partitions {
        controller.partition_removed(tp);
    }
    (partitions, holders)
}
