//! The producer: records batched per partition (`batch.size`,
//! `linger.ms`), compressed, sent to each partition's leader with the
//! chosen acks, retried on the errors Kafka calls retriable. Keyed records
//! go to the partition Kafka's own partitioner picks (murmur2).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use gregor_log::batch::{Compression, RecordBatchBuilder};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{ProduceRequest, TopicName};
use kafka_protocol::protocol::StrBytes;

use crate::cluster::Cluster;
use crate::ClientError;

/// Producer settings (Kafka's names in comments).
#[derive(Debug, Clone)]
pub struct ProducerConfig {
    /// `acks`: 0, 1 or -1 (all).
    pub acks: i16,
    /// `linger.ms`: how long a batch waits for more records.
    pub linger: Duration,
    /// `batch.size`: bytes that make a batch full.
    pub batch_size: usize,
    /// `compression.type`.
    pub compression: Compression,
    /// `retries` on retriable errors.
    pub retries: u32,
    /// `request.timeout.ms`.
    pub timeout_ms: i32,
}

impl Default for ProducerConfig {
    fn default() -> Self {
        Self {
            acks: -1,
            linger: Duration::from_millis(5),
            batch_size: 16 * 1024,
            compression: Compression::None,
            retries: 10,
            timeout_ms: 30_000,
        }
    }
}

/// An acknowledged batch.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Offset of its first record (-1 with acks=0).
    pub base_offset: i64,
    /// When each of its records was handed to [`Producer::send`].
    pub sent: Vec<Instant>,
}

struct Pending {
    batch: RecordBatchBuilder,
    bytes: usize,
    sent: Vec<Instant>,
    opened: Instant,
}

