//! What administrators ask of the controller: reassignments (through
//! AlterPartitionReassignments or Kafka's `/admin/reassign_partitions`
//! node), their listing, and leader elections (ElectLeaders). Each is
//! decided by gregor-replication's [`Controller`] and carried out like any
//! other change: states and assignments written, then brokers told.

use gregor_broker::{ControllerAsk, PartitionOutcome, ReassignmentListing};
use gregor_coord::CoordError;
use gregor_log::TopicPartition;
use gregor_replication::{Controller, ElectionError, ElectionKind, ReassignmentError};
use kafka_protocol::error::ResponseError;

use super::ActiveController;

type Ctl = Controller<TopicPartition>;

impl ActiveController {
    /// Serves one ask from the inbox.
    pub(super) async fn serve(&mut self, controller: &mut Ctl, ask: ControllerAsk) -> Result<(), CoordError> {
        match ask {
            ControllerAsk::Shutdown(ask) => self.controlled_shutdown(controller, ask).await,
            ControllerAsk::Reassign { partitions, reply } => {
                let outcomes = self.reassign(controller, partitions).await?;
                let _ = reply.send(Ok(outcomes));
                Ok(())
            }
            ControllerAsk::ListReassignments { partitions, reply } => {
                let _ = reply.send(Ok(list(controller, partitions)));
                Ok(())
            }
            ControllerAsk::Elect {
                kind,
                partitions,
                reply,
            } => {
                let outcomes = self.elect(controller, kind, partitions).await?;
                let _ = reply.send(Ok(outcomes));
                Ok(())
            }
        }
    }

    /// Starts (replaces, cancels) reassignments; each is recorded before
    /// the answer. The API takes precedence over the node: a partition
    /// asked here leaves `/admin/reassign_partitions`.
    async fn reassign(
        &mut self,
        controller: &mut Ctl,
        partitions: Vec<(TopicPartition, Option<Vec<i32>>)>,
    ) -> Result<Vec<PartitionOutcome>, CoordError> {
        let mut outcomes = Vec::new();
        let mut commands = Vec::new();
        for (tp, target) in partitions {
            tracing::info!(partition = %tp, ?target, "reassignment asked");
            match controller.reassign(&tp, target) {
                Ok(more) => {
                    commands.extend(more);
                    self.meta().reassignment_done(&tp.topic, tp.partition as i32).await?;
                    outcomes.push((tp, Ok(())));
                }
                Err(e) => outcomes.push((tp, Err(reassignment_error(e)))),
            }
        }
        self.execute(controller, commands).await?;
        Ok(outcomes)
    }

    /// Starts what `/admin/reassign_partitions` asks that is not under way
    /// yet; drops from the node what is refused or already done.
    pub(super) async fn zk_reassignments(&mut self, controller: &mut Ctl) -> Result<(), CoordError> {
        let Some((mut node, _)) = self.meta().reassign_partitions().await? else {
            return Ok(());
        };
        let ongoing = controller.reassignments();
        let mut commands = Vec::new();
        let mut finished = Vec::new();
        for asked in &node.partitions {
            let Ok(p) = u32::try_from(asked.partition) else {
                finished.push((asked.topic.clone(), asked.partition));
                continue;
            };
            let tp = TopicPartition::new(&asked.topic, p);
            let under_way = ongoing
                .iter()
                .any(|(q, replicas, r)| *q == tp && r.target(replicas) == asked.replicas);
            if under_way {
                continue;
            }
            let done = controller
                .partitions()
                .get(&tp)
                .is_some_and(|r| r.replicas == asked.replicas && !ongoing.iter().any(|(q, _, _)| *q == tp));
            if done {
                finished.push((asked.topic.clone(), asked.partition));
                continue;
            }
            tracing::info!(partition = %tp, target = ?asked.replicas, "reassignment asked through /admin/reassign_partitions");
            match controller.reassign(&tp, Some(asked.replicas.clone())) {
                Ok(more) => commands.extend(more),
                Err(e) => {
                    tracing::warn!(partition = %tp, "reassignment refused: {e:?}");
                    finished.push((asked.topic.clone(), asked.partition));
                }
            }
        }
        if !finished.is_empty() {
            node.partitions
                .retain(|p| !finished.iter().any(|(t, q)| p.topic == *t && p.partition == *q));
            self.meta().set_reassign_partitions(&node).await?;
        }
        self.execute(controller, commands).await
    }

