//! The consumer protocol's records in `__consumer_offsets`, in Kafka's
//! schemas (group-coordinator's `ConsumerGroup*.json`): keys are
//! version-prefixed and not flexible; values are version 0, flexible
//! (compact strings and arrays, tagged fields), version-prefixed.
//!
//! ```text
//! key 3 ConsumerGroupMetadata            group            → epoch i32
//! key 4 ConsumerGroupPartitionMetadata   group            → [topic id uuid, name, partitions i32, []]
//! key 5 ConsumerGroupMemberMetadata      group, member    → instance?, rack?, client id, client host,
//!                                                             [topic], regex?, rebalance timeout, assignor?
//! key 6 ConsumerGroupTargetAssignmentMetadata group       → assignment epoch i32
//! key 7 ConsumerGroupTargetAssignmentMember    group, member → [topic id, [partition]]
//! key 8 ConsumerGroupCurrentMemberAssignment   group, member → epoch, previous epoch, state i8,
//!                                                             assigned [..], pending revocation [..]
//! ```
//! A null value (tombstone) deletes the key's entity.

use std::collections::{BTreeMap, BTreeSet};

use gregor_log::wire::{
    put_compact_len, put_compact_string, put_nullable_compact_string, put_string, Reader, WireError,
};
use uuid::Uuid;

use crate::consumer::assignor::Assignment;
use crate::consumer::reconcile::{CurrentAssignment, MemberState};
use crate::protocol::StoredRecord;

/// A member's stored metadata (key 5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberMetadata {
    /// `group.instance.id`.
    pub instance_id: Option<String>,
    /// `client.rack`.
    pub rack_id: Option<String>,
    /// Client id.
    pub client_id: String,
    /// Client host.
    pub client_host: String,
    /// Subscribed topic names.
    pub subscribed: Vec<String>,
    /// Subscription pattern.
    pub regex: Option<String>,
    /// Rebalance timeout (ms).
    pub rebalance_timeout_ms: i32,
    /// Server assignor asked for.
    pub server_assignor: Option<String>,
}

/// What a record is the latest value of, within its group.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum RecordKey {
    /// Key 3.
    GroupEpoch,
    /// Key 4.
    Subscription,
    /// Key 5 of a member.
    Member(String),
    /// Key 6.
    TargetEpoch,
    /// Key 7 of a member.
    Target(String),
    /// Key 8 of a member.
    Current(String),
}

impl RecordKey {
    /// Kafka's order of one heartbeat's records: member metadata,
    /// subscription, epoch, targets, target epoch, current assignments.
    pub(crate) fn rank(&self) -> u8 {
        match self {
            Self::Member(_) => 0,
            Self::Subscription => 1,
            Self::GroupEpoch => 2,
            Self::Target(_) => 3,
            Self::TargetEpoch => 4,
            Self::Current(_) => 5,
        }
    }
}

/// One consumer-group record: what it says of which group (and member);
/// `None` values are tombstones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsumerRecord {
    /// Key 3: the group epoch.
    GroupEpoch {
        /// The group.
        group: String,
        /// The epoch.
        epoch: Option<i32>,
    },
    /// Key 4: the subscribed topics' metadata, name → (id, partitions).
    SubscriptionMetadata {
        /// The group.
        group: String,
        /// The topics.
        topics: Option<BTreeMap<String, (Uuid, i32)>>,
    },
    /// Key 5: a member's metadata.
    Member {
        /// The group.
        group: String,
        /// The member.
        member: String,
        /// Its metadata.
        value: Option<MemberMetadata>,
    },
    /// Key 6: the target assignment's epoch.
    TargetEpoch {
        /// The group.
        group: String,
        /// The epoch.
        epoch: Option<i32>,
    },
    /// Key 7: a member's target assignment.
    TargetMember {
        /// The group.
        group: String,
        /// The member.
        member: String,
        /// Its target.
        value: Option<Assignment>,
    },
    /// Key 8: a member's current assignment.
    Current {
        /// The group.
        group: String,
        /// The member.
        member: String,
        /// Its current assignment.
        value: Option<CurrentAssignment>,
    },
}

impl ConsumerRecord {
    /// Key 7 of `member` (`None`: tombstone).
    pub(crate) fn target_member(group: &str, member: &str, value: Option<&Assignment>) -> Self {
        Self::TargetMember {
            group: group.to_string(),
            member: member.to_string(),
            value: value.cloned(),
        }
    }

