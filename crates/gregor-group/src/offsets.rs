//! Committed offsets: OffsetCommit (checked against the group, written,
//! then cached), OffsetFetch, their expiry after
//! `offsets.retention.minutes` in groups without members, and
//! DeleteGroups. Each change is a write first ([`crate::Output::Persist`]);
//! the cache follows only an acknowledged write.

use crate::machine::GroupStateMachine;
use crate::outputs::{respond, Output, RequestId, Response};
use crate::protocol::{GroupError, GroupState, MemberOf, StoredRecord};
use crate::records::{group_key, offset_key, offset_value, CommittedOffset, OffsetKey};
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
        let records: Vec<StoredRecord> = offsets
            .iter()
            .map(|(topic, partition, value)| {
                let key = OffsetKey {
                    group: group_id.to_string(),
                    topic: topic.clone(),
                    partition: *partition,
                };
                (offset_key(&key), Some(offset_value(value)))
            })
            .collect();
        let then = AfterWrite::Commit {
            request: request_id,
            offsets: offsets
                .iter()
                .map(|(topic, partition, value)| ((topic.clone(), *partition), value.clone()))
                .collect(),
        };
        self.writes.enqueue(group_id, records, then, &mut out);
        out
    }

    /// Whether the group takes a commit from this member in this generation.
    fn commit_check(&self, m: MemberOf<'_>) -> Result<(), GroupError> {
        if m.group_id.is_empty() {
            return Err(GroupError::InvalidGroupId);
        }
        match self.groups.get(m.group_id) {
            Some(group) if !group.members.is_empty() => {
                if m.generation_id < 0 && m.member_id.is_empty() {
                    return Err(GroupError::IllegalGeneration);
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
            None if m.generation_id >= 0 && !self.offsets.contains_key(m.group_id) => {
                Err(GroupError::IllegalGeneration)
            }
            _ if m.generation_id >= 0 || !m.member_id.is_empty() => Err(GroupError::UnknownMemberId),
            _ => Ok(()),
        }
    }

    /// OffsetFetch: the committed offsets of `partitions` (`None`: all).
    pub fn committed(
        &self,
        group_id: &str,
        partitions: Option<&[(String, i32)]>,
    ) -> Vec<((String, i32), Option<CommittedOffset>)> {
        let group = self.offsets.get(group_id);
        match partitions {
            Some(wanted) => wanted
                .iter()
                .map(|p| (p.clone(), group.and_then(|g| g.get(p)).cloned()))
                .collect(),
            None => group
                .map(|g| g.iter().map(|(k, v)| (k.clone(), Some(v.clone()))).collect())
                .unwrap_or_default(),
        }
    }

    /// DeleteGroups for one group: a group without members loses its
    /// offsets and its metadata (tombstones), answered with
    /// [`Response::Delete`] once they are written.
    pub fn delete(&mut self, request_id: RequestId, group_id: &str) -> Vec<Output> {
        let mut out = Vec::new();
        if self.groups.get(group_id).is_some_and(|g| !g.members.is_empty()) {
            respond(&mut out, request_id, Response::Delete(Err(GroupError::NonEmptyGroup)));
            return out;
        }
        let partitions: Vec<(String, i32)> = match self.offsets.get(group_id) {
            Some(o) => o.keys().cloned().collect(),
            None if self.groups.contains_key(group_id) => Vec::new(),
            None => {
                respond(&mut out, request_id, Response::Delete(Err(GroupError::GroupIdNotFound)));
                return out;
            }
        };
        let mut records = tombstones(group_id, &partitions);
        records.push((group_key(group_id), None));
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
    /// with writes under way waits for the next tick.
    pub(crate) fn expire_offsets(&mut self, now_ms: i64, out: &mut Vec<Output>) {
        let retention = self.config.offsets_retention_ms;
        let mut expired: Vec<(String, Vec<(String, i32)>)> = Vec::new();
        for (group, offsets) in &self.offsets {
            if self.groups.contains_key(group) || self.writes.busy(group) {
                continue;
            }
            let old: Vec<(String, i32)> = offsets
                .iter()
                .filter(|(_, o)| now_ms - o.commit_timestamp > retention)
                .map(|(k, _)| k.clone())
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
        let retiring: Vec<(String, i32)> = self
            .retired
            .iter()
            .filter(|(group, _)| !self.offsets.contains_key(*group) && !self.writes.busy(group))
            .map(|(group, generation)| (group.clone(), *generation))
            .collect();
        for (group, generation) in retiring {
            let records = vec![(group_key(&group), None)];
            self.writes
                .enqueue(&group, records, AfterWrite::Retire { generation }, out);
        }
    }

    /// Tombstoned offsets leave the cache.
    pub(crate) fn offsets_removed(&mut self, group_id: &str, partitions: &[(String, i32)]) {
        if let Some(stored) = self.offsets.get_mut(group_id) {
            for p in partitions {
                stored.remove(p);
            }
            if stored.is_empty() {
                self.offsets.remove(group_id);
            }
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

/// Tombstones for `partitions` of `group`.
fn tombstones(group: &str, partitions: &[(String, i32)]) -> Vec<StoredRecord> {
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
