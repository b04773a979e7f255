//! Committed offsets: OffsetCommit (checked against the group, written,
//! then cached), OffsetFetch, their expiry after
//! `offsets.retention.minutes` in groups without members, and
//! DeleteGroups. Each change is a write first ([`crate::Output::Persist`]);
//! the cache follows only an acknowledged write.

use std::collections::BTreeSet;

use crate::consumer::ConsumerRecord;
use crate::machine::GroupStateMachine;
use crate::offset_cache::PartitionOffsets;
use crate::outputs::{respond, Output, RequestId, Response};
use crate::protocol::CommittedOffset;
use crate::protocol::{GroupError, GroupState, MemberOf, StableOffset, StoredRecord};
use crate::records::{group_key, offset_key, offset_value, OffsetKey};
use crate::writes::AfterWrite;

impl GroupStateMachine {
    /// OffsetCommit: checks the member and generation (a generation of −1
    /// with no member commits for a group without live members), then
    /// writes every offset in one append; they are cached and the commit
    /// answered ([`Response::Commit`]) once it is acknowledged.
    pub fn commit(
        &mut self,
        request_id: RequestId,
        member: MemberOf<'_>,
        offsets: &[(String, i32, CommittedOffset)],
    ) -> Vec<Output> {
        let group_id = member.group_id;
        let mut out = Vec::new();
        if let Err(e) = self.commit_check(member) {
            respond(&mut out, request_id, Response::Commit(Err(e)));
            return out;
        }
        if offsets.is_empty() {
            respond(&mut out, request_id, Response::Commit(Ok(())));
            return out;
        }
        let (records, offsets) = offset_records(group_id, offsets);
        let then = AfterWrite::Commit {
            request: request_id,
            offsets,
        };
        self.writes.enqueue(group_id, records, then, &mut out);
        out
    }

    /// Whether the group takes a commit from this member in this generation.
    fn commit_check(&self, m: MemberOf<'_>) -> Result<(), GroupError> {
        if m.group_id.is_empty() {
            return Err(GroupError::InvalidGroupId);
        }
        if let Some(group) = self.consumer_groups.get(m.group_id) {
            return group.commit_check(m.member_id, m.generation_id);
        }
        match self.groups.get(m.group_id) {
            Some(group) if !group.members.is_empty() => {
                // Only members commit to a group that has some: an admin
                // tool's or standalone consumer's commit (generation -1, no
                // member id) is UNKNOWN_MEMBER_ID, as Kafka's
                // validateOffsetCommit answers.
                if m.generation_id < 0 && m.member_id.is_empty() {
                    return Err(GroupError::UnknownMemberId);
                }
                group.member_check(m.member_id, m.instance_id)?;
                // As Kafka: members commit while a rebalance is being
                // prepared (before they rejoin), not between the join
                // and the assignment.
                if group.state == GroupState::CompletingRebalance {
                    return Err(GroupError::RebalanceInProgress);
                }
                if m.generation_id != group.generation {
                    return Err(GroupError::IllegalGeneration);
                }
                Ok(())
            }
            // A group this coordinator holds nothing of (no members, no
            // offsets): a commit naming a generation comes from an older
            // one (Kafka's ILLEGAL_GENERATION).
            None if m.generation_id >= 0 && !self.offsets.knows(m.group_id) => Err(GroupError::IllegalGeneration),
            _ if m.generation_id >= 0 || !m.member_id.is_empty() => Err(GroupError::UnknownMemberId),
            _ => Ok(()),
        }
    }

    /// OffsetFetch: the committed offsets of `partitions` (`None`: all),
    /// whatever transactions have pending.
    pub fn committed(
        &self,
        group_id: &str,
        partitions: Option<&[(String, i32)]>,
    ) -> Vec<((String, i32), Option<CommittedOffset>)> {
        self.fetch(group_id, partitions, false)
            .into_iter()
            .map(|(p, offset)| (p, offset.ok().flatten()))
            .collect()
    }

    /// OffsetFetch with `require_stable` (v7+): as [`Self::committed`],
    /// but a partition with offsets not committed yet — of an open
    /// transaction, or of a commit being written — is
    /// [`GroupError::UnstableOffsetCommit`], as Kafka answers.
    pub fn committed_stable(
        &self,
        group_id: &str,
        partitions: Option<&[(String, i32)]>,
    ) -> Vec<((String, i32), StableOffset)> {
        self.fetch(group_id, partitions, true)
    }

    fn fetch(
        &self,
        group_id: &str,
        partitions: Option<&[(String, i32)]>,
        require_stable: bool,
    ) -> Vec<((String, i32), StableOffset)> {
        let wanted: Vec<(String, i32)> = match partitions {
            Some(wanted) => wanted.to_vec(),
            None => self.offsets.committed(group_id).map(|(p, _)| p.clone()).collect(),
        };
        wanted
            .into_iter()
            .map(|p| {
                let unstable = require_stable
                    && (self.offsets.is_pending(group_id, &p) || self.writes.commit_under_way(group_id, &p));
                let offset = if unstable {
                    Err(GroupError::UnstableOffsetCommit)
                } else {
                    Ok(self.offsets.get(group_id, &p).cloned())
                };
                (p, offset)
            })
            .collect()
    }

