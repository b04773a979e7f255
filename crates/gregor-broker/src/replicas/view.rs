//! The cluster view: what the controller last told this broker
//! (UpdateMetadata, and the leaders LeaderAndIsr names) — the brokers and
//! every partition's leadership, which Metadata and FindCoordinator answer
//! from.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use gregor_log::TopicPartition;
use gregor_replication::{BrokerId, PartitionRecord};

use super::ReplicaManager;

/// A broker as the cluster view knows it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BrokerEndpoint {
    /// Host of its inter-broker listener (brokers connect to it there).
    pub host: String,
    /// Port of its inter-broker listener.
    pub port: u16,
    /// `broker.rack`.
    pub rack: Option<String>,
    /// Every listener it advertises: name → (host, port). Empty when only
    /// the inter-broker endpoint is known (LeaderAndIsr's live leaders).
    pub listeners: BTreeMap<String, (String, u16)>,
}

impl BrokerEndpoint {
    /// Where a client connected through listener `name` reaches this
    /// broker (Kafka answers with the endpoints of the client's
    /// listener): `None` when the broker has no such listener. A broker
    /// known only by its inter-broker endpoint is given that one.
    pub fn for_listener(&self, name: &str) -> Option<(&str, u16)> {
        if self.listeners.is_empty() {
            return Some((self.host.as_str(), self.port));
        }
        self.listeners.get(name).map(|(h, p)| (h.as_str(), *p))
    }
}

/// What the controller last told this broker about the cluster
/// (UpdateMetadata): live brokers and every partition's leadership,
/// indexed by topic so that a topic's partitions are one lookup away.
#[derive(Debug, Clone, Default)]
pub struct ClusterView {
    /// The controller's id (-1: unknown).
    pub controller: BrokerId,
    /// Live brokers.
    pub brokers: BTreeMap<BrokerId, BrokerEndpoint>,
    /// Topic → its partitions (shared: an update copies only the topics it
    /// changes, not the view).
    pub(super) topics: HashMap<String, Arc<TopicView>>,
}

/// One topic's partitions as the controller last told this broker.
#[derive(Debug, Clone, Default)]
pub struct TopicView {
    /// Partition number → replicas, leader, epoch, ISR.
    pub partitions: BTreeMap<u32, PartitionRecord>,
    /// Partition number → its replicas on offline brokers or in failed log
    /// directories, as the controller last said (absent: none).
    pub offline_replicas: BTreeMap<u32, Vec<BrokerId>>,
}

impl ClusterView {
    /// A topic's partitions (`None`: the controller named none of them).
    pub fn topic(&self, name: &str) -> Option<&TopicView> {
        self.topics.get(name).map(|t| &**t).filter(|t| !t.partitions.is_empty())
    }

    /// A partition's leadership.
    pub fn partition(&self, tp: &TopicPartition) -> Option<&PartitionRecord> {
        self.topics.get(&tp.topic)?.partitions.get(&tp.partition)
    }

    /// How many partitions the view knows.
    pub fn partition_count(&self) -> usize {
        self.topics.values().map(|t| t.partitions.len()).sum()
    }

    fn topic_mut(&mut self, name: &str) -> &mut TopicView {
        if !self.topics.contains_key(name) {
            self.topics.insert(name.to_string(), Arc::default());
        }
        Arc::make_mut(self.topics.get_mut(name).expect("inserted above"))
    }
}

impl ReplicaManager {
    /// Replaces the cluster view (UpdateMetadata): `brokers` are the live
    /// ones; `partitions` are merged in.
    pub fn update_view(
        &self,
        controller: BrokerId,
        brokers: BTreeMap<BrokerId, BrokerEndpoint>,
        partitions: impl IntoIterator<Item = (TopicPartition, PartitionRecord)>,
    ) {
        let mut guard = self.view.write();
        let view = Arc::make_mut(&mut guard);
        view.controller = controller;
        view.brokers = brokers;
        for (tp, record) in partitions {
            view.topic_mut(&tp.topic).partitions.insert(tp.partition, record);
        }
    }

