//! The consumer: partitions assigned by hand from a position (earliest,
//! latest, an offset, a group's committed offset) or given by a group it
//! subscribes through (membership, range assignor, rebalances on
//! heartbeat), fetched from their leaders with `fetch.min.bytes` /
//! `fetch.max.bytes`, records decoded; positions committed to the group's
//! coordinator.

use std::collections::BTreeMap;
use std::time::Duration;

use gregor_log::batch::for_each_record;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{BrokerId, FetchRequest};

use crate::cluster::{topic_name, Cluster};
use crate::group::{self, JoinOutcome, Membership};
use crate::offsets;
use crate::{ClientError, Connection};

/// Where reading starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartAt {
    /// The log start.
    Earliest,
    /// The high watermark (only new records).
    Latest,
    /// This offset.
    Offset(i64),
}

/// A record read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumedRecord {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// Timestamp (ms).
    pub timestamp: i64,
    /// Key.
    pub key: Option<Vec<u8>>,
    /// Value.
    pub value: Option<Vec<u8>>,
}

/// Consumer settings (Kafka's names in comments).
#[derive(Debug, Clone)]
pub struct ConsumerConfig {
    /// `fetch.min.bytes`.
    pub min_bytes: i32,
    /// `fetch.max.bytes`.
    pub max_bytes: i32,
    /// `max.partition.fetch.bytes`.
    pub partition_max_bytes: i32,
    /// `fetch.max.wait.ms`.
    pub max_wait_ms: i32,
}

impl Default for ConsumerConfig {
    fn default() -> Self {
        Self {
            min_bytes: 1,
            max_bytes: 50 * 1024 * 1024,
            partition_max_bytes: 1024 * 1024,
            max_wait_ms: 500,
        }
    }
}

/// A Fetch for `partitions` — (topic, partition, fetch offset, current
/// leader epoch or -1) — as `replica_id` (-1: a consumer; a broker id: a
/// follower replica) with `config`'s sizes and wait.
pub fn fetch_request(replica_id: i32, config: &ConsumerConfig, partitions: &[(&str, i32, i64, i32)]) -> FetchRequest {
    let mut topics: BTreeMap<&str, Vec<FetchPartition>> = BTreeMap::new();
    for &(topic, partition, offset, leader_epoch) in partitions {
        let mut f = FetchPartition::default();
        f.partition = partition;
        f.fetch_offset = offset;
        f.current_leader_epoch = leader_epoch;
        f.log_start_offset = -1;
        f.partition_max_bytes = config.partition_max_bytes;
        topics.entry(topic).or_default().push(f);
    }
    let mut request = FetchRequest::default();
    request.replica_id = BrokerId(replica_id);
    request.max_wait_ms = config.max_wait_ms;
    request.min_bytes = config.min_bytes;
    request.max_bytes = config.max_bytes;
    request.session_epoch = -1;
    request.topics = topics
        .into_iter()
        .map(|(t, ps)| {
            let mut ft = FetchTopic::default();
            ft.topic = topic_name(t);
            ft.partitions = ps;
            ft
        })
        .collect();
    request
}

/// A group subscription: the topics, and where partitions without a
/// committed offset start.
#[derive(Debug, Clone)]
struct Subscription {
    group: String,
    topics: Vec<String>,
    start: StartAt,
}

/// How often a member heartbeats (well inside its 10 s session).
const HEARTBEAT_EVERY: Duration = Duration::from_secs(2);

/// A consumer of assigned partitions, or of the partitions its group
/// gives it.
pub struct Consumer {
    cluster: Cluster,
    config: ConsumerConfig,
    positions: BTreeMap<(String, i32), i64>,
    subscription: Option<Subscription>,
    membership: Option<Membership>,
    last_heartbeat: std::time::Instant,
}

fn broker_error(code: i16, context: String) -> ClientError {
    ClientError::from_code(code, context)
}

impl Consumer {
    /// A consumer through `bootstrap` (`host:port,…`).
    pub fn new(bootstrap: &str, config: ConsumerConfig) -> Self {
        Self {
            cluster: Cluster::new(bootstrap, "gregor-consumer"),
            config,
            positions: BTreeMap::new(),
            subscription: None,
            membership: None,
            last_heartbeat: std::time::Instant::now(),
        }
    }

    /// Joins `group` for `topics` (Kafka's consumer protocol, range
    /// assignor) and consumes the partitions it is given, from the group's
    /// committed offsets or `start`; rebalances follow on heartbeats.
    pub async fn subscribe(&mut self, group: &str, topics: &[&str], start: StartAt) -> Result<(), ClientError> {
        self.subscription = Some(Subscription {
            group: group.to_string(),
            topics: topics.iter().map(|t| t.to_string()).collect(),
            start,
        });
        self.rejoin().await
    }

