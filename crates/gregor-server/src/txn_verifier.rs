//! The transaction verifier (KIP-890 part 1, Kafka's
//! `AddPartitionsToTxnManager`): sends the verifications a partition
//! leader needs from transaction coordinators on other brokers as
//! AddPartitionsToTxn v4 with `verify_only` — and transactions v2's
//! implicit adds (part 2) as v5 without it — batched per coordinator
//! broker. Each coordinator broker has one request in flight at a time;
//! verifications that arrive meanwhile go together in the next one. A
//! transactional id asked twice in one batch keeps the newer ask (the
//! other is answered INVALID_PRODUCER_EPOCH if its epoch is older,
//! NETWORK_EXCEPTION if it is a retry at the same epoch), as Kafka does.
//! Verifications for this broker's own coordinator never come here: the
//! leader asks it in process.

use std::collections::HashMap;
use std::sync::Arc;

use gregor_broker::{coordinator_error, Broker, RemoteVerification, Verdicts};
use gregor_log::TopicPartition;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::add_partitions_to_txn_request::{AddPartitionsToTxnTopic, AddPartitionsToTxnTransaction};
use kafka_protocol::messages::{
    AddPartitionsToTxnRequest, AddPartitionsToTxnResponse, ApiKey, ApiVersionsRequest, ProducerId, TopicName,
    TransactionalId,
};
use kafka_protocol::protocol::StrBytes;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

/// The version spoken to coordinators (the first with `verify_only`).
const VERIFY_VERSION: i16 = 4;
/// The version of a batch with implicit adds (transactions v2).
const ADD_VERSION: i16 = 5;

/// Sends the broker's remote verifications until `stopped`.
pub fn spawn(
    broker: Arc<Broker>,
    security: gregor_client::ClientSecurity,
    mut stopped: watch::Receiver<bool>,
) -> JoinHandle<()> {
    let Some(mut requests) = broker.transactions().take_remote_verifications() else {
        return tokio::spawn(async {});
    };
    tokio::spawn(async move {
        let mut coordinators: HashMap<i32, mpsc::UnboundedSender<RemoteVerification>> = HashMap::new();
        loop {
            tokio::select! {
                request = requests.recv() => match request {
                    Some(request) => {
                        let id = request.coordinator;
                        let queue = coordinators
                            .entry(id)
                            .or_insert_with(|| spawn_coordinator(broker.clone(), security.clone(), id));
                        if let Err(mpsc::error::SendError(request)) = queue.send(request) {
                            // Its sender ended (it panicked): start another.
                            let queue = spawn_coordinator(broker.clone(), security.clone(), id);
                            let _ = queue.send(request);
                            coordinators.insert(id, queue);
                        }
                    }
                    None => return,
                },
                _ = stopped.changed() => return,
            }
        }
    })
}

/// The sender for coordinator broker `coordinator`: its queue.
fn spawn_coordinator(
    broker: Arc<Broker>,
    security: gregor_client::ClientSecurity,
    coordinator: i32,
) -> mpsc::UnboundedSender<RemoteVerification> {
    let (queue, mut asked) = mpsc::unbounded_channel::<RemoteVerification>();
    tokio::spawn(async move {
        let mut connection = None;
        while let Some(first) = asked.recv().await {
            let mut batch = vec![first];
            while let Ok(more) = asked.try_recv() {
                batch.push(more);
            }
            let batch = one_per_transactional_id(batch);
            let verdicts = send(&broker, &security, &mut connection, coordinator, &batch).await;
            for (request, verdicts) in batch.into_iter().zip(verdicts) {
                let _ = request.reply.send(verdicts);
            }
        }
    });
    queue
}

/// Kafka's rule for a transactional id asked twice in one batch: the ask
/// with the newer epoch stays (the later one at the same epoch — a retry);
/// the other is answered at once.
fn one_per_transactional_id(batch: Vec<RemoteVerification>) -> Vec<RemoteVerification> {
    let mut kept: Vec<RemoteVerification> = Vec::with_capacity(batch.len());
    for request in batch {
        let Some(i) = kept.iter().position(|k| k.transactional_id == request.transactional_id) else {
            kept.push(request);
            continue;
        };
        let (dropped, error) = if kept[i].producer_epoch <= request.producer_epoch {
            let error = if kept[i].producer_epoch < request.producer_epoch {
                ResponseError::InvalidProducerEpoch
            } else {
                ResponseError::NetworkException
            };
            (std::mem::replace(&mut kept[i], request), error)
        } else {
            (request, ResponseError::InvalidProducerEpoch)
        };
        let verdicts = dropped.partitions.iter().map(|tp| (tp.clone(), Err(error))).collect();
        let _ = dropped.reply.send(verdicts);
    }
    kept
}

