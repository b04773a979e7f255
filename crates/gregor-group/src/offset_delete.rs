//! OffsetDelete (KIP-496): a group's committed offsets of some partitions
//! go — tombstones written first, so a coordinator that takes over after a
//! failover reads the deletion from the log — as Kafka's
//! `GroupCoordinator.handleDeleteOffsets`:
//!
//! - an unknown group is GROUP_ID_NOT_FOUND;
//! - a group without members loses the offsets asked for;
//! - a live `consumer` group keeps the offsets of the topics its members
//!   subscribe to (GROUP_SUBSCRIBED_TO_TOPIC for those partitions; when a
//!   subscription cannot be read, every topic counts as subscribed) and
//!   loses the others';
//! - a live group of another protocol type is NON_EMPTY_GROUP.
//!
//! Partitions without an offset are answered OK, as in Kafka.

use std::collections::BTreeSet;

use crate::machine::GroupStateMachine;
use crate::offset_cache::Partition;
use crate::offsets::tombstones;
use crate::outputs::{respond, Output, RequestId, Response};
use crate::protocol::GroupError;
use crate::writes::AfterWrite;

/// The protocol type of Kafka's consumers.
const CONSUMER_PROTOCOL: &str = "consumer";

impl GroupStateMachine {
    /// OffsetDelete of `partitions` of `group_id`: answered with
    /// [`Response::DeleteOffsets`] — at once when nothing is to be
    /// written, else once the tombstones are stored.
    pub fn delete_offsets(&mut self, request_id: RequestId, group_id: &str, partitions: &[Partition]) -> Vec<Output> {
        let mut out = Vec::new();
        let (eligible, refused) = match self.deletable(group_id, partitions) {
            Ok(split) => split,
            Err(e) => {
                respond(&mut out, request_id, Response::DeleteOffsets(Err(e)));
                return out;
            }
        };
        // Only offsets that exist (committed, or pending in a transaction)
        // need a tombstone.
        let stored: BTreeSet<Partition> = self
            .offsets
            .committed(group_id)
            .map(|(p, _)| p)
            .chain(self.offsets.pending_partitions(group_id))
            .cloned()
            .collect();
        let doomed: Vec<Partition> = eligible.iter().filter(|p| stored.contains(*p)).cloned().collect();
        let results = answer(partitions, &refused);
        if doomed.is_empty() {
            respond(&mut out, request_id, Response::DeleteOffsets(Ok(results)));
            return out;
        }
        let records = tombstones(group_id, &doomed);
        let then = AfterWrite::DeleteOffsets {
            request: request_id,
            partitions: doomed,
            results,
        };
        self.writes.enqueue(group_id, records, then, &mut out);
        out
    }

    /// Splits `partitions` into those whose offsets may go and those the
    /// group's members subscribe to; or the group-level error.
    fn deletable(
        &self,
        group_id: &str,
        partitions: &[Partition],
    ) -> Result<(Vec<Partition>, Vec<Partition>), GroupError> {
        if group_id.is_empty() {
            return Err(GroupError::InvalidGroupId);
        }
        let known = self.offsets.knows(group_id)
            || self.groups.contains_key(group_id)
            || self.retired.contains_key(group_id)
            || self.consumer_groups.contains_key(group_id);
        if !known {
            return Err(GroupError::GroupIdNotFound);
        }
        if let Some(subscribed) = self.consumer_subscriptions(group_id) {
            return Ok(partitions
                .iter()
                .cloned()
                .partition(|(topic, _)| !subscribed.contains(topic)));
        }
        let Some(group) = self.groups.get(group_id).filter(|g| !g.members.is_empty()) else {
            return Ok((partitions.to_vec(), Vec::new()));
        };
        if group.protocol_type.as_deref() != Some(CONSUMER_PROTOCOL) {
            return Err(GroupError::NonEmptyGroup);
        }
        let subscribed: Option<BTreeSet<String>> = group.protocol.as_deref().and_then(|protocol| {
            group
                .members
                .values()
                .map(|m| subscribed_topics(&m.metadata_for(protocol)))
                .try_fold(BTreeSet::new(), |mut all, topics| {
                    all.extend(topics?);
                    Some(all)
                })
        });
        Ok(partitions
            .iter()
            .cloned()
            .partition(|(topic, _)| subscribed.as_ref().is_some_and(|s| !s.contains(topic))))
    }
}

/// One result per partition asked for: GROUP_SUBSCRIBED_TO_TOPIC for the
/// `refused`, OK for the rest.
fn answer(partitions: &[Partition], refused: &[Partition]) -> Vec<(Partition, Result<(), GroupError>)> {
    partitions
        .iter()
        .map(|p| {
            let result = if refused.contains(p) {
                Err(GroupError::GroupSubscribedToTopic)
            } else {
                Ok(())
            };
            (p.clone(), result)
        })
        .collect()
}

/// The topics of a consumer's subscription (ConsumerProtocol's
/// Subscription: version, then the topics — every version starts so);
/// `None` when it cannot be read.
pub(crate) fn subscribed_topics(metadata: &[u8]) -> Option<Vec<String>> {
    let mut rest = metadata;
    let mut take = |n: usize| -> Option<&[u8]> {
        let (head, tail) = rest.split_at_checked(n)?;
        rest = tail;
        Some(head)
    };
    let version = i16::from_be_bytes(take(2)?.try_into().ok()?);
    if version < 0 {
        return None;
    }
    let count = i32::from_be_bytes(take(4)?.try_into().ok()?);
    let count = usize::try_from(count).ok()?;
    let mut topics = Vec::with_capacity(count.min(1024));
    for _ in 0..count {
        let len = i16::from_be_bytes(take(2)?.try_into().ok()?);
        let len = usize::try_from(len).ok()?;
        topics.push(String::from_utf8(take(len)?.to_vec()).ok()?);
    }
    Some(topics)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subscription(version: i16, topics: &[&str]) -> Vec<u8> {
        let mut out = version.to_be_bytes().to_vec();
        out.extend((topics.len() as i32).to_be_bytes());
        for t in topics {
            out.extend((t.len() as i16).to_be_bytes());
            out.extend(t.as_bytes());
        }
        // Later versions add user data, owned partitions, …: ignored.
        out.extend([0, 0, 0, 0]);
        out
    }

    #[test]
    fn a_subscription_lists_its_topics_and_garbage_lists_none() {
        assert_eq!(
            subscribed_topics(&subscription(3, &["a", "bb"])),
            Some(vec!["a".to_string(), "bb".to_string()])
        );
        assert_eq!(subscribed_topics(&subscription(0, &[])), Some(vec![]));
        assert_eq!(subscribed_topics(b""), None);
        assert_eq!(subscribed_topics(&[0, 0, 0, 0, 0, 9, 0, 1, b'a']), None);
        assert_eq!(subscribed_topics(&[0, 1, 255, 255, 255, 255]), None);
    }

    #[test]
    fn subscribed_partitions_are_refused_the_others_answered_ok() {
        let p = |t: &str| (t.to_string(), 0);
        let results = answer(&[p("a"), p("b")], &[p("a")]);
        assert_eq!(
            results,
            vec![(p("a"), Err(GroupError::GroupSubscribedToTopic)), (p("b"), Ok(()))]
        );
    }
}