    /// The partitions the group gave this member (empty without one).
    pub fn assignment(&self) -> Vec<(String, i32)> {
        self.membership.as_ref().map(|m| m.assigned.clone()).unwrap_or_default()
    }

    /// Joins (again) and takes up the assignment.
    async fn rejoin(&mut self) -> Result<(), ClientError> {
        let Some(sub) = self.subscription.clone() else {
            return Ok(());
        };
        let topics: Vec<&str> = sub.topics.iter().map(String::as_str).collect();
        let mut partitions = BTreeMap::new();
        for _ in 0..50 {
            self.cluster.refresh(&topics).await?;
            partitions = topics
                .iter()
                .filter_map(|t| Some((t.to_string(), self.cluster.partitions(t)?)))
                .collect();
            if partitions.len() == topics.len() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let mut member_id = self.membership.take().map(|m| m.member_id).unwrap_or_default();
        let mut joined = None;
        for _ in 0..20 {
            let coordinator = self.coordinator(&sub.group).await?;
            let connection = self.cluster.connection(coordinator).await?;
            connection.set_timeout(Duration::from_secs(40));
            match group::join(connection, &sub.group, &member_id, &sub.topics, &partitions).await {
                Ok(JoinOutcome::Joined(m)) => {
                    joined = Some(m);
                    break;
                }
                Ok(JoinOutcome::Retry(id)) => member_id = id,
                Err(ClientError::Broker { .. }) => tokio::time::sleep(Duration::from_millis(200)).await,
                Err(e) => {
                    self.cluster.disconnect(coordinator);
                    return Err(e);
                }
            }
        }
        let membership = joined.ok_or_else(|| broker_error(27, format!("joining group {}", sub.group)))?;
        self.positions.clear();
        for (topic, p) in &membership.assigned {
            let offset = match sub.start {
                StartAt::Offset(o) => o,
                StartAt::Earliest => self.list_offset(topic, *p, -2).await?,
                StartAt::Latest => self.list_offset(topic, *p, -1).await?,
            };
            self.positions.insert((topic.clone(), *p), offset);
        }
        self.membership = Some(membership);
        self.last_heartbeat = std::time::Instant::now();
        self.seek_to_committed(&sub.group).await
    }

    /// Heartbeats when due; rejoins when the group rebalances.
    async fn keep_membership(&mut self) -> Result<(), ClientError> {
        let (Some(sub), Some(m)) = (self.subscription.clone(), self.membership.clone()) else {
            return Ok(());
        };
        if self.last_heartbeat.elapsed() < HEARTBEAT_EVERY {
            return Ok(());
        }
        self.last_heartbeat = std::time::Instant::now();
        let coordinator = self.coordinator(&sub.group).await?;
        let alive = group::heartbeat(self.cluster.connection(coordinator).await?, &m).await?;
        if !alive {
            // Hand over what was read before the partitions move.
            let _ = self.commit(&sub.group).await;
            self.rejoin().await?;
        }
        Ok(())
    }

    /// Leaves the group, if subscribed (its partitions go to the others).
    pub async fn close(&mut self) -> Result<(), ClientError> {
        let (Some(sub), Some(m)) = (self.subscription.take(), self.membership.take()) else {
            return Ok(());
        };
        let coordinator = self.coordinator(&sub.group).await?;
        group::leave(self.cluster.connection(coordinator).await?, &m).await
    }

    /// Assigns every partition of `topic`, each starting at `start`.
    pub async fn assign(&mut self, topic: &str, start: StartAt) -> Result<(), ClientError> {
        let mut partitions = None;
        for _ in 0..50 {
            self.cluster.refresh(&[topic]).await?;
            partitions = self.cluster.partitions(topic);
            let led = partitions.is_some_and(|n| (0..n).all(|p| self.cluster.leader(topic, p).is_some()));
            if led {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let partitions = partitions.ok_or_else(|| broker_error(3, format!("topic {topic}")))?;
        for p in 0..partitions {
            let offset = match start {
                StartAt::Offset(o) => o,
                StartAt::Earliest => self.list_offset(topic, p, -2).await?,
                StartAt::Latest => self.list_offset(topic, p, -1).await?,
            };
            self.positions.insert((topic.to_string(), p), offset);
        }
        Ok(())
    }

    /// Moves a partition's position.
    pub fn seek(&mut self, topic: &str, partition: i32, offset: i64) {
        self.positions.insert((topic.to_string(), partition), offset);
    }

    /// The next offset of each assigned partition.
    pub fn positions(&self) -> &BTreeMap<(String, i32), i64> {
        &self.positions
    }

    /// ListOffsets on the partition's leader: -2 earliest, -1 latest (the
    /// high watermark), or the first offset at or after a timestamp.
    pub async fn list_offset(&mut self, topic: &str, partition: i32, timestamp: i64) -> Result<i64, ClientError> {
        self.cluster.list_offset(topic, partition, timestamp).await
    }

    /// Fetches once from every leader of the assigned partitions; returns
    /// the records past each position (and moves the positions).
    pub async fn poll(&mut self) -> Result<Vec<ConsumedRecord>, ClientError> {
        self.keep_membership().await?;
        let mut by_leader: BTreeMap<i32, Vec<(String, i32, i64)>> = BTreeMap::new();
        let mut unknown = Vec::new();
        for ((topic, p), offset) in &self.positions {
            match self.cluster.leader(topic, *p) {
                Some(l) => by_leader.entry(l).or_default().push((topic.clone(), *p, *offset)),
                None => unknown.push(topic.clone()),
            }
        }
        if !unknown.is_empty() {
            let topics: Vec<&str> = unknown.iter().map(String::as_str).collect();
            self.cluster.refresh(&topics).await?;
        }
        let mut records = Vec::new();
        let mut stale = false;
        for (leader, partitions) in by_leader {
            match self.fetch_from(leader, &partitions, &mut records).await {
                Ok(refresh) => stale |= refresh,
                Err(_) => {
                    self.cluster.disconnect(leader);
                    stale = true;
                }
            }
        }
        if stale {
            let topics: Vec<String> = self.positions.keys().map(|(t, _)| t.clone()).collect();
            let topics: Vec<&str> = topics.iter().map(String::as_str).collect();
            self.cluster.refresh(&topics).await?;
        }
        Ok(records)
    }

    /// One Fetch to `leader`; returns whether metadata looks stale.
    async fn fetch_from(
        &mut self,
        leader: i32,
        partitions: &[(String, i32, i64)],
        out: &mut Vec<ConsumedRecord>,
    ) -> Result<bool, ClientError> {
        let targets: Vec<(&str, i32, i64, i32)> = partitions.iter().map(|(t, p, o)| (t.as_str(), *p, *o, -1)).collect();
        let request = fetch_request(-1, &self.config, &targets);
        let connection: &mut Connection = self.cluster.connection(leader).await?;
        connection.set_timeout(Duration::from_millis(self.config.max_wait_ms.max(0) as u64 + 30_000));
        let response = connection.send(request, 11).await?;
        let mut stale = false;
        for t in response.responses {
            let topic = t.topic.0.to_string();
            for p in t.partitions {
                let key = (topic.clone(), p.partition_index);
                let Some(position) = self.positions.get(&key).copied() else {
                    continue;
                };
                if p.error_code == ResponseError::OffsetOutOfRange.code() {
                    return Err(broker_error(
                        p.error_code,
                        format!("{topic}-{} at {position}", p.partition_index),
                    ));
                }
                if p.error_code != 0 {
                    stale = true;
                    continue;
                }
                let Some(bytes) = p.records else { continue };
                let after = for_each_record(&bytes, |_, offset, timestamp, r| {
                    let offset = offset as i64;
                    if offset >= position {
                        out.push(ConsumedRecord {
                            topic: topic.clone(),
                            partition: p.partition_index,
                            offset,
                            timestamp,
                            key: r.key.map(<[u8]>::to_vec),
                            value: r.value.map(<[u8]>::to_vec),
                        });
                    }
                })
                .map_err(|e| ClientError::Protocol(format!("{topic}-{}: {e}", p.partition_index)))?;
                let next = after.map_or(position, |a| position.max(a as i64));
                self.positions.insert(key, next);
            }
        }
        Ok(stale)
    }

    /// The group's coordinator.
    async fn coordinator(&mut self, group: &str) -> Result<i32, ClientError> {
        self.cluster.coordinator(group).await
    }

    /// Starts each assigned partition at `group`'s committed offset (when
    /// it has one).
    pub async fn seek_to_committed(&mut self, group: &str) -> Result<(), ClientError> {
        let coordinator = self.coordinator(group).await?;
        let partitions = self.positions.keys().cloned().collect();
        let connection = self.cluster.connection(coordinator).await?;
        let committed = offsets::fetch(connection, group, Some(partitions)).await?;
        self.positions.extend(committed);
        Ok(())
    }

    /// Commits the current positions for `group`: as its member when
    /// subscribed, otherwise without membership (generation -1, as a
    /// standalone consumer does).
    pub async fn commit(&mut self, group: &str) -> Result<(), ClientError> {
        let coordinator = self.coordinator(group).await?;
        let (generation, member_id) = match self.membership.as_ref().filter(|m| m.group == group) {
            Some(m) => (m.generation, m.member_id.clone()),
            None => (-1, String::new()),
        };
        let connection = self.cluster.connection(coordinator).await?;
        offsets::commit(connection, group, generation, &member_id, &self.positions).await
    }
}
