//! The controller's driver: runs for controller through coordination and,
//! while it holds the office, feeds gregor-replication's [`Controller`]
//! with what coordination shows (brokers registering and leaving, topics
//! created and deleted, leaders' ISR changes) and carries out its commands
//! — partition states written with compare-and-set fenced by
//! `/controller_epoch`, LeaderAndIsr / UpdateMetadata / StopReplica sent to
//! the brokers (to this broker in process, to the others over the Kafka
//! protocol, in order, retried until they answer or leave).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use gregor_broker::Broker;
use gregor_coord::kafka::{
    BrokerRegistration, KafkaMetadata, CONTROLLER, DELETE_TOPICS, ISR_CHANGE_NOTIFICATION, LOG_DIR_EVENT_NOTIFICATION,
    REASSIGN_PARTITIONS, TOPICS,
};
use gregor_coord::{CoordError, Coordinator, SessionState};
use gregor_log::TopicPartition;
use gregor_replication::{Controller, PartitionRecord, Reassignment};
use tokio::sync::{mpsc, watch};

use crate::coordination::from_recorded;

mod admin;
mod batch;
mod deletion;
mod delivery;
mod execute;
mod log_dirs;
mod requests;
mod shutdown;

pub(crate) use delivery::exchange;
pub(crate) use requests::inter_broker_endpoint;
use requests::BrokerRequest;

/// What [`ActiveController::read_topics`] finds: partitions with a state,
/// every assignment, and the reassignments in progress.
type TopicsFound = (
    BTreeMap<TopicPartition, PartitionRecord>,
    Vec<(TopicPartition, Vec<i32>)>,
    Vec<(TopicPartition, Reassignment)>,
);

/// A broker's confirmation that it deleted a topic's replicas: (topic,
/// broker).
type ReplicasDeleted = (String, i32);

/// Longer than any interval that matters (tokio's timer caps durations).
const YEAR: Duration = Duration::from_secs(365 * 24 * 3600);

/// How often the controller re-reads topics even without a watch firing
/// (partition counts grown by CreatePartitions change a topic's data).
const RESCAN: Duration = Duration::from_secs(2);

/// What the controller is configured to do.
#[derive(Debug, Clone)]
pub struct Settings {
    /// How the controller reaches the brokers (the inter-broker
    /// listener's TLS and SASL).
    pub security: gregor_client::ClientSecurity,
    /// `unclean.leader.election.enable`.
    pub unclean: bool,
    /// Kafka's auto leader rebalance: how often, and the imbalance (in
    /// percent of a broker's preferred partitions) that triggers it.
    pub rebalance: Option<(Duration, u32)>,
}

impl Settings {
    /// The settings a broker's configuration gives.
    pub fn of(config: &crate::config::ServerConfig) -> Self {
        Self {
            security: gregor_client::ClientSecurity::default(),
            unclean: config.unclean_leader_election_enable,
            rebalance: config.auto_leader_rebalance_enable.then(|| {
                (
                    Duration::from_secs(config.leader_imbalance_check_interval_seconds.max(1)),
                    config.leader_imbalance_per_broker_percentage,
                )
            }),
        }
    }
}

