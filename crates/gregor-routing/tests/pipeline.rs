//! The request pipeline over real sockets: request order per connection,
//! delayed fetches that hold no handler, and one bad client among good ones.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use gregor_broker::{Broker, BrokerConfig, BrokerEndpoint, CoordinatedCatalog, ReplicaManager};
use gregor_coord::kafka::{BrokerRegistration, KafkaMetadata};
use gregor_coord::{Coordinator, EmbeddedCoordinator, EmbeddedStore};
use gregor_log::batch::RecordBatchBuilder;
use gregor_log::{Clock, LogManager, LogManagerConfig, SystemClock, TopicPartition};
use gregor_replication::{LeaderAndIsr, PartitionRecord};
use gregor_routing::{BrokerMetrics, NetworkConfig, SocketServer};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, FetchRequest, FetchResponse, MetadataRequest, MetadataResponse,
    ProduceRequest, ProduceResponse, RequestHeader, ResponseHeader, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, StrBytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

struct Running {
    server: SocketServer,
    addr: std::net::SocketAddr,
    _dir: tempfile::TempDir,
}

async fn start(network: NetworkConfig) -> Running {
    let dir = tempfile::tempdir().unwrap();
    let broker = single_broker(dir.path()).await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = SocketServer::start(listener, broker, Arc::new(BrokerMetrics::new()), network).unwrap();
    Running {
        server,
        addr,
        _dir: dir,
    }
}

/// A cluster of one over in-memory coordination, leading topic `t`'s one
/// partition as the controller would make it (LeaderAndIsr, UpdateMetadata).
async fn single_broker(dir: &std::path::Path) -> Arc<Broker> {
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
        let broker = Broker::open(
            BrokerConfig::default(),
            Default::default(),
            logs,
            catalog,
            replicas,
            clock,
        )
        .unwrap();
        broker.topics().create("t", 1, None, Default::default()).unwrap();
        let tp = TopicPartition::new("t", 0);
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
        let log = broker.topics().partition_log("t", 0).unwrap();
        broker
            .replicas()
            .become_leader_or_follower(&tp, &record, log, None)
            .unwrap();
        let me = BrokerEndpoint {
            host: "127.0.0.1".into(),
            port: 9092,
            rack: None,
        };
        broker.replicas().update_view(0, [(0, me)].into(), [(tp, record)]);
        Arc::new(broker)
    })
    .await
    .unwrap()
}

