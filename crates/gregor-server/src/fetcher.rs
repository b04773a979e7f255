//! The replica fetcher: for every leader this broker follows partitions
//! of, one task with one connection that asks OffsetForLeaderEpoch where
//! its log diverges (after a leader change), then Fetches from its log
//! end as a replica (`replica_id` set) and appends what comes back. The
//! fetches go through a fetch session (KIP-227): after the first, a
//! request names only partitions whose position moved, and the leader
//! answers only partitions with news. The decisions are
//! gregor-replication's, through the [`ReplicaManager`]. A partition
//! whose replication is throttled (Kafka's
//! `follower.replication.throttled.*`) is left out while the rate is over
//! its bound.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use gregor_broker::{Broker, FollowedPartition, ReplicaManager};
use gregor_client::ClientSecurity;
use gregor_client::{ClientError, Connection, ConsumerConfig, FetchSession};
use gregor_log::TopicPartition;
use gregor_replication::{EpochEnd, FollowerRequest, ReplicationError};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_for_leader_epoch_request::{OffsetForLeaderPartition, OffsetForLeaderTopic};
use kafka_protocol::messages::{BrokerId, OffsetForLeaderEpochRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use tokio::sync::watch;

const FETCH_VERSION: i16 = 11;
const EPOCH_VERSION: i16 = 3;
/// `replica.fetch.wait.max.ms`.
const FETCH_WAIT_MS: i32 = 500;
/// `replica.fetch.max.bytes` per partition.
const PARTITION_MAX_BYTES: i32 = 1024 * 1024;
/// `replica.fetch.response.max.bytes`.
const RESPONSE_MAX_BYTES: i32 = 10 * 1024 * 1024;
const BACKOFF: Duration = Duration::from_millis(200);

/// Starts the fetcher manager: one fetch task per followed leader
/// (reached with the inter-broker `security`), until `stop` turns true.
pub fn spawn(
    broker: Arc<Broker>,
    security: ClientSecurity,
    mut stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    let replicas = broker.replicas().clone();
    tokio::spawn(async move {
        let mut tasks: BTreeMap<i32, tokio::task::JoinHandle<()>> = BTreeMap::new();
        loop {
            let changed = replicas.followers_changed();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let leaders: BTreeSet<i32> = replicas.followed().iter().map(|f| f.leader).collect();
            tasks.retain(|_, t| !t.is_finished());
            for leader in leaders {
                tasks.entry(leader).or_insert_with(|| {
                    tokio::spawn(fetch_from(broker.clone(), security.clone(), leader, stop.clone()))
                });
            }
            tokio::select! {
                _ = changed => {}
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = stop.changed() => break,
            }
        }
        for (_, t) in tasks {
            t.abort();
        }
    })
}

/// Follows every partition led by `leader`; ends when there is none left.
async fn fetch_from(broker: Arc<Broker>, security: ClientSecurity, leader: i32, stop: watch::Receiver<bool>) {
    let replicas = broker.replicas().clone();
    let local = replicas.local();
    let mut connection: Option<Connection> = None;
    let mut session = FetchSession::new();
    // The partitions followed from this leader, as of a generation of the
    // replica manager: filtered again only after a role change.
    let mut followed: Option<(u64, Arc<Vec<FollowedPartition>>)> = None;
    loop {
        if *stop.borrow() {
            return;
        }
        // Watched before the set is read: a change after it is not missed.
        let changed = replicas.followers_changed();
        tokio::pin!(changed);
        changed.as_mut().enable();
        let generation = replicas.generation();
        let partitions = match &followed {
            Some((built, partitions)) if *built == generation => partitions.clone(),
            _ => {
                let partitions: Arc<Vec<FollowedPartition>> = Arc::new(
                    replicas
                        .followed()
                        .iter()
                        .filter(|f| f.leader == leader)
                        .cloned()
                        .collect(),
                );
                followed = Some((generation, partitions.clone()));
                partitions
            }
        };
        if partitions.is_empty() {
            return;
        }
        if connection.is_none() {
            let Some(endpoint) = replicas.endpoint(leader) else {
                tokio::time::sleep(BACKOFF).await;
                continue;
            };
            let address = format!("{}:{}", endpoint.host, endpoint.port);
            match Connection::connect_with(address.as_str(), &format!("gregor-replica-{local}"), &security).await {
                Ok(c) => connection = Some(c),
                Err(e) => {
                    tracing::debug!(leader, "cannot reach the leader: {e}");
                    tokio::time::sleep(BACKOFF).await;
                    continue;
                }
            }
        }
        let Some(conn) = connection.as_mut() else { continue };
        let mut queries = Vec::new();
        let mut fetches = Vec::new();
        for p in partitions.iter() {
            match replicas.next_follower_request(&p.partition, p.leader_epoch) {
                Some(FollowerRequest::EpochEndOffset { epoch }) => queries.push((p.clone(), epoch)),
                Some(FollowerRequest::Fetch { .. }) if broker.follower_fetch_waits(&p.partition) => {}
                Some(FollowerRequest::Fetch { offset }) => fetches.push((p.clone(), offset)),
                None => {}
            }
        }
        let outcome = if !queries.is_empty() {
            truncate(&replicas, conn, local, &queries).await
        } else if !fetches.is_empty() {
            let fetching = fetch(&broker, conn, &mut session, local, &fetches);
            match until_followed_changes(&replicas, leader, &partitions, changed.as_mut(), fetching).await {
                Some(outcome) => outcome,
                None => {
                    // What this broker follows from this leader changed
                    // (a LeaderAndIsr): the long poll's answer is not
                    // waited for — a new connection asks for the new set.
                    connection = None;
                    session.reset();
                    continue;
                }
            }
        } else {
            back_off(&replicas).await;
            Ok(())
        };
        if let Err(e) = outcome {
            tracing::debug!(leader, "replica fetch failed: {e}");
            connection = None;
            session.reset();
            tokio::time::sleep(BACKOFF).await;
        }
    }
}

/// Runs `fetching` unless what this broker follows from `leader` changes
/// from `followed` first (then `None`): a partition it now follows there,
/// or a new leader epoch, should not wait for a long poll of the old set.
/// `changed` was watched before `followed` was read.
async fn until_followed_changes<T>(
    replicas: &ReplicaManager,
    leader: i32,
    followed: &[FollowedPartition],
    changed: std::pin::Pin<&mut tokio::sync::futures::Notified<'_>>,
    fetching: impl std::future::Future<Output = T>,
) -> Option<T> {
    let set = |partitions: &[FollowedPartition]| -> BTreeSet<(TopicPartition, i32)> {
        partitions
            .iter()
            .filter(|f| f.leader == leader)
            .map(|f| (f.partition.clone(), f.leader_epoch))
            .collect()
    };
    tokio::pin!(fetching);
    tokio::select! {
        outcome = &mut fetching => return Some(outcome),
        _ = changed => {}
    }
    let before = set(followed);
    loop {
        let changed = replicas.followers_changed();
        tokio::pin!(changed);
        changed.as_mut().enable();
        if set(&replicas.followed()) != before {
            return None;
        }
        tokio::select! {
            outcome = &mut fetching => return Some(outcome),
            _ = changed => {}
        }
    }
}

/// Waits before asking again after a refusal — or less, when a
/// LeaderAndIsr changes what this broker follows (the refusal was most
/// likely the old leader epoch's: a leadership or ISR change).
async fn back_off(replicas: &ReplicaManager) {
    tokio::select! {
        _ = tokio::time::sleep(BACKOFF) => {}
        _ = replicas.followers_changed() => {}
    }
}

fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_string()))
}