/// The controller election loop; stops when `stop` turns true.
pub fn spawn(
    coordinator: Arc<dyn Coordinator>,
    broker: Arc<Broker>,
    settings: Settings,
    mut stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let id = broker.config().node_id;
        loop {
            if *stop.borrow() {
                return;
            }
            let meta = KafkaMetadata::new(coordinator.as_ref());
            match meta.try_become_controller(id).await {
                Ok(Some(epoch)) => {
                    tracing::info!(epoch, "this broker is the controller");
                    let active = ActiveController::new(coordinator.clone(), broker.clone(), epoch, settings.clone());
                    tokio::select! {
                        outcome = active.run() => match outcome {
                            Ok(()) => tracing::info!("no longer the controller"),
                            Err(e) => {
                                // Still holding the office, it would wait
                                // for its own node to go: step down, and a
                                // new election follows.
                                tracing::warn!("controller stopped: {e}");
                                match meta.resign_controller().await {
                                    Ok(true) => tracing::info!("resigned as controller"),
                                    Ok(false) => {}
                                    Err(e) => tracing::warn!("resigning as controller: {e}"),
                                }
                            }
                        },
                        _ = stop.changed() => return,
                    }
                }
                Ok(None) => {
                    // Someone else leads: wait for /controller to go.
                    match coordinator.exists_and_watch(CONTROLLER).await {
                        Ok((Some(_), watch)) => {
                            tokio::select! {
                                _ = watch => {}
                                _ = stop.changed() => return,
                            }
                        }
                        Ok((None, _)) => {}
                        Err(e) => {
                            tracing::debug!("watching the controller: {e}");
                            tokio::time::sleep(Duration::from_millis(500)).await;
                        }
                    }
                }
                Err(e) => {
                    // Also while the coordination session expired: the
                    // coordinator opens a new one, and the broker runs
                    // again on it.
                    tracing::warn!("running for controller: {e}");
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                        _ = stop.changed() => return,
                    }
                }
            }
        }
    })
}

/// Closes the broker's controller inbox when the controller leaves office
/// (however `run` ends).
struct InboxCloser(Arc<Broker>);

impl Drop for InboxCloser {
    fn drop(&mut self) {
        self.0.controller_inbox().close();
    }
}

/// The controller while in active.
struct ActiveController {
    coordinator: Arc<dyn Coordinator>,
    broker: Arc<Broker>,
    epoch: i32,
    epoch_version: i32,
    settings: Settings,
    registrations: BTreeMap<i32, BrokerRegistration>,
    channels: BTreeMap<i32, mpsc::UnboundedSender<delivery::Outgoing>>,
    topics: BTreeMap<String, usize>,
    /// While a controlled shutdown's changes settle: what was sent, and
    /// the StopReplica held back until the cluster knows.
    settling: Option<shutdown::Settling>,
    /// Topics being deleted.
    deleting: BTreeMap<String, deletion::Deletion>,
    /// Brokers' confirmations that they deleted a topic's replicas.
    deleted: (
        mpsc::UnboundedSender<ReplicasDeleted>,
        mpsc::UnboundedReceiver<ReplicasDeleted>,
    ),
    /// Replicas brokers answered KAFKA_STORAGE_ERROR for.
    offline: (
        mpsc::UnboundedSender<log_dirs::OfflineReplicas>,
        mpsc::UnboundedReceiver<log_dirs::OfflineReplicas>,
    ),
}

impl ActiveController {
    fn new(coordinator: Arc<dyn Coordinator>, broker: Arc<Broker>, epoch: i32, settings: Settings) -> Self {
        Self {
            coordinator,
            broker,
            epoch,
            epoch_version: -1,
            settings,
            registrations: BTreeMap::new(),
            channels: BTreeMap::new(),
            topics: BTreeMap::new(),
            settling: None,
            deleting: BTreeMap::new(),
            deleted: mpsc::unbounded_channel(),
            offline: mpsc::unbounded_channel(),
        }
    }

