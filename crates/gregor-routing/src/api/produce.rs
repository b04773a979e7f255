//! Produce: append each partition's record batches to its log; with
//! `acks=all` in a cluster, answer once every in-sync replica has them.
//!
//! Transaction verification (KIP-890 part 1, on unless
//! `transaction.partition.verification.enable=false`): a transactional
//! batch that would open its producer's transaction in a partition is
//! refused by the log with a guard; such partitions are verified with the
//! transaction coordinator — off the handler thread, the request answered
//! later as an `acks=all` one is — and appended with the guard if the
//! coordinator has the partition in the producer's ongoing transaction,
//! or answered its error (INVALID_TXN_STATE for a partition not added, or
//! TRANSACTION_ABORTABLE from v11). Other partitions, and later batches of
//! an open transaction, are appended at once as before.
//!
//! Transactions v2 (KIP-890 part 2): from v12 such a partition is added
//! to the transaction at the coordinator instead of verified
//! ([`Broker::add_to_transaction`]), even with verification switched off,
//! and CONCURRENT_TRANSACTIONS (the previous transaction's markers still
//! on their way, past the leader's own retries) reaches the client.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use gregor_log::{TopicPartition, VerificationGuard};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, PartitionProduceResponse, TopicProduceResponse,
};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};
use kafka_protocol::protocol::StrBytes;

use super::{is_internal_topic, produce_records};
use gregor_broker::errors::{produce_verification_error, replication_error, PRODUCE_ADD_FROM};
use gregor_broker::{Broker, LeaderAppend, ProduceRefusal, Unverified, ADD_ATTEMPTS};

/// A produce waiting for its verification or replicas: resolves with the
/// response (`None` for `acks=0`).
pub type DelayedProduce = Pin<Box<dyn Future<Output = Option<ProduceResponse>> + Send>>;

/// How a Produce request is answered.
pub enum ProduceOutcome {
    /// At once.
    Respond(ProduceResponse),
    /// Not at all (`acks=0`).
    NoResponse,
    /// When the replicas have the records (`acks=all`), or the timeout;
    /// or once transactions the request opens are verified.
    Delayed(DelayedProduce),
}

const ACKS_ALL: i16 = -1;
/// Kafka's `AdminUtils.ADMIN_CLIENT_ID`.
const ADMIN_CLIENT_ID: &str = "__admin_client";

/// A partition whose batch waits for its transaction's verification.
struct Pending {
    /// Where its answer goes: topic and partition positions in the response.
    at: (usize, usize),
    topic: String,
    index: i32,
    bytes: Bytes,
    unverified: Unverified,
}

/// What became of a pending partition.
type Outcome = Result<LeaderAppend, ProduceRefusal>;