    /// Key 8 of `member` (`None`: tombstone).
    pub(crate) fn current(group: &str, member: &str, value: Option<&CurrentAssignment>) -> Self {
        Self::Current {
            group: group.to_string(),
            member: member.to_string(),
            value: value.cloned(),
        }
    }

    /// The tombstones that delete an empty group's own records (its
    /// epoch, subscribed topics and target epoch).
    pub fn group_tombstones(group: &str) -> [Self; 3] {
        let group = group.to_string();
        [
            Self::SubscriptionMetadata {
                group: group.clone(),
                topics: None,
            },
            Self::TargetEpoch {
                group: group.clone(),
                epoch: None,
            },
            Self::GroupEpoch { group, epoch: None },
        ]
    }

    /// The key it is the latest value of.
    pub(crate) fn key(&self) -> RecordKey {
        match self {
            Self::GroupEpoch { .. } => RecordKey::GroupEpoch,
            Self::SubscriptionMetadata { .. } => RecordKey::Subscription,
            Self::Member { member, .. } => RecordKey::Member(member.clone()),
            Self::TargetEpoch { .. } => RecordKey::TargetEpoch,
            Self::TargetMember { member, .. } => RecordKey::Target(member.clone()),
            Self::Current { member, .. } => RecordKey::Current(member.clone()),
        }
    }

    /// Whether it deletes its key.
    pub(crate) fn is_tombstone(&self) -> bool {
        match self {
            Self::GroupEpoch { epoch, .. } | Self::TargetEpoch { epoch, .. } => epoch.is_none(),
            Self::SubscriptionMetadata { topics, .. } => topics.is_none(),
            Self::Member { value, .. } => value.is_none(),
            Self::TargetMember { value, .. } => value.is_none(),
            Self::Current { value, .. } => value.is_none(),
        }
    }

    /// The group the record belongs to.
    pub fn group(&self) -> &str {
        match self {
            Self::GroupEpoch { group, .. }
            | Self::SubscriptionMetadata { group, .. }
            | Self::Member { group, .. }
            | Self::TargetEpoch { group, .. }
            | Self::TargetMember { group, .. }
            | Self::Current { group, .. } => group,
        }
    }

    /// Key and value bytes.
    pub fn encode(&self) -> StoredRecord {
        let mut key = Vec::new();
        let value = match self {
            Self::GroupEpoch { group, epoch } => {
                key_of(&mut key, 3, group, None);
                epoch.map(|e| value_of(|v| v.extend_from_slice(&e.to_be_bytes())))
            }
            Self::SubscriptionMetadata { group, topics } => {
                key_of(&mut key, 4, group, None);
                topics.as_ref().map(|topics| {
                    value_of(|v| {
                        put_compact_len(v, topics.len());
                        for (name, (id, partitions)) in topics {
                            v.extend_from_slice(id.as_bytes());
                            put_compact_string(v, name);
                            v.extend_from_slice(&partitions.to_be_bytes());
                            put_compact_len(v, 0); // PartitionMetadata: no racks known
                            v.push(0);
                        }
                    })
                })
            }
            Self::Member { group, member, value } => {
                key_of(&mut key, 5, group, Some(member));
                value.as_ref().map(|m| {
                    value_of(|v| {
                        put_nullable_compact_string(v, m.instance_id.as_deref());
                        put_nullable_compact_string(v, m.rack_id.as_deref());
                        put_compact_string(v, &m.client_id);
                        put_compact_string(v, &m.client_host);
                        put_compact_len(v, m.subscribed.len());
                        for t in &m.subscribed {
                            put_compact_string(v, t);
                        }
                        put_nullable_compact_string(v, m.regex.as_deref());
                        v.extend_from_slice(&m.rebalance_timeout_ms.to_be_bytes());
                        put_nullable_compact_string(v, m.server_assignor.as_deref());
                    })
                })
            }
            Self::TargetEpoch { group, epoch } => {
                key_of(&mut key, 6, group, None);
                epoch.map(|e| value_of(|v| v.extend_from_slice(&e.to_be_bytes())))
            }
            Self::TargetMember { group, member, value } => {
                key_of(&mut key, 7, group, Some(member));
                value.as_ref().map(|a| value_of(|v| put_assignment(v, a)))
            }
            Self::Current { group, member, value } => {
                key_of(&mut key, 8, group, Some(member));
                value.as_ref().map(|c| {
                    value_of(|v| {
                        v.extend_from_slice(&c.epoch.to_be_bytes());
                        v.extend_from_slice(&c.previous_epoch.to_be_bytes());
                        v.push(c.state.code() as u8);
                        put_assignment(v, &c.assigned);
                        put_assignment(v, &c.revoking);
                    })
                })
            }
        };
        (key, value)
    }
}

