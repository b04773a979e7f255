//! The group coordinator's records in `__consumer_offsets`: a compacted
//! internal topic (`offsets.topic.num.partitions` partitions, created on
//! first use), each group's records in the partition Kafka would pick,
//! appended as that partition's leader and acknowledged once every in-sync
//! replica has them.

use std::collections::BTreeMap;
use std::sync::Arc;

use gregor_group::records::{partition_for, OFFSETS_TOPIC};
use gregor_group::{OffsetStore, StoredRecord};
use gregor_log::batch::{for_each_record, RecordBatchBuilder};
use gregor_log::{Clock, TopicPartition};
use kafka_protocol::error::ResponseError;

use crate::replicas::ReplicaManager;
use crate::topics::Topics;

/// `offsets.commit.timeout.ms`: how long a commit waits for the replicas.
const OFFSETS_COMMIT_TIMEOUT_MS: u64 = 5_000;

/// How `__consumer_offsets` is created (Kafka's `offsets.topic.*`).
#[derive(Debug, Clone, Copy)]
pub struct OffsetsTopicSettings {
    /// `offsets.topic.num.partitions`.
    pub partitions: u32,
    /// `offsets.topic.segment.bytes`.
    pub segment_bytes: u32,
    /// `offsets.topic.replication.factor` (capped to the live brokers).
    pub replication_factor: u16,
}

/// `__consumer_offsets` as the group coordinator's [`OffsetStore`].
pub struct OffsetsTopic {
    settings: OffsetsTopicSettings,
    topics: Arc<Topics>,
    replicas: Arc<ReplicaManager>,
    clock: Arc<dyn Clock>,
}

impl OffsetsTopic {
    /// The offsets topic among `topics`, written as leader through `replicas`.
    pub fn new(
        settings: OffsetsTopicSettings,
        topics: Arc<Topics>,
        replicas: Arc<ReplicaManager>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            settings,
            topics,
            replicas,
            clock,
        }
    }

    /// Creates `__consumer_offsets` if it does not exist yet (compacted,
    /// `offsets.topic.num.partitions` partitions, replication capped to the
    /// live brokers as Kafka does); returns its partition count.
    pub fn ensure(&self) -> Result<u32, String> {
        if let Some(topic) = self.topics.get(OFFSETS_TOPIC) {
            return Ok(topic.partitions);
        }
        let live = self.topics.live_brokers().map_err(|e| e.to_string())?.max(1);
        let configured = self.settings.replication_factor.max(1);
        let replication = configured.min(u16::try_from(live).unwrap_or(u16::MAX));
        if replication < configured {
            tracing::warn!(
                configured,
                live_brokers = live,
                "offsets.topic.replication.factor is capped to the live broker count: {OFFSETS_TOPIC} gets {replication} replica(s)"
            );
        }
        let config = BTreeMap::from([
            ("cleanup.policy".to_string(), "compact".to_string()),
            ("segment.bytes".to_string(), self.settings.segment_bytes.to_string()),
        ]);
        match self
            .topics
            .create(OFFSETS_TOPIC, self.settings.partitions, Some(replication), config)
        {
            Ok(topic) => Ok(topic.partitions),
            // Created meanwhile, here or on another broker.
            Err((ResponseError::TopicAlreadyExists, _)) => self.topics.learn(OFFSETS_TOPIC).map(|t| t.partitions),
            Err((e, m)) => Err(format!("creating {OFFSETS_TOPIC}: {e:?} {}", m.unwrap_or_default())),
        }
    }

    /// The partition holding `group`'s records, once the topic exists.
    pub fn partition_of(&self, group: &str) -> Option<u32> {
        let partitions = self.topics.get(OFFSETS_TOPIC)?.partitions;
        Some(partition_for(group, partitions).unsigned_abs())
    }

    /// Every keyed record of one local partition, oldest first.
    pub fn load_partition(&self, partition: u32) -> Result<Vec<StoredRecord>, String> {
        let Some(log) = self.topics.log(OFFSETS_TOPIC, partition as i32) else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        let mut offset = log.log_start_offset();
        while offset < log.end_offset() {
            let bytes = log.read_bytes(offset, 1 << 20).map_err(|e| e.to_string())?;
            let next = for_each_record(&bytes, |_, _, _, record| {
                if let Some(key) = record.key {
                    out.push((key.to_vec(), record.value.map(<[u8]>::to_vec)));
                }
            })
            .map_err(|e| e.to_string())?;
            match next {
                Some(next) if next > offset => offset = next,
                _ => break,
            }
        }
        Ok(out)
    }
}

impl OffsetStore for OffsetsTopic {
    fn append(&self, group: &str, records: &[(Vec<u8>, Option<Vec<u8>>)]) -> Result<(), String> {
        if records.is_empty() {
            return Ok(());
        }
        let partitions = self.ensure()?;
        let partition = partition_for(group, partitions).unsigned_abs();
        let tp = TopicPartition::new(OFFSETS_TOPIC, partition);
        let now = self.clock.now_ms();
        let mut batch = RecordBatchBuilder::new(now);
        for (key, value) in records {
            batch.append(Some(key), value.as_deref(), &[], now);
        }
        // As leader of the group's partition, acknowledged once every
        // in-sync replica has it (Kafka's offsets.commit.required.acks=-1),
        // or refused after offsets.commit.timeout.ms.
        let appended = self
            .replicas
            .append_as_leader(&tp, &mut batch.build(), true)
            .map_err(|e| format!("{tp}: {e}"))?;
        if let Some(Err(e)) = appended.acked {
            return Err(format!("{tp}: {e}"));
        }
        if let Some(required) = appended.waiting_for {
            // Handler and ticker threads only: never on a runtime.
            let outcome = self
                .replicas
                .wait_for_acks(vec![(tp.clone(), required)], OFFSETS_COMMIT_TIMEOUT_MS)
                .blocking_recv()
                .map_err(|_| format!("{tp}: no acknowledgment"))?;
            if let Some((_, Err(e))) = outcome.into_iter().next() {
                return Err(format!("{tp}: {e}"));
            }
        }
        Ok(())
    }

    fn load(&self) -> Result<Vec<StoredRecord>, String> {
        let Some(topic) = self.topics.get(OFFSETS_TOPIC) else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for partition in 0..topic.partitions {
            out.extend(self.load_partition(partition)?);
        }
        Ok(out)
    }
}
