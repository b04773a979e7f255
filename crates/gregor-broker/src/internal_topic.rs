//! What the broker's internal topics (`__consumer_offsets`,
//! `__transaction_state`) share: created on first use with replication
//! capped to the live brokers, written as the leader of a partition and
//! acknowledged once every in-sync replica has the records, read back
//! whole when this broker becomes a partition's leader.

use std::collections::BTreeMap;

use gregor_log::batch::{for_each_record, RecordBatchBuilder};
use gregor_log::{Log, TopicPartition};
use kafka_protocol::error::ResponseError;

use crate::replicas::ReplicaManager;
use crate::topics::Topics;

/// Creates the internal topic `name` unless it exists (`partitions`,
/// `replication` capped to the live brokers as Kafka does, `config`
/// overrides); returns its partition count.
pub(crate) fn ensure(
    topics: &Topics,
    name: &str,
    partitions: u32,
    replication: u16,
    config: BTreeMap<String, String>,
) -> Result<u32, String> {
    if let Some(topic) = topics.get(name) {
        return Ok(topic.partitions);
    }
    let live = topics.live_brokers().map_err(|e| e.to_string())?.max(1);
    let configured = replication.max(1);
    let capped = configured.min(u16::try_from(live).unwrap_or(u16::MAX));
    if capped < configured {
        tracing::warn!(
            configured,
            live_brokers = live,
            "{name}: the replication factor is capped to the live broker count ({capped} replica(s))"
        );
    }
    match topics.create(name, partitions, Some(capped), config) {
        Ok(topic) => Ok(topic.partitions),
        // Created meanwhile, here or on another broker.
        Err((ResponseError::TopicAlreadyExists, _)) => topics.learn(name).map(|t| t.partitions),
        Err((e, m)) => Err(format!("creating {name}: {e:?} {}", m.unwrap_or_default())),
    }
}

/// Appends `batch` to `tp` as its leader and waits (blocking: handler and
/// ticker threads only, never a runtime) until every in-sync replica has
/// it, or `timeout_ms` passes.
pub(crate) fn append_acknowledged(
    replicas: &ReplicaManager,
    tp: &TopicPartition,
    batch: &mut [u8],
    timeout_ms: u64,
) -> Result<(), String> {
    let appended = replicas
        .append_as_leader(tp, batch, true)
        .map_err(|e| format!("{tp}: {e}"))?;
    if let Some(Err(e)) = appended.acked {
        return Err(format!("{tp}: {e}"));
    }
    if let Some(required) = appended.waiting_for {
        let outcome = replicas
            .wait_for_acks(vec![(tp.clone(), required)], timeout_ms)
            .blocking_recv()
            .map_err(|_| format!("{tp}: no acknowledgment"))?;
        if let Some((_, Err(e))) = outcome.into_iter().next() {
            return Err(format!("{tp}: {e}"));
        }
    }
    Ok(())
}

/// One batch of keyed records stamped `now`.
pub(crate) fn keyed_batch(records: &[(Vec<u8>, Option<Vec<u8>>)], now: i64) -> Vec<u8> {
    let mut batch = RecordBatchBuilder::new(now);
    for (key, value) in records {
        batch.append(Some(key), value.as_deref(), &[], now);
    }
    batch.build()
}

/// Every keyed record of `log`, oldest first (control batches skipped).
pub(crate) fn read_keyed(log: &Log) -> Result<Vec<(Vec<u8>, Option<Vec<u8>>)>, String> {
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
