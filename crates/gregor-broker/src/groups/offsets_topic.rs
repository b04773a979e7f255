//! The group coordinator's records in `__consumer_offsets`: a compacted
//! internal topic (`offsets.topic.num.partitions` partitions, created on
//! first use), each group's records in the partition Kafka would pick,
//! appended as that partition's leader and acknowledged once every in-sync
//! replica has them. A TxnOffsetCommit's records go in a transactional
//! batch of its producer; loading a partition reads its records with their
//! batches' producers, and the transaction markers between them.

use std::collections::BTreeMap;
use std::sync::Arc;

use gregor_group::records::{partition_for, OFFSETS_TOPIC};
use gregor_group::{LoadedRecord, OffsetStore, StoreError, StoredRecord, TxnProducer};
use gregor_log::batch::{
    record_section, BatchIter, ControlRecordType, EndTransactionMarker, RecordBatchBuilder, Records,
};
use gregor_log::producer_state::ProducerError;
use gregor_log::{Clock, LogError, TopicPartition, TxnVerification};

use crate::internal_topic::{self, AppendFailure};
use crate::replicas::{ReplicaAppendError, ReplicaManager};
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
        let config = BTreeMap::from([
            ("cleanup.policy".to_string(), "compact".to_string()),
            ("segment.bytes".to_string(), self.settings.segment_bytes.to_string()),
        ]);
        internal_topic::ensure(
            &self.topics,
            OFFSETS_TOPIC,
            self.settings.partitions,
            self.settings.replication_factor,
            config,
        )
    }

    /// The partition holding `group`'s records, once the topic exists.
    pub fn partition_of(&self, group: &str) -> Option<u32> {
        let partitions = self.topics.get(OFFSETS_TOPIC)?.partitions;
        Some(partition_for(group, partitions).unsigned_abs())
    }

    /// Everything in one local partition, in log order: keyed records with
    /// their offsets and, in transactional batches, their producer; and
    /// transaction markers.
    pub fn load_partition(&self, partition: u32) -> Result<Vec<LoadedRecord>, String> {
        let Some(log) = self.topics.log(OFFSETS_TOPIC, partition as i32) else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        internal_topic::read_all(&log, |bytes| {
            read_batches(bytes, &mut out).map_err(|e| format!("{OFFSETS_TOPIC}-{partition}: {e}"))
        })?;
        Ok(out)
    }
}

/// Adds the records and markers of the whole batches in `bytes` to `out`;
/// returns the offset after the last batch (`None`: no whole batch).
fn read_batches(bytes: &[u8], out: &mut Vec<LoadedRecord>) -> Result<Option<u64>, gregor_log::batch::BatchError> {
    let mut next = None;
    for item in BatchIter::new(bytes) {
        let (at, header) = item?;
        next = Some(header.next_offset());
        let batch = &bytes[at..at + header.total_size()];
        if header.is_control() {
            if let Some(marker) = EndTransactionMarker::of_batch(batch, &header)? {
                out.push(LoadedRecord::Marker {
                    producer_id: header.producer_id,
                    commit: marker.kind == ControlRecordType::Commit,
                });
            }
            continue;
        }
        let producer = header.is_transactional().then_some(header.producer_id);
        let section = record_section(batch, &header)?;
        for record in Records::from_section(&section, header.record_count) {
            let record = record?;
            if let Some(key) = record.key {
                out.push(LoadedRecord::Record {
                    key: key.to_vec(),
                    value: record.value.map(<[u8]>::to_vec),
                    offset: header.base_offset.wrapping_add_signed(i64::from(record.offset_delta)),
                    producer,
                });
            }
        }
    }
    Ok(next)
}

/// A refused append as the group coordinator tells it apart: a fenced
/// producer, a transaction whose verification no longer holds, or
/// anything else (retriable).
fn store_error(tp: &TopicPartition, error: ReplicaAppendError) -> StoreError {
    match error {
        ReplicaAppendError::Log(LogError::Producer(e @ ProducerError::InvalidEpoch { .. })) => {
            StoreError::ProducerFenced(format!("{tp}: {e}"))
        }
        ReplicaAppendError::Log(LogError::Producer(e @ ProducerError::TransactionNotVerified { .. })) => {
            StoreError::NotVerified(format!("{tp}: {e}"))
        }
        e => StoreError::Unavailable(format!("{tp}: {e}")),
    }
}

