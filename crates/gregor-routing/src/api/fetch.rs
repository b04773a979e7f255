//! Fetch: whole batches from each partition, up to the high watermark
//! for consumers and up to the log end for follower replicas (whose fetch
//! offset also reports their progress to the leader), waiting up to
//! `max_wait_ms` for `min_bytes`. From v7 a fetcher may keep a fetch
//! session (KIP-227, `gregor_broker::fetch_sessions`): then it names only
//! what changed and is answered only what changed. From v13 topics are
//! named by id; from v15 a follower names itself in `replica_state`.
//! A consumer at `read_committed` reads up to the last stable offset and
//! is told which transactions in what it read were aborted.
//!
//! Fetch from followers (KIP-392): from v11 a consumer may read from a
//! follower, to the follower's high watermark (or last stable offset);
//! with `replica.selector.class` set, a leader answers a consumer in
//! another rack with a `preferred_read_replica` and no records, as Kafka.
//!
//! The records never enter user space: each partition's `records` field
//! is encoded with a unique 16-byte placeholder, and the connection sends
//! the response around them with the segment's bytes spliced in by
//! `sendfile(2)` ([`Splice`]).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use gregor_broker::errors::code_for;
use gregor_broker::fetch_sessions::{FetchPosition, PartitionMarks, SessionFetch, SessionPartition, SessionRequest};
use gregor_broker::Broker;
use gregor_log::{Log, LogError, TopicPartition};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::fetch_response::{AbortedTransaction, FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::{BrokerId, FetchRequest, FetchResponse, ProducerId, TopicName};
use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

use crate::splice::{placeholder, Splice};

/// A fetch's response with the regions to splice into it.
pub type FetchAnswer = (FetchResponse, Vec<Splice>);

/// A fetch waiting for data: resolves with its answer.
pub type DelayedFetch = Pin<Box<dyn Future<Output = FetchAnswer> + Send>>;

/// One partition to read.
struct Read {
    /// The topic's name (`None`: an unknown topic id).
    topic: Option<Arc<str>>,
    /// The topic's id (v13+ answers with it).
    topic_id: Uuid,
    partition: i32,
    position: FetchPosition,
}

/// How the fetch stands with its session.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Session {
    /// Every partition answered; `id` opened (0: none).
    Full { id: i32 },
    /// Only changes answered.
    Incremental { id: i32 },
}

/// A fetch request with what is resolved once for all its reads.
struct Fetch {
    version: i16,
    min_bytes: usize,
    max_bytes: usize,
    reads: Vec<Read>,
    session: Session,
    /// The follower replica fetching, if it is one.
    follower: Option<i32>,
    /// Partitions whose follower progress the leader refused.
    refused: Vec<(TopicPartition, ResponseError)>,
    /// A consumer at `read_committed` (v4+): reads stop at the last
    /// stable offset and answers list the aborted transactions.
    read_committed: bool,
    /// A consumer's fetch v11+ (KIP-392): it may read from followers, and
    /// a leader may send it to one; the client's rack.
    client_rack: Option<String>,
    /// The listener the fetch came through (a preferred replica must be
    /// reachable on it).
    listener: String,
}

