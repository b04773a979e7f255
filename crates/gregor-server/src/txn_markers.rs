//! The transaction marker sender: delivers each of the transaction
//! coordinator's marker requests to the leaders of the transaction's
//! partitions — in process for partitions led here, WriteTxnMarkers to the
//! others — retrying a partition until its marker is written, its topic is
//! gone, or the coordinator no longer wants it (it lost the
//! `__transaction_state` partition); then reports the request done so the
//! coordinator completes the transaction.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use gregor_broker::{Broker, TxnMarker};
use gregor_log::TopicPartition;
use gregor_transaction::{MarkerRequest, TransactionResult};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::write_txn_markers_request::{WritableTxnMarker, WritableTxnMarkerTopic};
use kafka_protocol::messages::{ProducerId, TopicName, WriteTxnMarkersRequest};
use kafka_protocol::protocol::StrBytes;
use tokio::sync::{watch, Mutex};
use tokio::task::JoinHandle;

/// WriteTxnMarkers' version spoken to other brokers.
const WRITE_TXN_MARKERS_VERSION: i16 = 1;
/// How long one delivery attempt waits for the replicas.
const MARKER_TIMEOUT_MS: u64 = 30_000;
/// Pause between attempts for partitions not yet done.
const RETRY_BACKOFF: Duration = Duration::from_millis(100);

/// Connections to other brokers (made with the inter-broker security), one
/// per broker, reused across requests.
type Connections = Arc<(
    gregor_client::ClientSecurity,
    Mutex<HashMap<i32, Arc<Mutex<Option<gregor_client::Connection>>>>>,
)>;

/// Delivers the broker's marker requests until `stopped`.
pub fn spawn(
    broker: Arc<Broker>,
    security: gregor_client::ClientSecurity,
    mut stopped: watch::Receiver<bool>,
) -> JoinHandle<()> {
    let Some(mut requests) = broker.transactions().take_marker_requests() else {
        return tokio::spawn(async {});
    };
    let connections: Connections = Arc::new((security, Mutex::default()));
    tokio::spawn(async move {
        loop {
            tokio::select! {
                request = requests.recv() => match request {
                    Some(request) => {
                        tokio::spawn(deliver(broker.clone(), connections.clone(), request));
                    }
                    None => return,
                },
                _ = stopped.changed() => return,
            }
        }
    })
}

/// Delivers one request's markers, then reports it done.
async fn deliver(broker: Arc<Broker>, connections: Connections, request: MarkerRequest) {
    let coordinator = broker.transactions().coordinator().clone();
    let marker = TxnMarker {
        producer_id: request.producer_id,
        producer_epoch: request.producer_epoch,
        coordinator_epoch: request.coordinator_epoch,
        commit: request.result == TransactionResult::Commit,
    };
    let mut pending = request.partitions.clone();
    loop {
        if !coordinator.marker_pending(request.id) {
            return;
        }
        let mut by_leader: BTreeMap<i32, Vec<TopicPartition>> = BTreeMap::new();
        // A deleted topic's partitions need no marker (Kafka drops them).
        pending.retain(|tp| broker.topics().get(&tp.topic).is_some());
        for tp in &pending {
            if let Some(record) = broker.replicas().partition_record(tp) {
                if record.state.leader >= 0 {
                    by_leader.entry(record.state.leader).or_default().push(tp.clone());
                }
            }
        }
        let local = broker.config().node_id;
        if by_leader.len() == 1 && by_leader.contains_key(&local) && by_leader[&local].len() == pending.len() {
            // Every marker goes to this broker: write them and, when all
            // landed, complete the transaction in one blocking call (the
            // producer's next transaction waits for that completion).
            let (broker, coordinator, asked) = (broker.clone(), coordinator.clone(), pending.clone());
            let id = request.id;
            let done = tokio::task::spawn_blocking(move || {
                let outcomes = broker.write_txn_markers(marker, &asked, MARKER_TIMEOUT_MS);
                let left = unwritten(&asked, outcomes);
                if left.is_empty() {
                    coordinator.markers_written(id);
                }
                left
            })
            .await;
            match done {
                Ok(left) if left.is_empty() => return,
                Ok(left) => pending = left,
                Err(e) => tracing::error!("writing transaction markers failed: {e}"),
            }
            tokio::time::sleep(RETRY_BACKOFF).await;
            continue;
        }
        for (leader, partitions) in by_leader {
            let outcomes = if leader == local {
                let broker = broker.clone();
                let asked = partitions.clone();
                tokio::task::spawn_blocking(move || broker.write_txn_markers(marker, &asked, MARKER_TIMEOUT_MS))
                    .await
                    .unwrap_or_default()
            } else {
                send(&broker, &connections, leader, marker, &partitions).await
            };
            let left = unwritten(&partitions, outcomes);
            pending.retain(|p| !partitions.contains(p) || left.contains(p));
        }
        if pending.is_empty() {
            let id = request.id;
            let _ = tokio::task::spawn_blocking(move || coordinator.markers_written(id)).await;
            return;
        }
        tokio::time::sleep(RETRY_BACKOFF).await;
    }
}

