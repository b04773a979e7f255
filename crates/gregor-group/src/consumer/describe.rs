//! What the coordinator shows of its consumer groups: ConsumerGroupDescribe
//! and the consumer groups of ListGroups.

use crate::consumer::group::ConsumerGroupState;
use crate::consumer::request::{ConsumerGroupDescription, ConsumerMemberDescription};
use crate::machine::GroupStateMachine;
use crate::protocol::GroupError;

impl GroupStateMachine {
    /// ConsumerGroupDescribe of one group: GROUP_ID_NOT_FOUND when it is
    /// not a consumer group here.
    pub fn describe_consumer(&self, group_id: &str) -> Result<ConsumerGroupDescription, GroupError> {
        let group = self.consumer_groups.get(group_id).ok_or(GroupError::GroupIdNotFound)?;
        let default = self.config.default_assignor();
        Ok(ConsumerGroupDescription {
            group_id: group_id.to_string(),
            state: group.state(),
            epoch: group.epoch,
            assignment_epoch: group.target_epoch,
            assignor_name: group.preferred_assignor(default).name().to_string(),
            members: group
                .members
                .iter()
                .map(|(id, m)| ConsumerMemberDescription {
                    member_id: id.clone(),
                    instance_id: m.instance_id.clone(),
                    rack_id: m.rack_id.clone(),
                    member_epoch: m.current.epoch,
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    subscribed_topic_names: m.subscribed.iter().cloned().collect(),
                    subscribed_topic_regex: m.regex.clone(),
                    assignment: m.current.assigned.clone(),
                    target_assignment: group.target.get(id).cloned().unwrap_or_default(),
                })
                .collect(),
        })
    }

    /// Every consumer group with its state, for ListGroups.
    pub fn list_consumer(&self) -> Vec<(String, ConsumerGroupState)> {
        self.consumer_groups
            .iter()
            .map(|(id, g)| (id.clone(), g.state()))
            .collect()
    }

    /// Kafka's ConsumerGroup.validateOffsetFetch: no member (an admin
    /// tool, epoch -1) may read; a member only at its current epoch
    /// (STALE_MEMBER_EPOCH otherwise). Classic groups are not checked.
    pub fn fetch_check(&self, group_id: &str, member_id: Option<&str>, member_epoch: i32) -> Result<(), GroupError> {
        let Some(group) = self.consumer_groups.get(group_id) else {
            return Ok(());
        };
        if member_id.is_none() && member_epoch < 0 {
            return Ok(());
        }
        let member = member_id
            .and_then(|id| group.members.get(id))
            .ok_or(GroupError::UnknownMemberId)?;
        if member.current.epoch != member_epoch {
            return Err(GroupError::StaleMemberEpoch);
        }
        Ok(())
    }

    /// The topics the members of consumer group `group_id` subscribe to,
    /// for OffsetDelete (`None`: not a consumer group with members).
    pub(crate) fn consumer_subscriptions(&self, group_id: &str) -> Option<std::collections::BTreeSet<String>> {
        let group = self.consumer_groups.get(group_id).filter(|g| !g.members.is_empty())?;
        Some(group.subscribed_topics().into_iter().map(str::to_string).collect())
    }

    /// Whether `group_id` is a consumer group here.
    pub fn is_consumer_group(&self, group_id: &str) -> bool {
        self.consumer_groups.contains_key(group_id)
    }
}