/// Answers a Fetch request: `Ok` when the first read satisfies it (enough
/// bytes, an error, or no wait allowed), otherwise `Err` with the delayed
/// fetch — a future that reads again on every append until `min_bytes`
/// arrive or `max_wait_ms` passes.
pub fn handle(
    broker: &Arc<Broker>,
    request: FetchRequest,
    version: i16,
    listener: &str,
) -> Result<FetchAnswer, DelayedFetch> {
    let deadline = Instant::now() + Duration::from_millis(request.max_wait_ms.max(0) as u64);
    let fetch = match resolve(broker, request, version, listener) {
        Ok(fetch) => Arc::new(fetch),
        Err(refused) => {
            let mut response = FetchResponse::default();
            response.error_code = refused.code();
            return Ok((response, Vec::new()));
        }
    };
    let first = read_once(broker, &fetch);
    if satisfied(&fetch, &first.response, first.bytes, deadline) {
        return Ok(finish(broker, &fetch, first.response, first.splices));
    }
    let broker = broker.clone();
    Err(Box::pin(async move {
        // Appends since the first read are seen: it noted the bounds.
        let mut watched = first.watched;
        loop {
            // Register for appends before reading, so none slips in between.
            let progress = broker.appended();
            let appended = progress.notified();
            tokio::pin!(appended);
            appended.as_mut().enable();
            // Every append on the broker wakes every waiting fetch: read
            // again only when one of this fetch's partitions moved.
            if watched
                .as_ref()
                .is_none_or(|w| w.moved(&broker, fetch.follower.is_some(), fetch.read_committed))
                || Instant::now() >= deadline
            {
                let again = read_once(&broker, &fetch);
                if satisfied(&fetch, &again.response, again.bytes, deadline) {
                    return finish(&broker, &fetch, again.response, again.splices);
                }
                watched = again.watched;
            }
            let _ = tokio::time::timeout(deadline - Instant::now(), appended).await;
        }
    }))
}

/// One read of every partition of a fetch.
struct ReadOnce {
    response: FetchResponse,
    splices: Vec<Splice>,
    /// The bytes read.
    bytes: usize,
    /// What the read was bounded by, for a wait (`None` when a partition
    /// did not resolve to a log: such a fetch is answered at once).
    watched: Option<Watched>,
}

/// What a waiting fetch last read against: each partition's log with
/// its readable bound and start as the read saw them, under one
/// generation of the replica manager (a role or log change reads again).
/// Checking it is a few atomic loads per partition; a read is a log
/// lookup and a segment search per partition — a follower's session
/// holds thousands.
struct Watched {
    generation: u64,
    logs: Vec<(Arc<Log>, u64, u64)>,
}

impl Watched {
    /// Whether a read now could answer differently: a role or log
    /// changed, or a partition's readable bound or start moved.
    fn moved(&self, broker: &Broker, follower: bool, read_committed: bool) -> bool {
        broker.replicas().generation() != self.generation
            || self.logs.iter().any(|(log, bound, start)| {
                watch_bound(log, follower, read_committed) != *bound || log.log_start_offset() != *start
            })
    }
}

/// [`read_bound`] with the log's own high watermark: what a waiting fetch
/// compares with the bound its last read stopped at (a leader moves the
/// log's with its own, under the replica's lock).
fn watch_bound(log: &Log, follower: bool, read_committed: bool) -> u64 {
    read_bound(log, log.high_watermark(), follower, read_committed)
}

/// How far a fetch may read `log`: a follower to the log end, consumers
/// to the high watermark `hw` — at read_committed to the last stable
/// offset.
fn read_bound(log: &Log, hw: u64, follower: bool, read_committed: bool) -> u64 {
    match (follower, read_committed) {
        (true, _) => log.end_offset(),
        (false, true) => log.last_stable_offset().min(hw),
        (false, false) => hw,
    }
}