/// Appends the request's batches and answers as `acks` asks (-1, 0 or 1;
/// anything else is INVALID_REQUIRED_ACKS for every partition, nothing
/// written, as Kafka answers).
///
/// Only Kafka's admin client (client id `__admin_client`) may write to
/// the internal topics; any other gets INVALID_TOPIC_EXCEPTION there, as
/// from Kafka (a record there would be read back as a group's or a
/// transaction's state).
pub fn handle(broker: &Arc<Broker>, request: ProduceRequest, version: i16, client_id: &str) -> ProduceOutcome {
    if !matches!(request.acks, -1..=1) {
        return ProduceOutcome::Respond(refuse_all(&request, ResponseError::InvalidRequiredAcks));
    }
    let acks_all = request.acks == ACKS_ALL;
    let implicit_add = version >= PRODUCE_ADD_FROM;
    let mut response = ProduceResponse::default();
    let mut waiting: Vec<(TopicPartition, u64)> = Vec::new();
    let mut pending: Vec<Pending> = Vec::new();
    for (ti, topic) in request.topic_data.into_iter().enumerate() {
        let name = topic.name.0.to_string();
        // Never created here: Kafka creates topics only from Metadata.
        let known = broker.topics().exists(&name);
        let internal_refused = is_internal_topic(&name) && client_id != ADMIN_CLIENT_ID;
        let mut topic_response = TopicProduceResponse::default();
        topic_response.name = topic.name.clone();
        for (pi, partition) in topic.partition_data.into_iter().enumerate() {
            let mut p = PartitionProduceResponse::default();
            p.index = partition.index;
            p.base_offset = -1;
            p.log_append_time_ms = -1;
            p.log_start_offset = -1;
            // Kafka's order: an unknown partition, the records' shape,
            // then an internal topic, then the append.
            let known = known && broker.topics().has_partition(&name, p.index);
            let misshapen = match &partition.records {
                Some(records) if known => produce_records::check(records, version).err(),
                _ => None,
            };
            match (known, partition.records) {
                (false, _) => p.error_code = ResponseError::UnknownTopicOrPartition.code(),
                (true, _) if misshapen.is_some() => p.error_code = misshapen.map_or(0, |e| e.code()),
                (true, _) if internal_refused => p.error_code = ResponseError::InvalidTopicException.code(),
                (true, None) => p.error_code = ResponseError::InvalidRecord.code(),
                (true, Some(records)) => {
                    // Written from the request's buffer: the log stamps offsets
                    // and leader epoch into a copy of each batch's first bytes.
                    let appended = broker.append(
                        &name,
                        partition.index,
                        &records,
                        acks_all,
                        VerificationGuard::NONE,
                        implicit_add,
                    );
                    match appended {
                        Err(ProduceRefusal::Unverified(unverified)) => pending.push(Pending {
                            at: (ti, pi),
                            topic: name.clone(),
                            index: partition.index,
                            bytes: records,
                            unverified,
                        }),
                        appended => waiting.extend(answer(broker, &mut p, &name, appended, version)),
                    }
                }
            }
            topic_response.partition_responses.push(p);
        }
        response.responses.push(topic_response);
    }
    let acks_none = request.acks == 0;
    let timeout_ms = u64::try_from(request.timeout_ms).unwrap_or(0);
    let transactional_id = request.transactional_id.map(|t| t.0.to_string());
    if !pending.is_empty() && !implicit_add {
        // Verified at once when this broker is the coordinator: append now,
        // on this handler thread, as any other batch. (An add writes and
        // may wait for the previous transaction: always delayed.)
        if let Some(verified) = verify_here(broker, transactional_id.as_deref(), &mut pending, acks_all, version) {
            for (p, outcome) in verified {
                let (ti, pi) = p.at;
                let slot = &mut response.responses[ti].partition_responses[pi];
                waiting.extend(answer(broker, slot, &p.topic, outcome, version));
            }
        }
    }
    if !pending.is_empty() {
        let broker = broker.clone();
        return ProduceOutcome::Delayed(Box::pin(async move {
            let verified = verify_and_append(&broker, transactional_id, pending, acks_all, version).await;
            for (p, outcome) in verified {
                let (ti, pi) = p.at;
                let slot = &mut response.responses[ti].partition_responses[pi];
                waiting.extend(answer(&broker, slot, &p.topic, outcome, version));
            }
            let response = await_acks(&broker, response, waiting, timeout_ms).await;
            (!acks_none).then_some(response)
        }));
    }
    if acks_none {
        return ProduceOutcome::NoResponse;
    }
    if waiting.is_empty() {
        return ProduceOutcome::Respond(response);
    }
    let broker = broker.clone();
    ProduceOutcome::Delayed(Box::pin(async move {
        Some(await_acks(&broker, response, waiting, timeout_ms).await)
    }))
}