/// The replication error a leader's error code stands for.
fn refusal(code: i16) -> ReplicationError {
    match ResponseError::try_from_code(code) {
        Some(ResponseError::FencedLeaderEpoch) => ReplicationError::FencedLeaderEpoch,
        Some(ResponseError::UnknownLeaderEpoch) => ReplicationError::UnknownLeaderEpoch,
        _ => ReplicationError::NotLeaderOrFollower,
    }
}

async fn truncate(
    replicas: &Arc<ReplicaManager>,
    conn: &mut Connection,
    local: i32,
    queries: &[(FollowedPartition, i32)],
) -> Result<(), ClientError> {
    let mut request = OffsetForLeaderEpochRequest::default();
    request.replica_id = BrokerId(local);
    let mut by_topic: BTreeMap<&str, Vec<OffsetForLeaderPartition>> = BTreeMap::new();
    for (p, epoch) in queries {
        let mut q = OffsetForLeaderPartition::default();
        q.partition = p.partition.partition as i32;
        q.current_leader_epoch = p.leader_epoch;
        q.leader_epoch = *epoch;
        by_topic.entry(&p.partition.topic).or_default().push(q);
    }
    request.topics = by_topic
        .into_iter()
        .map(|(t, partitions)| {
            let mut topic = OffsetForLeaderTopic::default();
            topic.topic = topic_name(t);
            topic.partitions = partitions;
            topic
        })
        .collect();
    let response = conn.send(request, EPOCH_VERSION).await?;
    let mut refused = false;
    for topic in response.topics {
        for answer in topic.partitions {
            let tp = TopicPartition::new(topic.topic.0.as_str(), answer.partition.unsigned_abs());
            let Some((followed, requested)) = queries.iter().find(|(p, _)| p.partition == tp) else {
                continue;
            };
            let result = if answer.error_code != 0 {
                Err(refusal(answer.error_code))
            } else {
                Ok(EpochEnd {
                    epoch: (answer.leader_epoch >= 0).then_some(answer.leader_epoch),
                    end_offset: u64::try_from(answer.end_offset).ok(),
                })
            };
            refused |= result.is_err();
            let (replicas, epoch, requested) = (replicas.clone(), followed.leader_epoch, *requested);
            let truncated =
                tokio::task::spawn_blocking(move || replicas.on_epoch_end(&tp, epoch, requested, result)).await;
            if let Ok(Err(e)) = truncated {
                tracing::error!("truncation failed: {e}");
            }
        }
    }
    // Once for the whole answer, not once per refused partition (a
    // LeaderAndIsr moving 500 partitions here could wait 200 ms for
    // each).
    if refused {
        back_off(replicas).await;
    }
    Ok(())
}