/// Names the topics, applies the session fields, finds the follower and
/// records its progress.
fn resolve(broker: &Broker, request: FetchRequest, version: i16, listener: &str) -> Result<Fetch, ResponseError> {
    let topics = broker.topics();
    let name_of = |name: &TopicName, id: Uuid| -> Option<Arc<str>> {
        if version >= 13 {
            topics.name_of(id).map(Arc::from)
        } else {
            Some(Arc::from(name.0.as_str()))
        }
    };
    let mut named = Vec::new();
    let mut unknown = Vec::new();
    for topic in &request.topics {
        let name = name_of(&topic.topic, topic.topic_id);
        for p in &topic.partitions {
            let position = FetchPosition {
                fetch_offset: p.fetch_offset,
                partition_max_bytes: p.partition_max_bytes,
                current_leader_epoch: p.current_leader_epoch,
                log_start_offset: p.log_start_offset,
            };
            match &name {
                Some(name) => named.push((
                    SessionPartition {
                        topic: name.clone(),
                        partition: p.partition,
                    },
                    position,
                )),
                None => unknown.push(Read {
                    topic: None,
                    topic_id: topic.topic_id,
                    partition: p.partition,
                    position,
                }),
            }
        }
    }
    let replica_id = if version >= 15 {
        request.replica_state.replica_id.0
    } else {
        request.replica_id.0
    };
    let follower = (replica_id >= 0).then_some(replica_id);
    let (session, partitions) = if version >= 7 {
        let forgotten = request
            .forgotten_topics_data
            .iter()
            .filter_map(|t| Some((name_of(&t.topic, t.topic_id)?, &t.partitions)))
            .flat_map(|(name, partitions)| {
                partitions.iter().map(move |&partition| SessionPartition {
                    topic: name.clone(),
                    partition,
                })
            })
            .collect();
        let asked = SessionRequest {
            session_id: request.session_id,
            epoch: request.session_epoch,
            partitions: named,
            forgotten,
            privileged: follower.is_some(),
        };
        match broker.fetch_sessions().begin(asked, broker.now_ms()) {
            Ok(SessionFetch::Full { session_id, partitions }) => (Session::Full { id: session_id }, partitions),
            Ok(SessionFetch::Incremental { session_id, partitions }) => {
                (Session::Incremental { id: session_id }, partitions)
            }
            Err(gregor_broker::fetch_sessions::SessionError::NotFound) => {
                return Err(ResponseError::FetchSessionIdNotFound)
            }
            Err(gregor_broker::fetch_sessions::SessionError::InvalidEpoch) => {
                return Err(ResponseError::InvalidFetchSessionEpoch)
            }
        }
    } else {
        (Session::Full { id: 0 }, named)
    };
    // A topic's id looked up once per run of its partitions, not per
    // partition (a follower's session holds thousands).
    let mut last_id: Option<(Arc<str>, Uuid)> = None;
    let mut reads: Vec<Read> = partitions
        .into_iter()
        .map(|(p, position)| {
            let topic_id = match &last_id {
                Some((name, id)) if *name == p.topic => *id,
                _ => {
                    let id = topics.id_of(&p.topic).unwrap_or_default();
                    last_id = Some((p.topic.clone(), id));
                    id
                }
            };
            Read {
                topic_id,
                topic: Some(p.topic),
                partition: p.partition,
                position,
            }
        })
        .collect();
    reads.extend(unknown);
    let mut fetch = Fetch {
        read_committed: follower.is_none() && request.isolation_level == READ_COMMITTED,
        version,
        min_bytes: request.min_bytes.max(1) as usize,
        max_bytes: request.max_bytes.max(0) as usize,
        reads,
        session,
        follower,
        refused: Vec::new(),
        client_rack: (follower.is_none() && version >= 11).then(|| request.rack_id.to_string()),
        listener: listener.to_string(),
    };
    fetch.refused = record_follower_progress(broker, &fetch);
    Ok(fetch)
}

fn satisfied(fetch: &Fetch, response: &FetchResponse, bytes: usize, deadline: Instant) -> bool {
    bytes >= fetch.min_bytes || Instant::now() >= deadline || has_error_or_redirect(response)
}

/// An error, or a preferred read replica to tell (Kafka answers both at
/// once).
fn has_error_or_redirect(response: &FetchResponse) -> bool {
    response
        .responses
        .iter()
        .flat_map(|t| &t.partitions)
        .any(|p| p.error_code != 0 || p.preferred_read_replica.0 >= 0)
}

/// `isolation_level` of a consumer that skips aborted transactions.
const READ_COMMITTED: i8 = 1;

fn leader_epoch(current: i32) -> Option<i32> {
    (current >= 0).then_some(current)
}

