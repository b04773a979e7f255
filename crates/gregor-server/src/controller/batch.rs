//! The requests one controller event sends, merged per broker as Kafka's
//! `ControllerBrokerRequestBatch` merges them: a broker failure that moves
//! 1,000 leaderships sends each broker one LeaderAndIsr, one
//! UpdateMetadata and one StopReplica of each kind, not one of each per
//! partition.
//!
//! Per broker and partition the last command wins (a LeaderAndIsr after a
//! StopReplica for the same replica replaces it, and the other way round),
//! which leaves the broker where the commands in order would have; the
//! requests go out LeaderAndIsr first, then UpdateMetadata, then
//! StopReplica, Kafka's order.

use std::collections::BTreeMap;

use gregor_log::TopicPartition;
use gregor_replication::{BrokerId, ControllerCommand, PartitionRecord};

type Command = ControllerCommand<TopicPartition>;

/// What one broker is to be sent.
#[derive(Default)]
struct BrokerRequests {
    leader_and_isr: BTreeMap<TopicPartition, PartitionRecord>,
    /// The live brokers as the last UpdateMetadata said, and its partitions.
    update_metadata: Option<(Vec<BrokerId>, BTreeMap<TopicPartition, PartitionRecord>)>,
    /// Partition → (record, whether its log goes too).
    stop_replica: BTreeMap<TopicPartition, (PartitionRecord, bool)>,
}

/// LeaderAndIsr, UpdateMetadata and StopReplica commands collected while
/// an event is handled, sent merged when it is done.
#[derive(Default)]
pub(super) struct RequestBatch {
    controller_epoch: i32,
    brokers: BTreeMap<BrokerId, BrokerRequests>,
}

impl RequestBatch {
    /// Takes a request command (LeaderAndIsr, UpdateMetadata,
    /// StopReplica); any other command is left out (`false`).
    pub(super) fn add(&mut self, command: Command) -> bool {
        match command {
            Command::LeaderAndIsr {
                broker,
                controller_epoch,
                partitions,
            } => {
                let requests = self.to(broker, controller_epoch);
                for (tp, record) in partitions {
                    requests.stop_replica.remove(&tp);
                    requests.leader_and_isr.insert(tp, record);
                }
            }
            Command::StopReplica {
                broker,
                controller_epoch,
                partitions,
                delete,
            } => {
                let requests = self.to(broker, controller_epoch);
                for (tp, record) in partitions {
                    requests.leader_and_isr.remove(&tp);
                    requests.stop_replica.insert(tp, (record, delete));
                }
            }
            Command::UpdateMetadata {
                broker,
                controller_epoch,
                live,
                partitions,
            } => {
                let requests = self.to(broker, controller_epoch);
                let (known_live, known) = requests.update_metadata.get_or_insert_with(Default::default);
                *known_live = live;
                known.extend(partitions);
            }
            _ => return false,
        }
        true
    }

    fn to(&mut self, broker: BrokerId, controller_epoch: i32) -> &mut BrokerRequests {
        self.controller_epoch = self.controller_epoch.max(controller_epoch);
        self.brokers.entry(broker).or_default()
    }

