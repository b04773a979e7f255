//! Produce refusals as Kafka answers them, over a real socket: a topic
//! that does not exist is not created by a Produce (only a Metadata
//! request creates topics, with `auto.create.topics.enable`), a client
//! may not write to an internal topic, and a batch
//! refused for some of its records names them (KIP-467: `record_errors`
//! and `error_message` from v8, none before).

mod support;

use std::collections::BTreeMap;

use gregor_log::batch::RecordBatchBuilder;
use gregor_routing::NetworkConfig;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::produce_response::PartitionProduceResponse;
use kafka_protocol::messages::{ApiKey, MetadataRequest, RequestKind, ResponseKind, TopicName};
use kafka_protocol::protocol::StrBytes;
use tokio::net::TcpStream;

async fn produce(
    stream: &mut TcpStream,
    topic: &'static str,
    batch: Vec<u8>,
    version: i16,
) -> PartitionProduceResponse {
    let mut request = support::produce_to_t(batch);
    request.topic_data[0].name = TopicName(StrBytes::from_static_str(topic));
    let ResponseKind::Produce(answer) =
        support::call(stream, ApiKey::Produce, version, &RequestKind::Produce(request)).await
    else {
        panic!("not a Produce answer");
    };
    answer.responses[0].partition_responses[0].clone()
}

fn one_record(key: Option<&[u8]>) -> Vec<u8> {
    let mut batch = RecordBatchBuilder::new(1_700_000_000_000);
    batch.append(key, Some(b"v"), &[], 1_700_000_000_000);
    batch.build()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_produce_never_creates_its_topic_a_metadata_request_does() {
    let running = support::start(NetworkConfig::default()).await;
    assert!(running.broker.config().auto_create_topics, "auto-creation is on");
    let mut stream = TcpStream::connect(running.addr).await.unwrap();
    let answer = produce(&mut stream, "fresh", one_record(Some(b"k")), 9).await;
    assert_eq!(answer.error_code, ResponseError::UnknownTopicOrPartition.code());
    assert_eq!(answer.base_offset, -1);
    assert!(
        running.broker.topics().get("fresh").is_none(),
        "the produce created the topic"
    );

    let mut topic = MetadataRequestTopic::default();
    topic.name = Some(TopicName(StrBytes::from_static_str("fresh")));
    let mut metadata = MetadataRequest::default();
    metadata.topics = Some(vec![topic]);
    metadata.allow_auto_topic_creation = true;
    support::call(&mut stream, ApiKey::Metadata, 9, &RequestKind::Metadata(metadata)).await;
    assert!(running.broker.topics().get("fresh").is_some(), "Metadata creates it");
    running.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_records_are_named_from_v8_on() {
    let running = support::start(NetworkConfig::default()).await;
    let broker = running.broker.clone();
    tokio::task::spawn_blocking(move || {
        let compact = BTreeMap::from([("cleanup.policy".to_string(), "compact".to_string())]);
        broker.topics().create("keyed", 1, None, compact).unwrap();
        support::lead(&broker, "keyed", 0);
    })
    .await
    .unwrap();
    let mut stream = TcpStream::connect(running.addr).await.unwrap();
    let mut batch = RecordBatchBuilder::new(1_700_000_000_000);
    batch.append(Some(b"k"), Some(b"v"), &[], 1_700_000_000_000);
    batch.append(None, Some(b"v"), &[], 1_700_000_000_000);
    let message = "Compacted topic cannot accept message without key in topic partition keyed-0";
    for version in [8, 9] {
        let answer = produce(&mut stream, "keyed", batch.build(), version).await;
        assert_eq!(answer.error_code, ResponseError::InvalidRecord.code(), "v{version}");
        let named: Vec<(i32, Option<String>)> = answer
            .record_errors
            .iter()
            .map(|e| {
                (
                    e.batch_index,
                    e.batch_index_error_message.as_ref().map(|m| m.to_string()),
                )
            })
            .collect();
        assert_eq!(named, vec![(1, Some(message.to_string()))], "v{version}");
        assert_eq!(
            answer.error_message.as_deref(),
            Some(
                format!(
                    "One or more records have been rejected due to 1 record errors in total, and only showing the \
                     first three errors at most: [RecordError(batchIndex=1, message='{message}')]"
                )
                .as_str()
            ),
            "v{version}"
        );
        assert_eq!(answer.log_start_offset, 0, "v{version}: the partition's, as Kafka's");
    }
    // Before v8 the answer has no place for them: the error alone.
    let answer = produce(&mut stream, "keyed", batch.build(), 7).await;
    assert_eq!(answer.error_code, ResponseError::InvalidRecord.code());
    assert!(answer.record_errors.is_empty() && answer.error_message.is_none());
    // A batch taken carries neither.
    let answer = produce(&mut stream, "keyed", one_record(Some(b"k")), 9).await;
    assert_eq!((answer.error_code, answer.base_offset), (0, 0));
    assert!(answer.record_errors.is_empty() && answer.error_message.is_none());
    running.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_may_not_write_to_internal_topics() {
    let running = support::start(NetworkConfig::default()).await;
    let broker = running.broker.clone();
    let p = tokio::task::spawn_blocking(move || support::coordinate(&broker, "g"))
        .await
        .unwrap();
    let mut stream = TcpStream::connect(running.addr).await.unwrap();
    let mut request = support::produce_to_t(one_record(Some(b"k")));
    request.topic_data[0].name = TopicName(StrBytes::from_static_str("__consumer_offsets"));
    request.topic_data[0].partition_data[0].index = p as i32;
    let ResponseKind::Produce(answer) =
        support::call(&mut stream, ApiKey::Produce, 9, &RequestKind::Produce(request)).await
    else {
        panic!("not a Produce answer");
    };
    let answer = &answer.responses[0].partition_responses[0];
    assert_eq!(answer.error_code, ResponseError::InvalidTopicException.code());
    let log = running.broker.topics().log("__consumer_offsets", p as i32).unwrap();
    assert_eq!(log.end_offset(), 0, "nothing written");
    running.server.shutdown().await;
}
