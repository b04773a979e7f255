//! A consumer group's records on their way to `__consumer_offsets`. Every
//! change is applied at once and written as Kafka's records; a heartbeat
//! is answered when its write is stored, and one that writes nothing only
//! after the group's writes under way. A refused write — and the group's
//! writes queued behind it, decided on what it was to store — answer
//! with an error and leave the keys they touched dirty: their current
//! values (or tombstones) go out with the group's next write, or at the
//! next tick, so the last record of each key in the log is the group's
//! state and no answer told what the log does not hold. (Kafka instead
//! rolls its in-memory state back.)

use std::collections::BTreeSet;

use tracing::info;

use crate::consumer::group::{ConsumerGroup, ConsumerMember};
use crate::consumer::records::{ConsumerRecord, RecordKey};
use crate::consumer::request::ConsumerHeartbeatAnswer;
use crate::machine::GroupStateMachine;
use crate::outputs::{respond, Output, RequestId, Response};
use crate::protocol::GroupError;
use crate::records::group_key;
use crate::writes::AfterWrite;

impl GroupStateMachine {
    /// Writes `records` of consumer group `group_id`, with the current
    /// values of its dirty keys, answering `heartbeat` (the request and
    /// its answer) once stored.
    pub(crate) fn write_consumer(
        &mut self,
        group_id: &str,
        records: Vec<ConsumerRecord>,
        heartbeat: Option<(RequestId, ConsumerHeartbeatAnswer)>,
        out: &mut Vec<Output>,
    ) {
        let mut all = match self.consumer_groups.get_mut(group_id) {
            Some(group) => {
                let dirty = std::mem::take(&mut group.dirty);
                group.snapshot(group_id, &dirty)
            }
            None => Vec::new(),
        };
        all.extend(records);
        let (request, answer) = match heartbeat {
            Some((request, answer)) => (Some(request), answer),
            None => (None, ConsumerHeartbeatAnswer::default()),
        };
        self.enqueue_consumer(group_id, all, request, answer, out);
    }

    fn enqueue_consumer(
        &mut self,
        group_id: &str,
        records: Vec<ConsumerRecord>,
        request: Option<RequestId>,
        answer: ConsumerHeartbeatAnswer,
        out: &mut Vec<Output>,
    ) {
        let stored = records.iter().map(ConsumerRecord::encode).collect();
        let keys = records.iter().map(ConsumerRecord::key).collect();
        let then = AfterWrite::Consumer { request, answer, keys };
        self.writes.enqueue(group_id, stored, then, out);
    }

    /// An answer that writes nothing must still come after the group's
    /// writes under way (and its dirty keys): what it tells may rest on
    /// them, as Kafka answers only after the group's last write is
    /// committed. Then the member's current assignment is written again,
    /// which puts the answer in the group's line of writes.
    pub(crate) fn settle_first(&self, group_id: &str, member_id: &str, records: &mut Vec<ConsumerRecord>) {
        let Some(group) = self.consumer_groups.get(group_id) else {
            return;
        };
        if !records.is_empty() || (!self.writes.busy(group_id) && group.dirty.is_empty()) {
            return;
        }
        if let Some(member) = group.members.get(member_id) {
            records.push(ConsumerRecord::current(group_id, member_id, Some(&member.current)));
        }
    }

    /// A consumer group's write was refused: the keys it touched are
    /// written again with their values then.
    pub(crate) fn consumer_write_refused(&mut self, group_id: &str, keys: BTreeSet<RecordKey>) {
        if let Some(group) = self.consumer_groups.get_mut(group_id) {
            group.dirty.extend(keys);
        }
    }

    /// A consumer write queued behind a refused one is dropped with it:
    /// its heartbeat, if one waits, is answered COORDINATOR_NOT_AVAILABLE
    /// (the client retries), its keys are dirty.
    pub(crate) fn consumer_write_dropped(&mut self, group_id: &str, write: AfterWrite, out: &mut Vec<Output>) {
        if let AfterWrite::Consumer { request, keys, .. } = write {
            self.consumer_write_refused(group_id, keys);
            if let Some(request) = request {
                respond(
                    out,
                    request,
                    Response::ConsumerHeartbeat(Err(GroupError::CoordinatorNotAvailable)),
                );
            }
        }
    }

    /// Writes the dirty keys of groups with no write under way (`tick`).
    pub(crate) fn rewrite_unstored(&mut self, out: &mut Vec<Output>) {
        let dirty: Vec<String> = self
            .consumer_groups
            .iter()
            .filter(|(id, g)| !g.dirty.is_empty() && !self.writes.busy(id))
            .map(|(id, _)| id.clone())
            .collect();
        for group_id in dirty {
            self.write_consumer(&group_id, Vec::new(), None, out);
        }
    }

