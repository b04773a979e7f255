//! Carrying out the controller's commands: partition states written to
//! coordination in fenced batches (one transaction for up to
//! [`STATES_PER_WRITE`] partitions instead of one each — a broker failure
//! touching every partition it holds is a few writes, not thousands), and
//! the requests to brokers merged per broker ([`RequestBatch`]) and sent
//! once the event's writes are done.

use std::collections::{BTreeMap, VecDeque};

use gregor_coord::kafka::StateWrite;
use gregor_coord::CoordError;
use gregor_log::TopicPartition;
use gregor_replication::{Controller, ControllerCommand, LeaderAndIsr};

use super::batch::RequestBatch;
use super::requests::{self, StopMode};
use super::ActiveController;
use crate::coordination::{from_recorded, to_recorded};

type Command = ControllerCommand<TopicPartition>;

/// Partition states written in one coordination transaction at most (about
/// 200 bytes each: well within ZooKeeper's 1 MB request limit).
const STATES_PER_WRITE: usize = 1000;

/// A partition state the controller is to write.
struct PendingWrite {
    partition: TopicPartition,
    state: LeaderAndIsr,
    expected_version: i32,
}

impl ActiveController {
    /// Carries out commands (and the ones their results lead to): state
    /// writes in batches, in the order coordination must see them, then
    /// the requests to brokers.
    pub(super) async fn execute(
        &mut self,
        controller: &mut Controller<TopicPartition>,
        commands: Vec<Command>,
    ) -> Result<(), CoordError> {
        let mut queue: VecDeque<_> = commands.into();
        let mut requests = RequestBatch::default();
        let mut writes = Vec::new();
        loop {
            let Some(command) = queue.pop_front() else {
                if writes.is_empty() {
                    break;
                }
                queue.extend(self.write_states(controller, std::mem::take(&mut writes)).await?);
                continue;
            };
            match command {
                ControllerCommand::WriteState {
                    partition,
                    state,
                    expected_version,
                } => writes.push(PendingWrite {
                    partition,
                    state,
                    expected_version,
                }),
                ControllerCommand::WriteAssignment {
                    partition,
                    replicas,
                    adding,
                    removing,
                } => {
                    // Coordination sees the states before it first.
                    queue.extend(self.write_states(controller, std::mem::take(&mut writes)).await?);
                    if self.write_assignment(&partition, replicas, adding, removing).await? {
                        queue.extend(controller.assignment_written(&partition));
                    }
                }
                ControllerCommand::ReassignmentCompleted { partition } => {
                    queue.extend(self.write_states(controller, std::mem::take(&mut writes)).await?);
                    tracing::info!(%partition, "reassignment completed");
                    self.meta()
                        .reassignment_done(&partition.topic, partition.partition as i32)
                        .await?;
                }
                request => {
                    requests.add(request);
                }
            }
        }
        for request in requests.drain() {
            self.send_command(controller, request);
        }
        Ok(())
    }

    /// Writes partition states, new ones one by one (their nodes are
    /// created) and changed ones in fenced batches; a batch refused because
    /// a node moved on (a leader's ISR write) is written one by one, the
    /// moved node read again. Returns the commands the results lead to.
    async fn write_states(
        &mut self,
        controller: &mut Controller<TopicPartition>,
        writes: Vec<PendingWrite>,
    ) -> Result<Vec<Command>, CoordError> {
        let mut out = Vec::new();
        let (created, changed): (Vec<_>, Vec<_>) = writes.into_iter().partition(|w| w.expected_version < 0);
        for write in &created {
            out.extend(self.write_state(controller, write).await?);
        }
        for chunk in changed.chunks(STATES_PER_WRITE) {
            let recorded: Vec<_> = chunk.iter().map(|w| to_recorded(&w.state)).collect();
            let batch: Vec<StateWrite<'_>> = chunk
                .iter()
                .zip(&recorded)
                .map(|(w, state)| StateWrite {
                    topic: &w.partition.topic,
                    partition: w.partition.partition as i32,
                    state,
                    expected_version: w.expected_version,
                })
                .collect();
            match self.meta().write_partition_states(&batch, self.epoch_version).await {
                Ok(versions) => {
                    for (write, version) in chunk.iter().zip(versions) {
                        out.extend(self.state_written(controller, write, version));
                    }
                }
                Err(CoordError::BadVersion(_) | CoordError::NodeExists(_)) => {
                    for write in chunk {
                        out.extend(self.write_state(controller, write).await?);
                    }
                }
                Err(e) => return Err(self.write_failed(e).await),
            }
        }
        Ok(out)
    }

