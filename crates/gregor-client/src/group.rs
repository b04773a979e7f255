//! Group membership for the consumer: the classic protocol (JoinGroup,
//! SyncGroup, Heartbeat, LeaveGroup) with Kafka's consumer embedded
//! protocol and the range assignor, computed by the leader member.

use std::collections::BTreeMap;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition as AssignedTopic;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    ConsumerProtocolAssignment, ConsumerProtocolSubscription, GroupId, HeartbeatRequest, JoinGroupRequest,
    LeaveGroupRequest, SyncGroupRequest, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

use crate::{ClientError, Connection};

/// The range assignor's name on the wire.
pub const RANGE: &str = "range";

/// This consumer's place in a group.
#[derive(Debug, Clone)]
pub struct Membership {
    /// The group.
    pub group: String,
    /// Member id the coordinator gave.
    pub member_id: String,
    /// Generation of the current assignment.
    pub generation: i32,
    /// Partitions assigned to this member.
    pub assigned: Vec<(String, i32)>,
}

/// What a join ended with.
pub enum JoinOutcome {
    /// Joined and synced.
    Joined(Membership),
    /// Join again (with this member id): the coordinator asked for one, or
    /// a rebalance began meanwhile.
    Retry(String),
}

const SESSION_TIMEOUT_MS: i32 = 10_000;
const REBALANCE_TIMEOUT_MS: i32 = 10_000;

fn group_id(g: &str) -> GroupId {
    GroupId(StrBytes::from_string(g.to_string()))
}

fn encode_versioned<T: Encodable>(message: &T) -> Result<Bytes, ClientError> {
    let mut out = BytesMut::new();
    out.put_i16(0);
    message
        .encode(&mut out, 0)
        .map_err(|e| ClientError::Protocol(e.to_string()))?;
    Ok(out.freeze())
}

fn decode_versioned<T: Decodable>(mut bytes: Bytes) -> Result<T, ClientError> {
    use bytes::Buf;
    if bytes.len() < 2 {
        return Err(ClientError::Protocol("empty consumer protocol data".into()));
    }
    let version = bytes.get_i16().clamp(0, 1);
    T::decode(&mut bytes, version).map_err(|e| ClientError::Protocol(e.to_string()))
}

/// The range assignor: each topic's partitions in contiguous ranges over
/// the members subscribed to it, in member id order.
pub fn range_assign(
    subscriptions: &BTreeMap<String, Vec<String>>,
    partitions: &BTreeMap<String, i32>,
) -> BTreeMap<String, Vec<(String, i32)>> {
    let mut out: BTreeMap<String, Vec<(String, i32)>> = subscriptions.keys().map(|m| (m.clone(), Vec::new())).collect();
    for (topic, &count) in partitions {
        let members: Vec<&String> = subscriptions
            .iter()
            .filter(|(_, topics)| topics.contains(topic))
            .map(|(m, _)| m)
            .collect();
        if members.is_empty() {
            continue;
        }
        let (each, extra) = (count / members.len() as i32, count % members.len() as i32);
        for (i, member) in members.iter().enumerate() {
            let i = i as i32;
            let start = i * each + i.min(extra);
            let len = each + i32::from(i < extra);
            if let Some(list) = out.get_mut(*member) {
                list.extend((start..start + len).map(|p| (topic.clone(), p)));
            }
        }
    }
    out
}