    /// Deletes consumer groups left without members and without committed
    /// offsets for `offsets.retention.check.interval.ms` (as Kafka's
    /// cleanup deletes such a group; a later join starts it over).
    pub(crate) fn retire_empty_consumer_groups(&mut self, now_ms: i64, out: &mut Vec<Output>) {
        let keep = self.config.offsets_retention_check_interval_ms;
        let retiring: Vec<String> = self
            .consumer_groups
            .iter()
            .filter(|(_, g)| {
                g.emptied_at_ms
                    .is_some_and(|since| now_ms.saturating_sub(since) >= keep)
            })
            .filter(|(id, _)| !self.offsets.knows(id) && !self.writes.busy(id))
            .map(|(id, _)| id.clone())
            .collect();
        for group_id in retiring {
            info!(group = %group_id, "consumer group deleted: no members and no offsets");
            self.delete_consumer_group(&group_id, out);
        }
    }

    /// Removes consumer group `group_id` and writes its tombstones (nobody
    /// waits for them).
    fn delete_consumer_group(&mut self, group_id: &str, out: &mut Vec<Output>) {
        if let Some(records) = self.remove_consumer_group(group_id) {
            self.enqueue_consumer(group_id, records, None, ConsumerHeartbeatAnswer::default(), out);
        }
    }

    /// Removes consumer group `group_id` and tombstones its records (it
    /// has no members); the records, for a caller writing them itself.
    pub(crate) fn remove_consumer_group(&mut self, group_id: &str) -> Option<Vec<ConsumerRecord>> {
        let group = self.consumer_groups.remove(group_id)?;
        let mut records = group.snapshot(group_id, &group.dirty);
        records.extend(ConsumerRecord::group_tombstones(group_id));
        Some(records)
    }

    /// A classic member joins `group_id`: an empty consumer group of that
    /// id is deleted (its records tombstoned) so the classic group takes
    /// the id, as Kafka converts an empty group.
    pub(crate) fn drop_empty_consumer_group(&mut self, group_id: &str, out: &mut Vec<Output>) {
        if self.consumer_groups.get(group_id).is_some_and(|g| g.members.is_empty()) {
            self.delete_consumer_group(group_id, out);
        }
    }

    /// A consumer group took the id of an empty classic group: the classic
    /// group is forgotten and its metadata tombstoned, ahead of the
    /// consumer group's records, so a reload finds only the consumer group
    /// (as Kafka's conversion writes the classic tombstone first). Its
    /// committed offsets stay the group's.
    pub(crate) fn retire_classic_group(&mut self, group_id: &str, out: &mut Vec<Output>) {
        if !self.consumer_groups.contains_key(group_id) {
            return;
        }
        let empty_classic = self.groups.get(group_id).is_some_and(|g| g.members.is_empty());
        let retired = self.retired.remove(group_id).is_some();
        self.retired_since.remove(group_id);
        if empty_classic {
            self.groups.remove(group_id);
        }
        if empty_classic || retired {
            let records = vec![(group_key(group_id), None)];
            self.writes.enqueue(group_id, records, AfterWrite::Emptied, out);
        }
    }

    /// Whether everything of consumer group `group_id` is in the log: no
    /// write under way and no key left dirty by a refused one.
    pub fn consumer_group_stored(&self, group_id: &str) -> bool {
        !self.writes.busy(group_id) && self.consumer_groups.get(group_id).is_none_or(|g| g.dirty.is_empty())
    }
}

impl ConsumerGroup {
    /// The current value of each of `keys` as a record (tombstones for
    /// members no longer here), tombstones first, in Kafka's order.
    pub(crate) fn snapshot(&self, group_id: &str, keys: &BTreeSet<RecordKey>) -> Vec<ConsumerRecord> {
        let mut records: Vec<ConsumerRecord> = keys.iter().map(|k| self.record_of(group_id, k)).collect();
        records.sort_by_key(|r| (!r.is_tombstone(), r.key().rank()));
        records
    }

    fn record_of(&self, group_id: &str, key: &RecordKey) -> ConsumerRecord {
        let group = group_id.to_string();
        match key {
            RecordKey::GroupEpoch => ConsumerRecord::GroupEpoch {
                group,
                epoch: Some(self.epoch),
            },
            RecordKey::Subscription => ConsumerRecord::SubscriptionMetadata {
                group,
                topics: Some(self.topics.clone()),
            },
            RecordKey::TargetEpoch => ConsumerRecord::TargetEpoch {
                group,
                epoch: Some(self.target_epoch),
            },
            RecordKey::Member(m) => ConsumerMember::record(group_id, m, self.members.get(m)),
            RecordKey::Target(m) => ConsumerRecord::target_member(group_id, m, self.target.get(m)),
            RecordKey::Current(m) => ConsumerRecord::current(group_id, m, self.members.get(m).map(|x| &x.current)),
        }
    }
}