/// Fills `p` with an append's outcome; the offset the high watermark must
/// pass when it waits for `acks=all`.
fn answer(
    broker: &Broker,
    p: &mut PartitionProduceResponse,
    topic: &str,
    appended: Outcome,
    version: i16,
) -> Option<(TopicPartition, u64)> {
    match appended {
        Ok(done) => {
            p.base_offset = done.info.first_offset as i64;
            p.log_append_time_ms = done.info.log_append_time.unwrap_or(-1);
            if version >= 5 {
                p.log_start_offset = done.info.log_start_offset as i64;
            }
            if let Some(Err(e)) = done.acked {
                p.error_code = replication_error(e).code();
            }
            let index = u32::try_from(p.index).unwrap_or_default();
            done.waiting_for
                .map(|required| (TopicPartition::new(topic, index), required))
        }
        Err(ProduceRefusal::Refused(e, message)) => {
            tracing::debug!(topic, partition = p.index, "append refused: {message}");
            p.error_code = e.code();
            refused_log_start(broker, p, topic, e, version);
            None
        }
        // KIP-467: which records, and why (read by clients from v8).
        Err(ProduceRefusal::InvalidRecords(e, records)) => {
            tracing::debug!(topic, partition = p.index, "records refused: {records}");
            p.error_code = e.code();
            refused_log_start(broker, p, topic, e, version);
            p.error_message = Some(StrBytes::from_string(records.to_string()));
            p.record_errors = records
                .records
                .into_iter()
                .map(|(index, message)| {
                    let mut error = BatchIndexAndErrorMessage::default();
                    error.batch_index = index;
                    error.batch_index_error_message = Some(StrBytes::from_string(message));
                    error
                })
                .collect();
            None
        }
        Err(ProduceRefusal::NotVerified(e)) => {
            tracing::debug!(topic, partition = p.index, "transaction verification failed: {e:?}");
            p.error_code = e.code();
            None
        }
        // Only a guard a marker invalidated is refused again: the
        // transaction verified is over.
        Err(ProduceRefusal::Unverified(_)) => {
            p.error_code = ResponseError::InvalidTxnState.code();
            None
        }
    }
}

/// The log start offset a refused append answers with (v5+), as Kafka's
/// `ReplicaManager.appendToLocalLog`: none (-1) for the refusals it
/// expects — an unknown or not led partition, a batch too large or
/// corrupt, a storage error — the partition's for any other.
fn refused_log_start(
    broker: &Broker,
    p: &mut PartitionProduceResponse,
    topic: &str,
    error: ResponseError,
    version: i16,
) {
    use ResponseError as E;
    let expected = matches!(
        error,
        E::UnknownTopicOrPartition
            | E::NotLeaderOrFollower
            | E::MessageTooLarge
            | E::RecordListTooLarge
            | E::CorruptMessage
            | E::KafkaStorageError
    );
    if version >= 5 && !expected {
        if let Some(log) = broker.topics().log(topic, p.index) {
            p.log_start_offset = log.log_start_offset() as i64;
        }
    }
}

/// The pending partitions of one transactional producer (a Produce
/// carries one; Kafka refuses batches of several producers in one request
/// with INVALID_PRODUCER_ID_MAPPING, which the others get), with the
/// partitions to ask about.
fn split_by_producer(pending: Vec<Pending>) -> (Vec<Pending>, Vec<(Pending, Outcome)>, Vec<TopicPartition>) {
    let first = pending[0].unverified;
    let (asked, others): (Vec<Pending>, Vec<Pending>) = pending.into_iter().partition(|p| {
        p.unverified.producer_id == first.producer_id && p.unverified.producer_epoch == first.producer_epoch
    });
    let refused = others
        .into_iter()
        .map(|p| (p, refused(ResponseError::InvalidProducerIdMapping)))
        .collect();
    let partitions = asked
        .iter()
        .map(|p| TopicPartition::new(&p.topic, u32::try_from(p.index).unwrap_or_default()))
        .collect();
    (asked, refused, partitions)
}

fn refused(e: ResponseError) -> Outcome {
    Err(ProduceRefusal::NotVerified(e))
}