/// Sends `batch` to `coordinator`; each request's verdicts, in order.
async fn send(
    broker: &Broker,
    security: &gregor_client::ClientSecurity,
    connection: &mut Option<gregor_client::Connection>,
    coordinator: i32,
    batch: &[RemoteVerification],
) -> Vec<Verdicts> {
    let all = |error: Option<ResponseError>| -> Vec<Verdicts> {
        batch
            .iter()
            .map(|r| {
                r.partitions
                    .iter()
                    .map(|tp| (tp.clone(), error.map_or(Ok(()), Err)))
                    .collect()
            })
            .collect()
    };
    if connection.is_none() {
        match connect(broker, security, coordinator).await {
            Ok(Some(c)) => *connection = Some(c),
            // A coordinator that cannot verify: Kafka appends unverified.
            Ok(None) => return all(None),
            Err(e) => {
                tracing::debug!(broker = coordinator, "cannot reach the transaction coordinator: {e}");
                return all(Some(ResponseError::NetworkException));
            }
        }
    }
    let Some(conn) = connection.as_mut() else {
        return all(Some(ResponseError::NetworkException));
    };
    tracing::debug!(
        broker = coordinator,
        transactions = batch.len(),
        "verifying transactions"
    );
    let version = if batch.iter().any(|r| r.add) {
        ADD_VERSION
    } else {
        VERIFY_VERSION
    };
    match conn.send(request_of(batch), version).await {
        Err(e) => {
            tracing::debug!(broker = coordinator, "transaction verification failed: {e}");
            *connection = None;
            all(Some(ResponseError::NetworkException))
        }
        // The leader's clients must not see CLUSTER_AUTHORIZATION_FAILED.
        Ok(response) if response.error_code == ResponseError::ClusterAuthorizationFailed.code() => {
            all(Some(ResponseError::InvalidTxnState))
        }
        Ok(response) if response.error_code != 0 => all(Some(coordinator_error(response.error_code))),
        Ok(response) => batch.iter().map(|r| verdicts_of(&response, r)).collect(),
    }
}

/// A connection to `coordinator`, `None` when it does not serve
/// AddPartitionsToTxn v4 (an older broker: nothing to verify with).
async fn connect(
    broker: &Broker,
    security: &gregor_client::ClientSecurity,
    coordinator: i32,
) -> Result<Option<gregor_client::Connection>, String> {
    let endpoint = broker
        .replicas()
        .endpoint(coordinator)
        .ok_or_else(|| format!("broker {coordinator} is not alive"))?;
    let client_id = format!("gregor-txn-verifier-{}", broker.config().node_id);
    let mut connection =
        gregor_client::Connection::connect_with((endpoint.host.as_str(), endpoint.port), &client_id, security)
            .await
            .map_err(|e| e.to_string())?;
    let versions = connection
        .send(ApiVersionsRequest::default(), 0)
        .await
        .map_err(|e| e.to_string())?;
    let verifies = versions
        .api_keys
        .iter()
        .any(|k| k.api_key == ApiKey::AddPartitionsToTxn as i16 && k.max_version >= VERIFY_VERSION);
    if !verifies {
        tracing::warn!(
            broker = coordinator,
            "the transaction coordinator does not verify (AddPartitionsToTxn v4)"
        );
    }
    Ok(verifies.then_some(connection))
}

/// The AddPartitionsToTxn request of `batch`, `verify_only` but for adds.
fn request_of(batch: &[RemoteVerification]) -> AddPartitionsToTxnRequest {
    let mut request = AddPartitionsToTxnRequest::default();
    for r in batch {
        let mut transaction = AddPartitionsToTxnTransaction::default();
        transaction.transactional_id = TransactionalId(StrBytes::from_string(r.transactional_id.clone()));
        transaction.producer_id = ProducerId(r.producer_id);
        transaction.producer_epoch = r.producer_epoch;
        transaction.verify_only = !r.add;
        for tp in &r.partitions {
            let index = i32::try_from(tp.partition).unwrap_or(i32::MAX);
            match transaction.topics.iter_mut().find(|t| t.name.0.as_str() == tp.topic) {
                Some(topic) => topic.partitions.push(index),
                None => {
                    let mut topic = AddPartitionsToTxnTopic::default();
                    topic.name = TopicName(StrBytes::from_string(tp.topic.clone()));
                    topic.partitions.push(index);
                    transaction.topics.push(topic);
                }
            }
        }
        request.transactions.push(transaction);
    }
    request
}

