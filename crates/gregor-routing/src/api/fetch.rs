//! Fetch: whole batches from each partition, up to the high watermark
//! for consumers and up to the log end for follower replicas (whose fetch
//! offset also reports their progress to the leader), waiting up to
//! `max_wait_ms` for `min_bytes`. From v13 topics are named by id; from
//! v15 a follower names itself in `replica_state`.
//!
//! The records never enter user space: each partition's `records` field
//! is encoded with a unique 16-byte placeholder, and the connection sends
//! the response around them with the segment's bytes spliced in by
//! `sendfile(2)` ([`Splice`]).
//!
//! No fetch sessions yet (KIP-227): every answer carries session id 0,
//! which tells clients to keep sending full fetch requests.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::fetch_request::FetchTopic;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::{FetchRequest, FetchResponse};

use gregor_broker::errors::code_for;
use gregor_broker::Broker;
use gregor_log::TopicPartition;

use crate::splice::{placeholder, Splice};

/// A fetch's response with the regions to splice into it.
pub type FetchAnswer = (FetchResponse, Vec<Splice>);

/// A fetch waiting for data: resolves with its answer.
pub type DelayedFetch = Pin<Box<dyn Future<Output = FetchAnswer> + Send>>;

/// A fetch request with what is resolved once for all its reads.
struct Fetch {
    request: FetchRequest,
    version: i16,
    /// Each requested topic's name, in request order (`None`: an unknown
    /// topic id).
    names: Vec<Option<String>>,
    /// The follower replica fetching, if it is one.
    follower: Option<i32>,
    /// Partitions whose follower progress the leader refused.
    refused: Vec<(TopicPartition, ResponseError)>,
}

/// Answers a Fetch request: `Ok` when the first read satisfies it (enough
/// bytes, an error, or no wait allowed), otherwise `Err` with the delayed
/// fetch — a future that reads again on every append until `min_bytes`
/// arrive or `max_wait_ms` passes.
pub fn handle(broker: &Arc<Broker>, request: FetchRequest, version: i16) -> Result<FetchAnswer, DelayedFetch> {
    let deadline = Instant::now() + Duration::from_millis(request.max_wait_ms.max(0) as u64);
    let fetch = Arc::new(resolve(broker, request, version));
    let (response, splices, bytes) = read_once(broker, &fetch);
    if satisfied(&fetch.request, &response, bytes, deadline) {
        return Ok((response, splices));
    }
    let broker = broker.clone();
    Err(Box::pin(async move {
        loop {
            // Register for appends before reading, so none slips in between.
            let progress = broker.appended();
            let appended = progress.notified();
            tokio::pin!(appended);
            appended.as_mut().enable();
            let (response, splices, bytes) = read_once(&broker, &fetch);
            if satisfied(&fetch.request, &response, bytes, deadline) {
                return (response, splices);
            }
            let _ = tokio::time::timeout(deadline - Instant::now(), appended).await;
        }
    }))
}

/// Names the topics, finds the follower, and records its progress.
fn resolve(broker: &Broker, request: FetchRequest, version: i16) -> Fetch {
    let names = request.topics.iter().map(|t| topic_name(broker, t, version)).collect();
    let replica_id = if version >= 15 {
        request.replica_state.replica_id.0
    } else {
        request.replica_id.0
    };
    let mut fetch = Fetch {
        request,
        version,
        names,
        follower: (replica_id >= 0).then_some(replica_id),
        refused: Vec::new(),
    };
    fetch.refused = record_follower_progress(broker, &fetch);
    fetch
}

/// A requested topic's name: given up to v12, looked up by id from v13.
fn topic_name(broker: &Broker, topic: &FetchTopic, version: i16) -> Option<String> {
    if version >= 13 {
        broker.topics().name_of(topic.topic_id)
    } else {
        Some(topic.topic.0.to_string())
    }
}

fn satisfied(request: &FetchRequest, response: &FetchResponse, bytes: usize, deadline: Instant) -> bool {
    bytes >= request.min_bytes.max(1) as usize || Instant::now() >= deadline || has_error(response)
}