/// A follower's fetch offsets are its log ends: the leader records them
/// once per request (moving the high watermark), for every partition of
/// its session. Returns the partitions refused.
fn record_follower_progress(broker: &Broker, fetch: &Fetch) -> Vec<(TopicPartition, ResponseError)> {
    let Some(replica) = fetch.follower else {
        return Vec::new();
    };
    let replicas = broker.replicas();
    let mut refused = Vec::new();
    for read in &fetch.reads {
        let Some(name) = &read.topic else { continue };
        let tp = TopicPartition::new(&**name, u32::try_from(read.partition).unwrap_or(u32::MAX));
        // An offset outside the log records nothing; the read refuses it.
        let epoch = leader_epoch(read.position.current_leader_epoch);
        let position = read.position;
        if let Err(e) =
            replicas.on_follower_fetch(&tp, replica, position.fetch_offset, position.log_start_offset, epoch)
        {
            refused.push((tp, gregor_broker::errors::replication_error(e)));
        }
    }
    refused
}

fn read_once(broker: &Broker, fetch: &Fetch) -> ReadOnce {
    let compact = fetch.version >= 12;
    let mut response = FetchResponse::default();
    let mut splices = Vec::new();
    let mut total = 0usize;
    let generation = broker.replicas().generation();
    let mut watched = Some(Vec::with_capacity(fetch.reads.len()));
    for read in &fetch.reads {
        let mut p = PartitionData::default();
        p.partition_index = read.partition;
        p.high_watermark = -1;
        p.last_stable_offset = -1;
        p.log_start_offset = -1;
        match &read.topic {
            None => p.error_code = ResponseError::UnknownTopicId.code(),
            Some(name) => {
                let refusal = fetch
                    .refused
                    .iter()
                    .find(|(tp, _)| *tp.topic == **name && u32::try_from(read.partition).ok() == Some(tp.partition))
                    .map(|(_, e)| *e);
                let position = read.position;
                let epoch = leader_epoch(position.current_leader_epoch);
                let source = match refusal {
                    Some(e) => Err(e),
                    None => broker.consumer_readable_log(name, read.partition, epoch, fetch.client_rack.is_some()),
                };
                // A leader sends a consumer in another rack to a follower
                // there: the offsets, no records (Kafka skips the read).
                let preferred = fetch.client_rack.as_deref().and_then(|rack| {
                    broker.preferred_read_replica(name, read.partition, rack, position.fetch_offset, &fetch.listener)
                });
                if source.is_err() || preferred.is_some() {
                    watched = None;
                }
                match source {
                    Err(e) => p.error_code = e.code(),
                    Ok((log, hw)) if preferred.is_some() => {
                        p.high_watermark = hw as i64;
                        p.last_stable_offset = log.last_stable_offset().min(hw) as i64;
                        p.log_start_offset = log.log_start_offset() as i64;
                        p.preferred_read_replica = BrokerId(preferred.unwrap_or(-1));
                    }
                    Ok((log, hw)) => {
                        // Followers read to the log end, consumers to the high
                        // watermark — at read_committed to the last stable offset.
                        let lso = log.last_stable_offset().min(hw);
                        let bound = read_bound(&log, hw, fetch.follower.is_some(), fetch.read_committed);
                        // The bound this read stops at: a move past it,
                        // even one before this line, reads again.
                        if let Some(watched) = &mut watched {
                            watched.push((log.clone(), bound, log.log_start_offset()));
                        }
                        p.high_watermark = hw as i64;
                        p.last_stable_offset = lso as i64;
                        if fetch.version >= 5 {
                            p.log_start_offset = log.log_start_offset() as i64;
                        }
                        // The first partition with data returns at least one batch.
                        let room = fetch.max_bytes.saturating_sub(total);
                        let limit = (position.partition_max_bytes.max(0) as usize).min(room);
                        let offset = u64::try_from(position.fetch_offset).unwrap_or(u64::MAX);
                        // A throttled follower (KIP-73) gets no records while
                        // the leader's replication rate is over its bound.
                        let tp = TopicPartition::new(&**name, read.partition.unsigned_abs());
                        let limit = match fetch.follower {
                            Some(f) if broker.leader_read_waits(&tp, f) => 0,
                            _ => limit,
                        };
                        match log.read_bounded(offset, limit as u64, bound, total == 0 && limit > 0) {
                            Ok(read) => {
                                if fetch.read_committed {
                                    match aborted_transactions(&log, offset, bound) {
                                        Ok(aborted) => p.aborted_transactions = Some(aborted),
                                        Err(e) => p.error_code = code_for(&e),
                                    }
                                }
                                if let Some(region) = read.region.filter(|r| !r.is_empty()) {
                                    total += region.len() as usize;
                                    if let Some(f) = fetch.follower {
                                        broker.record_leader_read(&tp, f, region.len() as usize);
                                    }
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
            }
        }
        if read.topic.is_none() {
            watched = None;
        }
        topic_entry(&mut response, read).partitions.push(p);
    }
    ReadOnce {
        response,
        splices,
        bytes: total,
        watched: watched.map(|logs| Watched { generation, logs }),
    }
}

/// The aborted transactions a read_committed consumer reading from
/// `offset` up to `bound` must drop (Kafka's collectAbortedTransactions).
fn aborted_transactions(log: &Log, offset: u64, bound: u64) -> Result<Vec<AbortedTransaction>, LogError> {
    Ok(log
        .aborted_transactions(offset, bound)?
        .into_iter()
        .map(|t| {
            let mut aborted = AbortedTransaction::default();
            aborted.producer_id = ProducerId(t.producer_id);
            aborted.first_offset = t.first_offset as i64;
            aborted
        })
        .collect())
}

/// The response's entry for `read`'s topic: the last one when it is the
/// same topic (reads come grouped by topic), a new one otherwise.
fn topic_entry<'a>(response: &'a mut FetchResponse, read: &Read) -> &'a mut FetchableTopicResponse {
    let name = read.topic.as_deref().unwrap_or("");
    let same = response
        .responses
        .last()
        .is_some_and(|t| t.topic_id == read.topic_id && t.topic.0.as_str() == name);
    if !same {
        let mut topic = FetchableTopicResponse::default();
        topic.topic = TopicName(StrBytes::from_string(name.to_string()));
        topic.topic_id = read.topic_id;
        response.responses.push(topic);
    }
    response.responses.last_mut().expect("just pushed")
}

/// The answer as the session wants it: the session id, and in an
/// incremental session only the partitions that changed (every partition
/// with records is among them, so every splice still has its place).
fn finish(broker: &Broker, fetch: &Fetch, mut response: FetchResponse, splices: Vec<Splice>) -> FetchAnswer {
    let (id, incremental) = match fetch.session {
        Session::Full { id } => (id, false),
        Session::Incremental { id } => (id, true),
    };
    if fetch.version >= 7 {
        response.session_id = id;
    }
    if id == 0 {
        return (response, splices);
    }
    let sessions = broker.fetch_sessions();
    for topic in &mut response.responses {
        let name: Arc<str> = Arc::from(topic.topic.0.as_str());
        topic.partitions.retain(|p| {
            let partition = SessionPartition {
                topic: name.clone(),
                partition: p.partition_index,
            };
            let marks = PartitionMarks {
                high_watermark: p.high_watermark,
                log_start_offset: p.log_start_offset,
            };
            let news = p.records.as_ref().is_some_and(|r| !r.is_empty())
                || p.error_code != 0
                || p.preferred_read_replica.0 >= 0;
            sessions.changed(id, &partition, marks, news) || !incremental
        });
    }
    response.responses.retain(|t| !t.partitions.is_empty());
    (response, splices)
}
