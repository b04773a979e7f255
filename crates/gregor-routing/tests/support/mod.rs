//! What the routing tests share: a cluster of one over in-memory
//! coordination, and request frames written and read by hand.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use gregor_broker::{Broker, BrokerConfig, BrokerEndpoint, CoordinatedCatalog, ReplicaManager};
use gregor_coord::kafka::{BrokerRegistration, KafkaMetadata};
use gregor_coord::{Coordinator, EmbeddedCoordinator, EmbeddedStore};
use gregor_log::{Clock, LogManager, LogManagerConfig, SystemClock, TopicPartition};
use gregor_replication::{LeaderAndIsr, PartitionRecord};
use gregor_routing::{BrokerMetrics, ListenerContext, NetworkConfig, SocketServer};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, ProduceRequest, RequestHeader, RequestKind, ResponseHeader, ResponseKind, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, StrBytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A single broker serving on a loopback port.
pub struct Running {
    pub server: SocketServer,
    pub addr: std::net::SocketAddr,
    pub broker: Arc<Broker>,
    _dir: tempfile::TempDir,
}

/// Starts a single broker (see [`single_broker`]) behind `network`.
pub async fn start(network: NetworkConfig) -> Running {
    start_with(network, BrokerConfig::default()).await
}

/// [`start`] with the broker's settings.
pub async fn start_with(network: NetworkConfig, config: BrokerConfig) -> Running {
    let dir = tempfile::tempdir().unwrap();
    let broker = single_broker_with(dir.path(), config).await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let listeners = vec![(listener, Arc::new(ListenerContext::plaintext("PLAINTEXT")))];
    let server = SocketServer::start(listeners, broker.clone(), Arc::new(BrokerMetrics::new()), network).unwrap();
    Running {
        server,
        addr,
        broker,
        _dir: dir,
    }
}

/// A cluster of one over in-memory coordination, leading topic `t`'s one
/// partition as the controller would make it (LeaderAndIsr, UpdateMetadata).
pub async fn single_broker(dir: &std::path::Path) -> Arc<Broker> {
    single_broker_with(dir, BrokerConfig::default()).await
}

/// [`single_broker`] with the broker's settings.
pub async fn single_broker_with(dir: &std::path::Path, config: BrokerConfig) -> Arc<Broker> {
    let coordinator: Arc<dyn Coordinator> = Arc::new(EmbeddedCoordinator::connect(
        &EmbeddedStore::in_memory(),
        Duration::from_secs(6),
    ));
    let meta = KafkaMetadata::new(coordinator.as_ref());
    meta.ensure_layout().await.unwrap();
    meta.register_broker(0, &BrokerRegistration::plaintext("127.0.0.1", 9092, None))
        .await
        .unwrap();
    let catalog = Arc::new(CoordinatedCatalog::new(
        coordinator,
        tokio::runtime::Handle::current(),
        0,
    ));
    let mut log_config = LogManagerConfig::new(vec![dir.to_path_buf()]);
    log_config.replicated = true;
    let logs = Arc::new(LogManager::open(log_config).unwrap());
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let replicas = Arc::new(ReplicaManager::new(0, Default::default(), clock.clone()));
    tokio::task::spawn_blocking(move || {
        let broker = Broker::open(config, Default::default(), logs, catalog, replicas, clock).unwrap();
        broker.topics().create("t", 1, None, Default::default()).unwrap();
        lead(&broker, "t", 0);
        Arc::new(broker)
    })
    .await
    .unwrap()
}

/// Makes the broker coordinate `group` as the controller would: it leads
/// the group's `__consumer_offsets` partition (the topic created first)
/// and loads it. Returns that partition. Blocking.
pub fn coordinate(broker: &Broker, group: &str) -> u32 {
    broker.groups().offsets_topic().ensure().unwrap();
    let p = broker.groups().offsets_topic().partition_of(group).unwrap();
    lead(broker, gregor_group::OFFSETS_TOPIC, p);
    broker.groups().partition_changed(p, true, broker.now_ms()).unwrap();
    p
}

/// Makes the broker coordinate `transactional_id` as the controller would:
/// it leads the id's `__transaction_state` partition (the topic created
/// first) and loads it. Blocking.
pub fn coordinate_transactions(broker: &Broker, transactional_id: &str) {
    let partitions = broker.transactions().state_topic().ensure().unwrap();
    let p = gregor_transaction::partition_for(transactional_id, partitions).unsigned_abs();
    lead(broker, gregor_transaction::TRANSACTION_STATE_TOPIC, p);
    broker.transactions().partition_led(p, Some(0)).unwrap();
}