/// Verifies and appends `pending` on this thread when no other broker need
/// be asked (this broker coordinates the transactional id, or there is no
/// transactional id to ask with); `None` (and `pending` untouched) when the
/// coordinator is elsewhere.
fn verify_here(
    broker: &Broker,
    transactional_id: Option<&str>,
    pending: &mut Vec<Pending>,
    acks_all: bool,
    version: i16,
) -> Option<Vec<(Pending, Outcome)>> {
    let first = pending.first()?.unverified;
    let verdicts = match transactional_id.filter(|t| !t.is_empty()) {
        // No transactional id to verify with: the append without a guard
        // is refused, as Kafka's is.
        None => None,
        Some(tid) => {
            let partitions: Vec<TopicPartition> = pending
                .iter()
                .filter(|p| {
                    p.unverified.producer_id == first.producer_id && p.unverified.producer_epoch == first.producer_epoch
                })
                .map(|p| TopicPartition::new(&p.topic, u32::try_from(p.index).unwrap_or_default()))
                .collect();
            Some(broker.verify_here(tid, first.producer_id, first.producer_epoch, &partitions)?)
        }
    };
    let (asked, mut outcomes, partitions) = split_by_producer(std::mem::take(pending));
    let verdicts = in_order(&partitions, verdicts);
    outcomes.extend(append_verified(broker, asked, verdicts, acks_all, version));
    Some(outcomes)
}

/// Each partition's verdict, in `partitions`' order (`None`: no
/// transactional id, INVALID_TXN_STATE for all; a partition the answer
/// misses counts as not verified).
fn in_order(
    partitions: &[TopicPartition],
    verdicts: Option<Vec<(TopicPartition, Result<(), ResponseError>)>>,
) -> Vec<Result<(), ResponseError>> {
    match verdicts {
        None => vec![Err(ResponseError::InvalidTxnState); partitions.len()],
        Some(verdicts) => partitions
            .iter()
            .map(|tp| {
                let verdict = verdicts.iter().find(|(t, _)| t == tp).map(|(_, r)| *r);
                verdict.unwrap_or(Err(ResponseError::UnknownServerError))
            })
            .collect(),
    }
}

/// Appends the verified partitions of `asked` with their guards (blocking
/// on the disk); the others get their verification's error.
fn append_verified(
    broker: &Broker,
    asked: Vec<Pending>,
    verdicts: Vec<Result<(), ResponseError>>,
    acks_all: bool,
    version: i16,
) -> Vec<(Pending, Outcome)> {
    asked
        .into_iter()
        .zip(verdicts)
        .map(|(p, verdict)| {
            let outcome = match verdict {
                Ok(()) => broker.append(
                    &p.topic,
                    p.index,
                    &p.bytes,
                    acks_all,
                    p.unverified.guard,
                    version >= PRODUCE_ADD_FROM,
                ),
                Err(e) => refused(produce_verification_error(e, version)),
            };
            (p, outcome)
        })
        .collect()
}

/// Verifies the transactions `pending` would open with their coordinator
/// on another broker (from v12 adds their partitions, wherever the
/// coordinator is), then, on the blocking pool, appends the verified ones
/// with their guards. Each pending partition with its outcome.
async fn verify_and_append(
    broker: &Arc<Broker>,
    transactional_id: Option<String>,
    pending: Vec<Pending>,
    acks_all: bool,
    version: i16,
) -> Vec<(Pending, Outcome)> {
    let first = pending[0].unverified;
    let (asked, mut outcomes, partitions) = split_by_producer(pending);
    let verdicts = match transactional_id.filter(|t| !t.is_empty()) {
        None => None,
        Some(tid) if version >= PRODUCE_ADD_FROM => {
            outcomes.extend(add_and_append(broker, &tid, asked, acks_all, version).await);
            return outcomes;
        }
        Some(tid) => Some(
            broker
                .verify_transaction(&tid, first.producer_id, first.producer_epoch, partitions.clone())
                .await,
        ),
    };
    let verdicts = in_order(&partitions, verdicts);
    let broker = broker.clone();
    // The appends may wait on the disk: not on the runtime's threads.
    match tokio::task::spawn_blocking(move || append_verified(&broker, asked, verdicts, acks_all, version)).await {
        Ok(appended) => outcomes.extend(appended),
        Err(e) => tracing::error!("appending verified batches failed: {e}"),
    }
    outcomes
}