/// Kafka's murmur2 hash (the Java client's `Utils.murmur2`).
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    let mut h: u32 = SEED ^ data.len() as u32;
    let mut chunks = data.chunks_exact(4);
    for chunk in &mut chunks {
        let mut k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> 24;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let tail = chunks.remainder();
    if !tail.is_empty() {
        if tail.len() >= 3 {
            h ^= u32::from(tail[2]) << 16;
        }
        if tail.len() >= 2 {
            h ^= u32::from(tail[1]) << 8;
        }
        h ^= u32::from(tail[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// The partition Kafka's default partitioner gives a key.
pub fn partition_for_key(key: &[u8], partitions: i32) -> i32 {
    (murmur2(key) & 0x7fff_ffff) % partitions.max(1)
}

/// Whether a produce error is worth retrying after a metadata refresh.
fn retriable(code: i16) -> bool {
    matches!(
        ResponseError::try_from_code(code),
        Some(
            ResponseError::NotLeaderOrFollower
                | ResponseError::LeaderNotAvailable
                | ResponseError::UnknownTopicOrPartition
                | ResponseError::NotEnoughReplicas
                | ResponseError::NotEnoughReplicasAfterAppend
                | ResponseError::RequestTimedOut
                | ResponseError::FencedLeaderEpoch
                | ResponseError::KafkaStorageError
        )
    )
}

/// A producer of records to a cluster.
pub struct Producer {
    cluster: Cluster,
    config: ProducerConfig,
    pending: BTreeMap<(String, i32), Pending>,
    next_keyless: i32,
}

impl Producer {
    /// A producer through `bootstrap` (`host:port,…`).
    pub fn new(bootstrap: &str, config: ProducerConfig) -> Self {
        Self {
            cluster: Cluster::new(bootstrap, "gregor-producer"),
            config,
            pending: BTreeMap::new(),
            next_keyless: 0,
        }
    }

    /// Queues a record; sends the batches that are full or have lingered,
    /// returning what was acknowledged meanwhile.
    pub async fn send(
        &mut self,
        topic: &str,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
    ) -> Result<Vec<Delivery>, ClientError> {
        let partitions = match self.cluster.partitions(topic) {
            Some(n) => n,
            None => {
                self.cluster.refresh(&[topic]).await?;
                self.wait_for_partitions(topic).await?
            }
        };
        let partition = match key {
            Some(k) => partition_for_key(k, partitions),
            None => {
                self.next_keyless = (self.next_keyless + 1) % partitions;
                self.next_keyless
            }
        };
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        let entry = self
            .pending
            .entry((topic.to_string(), partition))
            .or_insert_with(|| Pending {
                batch: RecordBatchBuilder::new(now_ms),
                bytes: 0,
                sent: Vec::new(),
                opened: Instant::now(),
            });
        entry.batch.append(key, value, &[], now_ms);
        entry.bytes += key.map_or(0, <[u8]>::len) + value.map_or(0, <[u8]>::len) + 16;
        entry.sent.push(Instant::now());
        let due: Vec<(String, i32)> = self
            .pending
            .iter()
            .filter(|(_, p)| p.bytes >= self.config.batch_size || p.opened.elapsed() >= self.config.linger)
            .map(|(k, _)| k.clone())
            .collect();
        if due.is_empty() {
            return Ok(Vec::new());
        }
        self.send_partitions(due).await
    }

    /// Sends every queued record and waits for the acknowledgments.
    pub async fn flush(&mut self) -> Result<Vec<Delivery>, ClientError> {
        let all: Vec<(String, i32)> = self.pending.keys().cloned().collect();
        self.send_partitions(all).await
    }

    async fn wait_for_partitions(&mut self, topic: &str) -> Result<i32, ClientError> {
        for _ in 0..50 {
            if let Some(n) = self.cluster.partitions(topic) {
                return Ok(n);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            self.cluster.refresh(&[topic]).await?;
        }
        Err(ClientError::Broker {
            error: "UnknownTopicOrPartition".into(),
            message: format!("topic {topic} has no partitions"),
        })
    }

    async fn send_partitions(&mut self, keys: Vec<(String, i32)>) -> Result<Vec<Delivery>, ClientError> {
        let mut batches: Vec<((String, i32), Bytes, Vec<Instant>)> = Vec::new();
        for key in keys {
            if let Some(p) = self.pending.remove(&key) {
                let bytes = match self.config.compression {
                    Compression::None => p.batch.build(),
                    codec => p
                        .batch
                        .build_compressed(codec)
                        .map_err(|e| ClientError::Protocol(e.to_string()))?,
                };
                batches.push((key, Bytes::from(bytes), p.sent));
            }
        }
        let mut delivered = Vec::new();
        let mut attempt = 0;
        while !batches.is_empty() {
            let (done, failed) = self.send_once(batches).await?;
            delivered.extend(done);
            if failed.is_empty() {
                break;
            }
            attempt += 1;
            if attempt > self.config.retries {
                let ((topic, partition), _, _, code) = &failed[0];
                let error =
                    ResponseError::try_from_code(*code).map_or(format!("error code {code}"), |e| format!("{e:?}"));
                return Err(ClientError::Broker {
                    error,
                    message: format!("producing to {topic}-{partition}, after {attempt} attempts"),
                });
            }
            tokio::time::sleep(Duration::from_millis(100 * u64::from(attempt.min(10)))).await;
            let topics: Vec<&str> = failed.iter().map(|((t, _), _, _, _)| t.as_str()).collect();
            self.cluster.refresh(&topics).await?;
            batches = failed.into_iter().map(|(k, b, s, _)| (k, b, s)).collect();
        }
        Ok(delivered)
    }

    /// One round: a Produce request per leader. Returns what was
    /// acknowledged and what should be retried (with its error).
    #[allow(clippy::type_complexity)]
    async fn send_once(
        &mut self,
        batches: Vec<((String, i32), Bytes, Vec<Instant>)>,
    ) -> Result<(Vec<Delivery>, Vec<((String, i32), Bytes, Vec<Instant>, i16)>), ClientError> {
        let mut by_leader: BTreeMap<i32, Vec<((String, i32), Bytes, Vec<Instant>)>> = BTreeMap::new();
        let mut failed = Vec::new();
        for b in batches {
            match self.cluster.leader(&b.0 .0, b.0 .1) {
                Some(leader) => by_leader.entry(leader).or_default().push(b),
                None => failed.push((b.0, b.1, b.2, ResponseError::LeaderNotAvailable.code())),
            }
        }
        let mut delivered = Vec::new();
        for (leader, group) in by_leader {
            let mut topics: BTreeMap<&str, Vec<PartitionProduceData>> = BTreeMap::new();
            for ((topic, partition), bytes, _) in &group {
                let mut p = PartitionProduceData::default();
                p.index = *partition;
                p.records = Some(bytes.clone());
                topics.entry(topic).or_default().push(p);
            }
            let mut request = ProduceRequest::default();
            request.acks = self.config.acks;
            request.timeout_ms = self.config.timeout_ms;
            request.topic_data = topics
                .into_iter()
                .map(|(t, partitions)| {
                    let mut data = TopicProduceData::default();
                    data.name = TopicName(StrBytes::from_string(t.to_string()));
                    data.partition_data = partitions;
                    data
                })
                .collect();
            if self.config.acks == 0 {
                // No response comes back: write the request and move on.
                let connection = self.cluster.connection(leader).await?;
                connection.send_no_response(request, 8).await?;
                delivered.extend(group.into_iter().map(|((topic, partition), _, sent)| Delivery {
                    topic,
                    partition,
                    base_offset: -1,
                    sent,
                }));
                continue;
            }
            let outcome = match self.cluster.connection(leader).await {
                Ok(connection) => connection.send(request, 8).await,
                Err(e) => Err(e),
            };
            let response = match outcome {
                Ok(r) => r,
                Err(_) => {
                    self.cluster.disconnect(leader);
                    let code = ResponseError::NetworkException.code();
                    failed.extend(group.into_iter().map(|(k, b, s)| (k, b, s, code)));
                    continue;
                }
            };
            let mut answers: BTreeMap<(String, i32), (i16, i64)> = BTreeMap::new();
            for t in &response.responses {
                for p in &t.partition_responses {
                    answers.insert((t.name.0.to_string(), p.index), (p.error_code, p.base_offset));
                }
            }
            for (key, bytes, sent) in group {
                match answers.get(&key).copied() {
                    Some((0, base_offset)) => delivered.push(Delivery {
                        topic: key.0,
                        partition: key.1,
                        base_offset,
                        sent,
                    }),
                    Some((code, _)) if retriable(code) => failed.push((key, bytes, sent, code)),
                    Some((code, _)) => {
                        let error = ResponseError::try_from_code(code)
                            .map_or(format!("error code {code}"), |e| format!("{e:?}"));
                        return Err(ClientError::Broker {
                            error,
                            message: format!("producing to {}-{}", key.0, key.1),
                        });
                    }
                    None => failed.push((key, bytes, sent, ResponseError::UnknownServerError.code())),
                }
            }
        }
        Ok((delivered, failed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur2_matches_kafkas() {
        // Kafka's UtilsTest.testMurmur2.
        assert_eq!(murmur2(b"21"), -973932308);
        assert_eq!(murmur2(b"foobar"), -790332482);
        assert_eq!(murmur2(b"a-little-bit-long-string"), -985981536);
        assert_eq!(murmur2(b"a-little-bit-longer-string"), -1486304829);
        assert_eq!(murmur2(b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8"), -58897971);
        assert_eq!(murmur2(b"abc"), 479470107);
    }
}
