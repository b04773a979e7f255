//! The group coordinator's offsets in `__consumer_offsets`: a compacted
//! internal topic (`offsets.topic.num.partitions` partitions, created on
//! first use), each group's records in the partition Kafka would pick.

use std::collections::BTreeMap;
use std::sync::Weak;

use gregor_group::records::{partition_for, OFFSETS_TOPIC};
use gregor_group::{OffsetStore, StoredRecord};
use gregor_log::batch::{for_each_record, RecordBatchBuilder};

use crate::broker::Broker;

/// `offsets.commit.timeout.ms`: how long a commit waits for the replicas.
const OFFSETS_COMMIT_TIMEOUT_MS: u64 = 5_000;

/// The offsets topic's settings, as Kafka creates it: compacted, with
/// `offsets.topic.segment.bytes` segments.
pub fn offsets_topic_config(segment_bytes: u32) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("cleanup.policy".to_string(), "compact".to_string()),
        ("segment.bytes".to_string(), segment_bytes.to_string()),
    ])
}

/// [`OffsetStore`] over a broker's `__consumer_offsets` logs.
pub struct OffsetsTopicStore {
    broker: Weak<Broker>,
}

impl OffsetsTopicStore {
    /// A store writing through `broker`.
    pub fn new(broker: Weak<Broker>) -> Self {
        Self { broker }
    }
}

impl OffsetStore for OffsetsTopicStore {
    fn append(&self, group: &str, records: &[(Vec<u8>, Option<Vec<u8>>)]) -> Result<(), String> {
        if records.is_empty() {
            return Ok(());
        }
        let broker = self.broker.upgrade().ok_or("the broker is gone")?;
        let partitions = broker.ensure_offsets_topic()?;
        let partition = partition_for(group, partitions);
        let now = crate::api::now_ms();
        let mut batch = RecordBatchBuilder::new(now);
        for (key, value) in records {
            batch.append(Some(key), value.as_deref(), &[], now);
        }
        // As leader of the group's partition, acknowledged once every
        // in-sync replica has it (Kafka's offsets.commit.required.acks=-1),
        // or refused after offsets.commit.timeout.ms.
        let appended = broker
            .append(OFFSETS_TOPIC, partition, &mut batch.build(), true)
            .map_err(|(e, m)| format!("{OFFSETS_TOPIC}-{partition}: {e:?} {m}"))?;
        if let Some(Err(e)) = appended.acked {
            return Err(format!("{OFFSETS_TOPIC}-{partition}: {e}"));
        }
        if let (Some(required), Some(replicas)) = (appended.waiting_for, broker.replicas()) {
            let tp = gregor_log::TopicPartition::new(OFFSETS_TOPIC, partition.unsigned_abs());
            // Handler and ticker threads only: never on a runtime.
            let outcome = replicas
                .wait_for_acks(vec![(tp, required)], OFFSETS_COMMIT_TIMEOUT_MS)
                .blocking_recv()
                .map_err(|_| format!("{OFFSETS_TOPIC}-{partition}: no acknowledgment"))?;
            if let Some((_, Err(e))) = outcome.into_iter().next() {
                return Err(format!("{OFFSETS_TOPIC}-{partition}: {e}"));
            }
        }
        broker.notify_appended();
        Ok(())
    }

    fn load(&self) -> Result<Vec<StoredRecord>, String> {
        let broker = self.broker.upgrade().ok_or("the broker is gone")?;
        let Some(topic) = broker.topic(OFFSETS_TOPIC) else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for partition in 0..topic.partitions {
            out.extend(load_partition(&broker, partition)?);
        }
        Ok(out)
    }
}

/// Every keyed record of one local `__consumer_offsets` partition, oldest
/// first.
pub fn load_partition(broker: &Broker, partition: u32) -> Result<Vec<StoredRecord>, String> {
    let Some(log) = broker.log(OFFSETS_TOPIC, partition as i32) else {
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