/// Reads a consumer-group record whose key version is 3–8; `None` for
/// bytes that do not follow the schemas.
pub(crate) fn parse(key_version: i16, key: &[u8], value: Option<&[u8]>) -> Option<ConsumerRecord> {
    parse_record(key_version, key, value).ok().flatten()
}

fn parse_record(key_version: i16, key: &[u8], value: Option<&[u8]>) -> Result<Option<ConsumerRecord>, WireError> {
    let mut k = Reader::new(key);
    let group = k.string()?;
    let member = if matches!(key_version, 5 | 7 | 8) {
        Some(k.string()?)
    } else {
        None
    };
    let mut v = value.map(Reader::new);
    if let Some(v) = v.as_mut() {
        if v.i16()? != 0 {
            // A newer value version: not understood.
            return Ok(None);
        }
    }
    let record = match (key_version, member) {
        (3, None) => ConsumerRecord::GroupEpoch {
            group,
            epoch: read_value(v, Reader::i32)?,
        },
        (4, None) => ConsumerRecord::SubscriptionMetadata {
            group,
            topics: read_value(v, topics)?,
        },
        (5, Some(member)) => ConsumerRecord::Member {
            group,
            member,
            value: read_value(v, member_metadata)?,
        },
        (6, None) => ConsumerRecord::TargetEpoch {
            group,
            epoch: read_value(v, Reader::i32)?,
        },
        (7, Some(member)) => ConsumerRecord::TargetMember {
            group,
            member,
            value: read_value(v, assignment)?,
        },
        (8, Some(member)) => ConsumerRecord::Current {
            group,
            member,
            value: read_value(v, |v| {
                Ok(CurrentAssignment {
                    epoch: v.i32()?,
                    previous_epoch: v.i32()?,
                    state: MemberState::from_code(v.i8()?),
                    assigned: assignment(v)?,
                    revoking: assignment(v)?,
                })
            })?,
        },
        _ => return Ok(None),
    };
    Ok(Some(record))
}

/// A record's value as `read` takes it: `None` for a tombstone.
fn read_value<'a, T>(
    v: Option<Reader<'a>>,
    read: impl FnOnce(&mut Reader<'a>) -> Result<T, WireError>,
) -> Result<Option<T>, WireError> {
    match v {
        None => Ok(None),
        Some(mut v) => read(&mut v).map(Some),
    }
}

fn key_of(out: &mut Vec<u8>, version: i16, group: &str, member: Option<&str>) {
    out.extend_from_slice(&version.to_be_bytes());
    put_string(out, group);
    if let Some(member) = member {
        put_string(out, member);
    }
}

/// A version-0 flexible value: the version, the fields `body` writes, no
/// tagged fields.
fn value_of(body: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut v = 0i16.to_be_bytes().to_vec();
    body(&mut v);
    v.push(0);
    v
}

/// `[]TopicPartitions`: topic id, partitions, no tagged fields.
fn put_assignment(out: &mut Vec<u8>, a: &Assignment) {
    put_compact_len(out, a.len());
    for (topic, partitions) in a {
        out.extend_from_slice(topic.as_bytes());
        put_compact_len(out, partitions.len());
        for p in partitions {
            out.extend_from_slice(&p.to_be_bytes());
        }
        out.push(0);
    }
}

/// A compact array's or string's length; null is an error here.
fn len(r: &mut Reader<'_>) -> Result<usize, WireError> {
    r.compact_len()?.ok_or(WireError::InvalidLength)
}

fn uuid(r: &mut Reader<'_>) -> Result<Uuid, WireError> {
    r.take().map(Uuid::from_bytes)
}

fn topics(r: &mut Reader<'_>) -> Result<BTreeMap<String, (Uuid, i32)>, WireError> {
    let n = len(r)?;
    let mut topics = BTreeMap::new();
    for _ in 0..n {
        let id = uuid(r)?;
        let name = r.compact_string()?;
        let partitions = r.i32()?;
        let racks = len(r)?;
        for _ in 0..racks {
            r.i32()?;
            let names = len(r)?;
            for _ in 0..names {
                r.compact_string()?;
            }
            r.skip_tagged_fields()?;
        }
        r.skip_tagged_fields()?;
        topics.insert(name, (id, partitions));
    }
    Ok(topics)
}

