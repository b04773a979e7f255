//! Every version ApiVersions advertises is really served: for each API
//! and version in the table, a request goes through a running broker and
//! the whole response decodes at that version with kafka-protocol's own
//! decoder. Fetch is also read with records at every version, so the
//! zero-copy splice is checked with BYTES (≤ v11) and COMPACT_BYTES
//! (v12+, a varint length) prefixes, and by topic id (v13+).

mod support;

use gregor_log::batch::RecordBatchBuilder;
use gregor_routing::{NetworkConfig, SUPPORTED};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::RecordBatchDecoder;
use tokio::net::TcpStream;

/// A request of `key` at `version` with nothing in it (or the least a
/// handler needs to answer at once).
fn empty_request(key: ApiKey, version: i16) -> RequestKind {
    match key {
        ApiKey::Produce => {
            let mut r = ProduceRequest::default();
            r.acks = 1;
            r.timeout_ms = 1_000;
            RequestKind::Produce(r)
        }
        ApiKey::Fetch => RequestKind::Fetch(FetchRequest::default()),
        ApiKey::ListOffsets => RequestKind::ListOffsets(ListOffsetsRequest::default()),
        ApiKey::Metadata => RequestKind::Metadata(MetadataRequest::default()),
        ApiKey::ApiVersions => RequestKind::ApiVersions(ApiVersionsRequest::default()),
        ApiKey::CreateTopics => RequestKind::CreateTopics(CreateTopicsRequest::default()),
        ApiKey::DeleteTopics => RequestKind::DeleteTopics(DeleteTopicsRequest::default()),
        ApiKey::InitProducerId => RequestKind::InitProducerId(InitProducerIdRequest::default()),
        ApiKey::DescribeConfigs => RequestKind::DescribeConfigs(DescribeConfigsRequest::default()),
        ApiKey::CreatePartitions => RequestKind::CreatePartitions(CreatePartitionsRequest::default()),
        ApiKey::FindCoordinator => {
            let mut r = FindCoordinatorRequest::default();
            if version >= 4 {
                r.coordinator_keys = vec![StrBytes::from_static_str("g")];
            } else {
                r.key = StrBytes::from_static_str("g");
            }
            RequestKind::FindCoordinator(r)
        }
        ApiKey::JoinGroup => RequestKind::JoinGroup(JoinGroupRequest::default()),
        ApiKey::SyncGroup => RequestKind::SyncGroup(SyncGroupRequest::default()),
        ApiKey::Heartbeat => RequestKind::Heartbeat(HeartbeatRequest::default()),
        ApiKey::LeaveGroup => RequestKind::LeaveGroup(LeaveGroupRequest::default()),
        ApiKey::OffsetCommit => RequestKind::OffsetCommit(OffsetCommitRequest::default()),
        ApiKey::OffsetFetch => RequestKind::OffsetFetch(OffsetFetchRequest::default()),
        ApiKey::DescribeGroups => RequestKind::DescribeGroups(DescribeGroupsRequest::default()),
        ApiKey::ListGroups => RequestKind::ListGroups(ListGroupsRequest::default()),
        ApiKey::ConsumerGroupHeartbeat => {
            let mut r = ConsumerGroupHeartbeatRequest::default();
            r.member_id = StrBytes::from_static_str("m");
            RequestKind::ConsumerGroupHeartbeat(r)
        }
        ApiKey::ConsumerGroupDescribe => {
            let mut r = ConsumerGroupDescribeRequest::default();
            r.group_ids = vec![GroupId(StrBytes::from_static_str("g"))];
            RequestKind::ConsumerGroupDescribe(r)
        }
        ApiKey::DeleteGroups => RequestKind::DeleteGroups(DeleteGroupsRequest::default()),
        ApiKey::OffsetForLeaderEpoch => RequestKind::OffsetForLeaderEpoch(OffsetForLeaderEpochRequest::default()),
        ApiKey::IncrementalAlterConfigs => {
            RequestKind::IncrementalAlterConfigs(IncrementalAlterConfigsRequest::default())
        }
        ApiKey::TxnOffsetCommit => RequestKind::TxnOffsetCommit(TxnOffsetCommitRequest::default()),
        ApiKey::DeleteRecords => RequestKind::DeleteRecords(DeleteRecordsRequest::default()),
        ApiKey::AddPartitionsToTxn => RequestKind::AddPartitionsToTxn(AddPartitionsToTxnRequest::default()),
        ApiKey::AddOffsetsToTxn => RequestKind::AddOffsetsToTxn(AddOffsetsToTxnRequest::default()),
        ApiKey::EndTxn => RequestKind::EndTxn(EndTxnRequest::default()),
        ApiKey::DescribeTransactions => RequestKind::DescribeTransactions(DescribeTransactionsRequest::default()),
        ApiKey::ListTransactions => RequestKind::ListTransactions(ListTransactionsRequest::default()),
        ApiKey::WriteTxnMarkers => RequestKind::WriteTxnMarkers(WriteTxnMarkersRequest::default()),
        ApiKey::DescribeProducers => RequestKind::DescribeProducers(DescribeProducersRequest::default()),
        ApiKey::DescribeCluster => RequestKind::DescribeCluster(DescribeClusterRequest::default()),
        ApiKey::DescribeLogDirs => {
            // Null: every partition (the response then lists the log dir's).
            let mut r = DescribeLogDirsRequest::default();
            r.topics = None;
            RequestKind::DescribeLogDirs(r)
        }
        ApiKey::AlterConfigs => RequestKind::AlterConfigs(AlterConfigsRequest::default()),
        ApiKey::OffsetDelete => {
            let mut r = OffsetDeleteRequest::default();
            r.group_id = GroupId(StrBytes::from_static_str("g"));
            RequestKind::OffsetDelete(r)
        }
        // To the controller (none runs here: NOT_CONTROLLER at once).
        ApiKey::AlterPartitionReassignments => {
            RequestKind::AlterPartitionReassignments(AlterPartitionReassignmentsRequest::default())
        }
        ApiKey::ListPartitionReassignments => {
            RequestKind::ListPartitionReassignments(ListPartitionReassignmentsRequest::default())
        }
        ApiKey::ElectLeaders => RequestKind::ElectLeaders(ElectLeadersRequest::default()),
        ApiKey::DescribeClientQuotas => RequestKind::DescribeClientQuotas(DescribeClientQuotasRequest::default()),
        ApiKey::AlterClientQuotas => RequestKind::AlterClientQuotas(AlterClientQuotasRequest::default()),
        // ACLs (no authorizer here: SECURITY_DISABLED at once).
        ApiKey::CreateAcls => RequestKind::CreateAcls(CreateAclsRequest::default()),
        ApiKey::DeleteAcls => RequestKind::DeleteAcls(DeleteAclsRequest::default()),
        ApiKey::DescribeAcls => RequestKind::DescribeAcls(DescribeAclsRequest::default()),
        // On a PLAINTEXT listener: ILLEGAL_SASL_STATE, in that version.
        ApiKey::SaslHandshake => RequestKind::SaslHandshake(SaslHandshakeRequest::default()),
        ApiKey::SaslAuthenticate => RequestKind::SaslAuthenticate(SaslAuthenticateRequest::default()),
        ApiKey::DescribeUserScramCredentials => {
            RequestKind::DescribeUserScramCredentials(DescribeUserScramCredentialsRequest::default())
        }
        ApiKey::AlterUserScramCredentials => {
            RequestKind::AlterUserScramCredentials(AlterUserScramCredentialsRequest::default())
        }
        other => panic!("no empty request for {other:?}: add one"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_advertised_version_answers_in_that_version() {
    let running = support::start(NetworkConfig::default()).await;
    let mut stream = TcpStream::connect(running.addr).await.unwrap();
    let ResponseKind::ApiVersions(advertised) = support::call(
        &mut stream,
        ApiKey::ApiVersions,
        3,
        &empty_request(ApiKey::ApiVersions, 3),
    )
    .await
    else {
        panic!("not an ApiVersions answer");
    };
    let table: Vec<(i16, i16, i16)> = SUPPORTED.iter().map(|(k, min, max)| (*k as i16, *min, *max)).collect();
    let answered: Vec<(i16, i16, i16)> = advertised
        .api_keys
        .iter()
        .map(|v| (v.api_key, v.min_version, v.max_version))
        .collect();
    assert_eq!(answered, table, "ApiVersions answers the table");
    for (key, min, max) in SUPPORTED {
        for version in *min..=*max {
            support::call(&mut stream, *key, version, &empty_request(*key, version)).await;
        }
    }
    running.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_returns_the_same_records_at_every_version() {
    let running = support::start(NetworkConfig::default()).await;
    let mut stream = TcpStream::connect(running.addr).await.unwrap();
    // Two batches of 300-byte values: regions far over 127 bytes, so the
    // compact length takes several varint bytes.
    for _ in 0..2 {
        let mut batch = RecordBatchBuilder::new(1_700_000_000_000);
        for i in 0..3u8 {
            batch.append(Some(&[i]), Some(&[i; 300]), &[], 1_700_000_000_000);
        }
        let produce = support::produce_to_t(batch.build());
        let ResponseKind::Produce(answer) =
            support::call(&mut stream, ApiKey::Produce, 9, &RequestKind::Produce(produce)).await
        else {
            panic!("not a Produce answer");
        };
        assert_eq!(answer.responses[0].partition_responses[0].error_code, 0);
    }
    let mut metadata = MetadataRequest::default();
    metadata.topics = None;
    let ResponseKind::Metadata(meta) =
        support::call(&mut stream, ApiKey::Metadata, 12, &RequestKind::Metadata(metadata)).await
    else {
        panic!("not a Metadata answer");
    };
    let topic_id = meta.topics[0].topic_id;
    let (_, _, max) = SUPPORTED.iter().find(|(k, _, _)| *k == ApiKey::Fetch).copied().unwrap();
    for version in 4..=max {
        let mut partition = FetchPartition::default();
        partition.partition = 0;
        partition.partition_max_bytes = 1 << 20;
        let mut topic = FetchTopic::default();
        if version >= 13 {
            topic.topic_id = topic_id;
        } else {
            topic.topic = TopicName(StrBytes::from_static_str("t"));
        }
        topic.partitions = vec![partition];
        let mut fetch = FetchRequest::default();
        fetch.max_bytes = 1 << 20;
        fetch.topics = vec![topic];
        let ResponseKind::Fetch(answer) =
            support::call(&mut stream, ApiKey::Fetch, version, &RequestKind::Fetch(fetch)).await
        else {
            panic!("not a Fetch answer");
        };
        let p = &answer.responses[0].partitions[0];
        assert_eq!(p.error_code, 0, "v{version}");
        assert_eq!(p.high_watermark, 6, "v{version}");
        let mut records = p.records.clone().expect("records");
        let batches = RecordBatchDecoder::decode_all(&mut records).unwrap();
        let values: usize = batches.iter().map(|b| b.records.len()).sum();
        assert_eq!(values, 6, "v{version}: every record, in whole batches");
        if version >= 13 {
            assert_eq!(answer.responses[0].topic_id, topic_id, "v{version}");
        }
    }
    // An unknown topic id is UNKNOWN_TOPIC_ID, as Kafka answers.
    let mut topic = FetchTopic::default();
    topic.topic_id = uuid::Uuid::from_u128(42);
    let mut partition = FetchPartition::default();
    partition.partition_max_bytes = 1 << 20;
    topic.partitions = vec![partition];
    let mut fetch = FetchRequest::default();
    fetch.topics = vec![topic];
    let ResponseKind::Fetch(answer) = support::call(&mut stream, ApiKey::Fetch, 13, &RequestKind::Fetch(fetch)).await
    else {
        panic!("not a Fetch answer");
    };
    let code = answer.responses[0].partitions[0].error_code;
    assert_eq!(code, kafka_protocol::error::ResponseError::UnknownTopicId.code());
    running.server.shutdown().await;
}

/// ApiVersions at `version` from a broker of `transaction.version` `level`.
async fn api_versions(level: u8, version: i16) -> ApiVersionsResponse {
    let mut config = gregor_broker::BrokerConfig::default();
    config.transactions.transaction_version = level;
    let running = support::start_with(NetworkConfig::default(), config).await;
    let mut stream = TcpStream::connect(running.addr).await.unwrap();
    let answer = support::call(
        &mut stream,
        ApiKey::ApiVersions,
        version,
        &empty_request(ApiKey::ApiVersions, version),
    )
    .await;
    running.server.shutdown().await;
    let ResponseKind::ApiVersions(answer) = answer else {
        panic!("not an ApiVersions answer");
    };
    answer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transaction_version_is_a_finalized_feature_from_v3_and_supported_from_v4() {
    let names = |r: &ApiVersionsResponse| {
        (
            r.finalized_features
                .iter()
                .map(|f| (f.name.to_string(), f.min_version_level, f.max_version_level))
                .collect::<Vec<_>>(),
            r.supported_features
                .iter()
                .map(|f| (f.name.to_string(), f.min_version, f.max_version))
                .collect::<Vec<_>>(),
        )
    };
    let v3 = api_versions(2, 3).await;
    assert!(v3.finalized_features_epoch >= 0, "the Java client needs an epoch ≥ 0");
    assert_eq!(
        names(&v3),
        (vec![("transaction.version".to_string(), 2, 2)], vec![]),
        "v3: finalized, no min-0 supported feature (KAFKA-17492)"
    );
    let v4 = api_versions(2, 4).await;
    assert!(v4.finalized_features_epoch >= 0);
    assert_eq!(
        names(&v4),
        (
            vec![("transaction.version".to_string(), 2, 2)],
            vec![("transaction.version".to_string(), 0, 2)]
        )
    );
    let off = api_versions(0, 4).await;
    assert_eq!(
        names(&off),
        (vec![], vec![("transaction.version".to_string(), 0, 2)]),
        "level 0: nothing finalized"
    );
    let v2 = api_versions(2, 2).await;
    assert_eq!(v2.finalized_features_epoch, -1, "no features below v3");
}