    /// Records the controller's offline replicas of each partition
    /// (UpdateMetadata; an empty list: all online).
    pub fn update_offline_replicas(&self, partitions: impl IntoIterator<Item = (TopicPartition, Vec<BrokerId>)>) {
        let mut guard = self.view.write();
        let view = Arc::make_mut(&mut guard);
        for (tp, offline) in partitions {
            let partition = tp.partition;
            if offline.is_empty() {
                // Nothing to forget: no copy of the topic.
                if view
                    .topics
                    .get(&tp.topic)
                    .is_some_and(|t| t.offline_replicas.contains_key(&partition))
                {
                    view.topic_mut(&tp.topic).offline_replicas.remove(&partition);
                }
            } else {
                view.topic_mut(&tp.topic).offline_replicas.insert(partition, offline);
            }
        }
    }

    /// Learns a broker's endpoint (LeaderAndIsr names the leaders) unless
    /// the view has it.
    pub fn learn_endpoint(&self, id: BrokerId, endpoint: BrokerEndpoint) {
        let mut guard = self.view.write();
        if !guard.brokers.contains_key(&id) {
            Arc::make_mut(&mut guard).brokers.insert(id, endpoint);
        }
    }

    /// Forgets a deleted topic's partitions in the view.
    pub fn forget_topic(&self, topic: &str) {
        let mut guard = self.view.write();
        let view = Arc::make_mut(&mut guard);
        view.topics.remove(topic);
    }

    /// The cluster view: a snapshot shared, not copied (a later update
    /// leaves it as it is).
    pub fn view(&self) -> Arc<ClusterView> {
        self.view.read().clone()
    }

    /// A partition's leadership as the view has it.
    pub fn partition_record(&self, tp: &TopicPartition) -> Option<PartitionRecord> {
        self.view.read().partition(tp).cloned()
    }

    /// Whether a replica on broker `id` may join an ISR: the broker is
    /// live as the controller last said (an empty view — no UpdateMetadata
    /// yet — knows of no broker to refuse).
    pub(crate) fn isr_eligible(&self, id: BrokerId) -> bool {
        let view = self.view.read();
        view.brokers.is_empty() || view.brokers.contains_key(&id)
    }

    /// A live broker's endpoint.
    pub fn endpoint(&self, id: BrokerId) -> Option<BrokerEndpoint> {
        self.view.read().brokers.get(&id).cloned()
    }
}

#[cfg(test)]
mod tests {
    use gregor_log::SystemClock;
    use gregor_replication::{LeaderAndIsr, ReplicaSettings};

    use super::*;

    fn record(leader: BrokerId) -> PartitionRecord {
        PartitionRecord {
            replicas: vec![1, 2],
            state: LeaderAndIsr {
                leader,
                leader_epoch: 1,
                isr: vec![1, 2],
                controller_epoch: 1,
            },
            version: 0,
        }
    }

    #[test]
    fn a_view_taken_stays_as_it_was_and_the_next_one_has_the_update() {
        let manager = ReplicaManager::new(1, ReplicaSettings::default(), Arc::new(SystemClock));
        let tp = TopicPartition::new("t", 0);
        manager.update_view(
            1,
            BTreeMap::from([(1, BrokerEndpoint::default())]),
            [(tp.clone(), record(1))],
        );
        let before = manager.view();
        // No update between: the same snapshot, not a copy.
        assert!(Arc::ptr_eq(&before, &manager.view()));

        manager.update_view(2, BTreeMap::new(), [(tp.clone(), record(2))]);
        manager.update_offline_replicas([(tp.clone(), vec![2])]);
        manager.learn_endpoint(3, BrokerEndpoint::default());
        assert_eq!(before.controller, 1);
        assert_eq!(before.partition(&tp).unwrap().state.leader, 1);
        assert!(before.brokers.contains_key(&1) && !before.brokers.contains_key(&3));
        assert!(before.topic("t").unwrap().offline_replicas.is_empty());

        let after = manager.view();
        assert_eq!(after.controller, 2);
        assert_eq!(after.partition(&tp).unwrap().state.leader, 2);
        assert_eq!(after.topic("t").unwrap().offline_replicas[&0], vec![2]);
        assert!(after.brokers.contains_key(&3) && !after.brokers.contains_key(&1));

        manager.forget_topic("t");
        assert_eq!(manager.view().partition_count(), 0);
        assert!(manager.view().topic("t").is_none());
        assert_eq!(after.partition_count(), 1);
    }
}
