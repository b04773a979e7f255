//! The records of `__transaction_state`, byte for byte in Kafka 3.9's
//! schemas (`TransactionLogKey`, `TransactionLogValue`), each prefixed by
//! its version as `MessageUtil.toVersionPrefixedBytes` writes it. The topic
//! is compacted: the latest value per transactional id is its state, and a
//! tombstone (null value) forgets an expired id.
//!
//! ```text
//! key   v0: version i16 = 0, transactional id string (i16 length)
//! value v0: version i16 = 0, producer id i64, producer epoch i16,
//!           timeout ms i32, status i8,
//!           partitions nullable array (i32 count, −1 = null) of
//!             [topic string, partition ids array of i32],
//!           last update ms i64, start ms i64
//! value v1: the same fields in the flexible encoding: unsigned varint
//!           lengths (+1, 0 = null), and tagged fields after the topic
//!           entry (skipped) and at the end: 0 PreviousProducerId i64,
//!           1 NextProducerId i64, 2 ClientTransactionVersion i16 (each
//!           left out at its default, −1 / −1 / 0; others skipped)
//! ```
//!
//! Kafka writes values at v0 until `transaction.version` 1 is enabled,
//! then v1 with tag 2 only. gregor writes v0 for transactions of client
//! transaction version 0 (as before; v1 should a topic name not fit v0),
//! and v1 with tags 0, 1 and 2 for the others (Kafka's reader takes tags 0 and 1, so an overflow retry is
//! still recognised after a failover); it reads both. Kafka orders the topics and partitions
//! of a value as its hash sets iterate; gregor writes them sorted (readers
//! do not depend on the order).

use std::collections::BTreeMap;

use gregor_log::coordinator_partition;
use gregor_log::wire::{put_array_len, put_compact_string, put_string, put_uvarint, Reader, WireError};

/// The internal topic holding every transactional id's state.
pub const TRANSACTION_STATE_TOPIC: &str = "__transaction_state";

/// The `__transaction_state` partition of `transactional_id`: Kafka's
/// `Utils.abs(transactionalId.hashCode) % partitions`.
pub fn partition_for(transactional_id: &str, partitions: u32) -> i32 {
    coordinator_partition(transactional_id, partitions)
}

/// A `__transaction_state` value: one transactional id's state as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionLogValue {
    /// The producer id in use.
    pub producer_id: i64,
    /// Its epoch.
    pub producer_epoch: i16,
    /// The transaction timeout (ms).
    pub timeout_ms: i32,
    /// The state's id (Kafka's: 0 Empty … 7 PrepareEpochFence).
    pub status: i8,
    /// The partitions of the transaction, by topic; `None` (null) in
    /// the Empty state.
    pub partitions: Option<Vec<(String, Vec<i32>)>>,
    /// When the state last changed (ms).
    pub last_update_ms: i64,
    /// When the transaction started (ms; −1: none).
    pub start_ms: i64,
    /// Tag 0 (v1): the producer id before the last rotation (−1: none).
    pub previous_producer_id: i64,
    /// Tag 1 (v1): the producer id a transaction ending at an exhausted
    /// epoch moves to once it completes (−1: none).
    pub next_producer_id: i64,
    /// Tag 2 (v1): the transaction version the transaction was last
    /// handled under (0 when absent).
    pub client_transaction_version: i16,
}

/// Tag of [`TransactionLogValue::previous_producer_id`].
const TAG_PREVIOUS_PRODUCER_ID: u32 = 0;
/// Tag of [`TransactionLogValue::next_producer_id`].
const TAG_NEXT_PRODUCER_ID: u32 = 1;
/// Tag of [`TransactionLogValue::client_transaction_version`].
const TAG_CLIENT_TRANSACTION_VERSION: u32 = 2;

/// Why a record could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// The bytes end before the schema does.
    #[error("truncated record")]
    Truncated,
    /// A length or count that is negative where none may be, or too big.
    #[error("invalid length")]
    InvalidLength,
    /// A string that is not UTF-8.
    #[error("invalid string")]
    InvalidString,
    /// A version this schema does not have.
    #[error("unknown {what} version {version}")]
    UnknownVersion {
        /// "key" or "value".
        what: &'static str,
        /// The version read.
        version: i16,
    },
    /// Bytes left after the schema ends.
    #[error("{0} bytes after the record")]
    TrailingBytes(usize),
}

/// The key of `transactional_id`'s record (v0).
pub fn key_bytes(transactional_id: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + transactional_id.len());
    out.extend_from_slice(&0i16.to_be_bytes());
    put_string(&mut out, transactional_id);
    out
}

/// The version [`value_bytes`] writes `value` at: v0 (as Kafka 3.9) when
/// its client transaction version is 0, v1 otherwise. Also v1 when a
/// topic name does not fit v0's 16-bit string length: Kafka never has
/// one (its topic names are at most 249 bytes, and it throws writing
/// one), and v1 keeps it whole rather than cut.
pub fn value_version(value: &TransactionLogValue) -> i16 {
    let fits_v0 = value
        .partitions
        .iter()
        .flatten()
        .all(|(topic, _)| i16::try_from(topic.len()).is_ok());
    i16::from(value.client_transaction_version != 0 || !fits_v0)
}

