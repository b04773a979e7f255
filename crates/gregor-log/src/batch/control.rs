//! Control records: the COMMIT and ABORT markers a transaction coordinator
//! writes to every partition of a transaction (KIP-98). A control batch
//! (attribute bit 5, transactional bit 4) holds one record whose key is
//! `version i16 (0), type i16 (0 abort, 1 commit)` and whose value is
//! `version i16 (0), coordinator epoch i32`, as in Kafka's
//! `ControlRecordType` and `EndTransactionMarker`.

use super::builder::RecordBatchBuilder;
use super::error::BatchError;
use super::header::{BatchHeader, CONTROL_FLAG, TRANSACTIONAL_FLAG};
use super::records::{record_section, Records};

/// What a control record says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ControlRecordType {
    /// The transaction's records are to be dropped (type 0).
    Abort,
    /// The transaction's records are to be read (type 1).
    Commit,
}

impl ControlRecordType {
    /// The type's id in the record key.
    pub fn id(self) -> i16 {
        match self {
            Self::Abort => 0,
            Self::Commit => 1,
        }
    }
}

/// A transaction marker: its type and the epoch of the coordinator that
/// wrote it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EndTransactionMarker {
    /// COMMIT or ABORT.
    pub kind: ControlRecordType,
    /// The writing coordinator's epoch (the leader epoch of its
    /// `__transaction_state` partition).
    pub coordinator_epoch: i32,
}

impl EndTransactionMarker {
    /// The marker's record key.
    pub fn key(&self) -> [u8; 4] {
        let mut key = [0u8; 4];
        key[2..].copy_from_slice(&self.kind.id().to_be_bytes());
        key
    }

    /// The marker's record value.
    pub fn value(&self) -> [u8; 6] {
        let mut value = [0u8; 6];
        value[2..].copy_from_slice(&self.coordinator_epoch.to_be_bytes());
        value
    }

    /// Reads a marker from a control record's key and value; `None` for
    /// control records of other types (Kafka ignores unknown ones) or
    /// bytes too short to be a marker.
    pub fn parse(key: Option<&[u8]>, value: Option<&[u8]>) -> Option<Self> {
        let key = key?;
        let value = value?;
        if key.len() < 4 || value.len() < 6 {
            return None;
        }
        let kind = match i16::from_be_bytes([key[2], key[3]]) {
            0 => ControlRecordType::Abort,
            1 => ControlRecordType::Commit,
            _ => return None,
        };
        let coordinator_epoch = i32::from_be_bytes([value[2], value[3], value[4], value[5]]);
        Some(Self {
            kind,
            coordinator_epoch,
        })
    }

    /// The marker of a control batch (its first record), if it holds one.
    pub fn of_batch(batch: &[u8], header: &BatchHeader) -> Result<Option<Self>, BatchError> {
        if !header.is_control() {
            return Ok(None);
        }
        let section = record_section(batch, header)?;
        match Records::from_section(&section, header.record_count).next() {
            Some(record) => {
                let record = record?;
                Ok(Self::parse(record.key, record.value))
            }
            None => Ok(None),
        }
    }

    /// A control batch holding this marker for `producer_id` at
    /// `producer_epoch`, stamped `timestamp` (offsets assigned on append).
    pub fn batch(&self, producer_id: i64, producer_epoch: i16, timestamp: i64) -> Vec<u8> {
        let mut builder = RecordBatchBuilder::new(timestamp)
            .producer(producer_id, producer_epoch, -1)
            .with_attributes(TRANSACTIONAL_FLAG | CONTROL_FLAG);
        builder.append(Some(&self.key()), Some(&self.value()), &[], timestamp);
        builder.build()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::validate_batch;

    #[test]
    fn a_marker_batch_reads_back() {
        for kind in [ControlRecordType::Abort, ControlRecordType::Commit] {
            let marker = EndTransactionMarker {
                kind,
                coordinator_epoch: 7,
            };
            let batch = marker.batch(42, 3, 1_000);
            let header = validate_batch(&batch).unwrap();
            assert!(header.is_control() && header.is_transactional());
            assert_eq!(
                (header.producer_id, header.producer_epoch, header.base_sequence),
                (42, 3, -1)
            );
            assert_eq!(EndTransactionMarker::of_batch(&batch, &header).unwrap(), Some(marker));
        }
    }

    #[test]
    fn short_or_unknown_control_records_are_not_markers() {
        assert_eq!(EndTransactionMarker::parse(Some(&[0, 0, 0]), Some(&[0; 6])), None);
        assert_eq!(EndTransactionMarker::parse(Some(&[0, 0, 0, 5]), Some(&[0; 6])), None);
        assert_eq!(EndTransactionMarker::parse(None, Some(&[0; 6])), None);
        assert_eq!(EndTransactionMarker::parse(Some(&[0, 0, 0, 1]), Some(&[0; 5])), None);
    }
}