    /// The merged commands, each broker's in Kafka's order; the batch is
    /// left empty.
    pub(super) fn drain(&mut self) -> Vec<Command> {
        let controller_epoch = self.controller_epoch;
        let mut out = Vec::new();
        for (broker, requests) in std::mem::take(&mut self.brokers) {
            if !requests.leader_and_isr.is_empty() {
                out.push(Command::LeaderAndIsr {
                    broker,
                    controller_epoch,
                    partitions: requests.leader_and_isr.into_iter().collect(),
                });
            }
            if let Some((live, partitions)) = requests.update_metadata {
                out.push(Command::UpdateMetadata {
                    broker,
                    controller_epoch,
                    live,
                    partitions: partitions.into_iter().collect(),
                });
            }
            for delete in [false, true] {
                let partitions: Vec<_> = requests
                    .stop_replica
                    .iter()
                    .filter(|(_, (_, d))| *d == delete)
                    .map(|(tp, (record, _))| (tp.clone(), record.clone()))
                    .collect();
                if !partitions.is_empty() {
                    out.push(Command::StopReplica {
                        broker,
                        controller_epoch,
                        partitions,
                        delete,
                    });
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use gregor_replication::LeaderAndIsr;

    use super::*;

    fn record(leader: BrokerId, leader_epoch: i32) -> PartitionRecord {
        PartitionRecord {
            replicas: vec![1, 2, 3],
            state: LeaderAndIsr {
                leader,
                leader_epoch,
                isr: vec![1, 2, 3],
                controller_epoch: 1,
            },
            version: leader_epoch,
        }
    }

    fn tp(p: u32) -> TopicPartition {
        TopicPartition::new("t", p)
    }

    fn leader_and_isr(broker: BrokerId, p: u32, epoch: i32) -> Command {
        Command::LeaderAndIsr {
            broker,
            controller_epoch: 1,
            partitions: vec![(tp(p), record(1, epoch))],
        }
    }

    fn update_metadata(broker: BrokerId, p: u32, epoch: i32, live: Vec<BrokerId>) -> Command {
        Command::UpdateMetadata {
            broker,
            controller_epoch: 1,
            live,
            partitions: vec![(tp(p), record(1, epoch))],
        }
    }

    fn stop(broker: BrokerId, p: u32, delete: bool) -> Command {
        Command::StopReplica {
            broker,
            controller_epoch: 1,
            partitions: vec![(tp(p), record(1, 9))],
            delete,
        }
    }

    /// A request's kind, broker, and partitions with their leader epochs.
    type Shape = (&'static str, BrokerId, Vec<(u32, i32)>);

    fn shape(commands: &[Command]) -> Vec<Shape> {
        let parts = |ps: &Vec<(TopicPartition, PartitionRecord)>| {
            ps.iter().map(|(tp, r)| (tp.partition, r.state.leader_epoch)).collect()
        };
        commands
            .iter()
            .map(|c| match c {
                Command::LeaderAndIsr { broker, partitions, .. } => ("leader_and_isr", *broker, parts(partitions)),
                Command::UpdateMetadata { broker, partitions, .. } => ("update_metadata", *broker, parts(partitions)),
                Command::StopReplica {
                    broker,
                    partitions,
                    delete,
                    ..
                } => (if *delete { "delete" } else { "stop" }, *broker, parts(partitions)),
                _ => ("other", -1, Vec::new()),
            })
            .collect()
    }

    #[test]
    fn one_request_of_each_kind_per_broker_in_kafkas_order() {
        let mut batch = RequestBatch::default();
        for p in 0..3 {
            for broker in [1, 2] {
                assert!(batch.add(leader_and_isr(broker, p, 1)));
            }
            for broker in [1, 2, 3] {
                assert!(batch.add(update_metadata(broker, p, 1, vec![1, 2, 3])));
            }
        }
        batch.add(stop(3, 7, true));
        batch.add(stop(3, 8, false));
        assert_eq!(
            shape(&batch.drain()),
            vec![
                ("leader_and_isr", 1, vec![(0, 1), (1, 1), (2, 1)]),
                ("update_metadata", 1, vec![(0, 1), (1, 1), (2, 1)]),
                ("leader_and_isr", 2, vec![(0, 1), (1, 1), (2, 1)]),
                ("update_metadata", 2, vec![(0, 1), (1, 1), (2, 1)]),
                ("update_metadata", 3, vec![(0, 1), (1, 1), (2, 1)]),
                ("stop", 3, vec![(8, 9)]),
                ("delete", 3, vec![(7, 9)]),
            ]
        );
        assert!(batch.drain().is_empty(), "drained");
    }

    #[test]
    fn the_last_command_for_a_replica_wins() {
        let mut batch = RequestBatch::default();
        batch.add(leader_and_isr(1, 0, 1));
        batch.add(leader_and_isr(1, 0, 2));
        batch.add(leader_and_isr(1, 1, 1));
        batch.add(stop(1, 1, false));
        batch.add(stop(1, 2, false));
        batch.add(leader_and_isr(1, 2, 3));
        batch.add(update_metadata(1, 0, 1, vec![1, 2]));
        batch.add(update_metadata(1, 0, 2, vec![1]));
        let drained = batch.drain();
        assert_eq!(
            shape(&drained),
            vec![
                ("leader_and_isr", 1, vec![(0, 2), (2, 3)]),
                ("update_metadata", 1, vec![(0, 2)]),
                ("stop", 1, vec![(1, 9)]),
            ]
        );
        // The live brokers are the last UpdateMetadata's.
        assert!(matches!(&drained[1], Command::UpdateMetadata { live, .. } if live == &vec![1]));
    }

    #[test]
    fn other_commands_are_left_out() {
        let mut batch = RequestBatch::default();
        let command = Command::ReassignmentCompleted { partition: tp(0) };
        assert!(!batch.add(command));
        assert!(batch.drain().is_empty());
    }
}
