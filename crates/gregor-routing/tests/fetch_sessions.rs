//! Fetch sessions (KIP-227) over a running broker: a full fetch at epoch 0
//! opens a session; incremental fetches name nothing and are answered
//! only with partitions that changed; wrong epochs and unknown sessions
//! are refused as Kafka refuses them; epoch -1 closes the session.

mod support;

use bytes::Bytes;
use gregor_log::batch::RecordBatchBuilder;
use gregor_routing::NetworkConfig;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use tokio::net::TcpStream;

const VERSION: i16 = 12;

fn fetch(session_id: i32, epoch: i32, offset: Option<i64>) -> RequestKind {
    let mut request = FetchRequest::default();
    request.max_bytes = 1 << 20;
    request.session_id = session_id;
    request.session_epoch = epoch;
    if let Some(offset) = offset {
        let mut partition = FetchPartition::default();
        partition.fetch_offset = offset;
        partition.partition_max_bytes = 1 << 20;
        let mut topic = FetchTopic::default();
        topic.topic = TopicName(StrBytes::from_static_str("t"));
        topic.partitions = vec![partition];
        request.topics = vec![topic];
    }
    RequestKind::Fetch(request)
}

async fn answer(stream: &mut TcpStream, request: RequestKind) -> FetchResponse {
    match support::call(stream, ApiKey::Fetch, VERSION, &request).await {
        ResponseKind::Fetch(response) => response,
        other => panic!("not a Fetch answer: {other:?}"),
    }
}

async fn produce(stream: &mut TcpStream) {
    let mut batch = RecordBatchBuilder::new(1_700_000_000_000);
    batch.append(None, Some(b"v"), &[], 1_700_000_000_000);
    let mut partition = PartitionProduceData::default();
    partition.records = Some(Bytes::from(batch.build()));
    let mut topic = TopicProduceData::default();
    topic.name = TopicName(StrBytes::from_static_str("t"));
    topic.partition_data = vec![partition];
    let mut request = ProduceRequest::default();
    request.acks = 1;
    request.timeout_ms = 1_000;
    request.topic_data = vec![topic];
    support::call(stream, ApiKey::Produce, 9, &RequestKind::Produce(request)).await;
}

fn partitions(response: &FetchResponse) -> usize {
    response.responses.iter().map(|t| t.partitions.len()).sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_answer_only_what_changed() {
    let running = support::start(NetworkConfig::default()).await;
    let mut stream = TcpStream::connect(running.addr).await.unwrap();
    produce(&mut stream).await;

    let opened = answer(&mut stream, fetch(0, 0, Some(0))).await;
    let id = opened.session_id;
    assert!(id > 0, "epoch 0 opens a session");
    assert_eq!(partitions(&opened), 1, "a full answer");
    assert!(opened.responses[0].partitions[0].records.is_some());

    // The client moves on to offset 1: nothing new there.
    let quiet = answer(&mut stream, fetch(id, 1, Some(1))).await;
    assert_eq!((quiet.error_code, quiet.session_id), (0, id));
    assert_eq!(partitions(&quiet), 0, "nothing changed: an empty answer: {quiet:?}");
    let still = answer(&mut stream, fetch(id, 2, None)).await;
    assert_eq!(partitions(&still), 0, "unnamed partitions stay in the session");

    // A record arrives: the partition is answered without being named.
    produce(&mut stream).await;
    let news = answer(&mut stream, fetch(id, 3, None)).await;
    assert_eq!(partitions(&news), 1);
    let p = &news.responses[0].partitions[0];
    assert_eq!(p.high_watermark, 2);
    assert!(p.records.is_some(), "the record at the session's offset");

    // Kafka's refusals.
    let stale = answer(&mut stream, fetch(id, 3, None)).await;
    assert_eq!(stale.error_code, ResponseError::InvalidFetchSessionEpoch.code());
    let unknown = answer(&mut stream, fetch(id + 1000, 1, None)).await;
    assert_eq!(unknown.error_code, ResponseError::FetchSessionIdNotFound.code());

    // Epoch -1 closes it: a full answer without a session.
    let closed = answer(&mut stream, fetch(id, -1, Some(2))).await;
    assert_eq!((closed.session_id, partitions(&closed)), (0, 1));
    let gone = answer(&mut stream, fetch(id, 4, None)).await;
    assert_eq!(gone.error_code, ResponseError::FetchSessionIdNotFound.code());
    running.server.shutdown().await;
}