    fn meta(&self) -> KafkaMetadata<'_> {
        KafkaMetadata::new(self.coordinator.as_ref())
    }

    fn local(&self) -> i32 {
        self.broker.config().node_id
    }

    async fn run(mut self) -> Result<(), CoordError> {
        // The office belongs to this session (`/controller` is its
        // ephemeral node): a new session — after an expiry — holds nothing.
        let session_id = self.coordinator.session_id();
        self.epoch_version = self
            .meta()
            .controller_epoch()
            .await?
            .map(|(_, v)| v)
            .ok_or_else(|| CoordError::Other("/controller_epoch vanished".into()))?;
        let (ids, mut brokers_watch) = self
            .coordinator
            .children_and_watch(gregor_coord::kafka::BROKER_IDS)
            .await?;
        self.registrations = self.meta().brokers().await?;
        let _ = ids;
        let (known, assignments, reassignments) = self.read_topics().await?;
        let unclean = self.settings.unclean;
        let mut controller = Controller::new(self.epoch, self.registrations.keys().copied(), known, unclean);
        for (tp, reassignment) in reassignments {
            tracing::info!(partition = %tp, ?reassignment, "resuming a reassignment");
            controller.resume_reassignment(tp, reassignment);
        }
        let mut commands = controller.start();
        for (tp, replicas) in assignments {
            if !controller.partitions().contains_key(&tp) {
                commands.extend(controller.partition_added(tp, replicas));
            }
        }
        self.refresh_channels();
        self.execute(&mut controller, commands).await?;
        let (_, mut topics_watch) = self.coordinator.children_and_watch(TOPICS).await?;
        let (_, mut isr_watch) = self.coordinator.children_and_watch(ISR_CHANGE_NOTIFICATION).await?;
        let (_, mut office_watch) = self.coordinator.exists_and_watch(CONTROLLER).await?;
        let (_, mut reassign_watch) = self.coordinator.exists_and_watch(REASSIGN_PARTITIONS).await?;
        self.zk_reassignments(&mut controller).await?;
        let (_, mut deletions_watch) = self.coordinator.children_and_watch(DELETE_TOPICS).await?;
        self.deletions_requested(&mut controller).await?;
        self.coordinator.create_all(LOG_DIR_EVENT_NOTIFICATION).await?;
        let (_, mut log_dir_watch) = self.coordinator.children_and_watch(LOG_DIR_EVENT_NOTIFICATION).await?;
        self.log_dir_events(&mut controller).await?;
        let mut session = self.coordinator.session_state();
        let mut rescan = tokio::time::interval(RESCAN);
        let (rebalance_every, imbalance) = self.settings.rebalance.unwrap_or((Duration::MAX, 0));
        let mut rebalance = tokio::time::interval_at(
            tokio::time::Instant::now() + rebalance_every.min(YEAR),
            rebalance_every.min(YEAR),
        );
        let mut inbox = self.broker.controller_inbox().open();
        let _inbox_closer = InboxCloser(self.broker.clone());
        loop {
            tokio::select! {
                Some(ask) = inbox.recv() => self.serve(&mut controller, ask).await?,
                Some((topic, broker)) = self.deleted.1.recv() => self.replicas_deleted(topic, broker).await?,
                Some(offline) = self.offline.1.recv() => self.replicas_offline(&mut controller, offline).await?,
                _ = &mut log_dir_watch => {
                    let (_, w) = self.coordinator.children_and_watch(LOG_DIR_EVENT_NOTIFICATION).await?;
                    log_dir_watch = w;
                    self.log_dir_events(&mut controller).await?;
                }
                _ = &mut deletions_watch => {
                    let (_, w) = self.coordinator.children_and_watch(DELETE_TOPICS).await?;
                    deletions_watch = w;
                    self.deletions_requested(&mut controller).await?;
                }
                _ = &mut reassign_watch => {
                    let (_, w) = self.coordinator.exists_and_watch(REASSIGN_PARTITIONS).await?;
                    reassign_watch = w;
                    self.zk_reassignments(&mut controller).await?;
                }
                _ = &mut brokers_watch => {
                    let (_, w) = self.coordinator.children_and_watch(gregor_coord::kafka::BROKER_IDS).await?;
                    brokers_watch = w;
                    self.brokers_changed(&mut controller).await?;
                }
                _ = &mut topics_watch => {
                    let (_, w) = self.coordinator.children_and_watch(TOPICS).await?;
                    topics_watch = w;
                    self.topics_changed(&mut controller).await?;
                }
                _ = rescan.tick() => {
                    self.topics_changed(&mut controller).await?;
                    self.zk_reassignments(&mut controller).await?;
                    self.deletions_requested(&mut controller).await?;
                }
                _ = rebalance.tick(), if self.settings.rebalance.is_some() => {
                    let commands = controller.rebalance_leaders(imbalance);
                    if !commands.is_empty() {
                        tracing::info!(elections = commands.len(), "auto leader rebalance");
                    }
                    self.execute(&mut controller, commands).await?;
                }
                _ = &mut isr_watch => {
                    let (_, w) = self.coordinator.children_and_watch(ISR_CHANGE_NOTIFICATION).await?;
                    isr_watch = w;
                    self.isr_changed(&mut controller).await?;
                }
                _ = &mut office_watch => {
                    let (exists, w) = self.coordinator.exists_and_watch(CONTROLLER).await?;
                    if exists.is_none() || self.meta().controller().await? != Some(self.local()) {
                        return Ok(());
                    }
                    office_watch = w;
                }
                changed = session.changed() => {
                    if changed.is_err()
                        || matches!(*session.borrow(), SessionState::Expired)
                        || self.coordinator.session_id() != session_id
                    {
                        return Err(CoordError::Other("the coordination session expired".into()));
                    }
                }
            }
        }
    }

    /// Every topic's partitions: those with a state, every assignment, and
    /// the reassignments in progress.
    async fn read_topics(&mut self) -> Result<TopicsFound, CoordError> {
        let meta = self.meta();
        let mut known = BTreeMap::new();
        let mut assignments = Vec::new();
        let mut reassignments = Vec::new();
        let mut topics = BTreeMap::new();
        for topic in meta.topics().await? {
            let assignment = match meta.topic_assignment(&topic).await {
                Ok(a) => a,
                Err(CoordError::NoNode(_)) => continue,
                Err(e) => return Err(e),
            };
            topics.insert(topic.clone(), assignment.partitions.len());
            for (key, replicas) in &assignment.partitions {
                let Ok(p) = key.parse::<i32>() else { continue };
                let tp = TopicPartition::new(&topic, p.unsigned_abs());
                let reassignment = Reassignment {
                    adding: assignment.adding_replicas.get(key).cloned().unwrap_or_default(),
                    removing: assignment.removing_replicas.get(key).cloned().unwrap_or_default(),
                };
                if !reassignment.is_empty() {
                    reassignments.push((tp.clone(), reassignment));
                }
                match meta.partition_state(&topic, p).await {
                    Ok((state, version)) => {
                        known.insert(
                            tp.clone(),
                            PartitionRecord {
                                replicas: replicas.clone(),
                                state: from_recorded(&state),
                                version,
                            },
                        );
                    }
                    Err(CoordError::NoNode(_)) => {}
                    Err(e) => return Err(e),
                }
                assignments.push((tp, replicas.clone()));
            }
        }
        self.topics = topics;
        Ok((known, assignments, reassignments))
    }

    async fn brokers_changed(&mut self, controller: &mut Controller<TopicPartition>) -> Result<(), CoordError> {
        let now = self.meta().brokers().await?;
        let before: BTreeSet<i32> = self.registrations.keys().copied().collect();
        let after: BTreeSet<i32> = now.keys().copied().collect();
        // Registered again between two looks (a new broker epoch): a
        // restart, handled as Kafka does — down, then up.
        let bounced: Vec<i32> = now
            .iter()
            .filter(|(id, r)| {
                self.registrations
                    .get(id)
                    .is_some_and(|old| old.broker_epoch != r.broker_epoch)
            })
            .map(|(id, _)| *id)
            .collect();
        self.registrations = now;
        for id in &bounced {
            // Its requests go through a new channel, to the new run.
            self.channels.remove(id);
        }
        self.refresh_channels();
        let mut commands = Vec::new();
        for gone in before.difference(&after).chain(&bounced) {
            tracing::info!(broker = gone, "broker left");
            commands.extend(controller.broker_down(*gone));
        }
        for joined in after.difference(&before).chain(&bounced) {
            tracing::info!(broker = joined, "broker joined");
            commands.extend(controller.broker_up(*joined));
        }
        let joined: Vec<i32> = after.difference(&before).chain(&bounced).copied().collect();
        self.resume_deletions(&joined);
        self.execute(controller, commands).await
    }

    async fn topics_changed(&mut self, controller: &mut Controller<TopicPartition>) -> Result<(), CoordError> {
        let before = self.topics.clone();
        let (_, assignments, _) = self.read_topics().await?;
        let mut commands = Vec::new();
        for (tp, replicas) in assignments {
            if !controller.partitions().contains_key(&tp) && !self.is_deleting(&tp.topic) {
                tracing::info!(partition = %tp, ?replicas, "new partition");
                commands.extend(controller.partition_added(tp, replicas));
            }
        }
        let deleted: Vec<String> = before
            .keys()
            .filter(|t| !self.topics.contains_key(*t))
            .cloned()
            .collect();
        for topic in deleted {
            // Deleted without the controller (its nodes removed by hand).
            let (partitions, holders) = deletion::take_topic(controller, &topic);
            tracing::info!(%topic, "topic deleted: stopping its replicas");
            for broker in holders {
                let request = self.deletion_request(broker, &partitions);
                self.send(broker, request);
            }
        }
        self.execute(controller, commands).await
    }

    async fn isr_changed(&mut self, controller: &mut Controller<TopicPartition>) -> Result<(), CoordError> {
        let mut commands = Vec::new();
        for (topic, partition) in self.meta().take_isr_changes().await? {
            match self.meta().partition_state(&topic, partition).await {
                Ok((state, version)) => {
                    let tp = TopicPartition::new(&topic, partition.unsigned_abs());
                    commands.extend(controller.state_observed(&tp, from_recorded(&state), version));
                }
                Err(CoordError::NoNode(_)) => {}
                Err(e) => return Err(e),
            }
        }
        self.execute(controller, commands).await
    }

    /// The epoch broker `id` registered with (-1: unknown).
    fn broker_epoch(&self, id: i32) -> i64 {
        self.registrations.get(&id).map_or(-1, |r| r.broker_epoch)
    }

    fn send(&mut self, broker: i32, request: BrokerRequest) {
        let accepted = self.settling.as_mut().map(|s| s.track());
        self.send_then(broker, request, accepted);
    }

    /// Sends `request`; `accepted` runs once the broker answered it
    /// without error.
    fn send_then(&mut self, broker: i32, request: BrokerRequest, accepted: Option<Box<dyn FnOnce() + Send>>) {
        if let Some(channel) = self.channels.get(&broker) {
            let _ = channel.send(delivery::Outgoing { request, accepted });
        }
    }

    /// One ordered channel per registered broker; gone brokers' channels
    /// close.
    fn refresh_channels(&mut self) {
        self.channels.retain(|id, _| self.registrations.contains_key(id));
        for (&id, registration) in &self.registrations {
            if self.channels.contains_key(&id) {
                continue;
            }
            let (tx, rx) = mpsc::unbounded_channel();
            let offline = self.offline.0.clone();
            if id == self.local() {
                tokio::spawn(delivery::deliver_locally(self.broker.clone(), rx, offline));
            } else {
                let listener = &self.broker.config().inter_broker_listener;
                let Some(endpoint) = requests::inter_broker_endpoint(registration, listener) else {
                    tracing::warn!(broker = id, "registered without endpoints: unreachable");
                    continue;
                };
                let address = format!("{}:{}", endpoint.host, endpoint.port);
                let security = self.settings.security.clone();
                tokio::spawn(delivery::deliver_remotely(
                    id,
                    address,
                    security,
                    self.local(),
                    rx,
                    offline,
                ));
            }
            self.channels.insert(id, tx);
        }
    }
}
