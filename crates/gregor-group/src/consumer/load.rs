//! A coordinator taking over a `__consumer_offsets` partition rebuilds
//! its consumer groups from their records, in log order: the latest
//! record of each key holds, a tombstone deletes it, and a group exists
//! while its epoch record (key 3) does. Members get a fresh session from
//! the load.

use std::collections::BTreeMap;

use uuid::Uuid;

use crate::consumer::assignor::Assignment;
use crate::consumer::group::{ConsumerGroup, ConsumerMember};
use crate::consumer::reconcile::{CurrentAssignment, MemberState};
use crate::consumer::records::{ConsumerRecord, MemberMetadata};

/// What one group's records said so far.
#[derive(Default)]
struct Partial {
    epoch: Option<i32>,
    topics: BTreeMap<String, (Uuid, i32)>,
    members: BTreeMap<String, MemberMetadata>,
    target_epoch: i32,
    target: BTreeMap<String, Assignment>,
    current: BTreeMap<String, CurrentAssignment>,
}

/// Collects consumer-group records, then builds the groups.
#[derive(Default)]
pub(crate) struct ConsumerGroupsLoader {
    groups: BTreeMap<String, Partial>,
}

impl ConsumerGroupsLoader {
    /// Takes the next record in log order.
    pub(crate) fn apply(&mut self, record: ConsumerRecord) {
        let group = self.groups.entry(record.group().to_string()).or_default();
        match record {
            // The group's deletion: whatever came before is gone.
            ConsumerRecord::GroupEpoch { epoch: None, .. } => *group = Partial::default(),
            ConsumerRecord::GroupEpoch { epoch, .. } => group.epoch = epoch,
            ConsumerRecord::SubscriptionMetadata { topics, .. } => group.topics = topics.unwrap_or_default(),
            ConsumerRecord::Member { member, value, .. } => set(&mut group.members, member, value),
            ConsumerRecord::TargetEpoch { epoch, .. } => group.target_epoch = epoch.unwrap_or(0),
            ConsumerRecord::TargetMember { member, value, .. } => set(&mut group.target, member, value),
            ConsumerRecord::Current { member, value, .. } => set(&mut group.current, member, value),
        }
    }

    /// The groups whose epoch record stands, their members' sessions
    /// starting at `now_ms`.
    pub(crate) fn finish(self, now_ms: i64) -> impl Iterator<Item = (String, ConsumerGroup)> {
        self.groups.into_iter().filter_map(move |(id, partial)| {
            let epoch = partial.epoch?;
            let mut group = ConsumerGroup {
                epoch,
                target_epoch: partial.target_epoch,
                target: partial.target,
                topics: partial.topics,
                ..ConsumerGroup::default()
            };
            let mut current = partial.current;
            for (member_id, meta) in partial.members {
                let assignment = current.remove(&member_id).unwrap_or_else(CurrentAssignment::joining);
                group.set_owned(&member_id, None, &assignment);
                let revoke_deadline_ms = (assignment.state == MemberState::UnrevokedPartitions)
                    .then(|| now_ms + i64::from(meta.rebalance_timeout_ms));
                let member = ConsumerMember {
                    instance_id: meta.instance_id,
                    rack_id: meta.rack_id,
                    client_id: meta.client_id,
                    client_host: meta.client_host,
                    subscribed: meta.subscribed.into_iter().collect(),
                    regex: meta.regex,
                    server_assignor: meta.server_assignor,
                    rebalance_timeout_ms: meta.rebalance_timeout_ms,
                    current: assignment,
                    last_heartbeat_ms: now_ms,
                    revoke_deadline_ms,
                };
                group.members.insert(member_id, member);
            }
            group.target.retain(|m, _| group.members.contains_key(m));
            group.emptied_at_ms = group.members.is_empty().then_some(now_ms);
            Some((id, group))
        })
    }
}

fn set<V>(map: &mut BTreeMap<String, V>, key: String, value: Option<V>) {
    match value {
        Some(v) => {
            map.insert(key, v);
        }
        None => {
            map.remove(&key);
        }
    }
}