impl OffsetStore for OffsetsTopic {
    fn append(&self, group: &str, records: &[StoredRecord], producer: Option<TxnProducer>) -> Result<u64, StoreError> {
        let unavailable = StoreError::Unavailable;
        let partitions = self.ensure().map_err(unavailable)?;
        let partition = partition_for(group, partitions).unsigned_abs();
        let tp = TopicPartition::new(OFFSETS_TOPIC, partition);
        let now = self.clock.now_ms();
        let mut batch = RecordBatchBuilder::new(now);
        if let Some(p) = producer {
            // No sequence: the coordinator's own batch is not
            // sequence-checked, only the producer's epoch.
            batch = batch.producer(p.id, p.epoch, -1).transactional();
        }
        for (key, value) in records {
            batch.append(Some(key), value.as_deref(), &[], now);
        }
        // As leader of the group's partition, acknowledged once every
        // in-sync replica has it (Kafka's offsets.commit.required.acks=-1),
        // or refused after offsets.commit.timeout.ms.
        let verification = producer.map_or(TxnVerification::Skip, |p| p.verification);
        internal_topic::append_acknowledged_verified(
            &self.replicas,
            &tp,
            &batch.build(),
            OFFSETS_COMMIT_TIMEOUT_MS,
            verification,
        )
        .map_err(|e| match e {
            AppendFailure::Refused(e) => store_error(&tp, e),
            AppendFailure::NotAcknowledged(m) => StoreError::Unavailable(m),
        })
    }

    fn load(&self) -> Result<Vec<Vec<LoadedRecord>>, String> {
        let Some(topic) = self.topics.get(OFFSETS_TOPIC) else {
            return Ok(Vec::new());
        };
        (0..topic.partitions).map(|p| self.load_partition(p)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `batch` placed at `base_offset` (outside the CRC).
    fn at(mut batch: Vec<u8>, base_offset: u64) -> Vec<u8> {
        batch[..8].copy_from_slice(&base_offset.to_be_bytes());
        batch
    }

    #[test]
    fn loading_reads_producers_of_transactional_batches_and_markers() {
        let mut plain = RecordBatchBuilder::new(0);
        plain.append(Some(b"a"), Some(b"1"), &[], 0);
        let mut txn = RecordBatchBuilder::new(0).producer(7, 0, -1).transactional();
        txn.append(Some(b"b"), Some(b"2"), &[], 0);
        txn.append(Some(b"c"), None, &[], 0);
        let marker = EndTransactionMarker {
            kind: ControlRecordType::Abort,
            coordinator_epoch: 3,
        };
        let mut bytes = at(plain.build(), 10);
        bytes.extend(at(txn.build(), 11));
        bytes.extend(at(marker.batch(7, 0, 0), 13));
        let mut out = Vec::new();
        assert_eq!(read_batches(&bytes, &mut out).unwrap(), Some(14));
        let record = |key: &[u8], value: Option<&[u8]>, offset, producer| LoadedRecord::Record {
            key: key.to_vec(),
            value: value.map(<[u8]>::to_vec),
            offset,
            producer,
        };
        assert_eq!(
            out,
            vec![
                record(b"a", Some(b"1"), 10, None),
                record(b"b", Some(b"2"), 11, Some(7)),
                record(b"c", None, 12, Some(7)),
                LoadedRecord::Marker {
                    producer_id: 7,
                    commit: false
                },
            ]
        );
    }

    #[test]
    fn a_fenced_producer_is_told_apart_from_other_refusals() {
        let tp = TopicPartition::new(OFFSETS_TOPIC, 0);
        let fenced = LogError::Producer(ProducerError::InvalidEpoch {
            producer_id: 7,
            epoch: 0,
            current: 1,
        });
        assert!(matches!(
            store_error(&tp, ReplicaAppendError::Log(fenced)),
            StoreError::ProducerFenced(_)
        ));
        let not_leader = gregor_replication::ReplicationError::NotLeaderOrFollower;
        assert!(matches!(
            store_error(&tp, ReplicaAppendError::Replication(not_leader)),
            StoreError::Unavailable(_)
        ));
    }
}
