//! TxnOffsetCommit over the wire against a broker coordinating the group:
//! per-partition errors as Kafka answers them, the offsets unstable (to a
//! fetch requiring stable offsets) and invisible until the transaction's
//! marker is appended to the group's `__consumer_offsets` partition and
//! reported, and the same state rebuilt from that partition's log when
//! the broker loads it again (transactional batches, markers, a
//! transaction still open).

mod support;

use std::sync::Arc;

use gregor_broker::{Broker, TxnMarker};
use gregor_group::OFFSETS_TOPIC;
use gregor_log::batch::{ControlRecordType, EndTransactionMarker};
use gregor_log::{AppendOrigin, TopicPartition};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
};
use kafka_protocol::messages::txn_offset_commit_request::{
    TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use tokio::net::TcpStream;

const GROUP: &str = "g";

fn txn_commit(producer_id: i64, partitions: &[(&'static str, i32, i64, &str)]) -> TxnOffsetCommitRequest {
    let mut request = TxnOffsetCommitRequest::default();
    request.transactional_id = TransactionalId(StrBytes::from_static_str("tx"));
    request.group_id = GroupId(StrBytes::from_static_str(GROUP));
    request.producer_id = ProducerId(producer_id);
    request.producer_epoch = 0;
    request.topics = partitions
        .iter()
        .map(|(topic, partition, offset, metadata)| {
            let mut p = TxnOffsetCommitRequestPartition::default();
            p.partition_index = *partition;
            p.committed_offset = *offset;
            p.committed_metadata = Some(StrBytes::from_string(metadata.to_string()));
            let mut t = TxnOffsetCommitRequestTopic::default();
            t.name = TopicName(StrBytes::from_static_str(topic));
            t.partitions = vec![p];
            t
        })
        .collect();
    request
}

/// Partition t-0's committed offset and error code, fetched at `version`.
async fn fetch(stream: &mut TcpStream, version: i16, require_stable: bool) -> (i64, i16) {
    let mut request = OffsetFetchRequest::default();
    request.require_stable = require_stable;
    if version >= 8 {
        let mut topic = OffsetFetchRequestTopics::default();
        topic.name = TopicName(StrBytes::from_static_str("t"));
        topic.partition_indexes = vec![0];
        let mut group = OffsetFetchRequestGroup::default();
        group.group_id = GroupId(StrBytes::from_static_str(GROUP));
        group.topics = Some(vec![topic]);
        request.groups = vec![group];
    } else {
        let mut topic = OffsetFetchRequestTopic::default();
        topic.name = TopicName(StrBytes::from_static_str("t"));
        topic.partition_indexes = vec![0];
        request.group_id = GroupId(StrBytes::from_static_str(GROUP));
        request.topics = Some(vec![topic]);
    }
    let ResponseKind::OffsetFetch(answer) =
        support::call(stream, ApiKey::OffsetFetch, version, &RequestKind::OffsetFetch(request)).await
    else {
        panic!("not an OffsetFetch answer");
    };
    if version >= 8 {
        let p = &answer.groups[0].topics[0].partitions[0];
        (p.committed_offset, p.error_code)
    } else {
        let p = &answer.topics[0].partitions[0];
        (p.committed_offset, p.error_code)
    }
}

/// The transaction coordinator's part: `producer_id`'s marker appended to
/// `__consumer_offsets` partition `p`, then (when `report`) the group
/// coordinator told, as WriteTxnMarkers does.
async fn end_transaction(broker: &Arc<Broker>, p: u32, producer_id: i64, commit: bool, report: bool) {
    let broker = broker.clone();
    tokio::task::spawn_blocking(move || {
        let tp = TopicPartition::new(OFFSETS_TOPIC, p);
        if report {
            // WriteTxnMarkers' path: the marker, then the group coordinator.
            let marker = TxnMarker {
                producer_id,
                producer_epoch: 0,
                coordinator_epoch: 0,
                commit,
            };
            assert_eq!(broker.write_txn_markers(marker, &[tp], 5_000), vec![Ok(())]);
        } else {
            let kind = if commit {
                ControlRecordType::Commit
            } else {
                ControlRecordType::Abort
            };
            let marker = EndTransactionMarker {
                kind,
                coordinator_epoch: 0,
            };
            let batch = marker.batch(producer_id, 0, broker.now_ms());
            broker
                .replicas()
                .append_as_leader_from(&tp, &batch, false, AppendOrigin::Coordinator)
                .unwrap();
        }
    })
    .await
    .unwrap();
}

/// The broker loses and regains the leadership of partition `p`: its
/// groups are forgotten, then loaded from the log.
async fn reload(broker: &Arc<Broker>, p: u32) {
    let broker = broker.clone();
    tokio::task::spawn_blocking(move || {
        broker.groups().partition_changed(p, false, broker.now_ms()).unwrap();
        broker.groups().partition_changed(p, true, broker.now_ms()).unwrap();
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactional_offsets_wait_for_their_marker_and_survive_a_reload() {
    // The group's side alone: no transaction coordinator to verify with
    // (tests/txn_verification.rs has it).
    let config = gregor_broker::BrokerConfig {
        transaction_partition_verification: false,
        ..Default::default()
    };
    let running = support::start_with(gregor_routing::NetworkConfig::default(), config).await;
    let broker = running.broker.clone();
    let mut stream = TcpStream::connect(running.addr).await.unwrap();
    let not_coordinator = ResponseError::NotCoordinator.code();
    let unknown = ResponseError::UnknownTopicOrPartition.code();
    let unstable = ResponseError::UnstableOffsetCommit.code();
    assert_eq!(
        support::txn_offset_commit_codes(&mut stream, 0, txn_commit(1000, &[("t", 0, 5, ""), ("t", 9, 5, "")])).await,
        vec![not_coordinator, unknown],
        "not this broker's group yet"
    );
    let p = {
        let broker = broker.clone();
        tokio::task::spawn_blocking(move || support::coordinate(&broker, GROUP))
            .await
            .unwrap()
    };

    // v0 names no member: any producer commits. The offset is pending.
    assert_eq!(
        support::txn_offset_commit_codes(&mut stream, 0, txn_commit(1000, &[("t", 0, 5, ""), ("nope", 0, 5, "")]))
            .await,
        vec![0, unknown]
    );
    assert_eq!(fetch(&mut stream, 7, true).await, (-1, unstable));
    assert_eq!(fetch(&mut stream, 8, true).await, (-1, unstable));
    assert_eq!(fetch(&mut stream, 7, false).await, (-1, 0), "nothing committed yet");
    assert_eq!(fetch(&mut stream, 6, false).await, (-1, 0));
    end_transaction(&broker, p, 1000, true, true).await;
    assert_eq!(fetch(&mut stream, 7, true).await, (5, 0));
    assert_eq!(fetch(&mut stream, 9, true).await, (5, 0));

    // v3 names the member: the group checks it. Metadata too large is
    // refused per partition, as OffsetCommit refuses it.
    let mut stranger = txn_commit(1000, &[("t", 0, 6, "")]);
    stranger.generation_id = 1;
    stranger.member_id = StrBytes::from_static_str("nobody");
    assert_eq!(
        support::txn_offset_commit_codes(&mut stream, 3, stranger).await,
        vec![ResponseError::UnknownMemberId.code()]
    );
    let too_large = "m".repeat(4097);
    assert_eq!(
        support::txn_offset_commit_codes(&mut stream, 3, txn_commit(1000, &[("t", 0, 6, &too_large)])).await,
        vec![ResponseError::OffsetMetadataTooLarge.code()]
    );
    assert_eq!(fetch(&mut stream, 7, true).await, (5, 0), "neither was stored");

    // An aborted transaction leaves nothing.
    assert_eq!(
        support::txn_offset_commit_codes(&mut stream, 2, txn_commit(1000, &[("t", 0, 7, "")])).await,
        vec![0]
    );
    end_transaction(&broker, p, 1000, false, true).await;
    assert_eq!(fetch(&mut stream, 7, true).await, (5, 0));

    // A reload replays the log: a marker appended but not yet reported
    // commits its transaction; one still open stays pending for its marker.
    assert_eq!(
        support::txn_offset_commit_codes(&mut stream, 1, txn_commit(1000, &[("t", 0, 8, "")])).await,
        vec![0]
    );
    end_transaction(&broker, p, 1000, true, false).await;
    assert_eq!(fetch(&mut stream, 7, true).await, (-1, unstable));
    reload(&broker, p).await;
    assert_eq!(fetch(&mut stream, 7, true).await, (8, 0));
    assert_eq!(
        support::txn_offset_commit_codes(&mut stream, 3, txn_commit(2000, &[("t", 0, 9, "")])).await,
        vec![0]
    );
    reload(&broker, p).await;
    assert_eq!(fetch(&mut stream, 7, true).await, (-1, unstable));
    assert_eq!(fetch(&mut stream, 7, false).await, (8, 0));
    end_transaction(&broker, p, 2000, true, true).await;
    assert_eq!(fetch(&mut stream, 7, true).await, (9, 0));
    reload(&broker, p).await;
    assert_eq!(fetch(&mut stream, 7, true).await, (9, 0));
    running.server.shutdown().await;
}