async fn fetch(
    broker: &Arc<Broker>,
    conn: &mut Connection,
    session: &mut FetchSession,
    local: i32,
    fetches: &[(FollowedPartition, u64)],
) -> Result<(), ClientError> {
    let config = ConsumerConfig {
        min_bytes: 1,
        max_bytes: RESPONSE_MAX_BYTES,
        partition_max_bytes: PARTITION_MAX_BYTES,
        max_wait_ms: FETCH_WAIT_MS,
    };
    let targets: Vec<(&str, i32, i64, i32)> = fetches
        .iter()
        .map(|(p, offset)| {
            (
                p.partition.topic.as_str(),
                p.partition.partition as i32,
                *offset as i64,
                p.leader_epoch,
            )
        })
        .collect();
    let mut request = session.request(local, &config, &targets);
    // Each partition named carries this replica's log start, as Kafka's
    // followers send it: the leader sends consumers here (KIP-392) only
    // for offsets this log still holds.
    let replicas = broker.replicas();
    for topic in &mut request.topics {
        let name = topic.topic.0.to_string();
        for p in &mut topic.partitions {
            let tp = TopicPartition::new(&name, p.partition.unsigned_abs());
            if let Some(start) = replicas.local_log_start(&tp) {
                p.log_start_offset = i64::try_from(start).unwrap_or(i64::MAX);
            }
        }
    }
    conn.set_timeout(Duration::from_millis(FETCH_WAIT_MS as u64 + 10_000));
    let response = conn.send(request, FETCH_VERSION).await?;
    session.answered(response.error_code, response.session_id, &targets);
    let mut refused = false;
    let mut outcomes = Vec::new();
    for topic in response.responses {
        for data in topic.partitions {
            let tp = TopicPartition::new(topic.topic.0.as_str(), data.partition_index.unsigned_abs());
            let Some((followed, offset)) = fetches.iter().find(|(p, _)| p.partition == tp) else {
                continue;
            };
            refused |= data.error_code != 0 && data.error_code != ResponseError::OffsetOutOfRange.code();
            if let Some(records) = &data.records {
                broker.record_follower_fetch(&tp, records.len());
            }
            outcomes.push((tp, followed.leader_epoch, *offset, data));
        }
    }
    // Appends and truncations are disk work: off the runtime's threads.
    let replicas = broker.replicas().clone();
    let applied = tokio::task::spawn_blocking(move || {
        for (tp, epoch, offset, data) in outcomes {
            let applied = if data.error_code == ResponseError::OffsetOutOfRange.code() {
                let range = (
                    u64::try_from(data.log_start_offset).unwrap_or(0),
                    u64::try_from(data.high_watermark).unwrap_or(0),
                );
                replicas.on_fetch_error(&tp, epoch, ReplicationError::NotLeaderOrFollower, Some(range))
            } else if data.error_code != 0 {
                replicas.on_fetch_error(&tp, epoch, refusal(data.error_code), None)
            } else {
                let records = data.records.unwrap_or_default();
                let hw = u64::try_from(data.high_watermark).unwrap_or(0);
                let log_start = u64::try_from(data.log_start_offset).unwrap_or(0);
                replicas
                    .on_fetched(&tp, epoch, offset, &records, hw)
                    .and_then(|()| replicas.on_leader_log_start(&tp, epoch, log_start))
            };
            if let Err(e) = applied {
                tracing::error!(partition = %tp, "replicated append failed: {e}");
            }
        }
    })
    .await;
    if applied.is_err() {
        tracing::error!("a replicated append panicked");
    }
    if refused {
        back_off(broker.replicas()).await;
    }
    Ok(())
}