/// Makes the broker the leader (epoch 0, alone in the ISR) of `topic`'s
/// partition `p`, as the controller's LeaderAndIsr and UpdateMetadata do.
pub fn lead(broker: &Broker, topic: &str, p: u32) {
    let tp = TopicPartition::new(topic, p);
    let record = PartitionRecord {
        replicas: vec![0],
        state: LeaderAndIsr {
            leader: 0,
            leader_epoch: 0,
            isr: vec![0],
            controller_epoch: 1,
        },
        version: 0,
    };
    let log = broker.topics().partition_log(topic, p).unwrap();
    broker
        .replicas()
        .become_leader_or_follower(&tp, &record, log, None)
        .unwrap();
    let me = BrokerEndpoint {
        host: "127.0.0.1".into(),
        port: 9092,
        ..BrokerEndpoint::default()
    };
    broker.replicas().update_view(0, [(0, me)].into(), [(tp, record)]);
}

/// A request frame: size, header, body.
pub fn frame<T: Encodable + HeaderVersion>(key: ApiKey, version: i16, correlation_id: i32, request: &T) -> BytesMut {
    let mut header = RequestHeader::default();
    header.request_api_key = key as i16;
    header.request_api_version = version;
    header.correlation_id = correlation_id;
    header.client_id = Some(StrBytes::from_static_str("pipeline-test"));
    let mut body = BytesMut::new();
    header.encode(&mut body, T::header_version(version)).unwrap();
    request.encode(&mut body, version).unwrap();
    let mut out = BytesMut::new();
    out.put_i32(body.len() as i32);
    out.extend_from_slice(&body);
    out
}

/// Reads one response; the whole body must decode.
pub async fn read_response<T: Decodable + HeaderVersion>(stream: &mut TcpStream, version: i16) -> (i32, T) {
    let size = stream.read_i32().await.unwrap();
    let mut body = vec![0u8; size as usize];
    stream.read_exact(&mut body).await.unwrap();
    let mut body = Bytes::from(body);
    let header = ResponseHeader::decode(&mut body, T::header_version(version)).unwrap();
    let response = T::decode(&mut body, version).unwrap();
    assert!(!body.has_remaining(), "bytes left after the response");
    (header.correlation_id, response)
}

/// Sends `request` as API `key` v`version` and decodes the whole answer.
pub async fn call(stream: &mut TcpStream, key: ApiKey, version: i16, request: &RequestKind) -> ResponseKind {
    let mut header = RequestHeader::default();
    header.request_api_key = key as i16;
    header.request_api_version = version;
    header.correlation_id = version.into();
    header.client_id = Some(StrBytes::from_static_str("versions-test"));
    let mut body = BytesMut::new();
    header.encode(&mut body, key.request_header_version(version)).unwrap();
    request.encode(&mut body, version).unwrap();
    let mut out = BytesMut::new();
    out.put_i32(body.len() as i32);
    out.extend_from_slice(&body);
    stream.write_all(&out).await.unwrap();
    let size = stream.read_i32().await.unwrap();
    let mut answer = vec![0u8; size as usize];
    stream.read_exact(&mut answer).await.unwrap();
    let mut answer = Bytes::from(answer);
    let header = ResponseHeader::decode(&mut answer, key.response_header_version(version)).unwrap();
    assert_eq!(header.correlation_id, i32::from(version), "{key:?} v{version}");
    let response = ResponseKind::decode(key, &mut answer, version)
        .unwrap_or_else(|e| panic!("{key:?} v{version}: the response does not decode: {e}"));
    assert!(
        !answer.has_remaining(),
        "{key:?} v{version}: bytes left after the response"
    );
    response
}

/// A Produce (acks=1) of `batches` to partition 0 of topic `t`.
pub fn produce_to_t(batches: Vec<u8>) -> ProduceRequest {
    let mut partition = PartitionProduceData::default();
    partition.index = 0;
    partition.records = Some(Bytes::from(batches));
    let mut topic = TopicProduceData::default();
    topic.name = TopicName(StrBytes::from_static_str("t"));
    topic.partition_data = vec![partition];
    let mut request = ProduceRequest::default();
    request.acks = 1;
    request.timeout_ms = 30_000;
    request.topic_data = vec![topic];
    request
}

