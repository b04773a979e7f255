//! What the broker's internal topics (`__consumer_offsets`,
//! `__transaction_state`) share: created on first use with replication
//! capped to the live brokers, written as the leader of a partition and
//! acknowledged once every in-sync replica has the records, read back
//! whole when this broker becomes a partition's leader.

use std::collections::BTreeMap;

use gregor_log::batch::{for_each_record, RecordBatchBuilder};
use gregor_log::{AppendOrigin, Log, TopicPartition, TxnVerification};
use kafka_protocol::error::ResponseError;

use crate::replicas::{ReplicaAppendError, ReplicaManager};
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

/// Why an internal topic's append did not complete.
#[derive(Debug)]
pub(crate) enum AppendFailure {
    /// The leader refused the batch (not the leader, a fenced producer, …).
    Refused(ReplicaAppendError),
    /// Written here but not acknowledged by the in-sync replicas in time.
    NotAcknowledged(String),
}

impl std::fmt::Display for AppendFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Refused(e) => write!(f, "{e}"),
            Self::NotAcknowledged(m) => f.write_str(m),
        }
    }
}

/// Appends `batch` to `tp` as its leader, as a coordinator does, and waits
/// (blocking: handler and ticker threads only, never a runtime) until
/// every in-sync replica has it, or `timeout_ms` passes; the offset of its
/// first record.
pub(crate) fn append_acknowledged(
    replicas: &ReplicaManager,
    tp: &TopicPartition,
    batch: &[u8],
    timeout_ms: u64,
) -> Result<u64, AppendFailure> {
    append_acknowledged_verified(replicas, tp, batch, timeout_ms, TxnVerification::Skip)
}

/// [`append_acknowledged`], checking as `verification` says that a
/// transaction the batch opens was verified (KIP-890).
pub(crate) fn append_acknowledged_verified(
    replicas: &ReplicaManager,
    tp: &TopicPartition,
    batch: &[u8],
    timeout_ms: u64,
    verification: TxnVerification,
) -> Result<u64, AppendFailure> {
    let appended = replicas
        .append_as_leader_verified(tp, batch, true, AppendOrigin::Coordinator, verification)
        .map_err(AppendFailure::Refused)?;
    let not_acknowledged = |e: String| AppendFailure::NotAcknowledged(format!("{tp}: {e}"));
    if let Some(Err(e)) = appended.acked {
        return Err(not_acknowledged(e.to_string()));
    }
    if let Some(required) = appended.waiting_for {
        let outcome = replicas
            .wait_for_acks(vec![(tp.clone(), required)], timeout_ms)
            .blocking_recv()
            .map_err(|_| not_acknowledged("no acknowledgment".into()))?;
        if let Some((_, Err(e))) = outcome.into_iter().next() {
            return Err(not_acknowledged(e.to_string()));
        }
    }
    Ok(appended.info.first_offset)
}

/// One batch of keyed records stamped `now`.
pub(crate) fn keyed_batch(records: &[KeyedRecord], now: i64) -> Vec<u8> {
    let mut batch = RecordBatchBuilder::new(now);
    for (key, value) in records {
        batch.append(Some(key), value.as_deref(), &[], now);
    }
    batch.build()
}

/// A record's key and value, as the coordinators store them.
pub(crate) type KeyedRecord = (Vec<u8>, Option<Vec<u8>>);

/// Reads `log` from its start to its end in chunks of whole batches,
/// handing each chunk to `read`, which answers the offset after its last
/// batch (`None`: no whole batch in it).
pub(crate) fn read_all(log: &Log, mut read: impl FnMut(&[u8]) -> Result<Option<u64>, String>) -> Result<(), String> {
    let mut offset = log.log_start_offset();
    while offset < log.end_offset() {
        let bytes = log.read_bytes(offset, 1 << 20).map_err(|e| e.to_string())?;
        match read(&bytes)? {
            Some(next) if next > offset => offset = next,
            _ => break,
        }
    }
    Ok(())
}

/// Every keyed record of `log`, oldest first (control batches skipped).
pub(crate) fn read_keyed(log: &Log) -> Result<Vec<KeyedRecord>, String> {
    let mut out = Vec::new();
    read_all(log, |bytes| {
        for_each_record(bytes, |_, _, _, record| {
            if let Some(key) = record.key {
                out.push((key.to_vec(), record.value.map(<[u8]>::to_vec)));
            }
        })
        .map_err(|e| e.to_string())
    })?;
    Ok(out)
}