/// Joins `group` for `topics` through its coordinator: JoinGroup, then —
/// as leader, with the assignment computed from `partitions` — SyncGroup.
pub async fn join(
    coordinator: &mut Connection,
    group: &str,
    member_id: &str,
    topics: &[String],
    partitions: &BTreeMap<String, i32>,
) -> Result<JoinOutcome, ClientError> {
    let subscription = ConsumerProtocolSubscription::default()
        .with_topics(topics.iter().map(|t| StrBytes::from_string(t.clone())).collect());
    let mut protocol = JoinGroupRequestProtocol::default();
    protocol.name = StrBytes::from_static_str(RANGE);
    protocol.metadata = encode_versioned(&subscription)?;
    let mut request = JoinGroupRequest::default();
    request.group_id = group_id(group);
    request.session_timeout_ms = SESSION_TIMEOUT_MS;
    request.rebalance_timeout_ms = REBALANCE_TIMEOUT_MS;
    request.member_id = StrBytes::from_string(member_id.to_string());
    request.protocol_type = StrBytes::from_static_str("consumer");
    request.protocols = vec![protocol];
    let joined = coordinator.send(request, 5).await?;
    let me = joined.member_id.to_string();
    match kafka_protocol::error::ResponseError::try_from_code(joined.error_code) {
        None if joined.error_code == 0 => {}
        Some(kafka_protocol::error::ResponseError::MemberIdRequired)
        | Some(kafka_protocol::error::ResponseError::RebalanceInProgress) => return Ok(JoinOutcome::Retry(me)),
        Some(kafka_protocol::error::ResponseError::UnknownMemberId) => return Ok(JoinOutcome::Retry(String::new())),
        _ => {
            return Err(ClientError::from_code(
                joined.error_code,
                format!("joining group {group}"),
            ))
        }
    }
    let mut assignments = Vec::new();
    if joined.leader == joined.member_id {
        let mut subscriptions = BTreeMap::new();
        for m in &joined.members {
            let s: ConsumerProtocolSubscription = decode_versioned(m.metadata.clone())?;
            subscriptions.insert(
                m.member_id.to_string(),
                s.topics.iter().map(|t| t.to_string()).collect(),
            );
        }
        for (member, assigned) in range_assign(&subscriptions, partitions) {
            let mut by_topic: BTreeMap<String, Vec<i32>> = BTreeMap::new();
            for (t, p) in assigned {
                by_topic.entry(t).or_default().push(p);
            }
            let assignment = ConsumerProtocolAssignment::default().with_assigned_partitions(
                by_topic
                    .into_iter()
                    .map(|(t, ps)| {
                        AssignedTopic::default()
                            .with_topic(TopicName(StrBytes::from_string(t)))
                            .with_partitions(ps)
                    })
                    .collect(),
            );
            let mut a = SyncGroupRequestAssignment::default();
            a.member_id = StrBytes::from_string(member);
            a.assignment = encode_versioned(&assignment)?;
            assignments.push(a);
        }
    }
    let mut sync = SyncGroupRequest::default();
    sync.group_id = group_id(group);
    sync.generation_id = joined.generation_id;
    sync.member_id = joined.member_id.clone();
    sync.assignments = assignments;
    let synced = coordinator.send(sync, 3).await?;
    if synced.error_code == kafka_protocol::error::ResponseError::RebalanceInProgress.code() {
        return Ok(JoinOutcome::Retry(me));
    }
    if synced.error_code != 0 {
        return Err(ClientError::from_code(
            synced.error_code,
            format!("syncing group {group}"),
        ));
    }
    let assigned = decode_assignment(synced.assignment)?;
    Ok(JoinOutcome::Joined(Membership {
        group: group.to_string(),
        member_id: me,
        generation: joined.generation_id,
        assigned,
    }))
}

/// The partitions in a member's assignment (Kafka's consumer protocol,
/// as SyncGroup and DescribeGroups carry it); empty bytes: none.
pub fn decode_assignment(bytes: Bytes) -> Result<Vec<(String, i32)>, ClientError> {
    if bytes.is_empty() {
        return Ok(Vec::new());
    }
    let a: ConsumerProtocolAssignment = decode_versioned(bytes)?;
    Ok(a.assigned_partitions
        .into_iter()
        .flat_map(|t| {
            let topic = t.topic.0.to_string();
            t.partitions.into_iter().map(move |p| (topic.clone(), p))
        })
        .collect())
}

/// Tells the coordinator this member lives; `Ok(false)` when the group
/// is rebalancing (or forgot the member) and it must join again.
pub async fn heartbeat(coordinator: &mut Connection, m: &Membership) -> Result<bool, ClientError> {
    let mut request = HeartbeatRequest::default();
    request.group_id = group_id(&m.group);
    request.generation_id = m.generation;
    request.member_id = StrBytes::from_string(m.member_id.clone());
    let response = coordinator.send(request, 3).await?;
    Ok(response.error_code == 0)
}

/// Leaves the group (its partitions go to the others at once).
pub async fn leave(coordinator: &mut Connection, m: &Membership) -> Result<(), ClientError> {
    let mut member = MemberIdentity::default();
    member.member_id = StrBytes::from_string(m.member_id.clone());
    let mut request = LeaveGroupRequest::default();
    request.group_id = group_id(&m.group);
    request.members = vec![member];
    coordinator.send(request, 3).await.map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_contiguous_and_the_first_members_take_the_rest() {
        let subs = BTreeMap::from([
            ("a".to_string(), vec!["t".to_string(), "u".to_string()]),
            ("b".to_string(), vec!["t".to_string()]),
        ]);
        let parts = BTreeMap::from([("t".to_string(), 5), ("u".to_string(), 2)]);
        let got = range_assign(&subs, &parts);
        let t = |ps: &[i32]| ps.iter().map(|&p| ("t".to_string(), p)).collect::<Vec<_>>();
        let mut a = t(&[0, 1, 2]);
        a.extend([("u".to_string(), 0), ("u".to_string(), 1)]);
        assert_eq!(got["a"], a);
        assert_eq!(got["b"], t(&[3, 4]));
    }

    #[test]
    fn protocol_data_round_trips_with_its_version() {
        let s = ConsumerProtocolSubscription::default().with_topics(vec![StrBytes::from_static_str("t")]);
        let back: ConsumerProtocolSubscription = decode_versioned(encode_versioned(&s).unwrap()).unwrap();
        assert_eq!(back.topics, s.topics);
    }
}