fn has_error(response: &FetchResponse) -> bool {
    response
        .responses
        .iter()
        .flat_map(|t| &t.partitions)
        .any(|p| p.error_code != 0)
}

fn leader_epoch(current: i32) -> Option<i32> {
    (current >= 0).then_some(current)
}

/// A follower's fetch offsets are its log ends: the leader records them
/// once per request (moving the high watermark). Returns the partitions
/// refused.
fn record_follower_progress(broker: &Broker, fetch: &Fetch) -> Vec<(TopicPartition, ResponseError)> {
    let Some(replica) = fetch.follower else {
        return Vec::new();
    };
    let replicas = broker.replicas();
    let mut refused = Vec::new();
    for (topic, name) in fetch.request.topics.iter().zip(&fetch.names) {
        let Some(name) = name else { continue };
        for p in &topic.partitions {
            let tp = TopicPartition::new(name, u32::try_from(p.partition).unwrap_or(u32::MAX));
            let offset = u64::try_from(p.fetch_offset).unwrap_or(0);
            if let Err(e) = replicas.on_follower_fetch(&tp, replica, offset, leader_epoch(p.current_leader_epoch)) {
                refused.push((tp, gregor_broker::errors::replication_error(e)));
            }
        }
    }
    refused
}

fn read_once(broker: &Broker, fetch: &Fetch) -> (FetchResponse, Vec<Splice>, usize) {
    let request = &fetch.request;
    let compact = fetch.version >= 12;
    let mut response = FetchResponse::default();
    let mut splices = Vec::new();
    let mut total = 0usize;
    let max_bytes = request.max_bytes.max(0) as usize;
    for (topic, name) in request.topics.iter().zip(&fetch.names) {
        let mut topic_response = FetchableTopicResponse::default();
        topic_response.topic = topic.topic.clone();
        topic_response.topic_id = topic.topic_id;
        for partition in &topic.partitions {
            let mut p = PartitionData::default();
            p.partition_index = partition.partition;
            p.high_watermark = -1;
            p.last_stable_offset = -1;
            p.log_start_offset = -1;
            let Some(name) = name else {
                p.error_code = ResponseError::UnknownTopicId.code();
                topic_response.partitions.push(p);
                continue;
            };
            let refusal = fetch
                .refused
                .iter()
                .find(|(tp, _)| tp.topic == *name && u32::try_from(partition.partition).ok() == Some(tp.partition))
                .map(|(_, e)| *e);
            let source = match refusal {
                Some(e) => Err(e),
                None => broker.readable_log(name, partition.partition, leader_epoch(partition.current_leader_epoch)),
            };
            match source {
                Err(e) => p.error_code = e.code(),
                Ok((log, hw)) => {
                    // Followers read to the log end, consumers to the high watermark.
                    let bound = if fetch.follower.is_some() { log.end_offset() } else { hw };
                    p.high_watermark = hw as i64;
                    p.last_stable_offset = hw as i64;
                    if fetch.version >= 5 {
                        p.log_start_offset = log.log_start_offset() as i64;
                    }
                    // The first partition with data returns at least one batch.
                    let room = max_bytes.saturating_sub(total);
                    let limit = (partition.partition_max_bytes.max(0) as usize).min(room);
                    let offset = u64::try_from(partition.fetch_offset).unwrap_or(u64::MAX);
                    match log.read_bounded(offset, limit as u64, bound, total == 0) {
                        Ok(read) => {
                            if let Some(region) = read.region {
                                total += region.len() as usize;
                                let placeholder = placeholder();
                                p.records = Some(Bytes::copy_from_slice(&placeholder));
                                splices.push(Splice {
                                    placeholder,
                                    region,
                                    compact,
                                });
                            }
                        }
                        Err(e) => p.error_code = code_for(&e),
                    }
                }
            }
            topic_response.partitions.push(p);
        }
        response.responses.push(topic_response);
    }
    (response, splices, total)
}