fn member_metadata(r: &mut Reader<'_>) -> Result<MemberMetadata, WireError> {
    let instance_id = r.nullable_compact_string()?;
    let rack_id = r.nullable_compact_string()?;
    let client_id = r.compact_string()?;
    let client_host = r.compact_string()?;
    let n = len(r)?;
    let subscribed = (0..n).map(|_| r.compact_string()).collect::<Result<Vec<_>, _>>()?;
    Ok(MemberMetadata {
        instance_id,
        rack_id,
        client_id,
        client_host,
        subscribed,
        regex: r.nullable_compact_string()?,
        rebalance_timeout_ms: r.i32()?,
        server_assignor: r.nullable_compact_string()?,
    })
}

fn assignment(r: &mut Reader<'_>) -> Result<Assignment, WireError> {
    let n = len(r)?;
    let mut a = Assignment::new();
    for _ in 0..n {
        let topic = uuid(r)?;
        let count = len(r)?;
        let partitions = (0..count).map(|_| r.i32()).collect::<Result<BTreeSet<_>, _>>()?;
        r.skip_tagged_fields()?;
        a.insert(topic, partitions);
    }
    Ok(a)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn assignment() -> impl Strategy<Value = Assignment> {
        prop::collection::btree_map(
            any::<u128>().prop_map(Uuid::from_u128),
            prop::collection::btree_set(0i32..1000, 0..8),
            0..4,
        )
    }

    fn round_trip(record: &ConsumerRecord) -> Option<ConsumerRecord> {
        let (key, value) = record.encode();
        let version = i16::from_be_bytes([key[0], key[1]]);
        parse(version, &key[2..], value.as_deref())
    }

    proptest! {
        #[test]
        fn current_assignments_round_trip(
            epoch in -2i32..1000, previous in -2i32..1000, state in prop::sample::select(vec![0i8, 1, 2]),
            assigned in assignment(), revoking in assignment(), tombstone in any::<bool>(),
        ) {
            let value = (!tombstone).then(|| CurrentAssignment {
                epoch, previous_epoch: previous, state: MemberState::from_code(state), assigned, revoking,
            });
            let record = ConsumerRecord::Current { group: "g".into(), member: "m".into(), value };
            prop_assert_eq!(round_trip(&record), Some(record));
        }

        #[test]
        fn members_targets_and_metadata_round_trip(
            instance in proptest::option::of("[a-z]{1,10}"), rack in proptest::option::of("[a-z]{0,5}"),
            topics in prop::collection::vec("[a-z.]{1,20}", 0..4), timeout in any::<i32>(),
            assignor in proptest::option::of("uniform|range"), target in assignment(), epoch in any::<i32>(),
            partitions in prop::collection::btree_map("[a-z]{1,8}", (any::<u128>(), 0i32..100), 0..4),
        ) {
            let records = [
                ConsumerRecord::Member { group: "g".into(), member: "m-1".into(), value: Some(MemberMetadata {
                    instance_id: instance, rack_id: rack, client_id: "c".into(), client_host: "/127.0.0.1".into(),
                    subscribed: topics, regex: None, rebalance_timeout_ms: timeout, server_assignor: assignor,
                })},
                ConsumerRecord::TargetMember { group: "g".into(), member: "m-1".into(), value: Some(target) },
                ConsumerRecord::GroupEpoch { group: "g".into(), epoch: Some(epoch) },
                ConsumerRecord::TargetEpoch { group: "g".into(), epoch: Some(epoch) },
                ConsumerRecord::SubscriptionMetadata { group: "g".into(), topics: Some(
                    partitions.into_iter().map(|(name, (id, n))| (name, (Uuid::from_u128(id), n))).collect()
                )},
            ];
            for record in records {
                prop_assert_eq!(round_trip(&record), Some(record.clone()));
            }
        }

        #[test]
        fn garbage_never_panics(version in 3i16..9, key in prop::collection::vec(any::<u8>(), 0..40),
                                value in proptest::option::of(prop::collection::vec(any::<u8>(), 0..80))) {
            let _ = parse(version, &key, value.as_deref());
        }
    }
}