/// The value bytes at [`value_version`]: v0 keeps no tagged fields, v1
/// keeps them all.
pub fn value_bytes(value: &TransactionLogValue) -> Vec<u8> {
    let flexible = value_version(value) == 1;
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(&i16::from(flexible).to_be_bytes());
    out.extend_from_slice(&value.producer_id.to_be_bytes());
    out.extend_from_slice(&value.producer_epoch.to_be_bytes());
    out.extend_from_slice(&value.timeout_ms.to_be_bytes());
    out.push(value.status as u8);
    match (&value.partitions, flexible) {
        (None, false) => out.extend_from_slice(&(-1i32).to_be_bytes()),
        (None, true) => put_uvarint(&mut out, 0),
        (Some(topics), _) => {
            put_array_len(&mut out, topics.len(), flexible);
            for (topic, ids) in topics {
                if flexible {
                    put_compact_string(&mut out, topic);
                } else {
                    put_string(&mut out, topic);
                }
                put_array_len(&mut out, ids.len(), flexible);
                for id in ids {
                    out.extend_from_slice(&id.to_be_bytes());
                }
                if flexible {
                    put_uvarint(&mut out, 0); // no tagged fields
                }
            }
        }
    }
    out.extend_from_slice(&value.last_update_ms.to_be_bytes());
    out.extend_from_slice(&value.start_ms.to_be_bytes());
    if flexible {
        put_value_tags(&mut out, value);
    }
    out
}

/// The value's tagged fields, in tag order, each left out at its default.
fn put_value_tags(out: &mut Vec<u8>, value: &TransactionLogValue) {
    let mut tags: Vec<(u32, Vec<u8>)> = Vec::with_capacity(3);
    if value.previous_producer_id != NO_ID {
        tags.push((
            TAG_PREVIOUS_PRODUCER_ID,
            value.previous_producer_id.to_be_bytes().to_vec(),
        ));
    }
    if value.next_producer_id != NO_ID {
        tags.push((TAG_NEXT_PRODUCER_ID, value.next_producer_id.to_be_bytes().to_vec()));
    }
    if value.client_transaction_version != 0 {
        tags.push((
            TAG_CLIENT_TRANSACTION_VERSION,
            value.client_transaction_version.to_be_bytes().to_vec(),
        ));
    }
    put_uvarint(out, tags.len() as u32);
    for (tag, bytes) in tags {
        put_uvarint(out, tag);
        put_uvarint(out, bytes.len() as u32);
        out.extend_from_slice(&bytes);
    }
}

/// Kafka's "no producer id", the default of tags 0 and 1.
const NO_ID: i64 = -1;

/// Groups partitions by topic, sorted, as a value stores them.
pub fn group_partitions<'a>(partitions: impl IntoIterator<Item = (&'a str, i32)>) -> Vec<(String, Vec<i32>)> {
    let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for (topic, partition) in partitions {
        by_topic.entry(topic).or_default().push(partition);
    }
    by_topic
        .into_iter()
        .map(|(topic, mut ids)| {
            ids.sort_unstable();
            ids.dedup();
            (topic.to_string(), ids)
        })
        .collect()
}

/// Reads a key: the transactional id. `Ok(None)` for a key version Kafka
/// does not know (Kafka skips those, as "a left over from an aborted
/// upgrade").
pub fn parse_key(key: &[u8]) -> Result<Option<String>, RecordError> {
    let mut r = Reader::new(key);
    if r.i16()? != 0 {
        return Ok(None);
    }
    let id = r.string()?;
    r.end()?;
    Ok(Some(id))
}

/// Reads a value of version 0 or 1.
pub fn parse_value(value: &[u8]) -> Result<TransactionLogValue, RecordError> {
    let mut r = Reader::new(value);
    let version = r.i16()?;
    let flexible = match version {
        0 => false,
        1 => true,
        _ => return Err(RecordError::UnknownVersion { what: "value", version }),
    };
    let producer_id = r.i64()?;
    let producer_epoch = r.i16()?;
    let timeout_ms = r.i32()?;
    let status = r.i8()?;
    let partitions = match r.array_len(flexible)? {
        None => None,
        Some(count) => {
            let mut topics = Vec::with_capacity(count.min(1024));
            for _ in 0..count {
                let topic = if flexible { r.compact_string()? } else { r.string()? };
                let ids_len = r.array_len(flexible)?.ok_or(RecordError::InvalidLength)?;
                let mut ids = Vec::with_capacity(ids_len.min(1024));
                for _ in 0..ids_len {
                    ids.push(r.i32()?);
                }
                if flexible {
                    r.skip_tagged_fields()?;
                }
                topics.push((topic, ids));
            }
            Some(topics)
        }
    };
    let last_update_ms = r.i64()?;
    let start_ms = r.i64()?;
    let mut value = TransactionLogValue {
        producer_id,
        producer_epoch,
        timeout_ms,
        status,
        partitions,
        last_update_ms,
        start_ms,
        previous_producer_id: NO_ID,
        next_producer_id: NO_ID,
        client_transaction_version: 0,
    };
    if flexible {
        for _ in 0..r.uvarint()? {
            let tag = r.uvarint()?;
            let size = r.uvarint()?;
            let mut field = Reader::new(r.bytes(size as usize)?);
            match tag {
                TAG_PREVIOUS_PRODUCER_ID => value.previous_producer_id = field.i64()?,
                TAG_NEXT_PRODUCER_ID => value.next_producer_id = field.i64()?,
                TAG_CLIENT_TRANSACTION_VERSION => value.client_transaction_version = field.i16()?,
                _ => continue, // unknown (e.g. 3 NextProducerEpoch): skipped
            }
            field.end()?;
        }
    }
    r.end()?;
    Ok(value)
}

impl From<WireError> for RecordError {
    fn from(e: WireError) -> Self {
        match e {
            WireError::Truncated => RecordError::Truncated,
            WireError::InvalidLength => RecordError::InvalidLength,
            WireError::InvalidString => RecordError::InvalidString,
            WireError::TrailingBytes(n) => RecordError::TrailingBytes(n),
        }
    }
}

#[cfg(test)]
mod tests;