    /// DeleteGroups for one group: a group without members loses its
    /// offsets and its metadata (tombstones), answered with
    /// [`Response::Delete`] once they are written.
    pub fn delete(&mut self, request_id: RequestId, group_id: &str) -> Vec<Output> {
        let mut out = Vec::new();
        if self.groups.get(group_id).is_some_and(|g| !g.members.is_empty())
            || self
                .consumer_groups
                .get(group_id)
                .is_some_and(|g| !g.members.is_empty())
        {
            respond(&mut out, request_id, Response::Delete(Err(GroupError::NonEmptyGroup)));
            return out;
        }
        // A group whose last member left is kept (retired) until its
        // metadata is tombstoned: it is Empty, not unknown, as in Kafka,
        // where it lives until the next offsets-retention check.
        let known = self.offsets.knows(group_id)
            || self.groups.contains_key(group_id)
            || self.retired.contains_key(group_id)
            || self.consumer_groups.contains_key(group_id);
        if !known {
            respond(&mut out, request_id, Response::Delete(Err(GroupError::GroupIdNotFound)));
            return out;
        }
        // Pending transactional offsets go too (a tombstone drops them), as
        // Kafka's deleteAllOffsets.
        let partitions: Vec<(String, i32)> = self
            .offsets
            .committed(group_id)
            .map(|(p, _)| p)
            .chain(self.offsets.pending_partitions(group_id))
            .cloned()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let mut records = tombstones(group_id, &partitions);
        records.push((group_key(group_id), None));
        if let Some(consumer) = self.remove_consumer_group(group_id) {
            records.extend(consumer.iter().map(ConsumerRecord::encode));
        }
        let then = AfterWrite::Delete {
            request: request_id,
            partitions,
            generation: self.generation(group_id),
        };
        self.writes.enqueue(group_id, records, then, &mut out);
        out
    }

    /// Tombstones offsets past retention in groups without members, and
    /// the metadata of empty groups left without offsets (as Kafka's
    /// cleanup, after which a new group of that name starts over). A group
    /// with writes under way waits for the next tick; an offset an open
    /// transaction wrote anew is kept until the transaction ends, and a
    /// group with open transactions is not forgotten (Kafka's
    /// `cleanupExpiredOffsets`).
    pub(crate) fn expire_offsets(&mut self, now_ms: i64, out: &mut Vec<Output>) {
        let retention = self.config.offsets_retention_ms;
        let mut expired: Vec<(String, Vec<(String, i32)>)> = Vec::new();
        for group in self.offsets.groups() {
            // Offsets of a group with members stay (Kafka keeps those of
            // topics a consumer group subscribes to).
            let consumers = self.consumer_groups.get(group).is_some_and(|g| !g.members.is_empty());
            if self.groups.contains_key(group) || consumers || self.writes.busy(group) {
                continue;
            }
            let old: Vec<(String, i32)> = self
                .offsets
                .committed(group)
                .filter(|(p, o)| now_ms - o.commit_timestamp > retention && !self.offsets.is_pending(group, p))
                .map(|(p, _)| p.clone())
                .collect();
            if !old.is_empty() {
                expired.push((group.clone(), old));
            }
        }
        for (group, partitions) in expired {
            let records = tombstones(&group, &partitions);
            self.writes
                .enqueue(&group, records, AfterWrite::Expiry { partitions }, out);
        }
        let keep_empty = self.config.offsets_retention_check_interval_ms;
        let retiring: Vec<(String, i32)> = self
            .retired
            .iter()
            .filter(|(group, _)| !self.offsets.knows(group) && !self.writes.busy(group))
            .filter(|(group, _)| {
                self.retired_since
                    .get(*group)
                    .is_none_or(|since| now_ms.saturating_sub(*since) >= keep_empty)
            })
            .map(|(group, generation)| (group.clone(), *generation))
            .collect();
        for (group, generation) in retiring {
            let records = vec![(group_key(&group), None)];
            self.writes
                .enqueue(&group, records, AfterWrite::Retire { generation }, out);
        }
    }

    /// Tombstoned offsets leave the cache (pending ones too).
    pub(crate) fn offsets_removed(&mut self, group_id: &str, partitions: &[(String, i32)]) {
        for p in partitions {
            self.offsets.remove(group_id, p);
        }
    }

    /// The group's metadata was tombstoned while it was in `generation`:
    /// unless it has come back since (members, or member ids handed out),
    /// it is forgotten, and a new group of that name starts from
    /// generation 0.
    pub(crate) fn forget(&mut self, group_id: &str, generation: Option<i32>) {
        let Some(generation) = generation else { return };
        if self.retired.get(group_id) == Some(&generation) {
            self.retired.remove(group_id);
            self.retired_since.remove(group_id);
        }
        if self
            .groups
            .get(group_id)
            .is_some_and(|g| g.members.is_empty() && g.pending.is_empty() && g.generation == generation)
        {
            self.groups.remove(group_id);
        }
    }
}

/// The records of a commit of `offsets` to `group`, and the offsets by
/// partition (in the same order) for the cache.
pub(crate) fn offset_records(
    group: &str,
    offsets: &[(String, i32, CommittedOffset)],
) -> (Vec<StoredRecord>, PartitionOffsets) {
    offsets
        .iter()
        .map(|(topic, partition, value)| {
            let key = OffsetKey {
                group: group.to_string(),
                topic: topic.clone(),
                partition: *partition,
            };
            let record = (offset_key(&key), Some(offset_value(value)));
            (record, ((topic.clone(), *partition), value.clone()))
        })
        .unzip()
}

/// Tombstones for `partitions` of `group`.
pub(crate) fn tombstones(group: &str, partitions: &[(String, i32)]) -> Vec<StoredRecord> {
    partitions
        .iter()
        .map(|(topic, partition)| {
            let key = OffsetKey {
                group: group.to_string(),
                topic: topic.clone(),
                partition: *partition,
            };
            (offset_key(&key), None)
        })
        .collect()
}