/// TxnOffsetCommit v`version` of `group` (offset 1 of partition 0 of
/// topic `t`) for `transactional_id` at `producer` (id, epoch): the
/// partition's error code.
pub async fn commit_txn_offset(
    stream: &mut TcpStream,
    version: i16,
    transactional_id: &str,
    group: &str,
    producer: (i64, i16),
) -> i16 {
    use kafka_protocol::messages::txn_offset_commit_request::{
        TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
    };
    use kafka_protocol::messages::{GroupId, ProducerId, TransactionalId, TxnOffsetCommitRequest};
    let mut p = TxnOffsetCommitRequestPartition::default();
    p.committed_offset = 1;
    let mut t = TxnOffsetCommitRequestTopic::default();
    t.name = TopicName(StrBytes::from_static_str("t"));
    t.partitions = vec![p];
    let mut request = TxnOffsetCommitRequest::default();
    request.transactional_id = TransactionalId(StrBytes::from_string(transactional_id.to_string()));
    request.group_id = GroupId(StrBytes::from_string(group.to_string()));
    request.producer_id = ProducerId(producer.0);
    request.producer_epoch = producer.1;
    request.generation_id = -1;
    request.topics = vec![t];
    txn_offset_commit_codes(stream, version, request).await[0]
}

/// TxnOffsetCommit v`version`: each partition's error code, in request
/// order.
pub async fn txn_offset_commit_codes(
    stream: &mut TcpStream,
    version: i16,
    request: kafka_protocol::messages::TxnOffsetCommitRequest,
) -> Vec<i16> {
    let ResponseKind::TxnOffsetCommit(answer) = call(
        stream,
        ApiKey::TxnOffsetCommit,
        version,
        &RequestKind::TxnOffsetCommit(request),
    )
    .await
    else {
        panic!("not a TxnOffsetCommit answer");
    };
    answer
        .topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
        .collect()
}

/// InitProducerId v1 for `transactional_id` (60 s timeout), which must
/// succeed: (producer id, epoch).
pub async fn init_transactional(stream: &mut TcpStream, transactional_id: &str) -> (i64, i16) {
    use kafka_protocol::messages::{InitProducerIdRequest, TransactionalId};
    let mut request = InitProducerIdRequest::default();
    request.transactional_id = Some(TransactionalId(StrBytes::from_string(transactional_id.to_string())));
    request.transaction_timeout_ms = 60_000;
    let ResponseKind::InitProducerId(r) =
        call(stream, ApiKey::InitProducerId, 1, &RequestKind::InitProducerId(request)).await
    else {
        panic!("not an InitProducerId answer");
    };
    assert_eq!(r.error_code, 0);
    (r.producer_id.0, r.producer_epoch)
}

/// A transactional Produce (`version`, acks=1, naming `transactional_id`)
/// of one batch of `producer` at `seq` to partition 0 of `topic`: (error
/// code, base offset).
pub async fn produce_transactional(
    stream: &mut TcpStream,
    version: i16,
    transactional_id: Option<&str>,
    producer: (i64, i16),
    topic: &str,
    seq: i32,
) -> (i16, i64) {
    use kafka_protocol::messages::TransactionalId;
    let mut batch = gregor_log::batch::RecordBatchBuilder::new(1_000)
        .producer(producer.0, producer.1, seq)
        .transactional();
    batch.append(Some(b"k"), Some(b"v"), &[], 1_000);
    let mut partition = PartitionProduceData::default();
    partition.records = Some(Bytes::from(batch.build()));
    let mut t = TopicProduceData::default();
    t.name = TopicName(StrBytes::from_string(topic.to_string()));
    t.partition_data = vec![partition];
    let mut request = ProduceRequest::default();
    request.transactional_id = transactional_id.map(|t| TransactionalId(StrBytes::from_string(t.to_string())));
    request.acks = 1;
    request.timeout_ms = 30_000;
    request.topic_data = vec![t];
    let ResponseKind::Produce(r) = call(stream, ApiKey::Produce, version, &RequestKind::Produce(request)).await else {
        panic!("not a Produce answer");
    };
    let p = &r.responses[0].partition_responses[0];
    (p.error_code, p.base_offset)
}
