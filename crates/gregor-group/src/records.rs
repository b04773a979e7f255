//! The records of `__consumer_offsets`, in Kafka's key and value schemas,
//! so the compactor keeps the latest commit per (group, topic, partition)
//! and a tombstone (null value) deletes it.
//!
//! ```text
//! offset commit key   v1: version i16 = 1, group string, topic string, partition i32
//! offset commit value v3: version i16 = 3, offset i64, leader epoch i32,
//!                         metadata string, commit timestamp i64
//! group metadata key  v2: version i16 = 2, group string
//! group metadata value v3: version i16 = 3, protocol type string, generation i32,
//!                         protocol nullable string, leader nullable string,
//!                         state timestamp i64, members [member id string,
//!                         instance id nullable string, client id string,
//!                         client host string, rebalance timeout i32,
//!                         session timeout i32, subscription bytes, assignment bytes]
//! ```

use crate::consumer::ConsumerRecord;
use crate::protocol::CommittedOffset;
use gregor_log::wire::{put_nullable_string, put_sized_bytes, put_string, Reader, WireError};

/// The internal topic holding committed offsets.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

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

/// One member in a group's stored metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMember {
    /// Member id.
    pub member_id: String,
    /// Static instance id.
    pub group_instance_id: Option<String>,
    /// Client id.
    pub client_id: String,
    /// Client host.
    pub client_host: String,
    /// Rebalance timeout (ms).
    pub rebalance_timeout_ms: i32,
    /// Session timeout (ms).
    pub session_timeout_ms: i32,
    /// Its metadata for the chosen protocol.
    pub subscription: Vec<u8>,
    /// Its assignment.
    pub assignment: Vec<u8>,
}

/// A group's membership as stored when it becomes stable or empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMetadata {
    /// Protocol type ("consumer").
    pub protocol_type: String,
    /// Generation.
    pub generation: i32,
    /// The chosen protocol.
    pub protocol: Option<String>,
    /// The leader's member id.
    pub leader: Option<String>,
    /// When the state was written (ms).
    pub state_timestamp: i64,
    /// The members.
    pub members: Vec<StoredMember>,
}

/// A record of `__consumer_offsets` as gregor reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OffsetsRecord {
    /// An offset commit, or its deletion (`None`).
    Offset(OffsetKey, Option<CommittedOffset>),
    /// A group's membership, or the group's deletion (`None`).
    Group(String, Option<GroupMetadata>),
    /// A consumer group's record (KIP-848, keys 3–8).
    Consumer(ConsumerRecord),
}

/// The `__consumer_offsets` partition of `group`: `abs(hashCode) % partitions`,
/// as Kafka computes it (`Utils.abs` maps `i32::MIN` to 0); the rule lives
/// in [`gregor_log::coordinator_partition`], shared with the transaction
/// coordinator.
pub fn partition_for(group: &str, partitions: u32) -> i32 {
    gregor_log::coordinator_partition(group, partitions)
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

/// The record key of a group's metadata.
pub fn group_key(group: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + group.len());
    out.extend_from_slice(&2i16.to_be_bytes());
    put_string(&mut out, group);
    out
}

/// The record value of a group's metadata (v3).
pub fn group_value(meta: &GroupMetadata) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&3i16.to_be_bytes());
    put_string(&mut out, &meta.protocol_type);
    out.extend_from_slice(&meta.generation.to_be_bytes());
    put_nullable_string(&mut out, meta.protocol.as_deref());
    put_nullable_string(&mut out, meta.leader.as_deref());
    out.extend_from_slice(&meta.state_timestamp.to_be_bytes());
    out.extend_from_slice(&(meta.members.len() as i32).to_be_bytes());
    for m in &meta.members {
        put_string(&mut out, &m.member_id);
        put_nullable_string(&mut out, m.group_instance_id.as_deref());
        put_string(&mut out, &m.client_id);
        put_string(&mut out, &m.client_host);
        out.extend_from_slice(&m.rebalance_timeout_ms.to_be_bytes());
        out.extend_from_slice(&m.session_timeout_ms.to_be_bytes());
        put_sized_bytes(&mut out, &m.subscription);
        put_sized_bytes(&mut out, &m.assignment);
    }
    out
}