    /// Writes one partition state (creating its node when new).
    async fn write_state(
        &mut self,
        controller: &mut Controller<TopicPartition>,
        write: &PendingWrite,
    ) -> Result<Vec<Command>, CoordError> {
        let recorded = to_recorded(&write.state);
        let expected = (write.expected_version >= 0).then_some(write.expected_version);
        let p = write.partition.partition as i32;
        let written = self
            .meta()
            .write_partition_state(&write.partition.topic, p, &recorded, self.epoch_version, expected)
            .await;
        match written {
            Ok(version) => Ok(self.state_written(controller, write, version)),
            Err(CoordError::BadVersion(_) | CoordError::NodeExists(_)) => {
                // Changed under us (a leader's ISR write): read and retry.
                let (state, version) = self.meta().partition_state(&write.partition.topic, p).await?;
                Ok(controller.state_write_refused(&write.partition, from_recorded(&state), version))
            }
            Err(e) => Err(self.write_failed(e).await),
        }
    }

    fn state_written(
        &self,
        controller: &mut Controller<TopicPartition>,
        write: &PendingWrite,
        version: i32,
    ) -> Vec<Command> {
        let (partition, state) = (&write.partition, &write.state);
        tracing::info!(%partition, leader = state.leader, epoch = state.leader_epoch, isr = ?state.isr, "partition state written");
        controller.state_written(partition, state.clone(), version)
    }

    /// A state write failed otherwise: fenced by a newer controller, or
    /// coordination's own error.
    async fn write_failed(&self, e: CoordError) -> CoordError {
        match self.meta().controller_epoch().await {
            Ok(epoch) if epoch.map(|(_, v)| v) != Some(self.epoch_version) => {
                CoordError::Other("a newer controller took over".into())
            }
            Ok(_) => e,
            Err(read) => read,
        }
    }

    /// Sends one request command to its broker.
    fn send_command(&mut self, controller: &Controller<TopicPartition>, command: Command) {
        match command {
            ControllerCommand::LeaderAndIsr {
                broker,
                controller_epoch,
                partitions,
            } => {
                let request = requests::leader_and_isr(
                    self.local(),
                    controller_epoch,
                    self.broker_epoch(broker),
                    &partitions,
                    &self.registrations,
                    &self.broker.config().inter_broker_listener,
                );
                self.send(broker, request);
            }
            ControllerCommand::StopReplica {
                broker,
                controller_epoch,
                partitions,
                delete,
            } => {
                let stops: Vec<(TopicPartition, i32)> = partitions
                    .into_iter()
                    .map(|(tp, record)| (tp, record.state.leader_epoch))
                    .collect();
                let request = requests::stop_replica(
                    self.local(),
                    controller_epoch,
                    self.broker_epoch(broker),
                    &stops,
                    if delete {
                        StopMode::DeleteReplica
                    } else {
                        StopMode::Keep
                    },
                );
                match self.settling.as_mut() {
                    Some(settling) if !delete => settling.hold(broker, request),
                    _ => self.send(broker, request),
                }
            }
            ControllerCommand::UpdateMetadata {
                broker,
                controller_epoch,
                live,
                partitions,
            } => {
                let offline: BTreeMap<TopicPartition, Vec<i32>> = partitions
                    .iter()
                    .map(|(tp, _)| (tp.clone(), controller.offline_replicas(tp)))
                    .filter(|(_, brokers)| !brokers.is_empty())
                    .collect();
                let request = requests::update_metadata(
                    self.local(),
                    controller_epoch,
                    self.broker_epoch(broker),
                    (&live, &offline),
                    &partitions,
                    &self.registrations,
                );
                self.send(broker, request);
            }
            ControllerCommand::WriteState { .. }
            | ControllerCommand::WriteAssignment { .. }
            | ControllerCommand::ReassignmentCompleted { .. } => {
                tracing::warn!("a coordination write among the requests to brokers: skipped");
            }
        }
    }
}
