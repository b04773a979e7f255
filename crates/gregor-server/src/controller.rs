//! The controller's driver: runs for controller through coordination and,
//! while it holds the office, feeds gregor-replication's [`Controller`]
//! with what coordination shows (brokers registering and leaving, topics
//! created and deleted, leaders' ISR changes) and carries out its commands
//! — partition states written with compare-and-set fenced by
//! `/controller_epoch`, LeaderAndIsr / UpdateMetadata / StopReplica sent to
//! the brokers (to this broker in process, to the others over the Kafka
//! protocol, in order, retried until they answer or leave).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use gregor_coord::kafka::{BrokerRegistration, KafkaMetadata, CONTROLLER, ISR_CHANGE_NOTIFICATION, TOPICS};
use gregor_coord::{CoordError, Coordinator, SessionState};
use gregor_log::TopicPartition;
use gregor_replication::{Controller, ControllerCommand, PartitionRecord};
use gregor_routing::Broker;
use kafka_protocol_zk::messages as zk;
use kafka_protocol_zk::protocol::StrBytes;
use kafka_protocol_zk::protocol::{Encodable, HeaderVersion};
use tokio::sync::{mpsc, watch};

use crate::coordination::{from_recorded, to_recorded};

/// How often the controller re-reads topics even without a watch firing
/// (partition counts grown by CreatePartitions change a topic's data).
const RESCAN: Duration = Duration::from_secs(2);

/// A request for one broker, already built.
#[derive(Debug, Clone)]
enum BrokerRequest {
    LeaderAndIsr(zk::LeaderAndIsrRequest),
    UpdateMetadata(zk::UpdateMetadataRequest),
    StopReplica(zk::StopReplicaRequest),
}

const LEADER_AND_ISR_VERSION: i16 = 4;
const UPDATE_METADATA_VERSION: i16 = 6;
const STOP_REPLICA_VERSION: i16 = 3;