fn frame<T: Encodable + HeaderVersion>(key: ApiKey, version: i16, correlation_id: i32, request: &T) -> BytesMut {
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

async fn read_response<T: Decodable + HeaderVersion>(stream: &mut TcpStream, version: i16) -> (i32, T) {
    let size = stream.read_i32().await.unwrap();
    let mut body = vec![0u8; size as usize];
    stream.read_exact(&mut body).await.unwrap();
    let mut body = Bytes::from(body);
    let header = ResponseHeader::decode(&mut body, T::header_version(version)).unwrap();
    let response = T::decode(&mut body, version).unwrap();
    assert!(!body.has_remaining(), "bytes left after the response");
    (header.correlation_id, response)
}

fn fetch_request(max_wait_ms: i32) -> FetchRequest {
    let mut partition = FetchPartition::default();
    partition.partition = 0;
    partition.fetch_offset = 0;
    partition.partition_max_bytes = 1 << 20;
    let mut topic = FetchTopic::default();
    topic.topic = TopicName(StrBytes::from_static_str("t"));
    topic.partitions = vec![partition];
    let mut request = FetchRequest::default();
    request.replica_id = (-1).into();
    request.max_wait_ms = max_wait_ms;
    request.min_bytes = 1;
    request.max_bytes = 1 << 20;
    request.topics = vec![topic];
    request
}

fn produce_request() -> ProduceRequest {
    let mut batch = RecordBatchBuilder::new(1_700_000_000_000);
    batch.append(Some(b"k"), Some(b"v"), &[], 1_700_000_000_000);
    let mut partition = PartitionProduceData::default();
    partition.index = 0;
    partition.records = Some(Bytes::from(batch.build()));
    let mut topic = TopicProduceData::default();
    topic.name = TopicName(StrBytes::from_static_str("t"));
    topic.partition_data = vec![partition];
    let mut request = ProduceRequest::default();
    request.acks = 1;
    request.timeout_ms = 30_000;
    request.topic_data = vec![topic];
    request
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn responses_leave_in_request_order_on_a_pipelined_connection() {
    let running = start(NetworkConfig {
        num_io_threads: 4,
        ..NetworkConfig::default()
    })
    .await;
    let mut stream = TcpStream::connect(running.addr).await.unwrap();
    // 200 requests of two kinds in one write, before reading anything.
    let mut all = BytesMut::new();
    for id in 0..200 {
        if id % 2 == 0 {
            all.extend_from_slice(&frame(ApiKey::ApiVersions, 3, id, &ApiVersionsRequest::default()));
        } else {
            let mut all_topics = MetadataRequest::default();
            all_topics.topics = None;
            all.extend_from_slice(&frame(ApiKey::Metadata, 9, id, &all_topics));
        }
    }
    stream.write_all(&all).await.unwrap();
    for id in 0..200 {
        if id % 2 == 0 {
            let (got, response) = read_response::<ApiVersionsResponse>(&mut stream, 3).await;
            assert_eq!((got, response.error_code), (id, 0));
        } else {
            let (got, response) = read_response::<MetadataResponse>(&mut stream, 9).await;
            assert_eq!(got, id);
            assert_eq!(response.topics.len(), 1);
        }
    }
    running.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_fetches_hold_no_handler_and_complete_on_append() {
    // One handler; four fetches wait for data far longer than the test.
    let running = start(NetworkConfig {
        num_io_threads: 1,
        ..NetworkConfig::default()
    })
    .await;
    let mut fetchers = Vec::new();
    for id in 0..4 {
        let mut stream = TcpStream::connect(running.addr).await.unwrap();
        stream
            .write_all(&frame(ApiKey::Fetch, 11, id, &fetch_request(60_000)))
            .await
            .unwrap();
        fetchers.push(stream);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    let mut producer = TcpStream::connect(running.addr).await.unwrap();
    producer
        .write_all(&frame(ApiKey::Produce, 9, 7, &produce_request()))
        .await
        .unwrap();
    let (_, produced) = read_response::<ProduceResponse>(&mut producer, 9).await;
    let partition = &produced.responses[0].partition_responses[0];
    assert_eq!((partition.error_code, partition.base_offset), (0, 0));
    for (id, mut stream) in fetchers.into_iter().enumerate() {
        let (got, fetched) = read_response::<FetchResponse>(&mut stream, 11).await;
        assert_eq!(got, id as i32);
        let data = &fetched.responses[0].partitions[0];
        assert_eq!(data.error_code, 0);
        assert_eq!(data.high_watermark, 1);
        assert!(
            data.records.as_ref().is_some_and(|r| !r.is_empty()),
            "fetch {id} got no records"
        );
    }
    // Answered by the append, not by the 60 s wait.
    assert!(started.elapsed() < Duration::from_secs(30));
    running.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_frame_closes_only_its_connection() {
    let running = start(NetworkConfig {
        num_network_threads: 1,
        ..NetworkConfig::default()
    })
    .await;
    let mut good = TcpStream::connect(running.addr).await.unwrap();
    let mut bad = TcpStream::connect(running.addr).await.unwrap();
    bad.write_all(&[0, 0, 0, 8, 0xff, 0xff, 0, 0, 0, 0, 0, 1])
        .await
        .unwrap();
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(30), bad.read_to_end(&mut rest)).await;
    assert!(
        matches!(closed, Ok(Ok(0)) | Ok(Err(_))),
        "the bad connection stays open"
    );
    good.write_all(&frame(ApiKey::ApiVersions, 3, 1, &ApiVersionsRequest::default()))
        .await
        .unwrap();
    let (id, response) = read_response::<ApiVersionsResponse>(&mut good, 3).await;
    assert_eq!((id, response.error_code), (1, 0));
    running.server.shutdown().await;
}
