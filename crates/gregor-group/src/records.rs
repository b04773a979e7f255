//! The records of `__consumer_offsets`, in Kafka's key and value schemas,
//! so the compactor keeps the latest commit per (group, topic, partition)
//! and a tombstone (null value) deletes it.
//!
//! ```text
//! offset commit key   v1: version i16 = 1, group string, topic string, partition i32
//! offset commit value v3: version i16 = 3, offset i64, leader epoch i32,
//!                         metadata string, commit timestamp i64
//! group metadata key  v2: version i16 = 2, group string   (skipped when loading)
//! ```

/// The internal topic holding committed offsets.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// A committed offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedOffset {
    /// The next offset the group will read.
    pub offset: i64,
    /// Leader epoch of the committed record (-1: unknown).
    pub leader_epoch: i32,
    /// The client's metadata string.
    pub metadata: String,
    /// When it was committed (ms).
    pub commit_timestamp: i64,
}

/// Where an offset belongs.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OffsetKey {
    /// The group.
    pub group: String,
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
}

/// A record of `__consumer_offsets` as gregor reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OffsetsRecord {
    /// An offset commit, or its deletion (`None`).
    Offset(OffsetKey, Option<CommittedOffset>),
    /// Group metadata (not used to rebuild state yet).
    Group(String),
}

/// Java's `String.hashCode`, which Kafka uses to place a group.
fn java_hash(s: &str) -> i32 {
    s.encode_utf16()
        .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(i32::from(c)))
}

/// The `__consumer_offsets` partition of `group`: `abs(hashCode) % partitions`,
/// as Kafka computes it (`Utils.abs` maps `i32::MIN` to 0).
pub fn partition_for(group: &str, partitions: u32) -> i32 {
    let hash = java_hash(group);
    let abs = if hash == i32::MIN { 0 } else { hash.abs() };
    abs % partitions.max(1) as i32
}

fn put_string(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as i16).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// The record key of an offset commit.
pub fn offset_key(key: &OffsetKey) -> Vec<u8> {
    let mut out = Vec::with_capacity(12 + key.group.len() + key.topic.len());
    out.extend_from_slice(&1i16.to_be_bytes());
    put_string(&mut out, &key.group);
    put_string(&mut out, &key.topic);
    out.extend_from_slice(&key.partition.to_be_bytes());
    out
}

/// The record value of an offset commit.
pub fn offset_value(value: &CommittedOffset) -> Vec<u8> {
    let mut out = Vec::with_capacity(28 + value.metadata.len());
    out.extend_from_slice(&3i16.to_be_bytes());
    out.extend_from_slice(&value.offset.to_be_bytes());
    out.extend_from_slice(&value.leader_epoch.to_be_bytes());
    put_string(&mut out, &value.metadata);
    out.extend_from_slice(&value.commit_timestamp.to_be_bytes());
    out
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, rest) = self.0.split_first_chunk::<N>()?;
        self.0 = rest;
        Some(*head)
    }
    fn i16(&mut self) -> Option<i16> {
        self.take().map(i16::from_be_bytes)
    }
    fn i32(&mut self) -> Option<i32> {
        self.take().map(i32::from_be_bytes)
    }
    fn i64(&mut self) -> Option<i64> {
        self.take().map(i64::from_be_bytes)
    }
    fn string(&mut self) -> Option<String> {
        let len = usize::try_from(self.i16()?).ok()?;
        let (s, rest) = self.0.split_at_checked(len)?;
        self.0 = rest;
        String::from_utf8(s.to_vec()).ok()
    }
}

/// Reads one `__consumer_offsets` record; `None` for bytes that are not
/// one of Kafka's schemas (they are skipped, not fatal).
pub fn parse(key: &[u8], value: Option<&[u8]>) -> Option<OffsetsRecord> {
    let mut k = Reader(key);
    match k.i16()? {
        0 | 1 => {
            let key = OffsetKey {
                group: k.string()?,
                topic: k.string()?,
                partition: k.i32()?,
            };
            let Some(value) = value else {
                return Some(OffsetsRecord::Offset(key, None));
            };
            let mut v = Reader(value);
            let version = v.i16()?;
            let offset = v.i64()?;
            let leader_epoch = if version >= 3 { v.i32()? } else { -1 };
            let metadata = v.string()?;
            let commit_timestamp = v.i64()?;
            Some(OffsetsRecord::Offset(
                key,
                Some(CommittedOffset {
                    offset,
                    leader_epoch,
                    metadata,
                    commit_timestamp,
                }),
            ))
        }
        2 => Some(OffsetsRecord::Group(k.string()?)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn groups_land_where_kafka_puts_them() {
        // Java: "my-group".hashCode() == -1906497762; abs % 50 == 12.
        assert_eq!(java_hash("my-group"), -1_906_497_762);
        assert_eq!(partition_for("my-group", 50), 12);
        assert_eq!(partition_for("e2e", 50), 12);
        assert_eq!(java_hash(""), 0);
        assert_eq!(partition_for("", 50), 0);
    }

    proptest! {
        #[test]
        fn offset_records_round_trip(
            group in ".{0,20}", topic in "[a-z]{1,20}", partition in 0i32..1000,
            offset in -1i64..i64::MAX, epoch in -1i32..100, metadata in ".{0,30}", ts in 0i64..i64::MAX,
        ) {
            let key = OffsetKey { group, topic, partition };
            let value = CommittedOffset { offset, leader_epoch: epoch, metadata, commit_timestamp: ts };
            let parsed = parse(&offset_key(&key), Some(&offset_value(&value)));
            prop_assert_eq!(parsed, Some(OffsetsRecord::Offset(key.clone(), Some(value))));
            prop_assert_eq!(parse(&offset_key(&key), None), Some(OffsetsRecord::Offset(key, None)));
        }

        #[test]
        fn garbage_never_panics(key in proptest::collection::vec(any::<u8>(), 0..64), value in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..64))) {
            let _ = parse(&key, value.as_deref());
        }
    }
}