/// The controller election loop; stops when `stop` turns true.
pub fn spawn(
    coordinator: Arc<dyn Coordinator>,
    broker: Arc<Broker>,
    unclean: bool,
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
                    let office = Office::new(coordinator.clone(), broker.clone(), epoch, unclean);
                    tokio::select! {
                        outcome = office.run() => match outcome {
                            Ok(()) => tracing::info!("no longer the controller"),
                            Err(e) => tracing::warn!("controller stopped: {e}"),
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
                    tracing::warn!("running for controller: {e}");
                    if matches!(*coordinator.session_state().borrow(), SessionState::Expired) {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
    })
}

/// The controller while in office.
struct Office {
    coordinator: Arc<dyn Coordinator>,
    broker: Arc<Broker>,
    epoch: i32,
    epoch_version: i32,
    unclean: bool,
    registrations: BTreeMap<i32, BrokerRegistration>,
    channels: BTreeMap<i32, mpsc::UnboundedSender<BrokerRequest>>,
    topics: BTreeMap<String, usize>,
}

impl Office {
    fn new(coordinator: Arc<dyn Coordinator>, broker: Arc<Broker>, epoch: i32, unclean: bool) -> Self {
        Self {
            coordinator,
            broker,
            epoch,
            epoch_version: -1,
            unclean,
            registrations: BTreeMap::new(),
            channels: BTreeMap::new(),
            topics: BTreeMap::new(),
        }
    }

    fn meta(&self) -> KafkaMetadata<'_> {
        KafkaMetadata::new(self.coordinator.as_ref())
    }

    fn local(&self) -> i32 {
        self.broker.config().node_id
    }

    async fn run(mut self) -> Result<(), CoordError> {
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
        let (known, assignments) = self.read_topics().await?;
        let mut controller = Controller::new(self.epoch, self.registrations.keys().copied(), known, self.unclean);
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
        let mut session = self.coordinator.session_state();
        let mut rescan = tokio::time::interval(RESCAN);
        loop {
            tokio::select! {
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
                _ = rescan.tick() => self.topics_changed(&mut controller).await?,
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
                    if changed.is_err() || matches!(*session.borrow(), SessionState::Expired) {
                        return Err(CoordError::Other("the coordination session expired".into()));
                    }
                }
            }
        }
    }

    /// Every topic's partitions: those with a state, and every assignment.
    #[allow(clippy::type_complexity)]
    async fn read_topics(
        &mut self,
    ) -> Result<
        (
            BTreeMap<TopicPartition, PartitionRecord>,
            Vec<(TopicPartition, Vec<i32>)>,
        ),
        CoordError,
    > {
        let meta = self.meta();
        let mut known = BTreeMap::new();
        let mut assignments = Vec::new();
        let mut topics = BTreeMap::new();
        for topic in meta.topics().await? {
            let assignment = match meta.topic_assignment(&topic).await {
                Ok(a) => a,
                Err(CoordError::NoNode(_)) => continue,
                Err(e) => return Err(e),
            };
            topics.insert(topic.clone(), assignment.partitions.len());
            for (p, replicas) in &assignment.partitions {
                let Ok(p) = p.parse::<i32>() else { continue };
                let tp = TopicPartition::new(&topic, p.unsigned_abs());
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
        Ok((known, assignments))
    }

    async fn brokers_changed(&mut self, controller: &mut Controller<TopicPartition>) -> Result<(), CoordError> {
        let now = self.meta().brokers().await?;
        let before: BTreeSet<i32> = self.registrations.keys().copied().collect();
        let after: BTreeSet<i32> = now.keys().copied().collect();
        self.registrations = now;
        self.refresh_channels();
        let mut commands = Vec::new();
        for gone in before.difference(&after) {
            tracing::info!(broker = gone, "broker left");
            commands.extend(controller.broker_down(*gone));
        }
        for joined in after.difference(&before) {
            tracing::info!(broker = joined, "broker joined");
            commands.extend(controller.broker_up(*joined));
        }
        self.execute(controller, commands).await
    }

    async fn topics_changed(&mut self, controller: &mut Controller<TopicPartition>) -> Result<(), CoordError> {
        let before = self.topics.clone();
        let (_, assignments) = self.read_topics().await?;
        let mut commands = Vec::new();
        for (tp, replicas) in assignments {
            if !controller.partitions().contains_key(&tp) {
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
            let partitions: Vec<TopicPartition> = controller
                .partitions()
                .keys()
                .filter(|tp| tp.topic == topic)
                .cloned()
                .collect();
            let holders: BTreeSet<i32> = partitions
                .iter()
                .filter_map(|tp| controller.partitions().get(tp))
                .flat_map(|r| r.replicas.iter().copied())
                .collect();
            for tp in &partitions {
                controller.partition_removed(tp);
            }
            tracing::info!(%topic, "topic deleted: stopping its replicas");
            for broker in holders {
                self.send(broker, self.stop_replica(&topic, &partitions));
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

    /// Carries out commands (and the ones their results lead to).
    async fn execute(
        &mut self,
        controller: &mut Controller<TopicPartition>,
        commands: Vec<ControllerCommand<TopicPartition>>,
    ) -> Result<(), CoordError> {
        let mut queue: VecDeque<_> = commands.into();
        while let Some(command) = queue.pop_front() {
            match command {
                ControllerCommand::WriteState {
                    partition,
                    state,
                    expected_version,
                } => {
                    let recorded = to_recorded(&state);
                    let expected = (expected_version >= 0).then_some(expected_version);
                    let p = partition.partition as i32;
                    let written = self
                        .meta()
                        .write_partition_state(&partition.topic, p, &recorded, self.epoch_version, expected)
                        .await;
                    match written {
                        Ok(version) => {
                            tracing::info!(%partition, leader = state.leader, epoch = state.leader_epoch, isr = ?state.isr, "partition state written");
                            queue.extend(controller.state_written(&partition, state, version));
                        }
                        Err(CoordError::BadVersion(_) | CoordError::NodeExists(_)) => {
                            // Changed under us (a leader's ISR write): read and retry.
                            let (state, version) = self.meta().partition_state(&partition.topic, p).await?;
                            queue.extend(controller.state_observed(&partition, from_recorded(&state), version));
                        }
                        Err(e) => {
                            if self.meta().controller_epoch().await?.map(|(_, v)| v) != Some(self.epoch_version) {
                                return Err(CoordError::Other("a newer controller took over".into()));
                            }
                            return Err(e);
                        }
                    }
                }
                ControllerCommand::LeaderAndIsr {
                    broker,
                    controller_epoch,
                    partitions,
                } => {
                    let request = self.leader_and_isr(controller_epoch, &partitions);
                    self.send(broker, request);
                }
                ControllerCommand::UpdateMetadata {
                    broker,
                    controller_epoch,
                    live,
                    partitions,
                } => {
                    let request = self.update_metadata(controller_epoch, &live, &partitions);
                    self.send(broker, request);
                }
            }
        }
        Ok(())
    }

    fn send(&mut self, broker: i32, request: BrokerRequest) {
        if let Some(channel) = self.channels.get(&broker) {
            let _ = channel.send(request);
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
            if id == self.local() {
                tokio::spawn(deliver_locally(self.broker.clone(), rx));
            } else {
                let address = format!("{}:{}", registration.host, registration.port);
                tokio::spawn(deliver_remotely(id, address, self.local(), rx));
            }
            self.channels.insert(id, tx);
        }
    }

    fn live_leaders(
        &self,
        partitions: &[(TopicPartition, PartitionRecord)],
    ) -> Vec<zk::leader_and_isr_request::LeaderAndIsrLiveLeader> {
        let leaders: BTreeSet<i32> = partitions.iter().map(|(_, r)| r.state.leader).collect();
        leaders
            .into_iter()
            .filter_map(|id| {
                let r = self.registrations.get(&id)?;
                let mut l = zk::leader_and_isr_request::LeaderAndIsrLiveLeader::default();
                l.broker_id = zk::BrokerId(id);
                l.host_name = StrBytes::from_string(r.host.clone());
                l.port = r.port;
                Some(l)
            })
            .collect()
    }

    fn leader_and_isr(&self, controller_epoch: i32, partitions: &[(TopicPartition, PartitionRecord)]) -> BrokerRequest {
        let mut request = zk::LeaderAndIsrRequest::default();
        request.controller_id = zk::BrokerId(self.local());
        request.controller_epoch = controller_epoch;
        request.broker_epoch = -1;
        let mut by_topic: BTreeMap<&str, Vec<zk::leader_and_isr_request::LeaderAndIsrPartitionState>> = BTreeMap::new();
        for (tp, record) in partitions {
            let mut s = zk::leader_and_isr_request::LeaderAndIsrPartitionState::default();
            s.partition_index = tp.partition as i32;
            s.controller_epoch = record.state.controller_epoch;
            s.leader = zk::BrokerId(record.state.leader);
            s.leader_epoch = record.state.leader_epoch;
            s.isr = record.state.isr.iter().map(|&b| zk::BrokerId(b)).collect();
            s.partition_epoch = record.version;
            s.replicas = record.replicas.iter().map(|&b| zk::BrokerId(b)).collect();
            by_topic.entry(&tp.topic).or_default().push(s);
        }
        request.topic_states = by_topic
            .into_iter()
            .map(|(topic, states)| {
                let mut t = zk::leader_and_isr_request::LeaderAndIsrTopicState::default();
                t.topic_name = zk::TopicName(StrBytes::from_string(topic.to_string()));
                t.partition_states = states;
                t
            })
            .collect();
        request.live_leaders = self.live_leaders(partitions);
        BrokerRequest::LeaderAndIsr(request)
    }

    fn update_metadata(
        &self,
        controller_epoch: i32,
        live: &[i32],
        partitions: &[(TopicPartition, PartitionRecord)],
    ) -> BrokerRequest {
        let mut request = zk::UpdateMetadataRequest::default();
        request.controller_id = zk::BrokerId(self.local());
        request.controller_epoch = controller_epoch;
        request.broker_epoch = -1;
        let mut by_topic: BTreeMap<&str, Vec<zk::update_metadata_request::UpdateMetadataPartitionState>> =
            BTreeMap::new();
        for (tp, record) in partitions {
            let mut s = zk::update_metadata_request::UpdateMetadataPartitionState::default();
            s.partition_index = tp.partition as i32;
            s.controller_epoch = record.state.controller_epoch;
            s.leader = zk::BrokerId(record.state.leader);
            s.leader_epoch = record.state.leader_epoch;
            s.isr = record.state.isr.iter().map(|&b| zk::BrokerId(b)).collect();
            s.zk_version = record.version;
            s.replicas = record.replicas.iter().map(|&b| zk::BrokerId(b)).collect();
            s.offline_replicas = record
                .replicas
                .iter()
                .filter(|r| !live.contains(r))
                .map(|&b| zk::BrokerId(b))
                .collect();
            by_topic.entry(&tp.topic).or_default().push(s);
        }
        request.topic_states = by_topic
            .into_iter()
            .map(|(topic, states)| {
                let mut t = zk::update_metadata_request::UpdateMetadataTopicState::default();
                t.topic_name = zk::TopicName(StrBytes::from_string(topic.to_string()));
                t.partition_states = states;
                t
            })
            .collect();
        request.live_brokers = live
            .iter()
            .filter_map(|id| {
                let r = self.registrations.get(id)?;
                let mut endpoint = zk::update_metadata_request::UpdateMetadataEndpoint::default();
                endpoint.host = StrBytes::from_string(r.host.clone());
                endpoint.port = r.port;
                endpoint.listener = StrBytes::from_static_str("PLAINTEXT");
                let mut b = zk::update_metadata_request::UpdateMetadataBroker::default();
                b.id = zk::BrokerId(*id);
                b.endpoints = vec![endpoint];
                b.rack = r.rack.clone().map(StrBytes::from_string);
                Some(b)
            })
            .collect();
        BrokerRequest::UpdateMetadata(request)
    }

    fn stop_replica(&self, topic: &str, partitions: &[TopicPartition]) -> BrokerRequest {
        let mut request = zk::StopReplicaRequest::default();
        request.controller_id = zk::BrokerId(self.local());
        request.controller_epoch = self.epoch;
        request.broker_epoch = -1;
        let mut t = zk::stop_replica_request::StopReplicaTopicState::default();
        t.topic_name = zk::TopicName(StrBytes::from_string(topic.to_string()));
        t.partition_states = partitions
            .iter()
            .map(|tp| {
                let mut s = zk::stop_replica_request::StopReplicaPartitionState::default();
                s.partition_index = tp.partition as i32;
                s.leader_epoch = -2; // deletion: any epoch
                s.delete_partition = true;
                s
            })
            .collect();
        request.topic_states = vec![t];
        BrokerRequest::StopReplica(request)
    }
}

/// Hands requests to this broker's own handlers, in order.
async fn deliver_locally(broker: Arc<Broker>, mut requests: mpsc::UnboundedReceiver<BrokerRequest>) {
    use gregor_routing::api::leader_and_isr as handlers;
    while let Some(request) = requests.recv().await {
        let broker = broker.clone();
        let handled = tokio::task::spawn_blocking(move || match request {
            BrokerRequest::LeaderAndIsr(r) => handlers::leader_and_isr(&broker, r).error_code,
            BrokerRequest::UpdateMetadata(r) => handlers::update_metadata(&broker, r).error_code,
            BrokerRequest::StopReplica(r) => handlers::stop_replica(&broker, r).error_code,
        })
        .await;
        if let Ok(code) = handled {
            if code != 0 {
                tracing::warn!(code, "this broker refused a controller request");
            }
        }
    }
}

/// Sends requests to broker `id` at `address`, in order, each retried
/// until it is answered; ends when the channel closes (the broker left).
async fn deliver_remotely(id: i32, address: String, local: i32, mut requests: mpsc::UnboundedReceiver<BrokerRequest>) {
    let mut connection: Option<gregor_client::Connection> = None;
    while let Some(request) = requests.recv().await {
        loop {
            if requests.is_closed() && connection.is_none() {
                // The broker left while we could not reach it.
                return;
            }
            if connection.is_none() {
                match gregor_client::Connection::connect(address.as_str(), &format!("gregor-controller-{local}")).await
                {
                    Ok(c) => connection = Some(c),
                    Err(e) => {
                        tracing::debug!(broker = id, "controller cannot reach the broker yet: {e}");
                        tokio::time::sleep(Duration::from_millis(300)).await;
                        continue;
                    }
                }
            }
            let Some(conn) = connection.as_mut() else { continue };
            match call(conn, &request).await {
                Ok(0) => break,
                Ok(code) => {
                    tracing::warn!(broker = id, code, "the broker refused a controller request");
                    break;
                }
                Err(e) => {
                    tracing::debug!(broker = id, "controller request failed: {e}");
                    connection = None;
                    tokio::time::sleep(Duration::from_millis(300)).await;
                }
            }
        }
    }
}

/// Sends one controller request; returns its top-level error code.
async fn call(
    conn: &mut gregor_client::Connection,
    request: &BrokerRequest,
) -> Result<i16, gregor_client::ClientError> {
    match request {
        BrokerRequest::LeaderAndIsr(r) => exchange::<_, zk::LeaderAndIsrResponse>(conn, 4, LEADER_AND_ISR_VERSION, r)
            .await
            .map(|a| a.error_code),
        BrokerRequest::UpdateMetadata(r) => {
            exchange::<_, zk::UpdateMetadataResponse>(conn, 6, UPDATE_METADATA_VERSION, r)
                .await
                .map(|a| a.error_code)
        }
        BrokerRequest::StopReplica(r) => exchange::<_, zk::StopReplicaResponse>(conn, 5, STOP_REPLICA_VERSION, r)
            .await
            .map(|a| a.error_code),
    }
}

/// One request and its response in the controller APIs' codec.
async fn exchange<Req, Resp>(
    conn: &mut gregor_client::Connection,
    api_key: i16,
    version: i16,
    request: &Req,
) -> Result<Resp, gregor_client::ClientError>
where
    Req: Encodable + HeaderVersion,
    Resp: kafka_protocol_zk::protocol::Decodable + HeaderVersion,
{
    use kafka_protocol::protocol::Decodable as _;
    let protocol = |e: String| gregor_client::ClientError::Protocol(e);
    let mut body = conn
        .call(api_key, version, Req::header_version(version), |out| {
            request.encode(out, version).map_err(|e| e.to_string())
        })
        .await?;
    kafka_protocol::messages::ResponseHeader::decode(&mut body, Resp::header_version(version))
        .map_err(|e| protocol(e.to_string()))?;
    Resp::decode(&mut body, version).map_err(|e| protocol(e.to_string()))
}
