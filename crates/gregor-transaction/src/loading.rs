//! Reading a `__transaction_state` partition back: each transactional
//! id's last stored state, as a coordinator loads it on becoming the
//! partition's leader.

use std::collections::BTreeMap;

use tracing::warn;

use crate::metadata::TxnMetadata;
use crate::outputs::StoredRecord;
use crate::records::{parse_key, parse_value};

/// Each transactional id's last state in `records` (partition
/// `partition`'s, oldest first): a tombstone forgets the id; unreadable
/// records, and states Kafka never stores, are skipped with a warning.
pub(crate) fn last_states(partition: i32, records: &[StoredRecord]) -> BTreeMap<String, TxnMetadata> {
    let mut txns: BTreeMap<String, TxnMetadata> = BTreeMap::new();
    for (key, value) in records {
        let id = match parse_key(key) {
            Ok(Some(id)) => id,
            Ok(None) => continue,
            Err(e) => {
                warn!(partition, "skipping an unreadable __transaction_state key: {e}");
                continue;
            }
        };
        let Some(value) = value else {
            txns.remove(&id);
            continue;
        };
        match parse_value(value).map(|v| TxnMetadata::from_value(&v)) {
            Ok(Some(txn)) => {
                txns.insert(id, txn);
            }
            Ok(None) => warn!(partition, transactional_id = %id, "skipping a record in a state Kafka never stores"),
            Err(e) => {
                warn!(partition, transactional_id = %id, "skipping an unreadable __transaction_state value: {e}")
            }
        }
    }
    txns
}
