//! The request pipeline over real sockets: request order per connection,
//! delayed fetches that hold no handler, and one bad client among good ones.

mod support;

use std::time::{Duration, Instant};

use bytes::BytesMut;
use gregor_log::batch::RecordBatchBuilder;
use gregor_routing::NetworkConfig;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, FetchRequest, FetchResponse, MetadataRequest, MetadataResponse,
    ProduceRequest, ProduceResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use support::{frame, read_response, start};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

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
    support::produce_to_t(batch.build())
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

/// The error a consumer's fetch of t-0, waiting 60 s for data, is
/// answered with once `change` is made to the broker — within 30 s. (v10:
/// from v11 a consumer may read from a follower, KIP-392.)
async fn waiting_fetch_answer_after(change: impl FnOnce(&gregor_broker::Broker)) -> i16 {
    let running = start(NetworkConfig::default()).await;
    let mut stream = TcpStream::connect(running.addr).await.unwrap();
    stream
        .write_all(&frame(ApiKey::Fetch, 10, 1, &fetch_request(60_000)))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    change(&running.broker);
    let (_, fetched) = read_response::<FetchResponse>(&mut stream, 10).await;
    assert!(started.elapsed() < Duration::from_secs(30), "answered by the 60 s wait");
    running.server.shutdown().await;
    fetched.responses[0].partitions[0].error_code
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_fetch_is_answered_when_its_partition_changes_leader() {
    // A waiting fetch reads again only when a partition it reads moved or
    // a role changed: losing the leadership is such a change.
    let code = waiting_fetch_answer_after(|broker| {
        let tp = gregor_log::TopicPartition::new("t", 0);
        let record = gregor_replication::PartitionRecord {
            replicas: vec![0, 1],
            state: gregor_replication::LeaderAndIsr {
                leader: 1,
                leader_epoch: 1,
                isr: vec![0, 1],
                controller_epoch: 1,
            },
            version: 1,
        };
        let log = broker.topics().partition_log("t", 0).unwrap();
        broker
            .replicas()
            .become_leader_or_follower(&tp, &record, log, None)
            .unwrap();
    })
    .await;
    assert_eq!(code, ResponseError::NotLeaderOrFollower.code());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_fetch_is_answered_when_its_replica_is_stopped() {
    // StopReplica (a reassignment away, a deleted topic) ends the wait.
    let code =
        waiting_fetch_answer_after(|broker| broker.replicas().stop_replica(&gregor_log::TopicPartition::new("t", 0)))
            .await;
    assert_ne!(code, 0);
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