    /// Holds elections; each new state is written before the answer.
    async fn elect(
        &mut self,
        controller: &mut Ctl,
        kind: ElectionKind,
        partitions: Option<Vec<TopicPartition>>,
    ) -> Result<Vec<PartitionOutcome>, CoordError> {
        let partitions = partitions.unwrap_or_else(|| controller.partitions().keys().cloned().collect());
        let mut outcomes = Vec::new();
        let mut commands = Vec::new();
        for tp in partitions {
            match controller.elect(&tp, kind) {
                Ok(more) => {
                    commands.extend(more);
                    outcomes.push((tp, Ok(())));
                }
                Err(e) => {
                    let error = election_error(&tp, kind, e);
                    outcomes.push((tp, Err(error)));
                }
            }
        }
        self.execute(controller, commands).await?;
        Ok(outcomes)
    }

    /// Writes one partition's assignment into its topic's node (read,
    /// changed, written back). False when the topic is gone.
    pub(super) async fn write_assignment(
        &mut self,
        tp: &TopicPartition,
        replicas: Vec<i32>,
        adding: Vec<i32>,
        removing: Vec<i32>,
    ) -> Result<bool, CoordError> {
        let meta = self.meta();
        let mut assignment = match meta.topic_assignment(&tp.topic).await {
            Ok(a) => a,
            Err(CoordError::NoNode(_)) => return Ok(false),
            Err(e) => return Err(e),
        };
        let key = tp.partition.to_string();
        tracing::info!(partition = %tp, ?replicas, ?adding, ?removing, "assignment written");
        assignment.partitions.insert(key.clone(), replicas);
        for (map, replicas) in [
            (&mut assignment.adding_replicas, adding),
            (&mut assignment.removing_replicas, removing),
        ] {
            if replicas.is_empty() {
                map.remove(&key);
            } else {
                map.insert(key.clone(), replicas);
            }
        }
        meta.set_topic_assignment(&tp.topic, &assignment).await?;
        Ok(true)
    }
}

/// The reassignments in progress among `partitions` (`None`: all).
fn list(controller: &Ctl, partitions: Option<Vec<TopicPartition>>) -> Vec<ReassignmentListing> {
    controller
        .reassignments()
        .into_iter()
        .filter(|(tp, _, _)| partitions.as_ref().is_none_or(|asked| asked.contains(tp)))
        .collect()
}

/// Kafka's error and message for a refused reassignment.
fn reassignment_error(e: ReassignmentError) -> (ResponseError, Option<String>) {
    match e {
        ReassignmentError::UnknownPartition => (
            ResponseError::UnknownTopicOrPartition,
            Some("The partition does not exist.".into()),
        ),
        ReassignmentError::NoReassignmentInProgress => (ResponseError::NoReassignmentInProgress, None),
        ReassignmentError::InvalidReplicas(message) => (ResponseError::InvalidReplicaAssignment, Some(message)),
        ReassignmentError::Busy => (ResponseError::ReassignmentInProgress, None),
    }
}

/// Kafka's error and message for an election not held.
fn election_error(tp: &TopicPartition, kind: ElectionKind, e: ElectionError) -> (ResponseError, Option<String>) {
    let strategy = match kind {
        ElectionKind::Preferred => "PreferredReplicaPartitionLeaderElectionStrategy",
        ElectionKind::Unclean => "OfflinePartitionLeaderElectionStrategy(true)",
    };
    let failed = || {
        Some(format!(
            "Failed to elect leader for partition {tp} under strategy {strategy}"
        ))
    };
    match e {
        ElectionError::UnknownPartition => (
            ResponseError::UnknownTopicOrPartition,
            Some("The partition does not exist.".into()),
        ),
        ElectionError::NotNeeded => (ResponseError::ElectionNotNeeded, None),
        ElectionError::PreferredLeaderNotAvailable => (ResponseError::PreferredLeaderNotAvailable, failed()),
        ElectionError::EligibleLeadersNotAvailable => (ResponseError::EligibleLeadersNotAvailable, failed()),
        ElectionError::Busy => (ResponseError::RequestTimedOut, None),
    }
}