/// `request`'s verdicts in `response`: a partition the coordinator did
/// not answer for is not verified.
fn verdicts_of(response: &AddPartitionsToTxnResponse, request: &RemoteVerification) -> Verdicts {
    let result = response
        .results_by_transaction
        .iter()
        .find(|t| t.transactional_id.0.as_str() == request.transactional_id);
    let code_of = |tp: &TopicPartition| -> i16 {
        let Some(result) = result else {
            return ResponseError::NetworkException.code();
        };
        result
            .topic_results
            .iter()
            .filter(|t| t.name.0.as_str() == tp.topic)
            .flat_map(|t| &t.results_by_partition)
            .find(|p| p.partition_index.unsigned_abs() == tp.partition)
            .map_or(ResponseError::UnknownServerError.code(), |p| p.partition_error_code)
    };
    request
        .partitions
        .iter()
        .map(|tp| {
            let code = code_of(tp);
            (
                tp.clone(),
                if code == 0 {
                    Ok(())
                } else {
                    Err(coordinator_error(code))
                },
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::oneshot;

    fn ask(tid: &str, epoch: i16) -> (RemoteVerification, oneshot::Receiver<Verdicts>) {
        let (reply, answer) = oneshot::channel();
        let request = RemoteVerification {
            coordinator: 1,
            transactional_id: tid.into(),
            producer_id: 7,
            producer_epoch: epoch,
            partitions: vec![TopicPartition::new("t", 0)],
            add: false,
            reply,
        };
        (request, answer)
    }

    fn error_of(mut answer: oneshot::Receiver<Verdicts>) -> Option<ResponseError> {
        answer.try_recv().ok().map(|v| v[0].1.unwrap_err())
    }

    #[test]
    fn a_transactional_id_asked_twice_keeps_the_newer_ask() {
        let (a, a_answer) = ask("a", 1);
        let (retry, retry_answer) = ask("a", 1);
        let (older, older_answer) = ask("a", 0);
        let (newer, newer_answer) = ask("a", 2);
        let (b, b_answer) = ask("b", 0);
        let kept = one_per_transactional_id(vec![a, retry, older, b, newer]);
        assert_eq!(
            kept.iter()
                .map(|r| (r.transactional_id.as_str(), r.producer_epoch))
                .collect::<Vec<_>>(),
            vec![("a", 2), ("b", 0)]
        );
        assert_eq!(
            error_of(a_answer),
            Some(ResponseError::NetworkException),
            "a retry replaces it"
        );
        assert_eq!(error_of(older_answer), Some(ResponseError::InvalidProducerEpoch));
        assert_eq!(
            error_of(retry_answer),
            Some(ResponseError::InvalidProducerEpoch),
            "fenced by epoch 2"
        );
        assert_eq!(error_of(newer_answer), None, "still waiting");
        assert_eq!(error_of(b_answer), None);
    }

    #[test]
    fn the_request_groups_partitions_by_topic_and_answers_map_back() {
        let (mut a, _) = ask("a", 1);
        a.partitions = vec![
            TopicPartition::new("t", 0),
            TopicPartition::new("u", 3),
            TopicPartition::new("t", 1),
        ];
        let request = request_of(std::slice::from_ref(&a));
        let txn = &request.transactions[0];
        assert!(txn.verify_only);
        let (mut add, _) = ask("b", 1);
        add.add = true;
        let adds = request_of(&[add]);
        assert!(!adds.transactions[0].verify_only, "an implicit add is not verify-only");
        assert_eq!(
            txn.topics
                .iter()
                .map(|t| (t.name.0.as_str(), t.partitions.clone()))
                .collect::<Vec<_>>(),
            vec![("t", vec![0, 1]), ("u", vec![3])]
        );
        let mut response = AddPartitionsToTxnResponse::default();
        let mut result = kafka_protocol::messages::add_partitions_to_txn_response::AddPartitionsToTxnResult::default();
        result.transactional_id = txn.transactional_id.clone();
        for t in &txn.topics {
            let mut topic =
                kafka_protocol::messages::add_partitions_to_txn_response::AddPartitionsToTxnTopicResult::default();
            topic.name = t.name.clone();
            for p in t.partitions.iter().filter(|p| **p != 1) {
                let mut partition =
                    kafka_protocol::messages::add_partitions_to_txn_response::AddPartitionsToTxnPartitionResult::default();
                partition.partition_index = *p;
                partition.partition_error_code = if *p == 3 { 120 } else { 0 };
                topic.results_by_partition.push(partition);
            }
            result.topic_results.push(topic);
        }
        response.results_by_transaction.push(result);
        let verdicts: Vec<_> = verdicts_of(&response, &a).into_iter().map(|(_, v)| v).collect();
        assert_eq!(
            verdicts,
            vec![
                Ok(()),
                Err(ResponseError::TransactionAbortable),
                Err(ResponseError::UnknownServerError)
            ]
        );
    }
}