fn parse_group_value(value: &[u8]) -> Result<GroupMetadata, WireError> {
    let mut v = Reader::new(value);
    let version = v.i16()?;
    let protocol_type = v.string()?;
    let generation = v.i32()?;
    let protocol = v.nullable_string()?;
    let leader = v.nullable_string()?;
    let state_timestamp = if version >= 2 { v.i64()? } else { -1 };
    let count = usize::try_from(v.i32()?).map_err(|_| WireError::InvalidLength)?;
    let mut members = Vec::with_capacity(count.min(1024));
    for _ in 0..count {
        let member_id = v.string()?;
        let group_instance_id = if version >= 3 { v.nullable_string()? } else { None };
        let client_id = v.string()?;
        let client_host = v.string()?;
        let rebalance_timeout_ms = if version >= 1 { v.i32()? } else { 0 };
        let session_timeout_ms = v.i32()?;
        let subscription = v.sized_bytes()?;
        let assignment = v.sized_bytes()?;
        members.push(StoredMember {
            member_id,
            group_instance_id,
            client_id,
            client_host,
            rebalance_timeout_ms,
            session_timeout_ms,
            subscription,
            assignment,
        });
    }
    Ok(GroupMetadata {
        protocol_type,
        generation,
        protocol,
        leader,
        state_timestamp,
        members,
    })
}

/// Reads one `__consumer_offsets` record; `None` for bytes that are not
/// one of Kafka's schemas (they are skipped, not fatal).
pub fn parse(key: &[u8], value: Option<&[u8]>) -> Option<OffsetsRecord> {
    parse_record(key, value).ok().flatten()
}

fn parse_record(key: &[u8], value: Option<&[u8]>) -> Result<Option<OffsetsRecord>, WireError> {
    let mut k = Reader::new(key);
    let record = match k.i16()? {
        0 | 1 => {
            let key = OffsetKey {
                group: k.string()?,
                topic: k.string()?,
                partition: k.i32()?,
            };
            let Some(value) = value else {
                return Ok(Some(OffsetsRecord::Offset(key, None)));
            };
            let mut v = Reader::new(value);
            let version = v.i16()?;
            let offset = v.i64()?;
            let leader_epoch = if version >= 3 { v.i32()? } else { -1 };
            let metadata = v.string()?;
            let commit_timestamp = v.i64()?;
            OffsetsRecord::Offset(
                key,
                Some(CommittedOffset {
                    offset,
                    leader_epoch,
                    metadata,
                    commit_timestamp,
                }),
            )
        }
        2 => {
            let group = k.string()?;
            match value {
                None => OffsetsRecord::Group(group, None),
                Some(v) => OffsetsRecord::Group(group, Some(parse_group_value(v)?)),
            }
        }
        version @ 3..=8 => {
            return Ok(crate::consumer::records::parse(version, k.rest(), value).map(OffsetsRecord::Consumer))
        }
        _ => return Ok(None),
    };
    Ok(Some(record))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn groups_land_where_kafka_puts_them() {
        assert_eq!(partition_for("my-group", 50), 12);
        assert_eq!(partition_for("e2e", 50), 12);
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
        fn group_metadata_round_trips(
            generation in 0i32..1000, members in proptest::collection::vec(("[a-z0-9-]{1,30}", proptest::option::of("[a-z]{1,8}"), proptest::collection::vec(any::<u8>(), 0..40)), 0..5),
        ) {
            let meta = GroupMetadata {
                protocol_type: "consumer".into(),
                generation,
                protocol: Some("range".into()),
                leader: members.first().map(|m| m.0.clone()),
                state_timestamp: 1_700_000_000_000,
                members: members.into_iter().map(|(id, instance, bytes)| StoredMember {
                    member_id: id,
                    group_instance_id: instance,
                    client_id: "c".into(),
                    client_host: "/127.0.0.1".into(),
                    rebalance_timeout_ms: 300_000,
                    session_timeout_ms: 10_000,
                    subscription: bytes.clone(),
                    assignment: bytes,
                }).collect(),
            };
            let parsed = parse(&group_key("g"), Some(&group_value(&meta)));
            prop_assert_eq!(parsed, Some(OffsetsRecord::Group("g".into(), Some(meta))));
        }

        #[test]
        fn garbage_never_panics(key in proptest::collection::vec(any::<u8>(), 0..64), value in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..64))) {
            let _ = parse(&key, value.as_deref());
        }
    }
}