/// The partitions of `asked` whose marker is not written yet (a deleted
/// topic's partition needs none: Kafka drops it); missing outcomes count
/// as not written.
fn unwritten(asked: &[TopicPartition], outcomes: Vec<Result<(), ResponseError>>) -> Vec<TopicPartition> {
    let mut outcomes = outcomes.into_iter();
    asked
        .iter()
        .filter(|tp| match outcomes.next() {
            Some(Ok(())) | Some(Err(ResponseError::UnknownTopicOrPartition)) => false,
            Some(Err(e)) => {
                tracing::debug!(%tp, ?e, "transaction marker not written yet; retrying");
                true
            }
            None => true,
        })
        .cloned()
        .collect()
}

/// WriteTxnMarkers to broker `leader`; each partition's outcome (all
/// failed when the broker cannot be reached).
async fn send(
    broker: &Broker,
    connections: &Connections,
    leader: i32,
    marker: TxnMarker,
    partitions: &[TopicPartition],
) -> Vec<Result<(), ResponseError>> {
    let unreachable = || vec![Err(ResponseError::NotLeaderOrFollower); partitions.len()];
    let Some(endpoint) = broker.replicas().endpoint(leader) else {
        return unreachable();
    };
    let slot = connections.1.lock().await.entry(leader).or_default().clone();
    let mut connection = slot.lock().await;
    if connection.is_none() {
        let client_id = format!("gregor-txn-markers-{}", broker.config().node_id);
        let address = (endpoint.host.as_str(), endpoint.port);
        match gregor_client::Connection::connect_with(address, &client_id, &connections.0).await {
            Ok(c) => *connection = Some(c),
            Err(e) => {
                tracing::debug!(broker = leader, "cannot reach the broker for transaction markers: {e}");
                return unreachable();
            }
        }
    }
    let Some(conn) = connection.as_mut() else {
        return unreachable();
    };
    let mut request = WriteTxnMarkersRequest::default();
    let mut entry = WritableTxnMarker::default();
    entry.producer_id = ProducerId(marker.producer_id);
    entry.producer_epoch = marker.producer_epoch;
    entry.coordinator_epoch = marker.coordinator_epoch;
    entry.transaction_result = marker.commit;
    for tp in partitions {
        let index = i32::try_from(tp.partition).unwrap_or(i32::MAX);
        match entry.topics.iter_mut().find(|t| t.name.0.as_str() == tp.topic) {
            Some(topic) => topic.partition_indexes.push(index),
            None => {
                let mut topic = WritableTxnMarkerTopic::default();
                topic.name = TopicName(StrBytes::from_string(tp.topic.clone()));
                topic.partition_indexes.push(index);
                entry.topics.push(topic);
            }
        }
    }
    request.markers.push(entry);
    match conn.send(request, WRITE_TXN_MARKERS_VERSION).await {
        Err(e) => {
            tracing::debug!(broker = leader, "WriteTxnMarkers failed: {e}");
            *connection = None;
            unreachable()
        }
        Ok(response) => {
            let answered: Vec<(String, i32, i16)> = response
                .markers
                .iter()
                .flat_map(|m| &m.topics)
                .flat_map(|t| {
                    t.partitions
                        .iter()
                        .map(move |p| (t.name.0.to_string(), p.partition_index, p.error_code))
                })
                .collect();
            partitions
                .iter()
                .map(|tp| {
                    let code = answered
                        .iter()
                        .find(|(t, p, _)| *t == tp.topic && p.unsigned_abs() == tp.partition)
                        .map_or(ResponseError::UnknownServerError.code(), |(_, _, c)| *c);
                    if code == 0 {
                        Ok(())
                    } else {
                        Err(ResponseError::try_from_code(code).unwrap_or(ResponseError::UnknownServerError))
                    }
                })
                .collect()
        }
    }
}
