//! WriteTxnMarkers (broker to broker, from a transaction coordinator): each
//! marker written to its partitions led here (see
//! [`gregor_broker::Broker::write_txn_markers`]), answered once their
//! in-sync replicas have it.

use kafka_protocol::messages::write_txn_markers_response::{
    WritableTxnMarkerPartitionResult, WritableTxnMarkerResult, WritableTxnMarkerTopicResult,
};
use kafka_protocol::messages::{WriteTxnMarkersRequest, WriteTxnMarkersResponse};

use gregor_broker::{Broker, TxnMarker};
use gregor_log::TopicPartition;

/// How long a marker waits for the in-sync replicas (Kafka waits the
/// coordinator's request timeout).
const MARKER_TIMEOUT_MS: u64 = 30_000;

/// Answers a WriteTxnMarkers request (blocking: handler threads only).
pub fn handle(broker: &Broker, request: WriteTxnMarkersRequest) -> WriteTxnMarkersResponse {
    let mut response = WriteTxnMarkersResponse::default();
    for marker in request.markers {
        let partitions: Vec<TopicPartition> = marker
            .topics
            .iter()
            .flat_map(|t| {
                t.partition_indexes
                    .iter()
                    .map(move |p| TopicPartition::new(t.name.0.as_str(), p.unsigned_abs()))
            })
            .collect();
        let written = broker.write_txn_markers(
            TxnMarker {
                producer_id: marker.producer_id.0,
                producer_epoch: marker.producer_epoch,
                coordinator_epoch: marker.coordinator_epoch,
                commit: marker.transaction_result,
            },
            &partitions,
            MARKER_TIMEOUT_MS,
        );
        let mut result = WritableTxnMarkerResult::default();
        result.producer_id = marker.producer_id;
        let mut outcomes = written.into_iter();
        for topic in marker.topics {
            let mut t = WritableTxnMarkerTopicResult::default();
            t.name = topic.name.clone();
            for index in topic.partition_indexes {
                let mut p = WritableTxnMarkerPartitionResult::default();
                p.partition_index = index;
                p.error_code = outcomes.next().and_then(Result::err).map_or(0, |e| e.code());
                t.partitions.push(p);
            }
            result.topics.push(t);
        }
        response.markers.push(result);
    }
    response
}