/// Produce v12+: adds the partitions of `asked` (one producer's) to the
/// transaction, then appends them with their guards, on the blocking
/// pool. A guard the previous transaction's marker cleared while the add
/// waited for that transaction to complete is taken again and the add
/// repeated (it writes nothing the second time), up to [`ADD_ATTEMPTS`]
/// times: the guard must predate the add that confirms the transaction.
async fn add_and_append(
    broker: &Arc<Broker>,
    transactional_id: &str,
    mut asked: Vec<Pending>,
    acks_all: bool,
    version: i16,
) -> Vec<(Pending, Outcome)> {
    let mut outcomes = Vec::new();
    for attempt in 1..=ADD_ATTEMPTS {
        let Some(first) = asked.first().map(|p| p.unverified) else {
            break;
        };
        let partitions: Vec<TopicPartition> = asked
            .iter()
            .map(|p| TopicPartition::new(&p.topic, u32::try_from(p.index).unwrap_or_default()))
            .collect();
        let verdicts = broker
            .add_to_transaction(
                transactional_id,
                first.producer_id,
                first.producer_epoch,
                partitions.clone(),
            )
            .await;
        let verdicts = in_order(&partitions, Some(verdicts));
        let retry = attempt < ADD_ATTEMPTS;
        let b = broker.clone();
        // The appends may wait on the disk: not on the runtime's threads.
        let appended = tokio::task::spawn_blocking(move || {
            let mut again = Vec::new();
            let mut done = Vec::new();
            for (p, outcome) in append_verified(&b, asked, verdicts, acks_all, version) {
                let cleared = matches!(
                    outcome,
                    Err(ProduceRefusal::Refused(ResponseError::InvalidTxnState, _) | ProduceRefusal::Unverified(_))
                );
                if !(retry && cleared) {
                    done.push((p, outcome));
                    continue;
                }
                match b.append(&p.topic, p.index, &p.bytes, acks_all, VerificationGuard::NONE, true) {
                    Err(ProduceRefusal::Unverified(unverified)) => again.push(Pending { unverified, ..p }),
                    outcome => done.push((p, outcome)),
                }
            }
            (again, done)
        })
        .await;
        match appended {
            Ok((again, done)) => {
                outcomes.extend(done);
                asked = again;
            }
            Err(e) => {
                tracing::error!("appending added batches failed: {e}");
                break;
            }
        }
    }
    outcomes
}

/// Waits up to `timeout_ms` for the in-sync replicas of the `waiting`
/// partitions; their errors go into `response`.
async fn await_acks(
    broker: &Broker,
    mut response: ProduceResponse,
    waiting: Vec<(TopicPartition, u64)>,
    timeout_ms: u64,
) -> ProduceResponse {
    if waiting.is_empty() {
        return response;
    }
    let asked: Vec<TopicPartition> = waiting.iter().map(|(tp, _)| tp.clone()).collect();
    let acked = broker.replicas().wait_for_acks(waiting, timeout_ms);
    // The purgatory expires the request; the timer here is a backstop.
    let outcomes = tokio::time::timeout(Duration::from_millis(timeout_ms + 1_000), acked)
        .await
        .ok()
        .and_then(Result::ok);
    for topic in &mut response.responses {
        for p in &mut topic.partition_responses {
            let tp = TopicPartition::new(topic.name.0.as_str(), u32::try_from(p.index).unwrap_or_default());
            if !asked.contains(&tp) {
                continue;
            }
            let outcome = match &outcomes {
                Some(list) => list.iter().find(|(t, _)| *t == tp).map(|(_, o)| *o),
                None => Some(Err(gregor_replication::ReplicationError::RequestTimedOut)),
            };
            if let Some(Err(e)) = outcome {
                p.error_code = replication_error(e).code();
            }
        }
    }
    response
}

/// The same error for every partition of `request`.
fn refuse_all(request: &ProduceRequest, error: ResponseError) -> ProduceResponse {
    let mut response = ProduceResponse::default();
    for topic in &request.topic_data {
        let mut t = TopicProduceResponse::default();
        t.name = topic.name.clone();
        for partition in &topic.partition_data {
            let mut p = PartitionProduceResponse::default();
            p.index = partition.index;
            p.error_code = error.code();
            p.base_offset = -1;
            p.log_append_time_ms = -1;
            p.log_start_offset = -1;
            t.partition_responses.push(p);
        }
        response.responses.push(t);
    }
    response
}
