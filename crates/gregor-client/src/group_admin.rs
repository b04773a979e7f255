//! The group admin client: what `kafka-consumer-groups.sh` asks of a
//! cluster — groups listed on every broker (ListGroups), described by their
//! coordinator (ConsumerGroupDescribe for KIP-848 groups, else
//! DescribeGroups with members' assignments decoded), committed
//! offsets fetched, committed as an admin (generation -1) or deleted
//! (OffsetDelete), groups deleted (DeleteGroups), and the log offsets lag
//! is measured against (ListOffsets on each leader).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_delete_request::{OffsetDeleteRequestPartition, OffsetDeleteRequestTopic};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ConsumerGroupDescribeRequest, DeleteGroupsRequest, DescribeGroupsRequest, GroupId,
    ListGroupsRequest, OffsetDeleteRequest,
};
use kafka_protocol::protocol::StrBytes;

use crate::cluster::topic_name;
use crate::group::decode_assignment;
use crate::offsets::{self, OffsetMap};
use crate::{ClientError, Cluster};

/// A group as ListGroups names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedGroup {
    /// Group id.
    pub group_id: String,
    /// Protocol type (`consumer` for consumer groups; empty for groups
    /// that only commit offsets).
    pub protocol_type: String,
    /// State (`Stable`, `Empty`, …).
    pub state: String,
}

/// A member as DescribeGroups shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMember {
    /// Member id the coordinator gave.
    pub member_id: String,
    /// Static membership's instance id, if any.
    pub group_instance_id: Option<String>,
    /// The member's `client.id`.
    pub client_id: String,
    /// The address it joined from, as Kafka writes it (`/127.0.0.1`).
    pub client_host: String,
    /// Its partitions (decoded when the group speaks the consumer
    /// protocol; empty otherwise).
    pub assignment: Vec<(String, i32)>,
}

/// A group's state and members, from its coordinator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDescription {
    /// Group id.
    pub group_id: String,
    /// State; `Dead` for a group the coordinator does not know.
    pub state: String,
    /// Protocol type (`consumer`, …).
    pub protocol_type: String,
    /// The chosen protocol (the assignor, for consumers).
    pub protocol: String,
    /// The coordinator's broker id.
    pub coordinator: i32,
    /// Members.
    pub members: Vec<GroupMember>,
}

/// Administrative operations on consumer groups, through any broker of a
/// cluster.
pub struct GroupAdmin {
    cluster: Cluster,
}

fn group_id(g: &str) -> GroupId {
    GroupId(StrBytes::from_string(g.to_string()))
}

impl GroupAdmin {
    /// Reaches the cluster through `bootstrap` (`host:port,…`) and learns
    /// its brokers.
    pub async fn connect(bootstrap: &str) -> Result<Self, ClientError> {
        let mut cluster = Cluster::new(bootstrap, "gregor-group-admin");
        // Naming a topic must never create it.
        cluster.set_auto_create(false);
        cluster.refresh(&[]).await?;
        Ok(Self { cluster })
    }

    /// Every group of the cluster (each broker lists those it
    /// coordinates), sorted by id; `states` non-empty keeps only groups in
    /// one of those states (ListGroups v4's filter).
    pub async fn list_groups(&mut self, states: &[String]) -> Result<Vec<ListedGroup>, ClientError> {
        let mut groups = Vec::new();
        for broker in self.cluster.brokers() {
            let mut request = ListGroupsRequest::default();
            request.states_filter = states.iter().map(|s| StrBytes::from_string(s.clone())).collect();
            let response = self.cluster.connection(broker).await?.send(request, 4).await?;
            if response.error_code != 0 {
                return Err(ClientError::from_code(
                    response.error_code,
                    format!("listing the groups of broker {broker}"),
                ));
            }
            groups.extend(response.groups.into_iter().map(|g| ListedGroup {
                group_id: g.group_id.0.to_string(),
                protocol_type: g.protocol_type.to_string(),
                state: g.group_state.to_string(),
            }));
        }
        groups.sort_by(|a, b| a.group_id.cmp(&b.group_id));
        groups.dedup_by(|a, b| a.group_id == b.group_id);
        Ok(groups)
    }

    /// The group's state, protocol and members, from its coordinator.
    pub async fn describe_group(&mut self, group: &str) -> Result<GroupDescription, ClientError> {
        // A consumer-protocol group (KIP-848) is described by
        // ConsumerGroupDescribe; a classic one is GROUP_ID_NOT_FOUND there
        // and DescribeGroups describes it, as Kafka's Admin does.
        if self.coordinator_supports(group, ApiKey::ConsumerGroupDescribe).await? {
            if let Some(described) = self.describe_consumer_group(group).await? {
                return Ok(described);
            }
        }
        let coordinator = self.cluster.coordinator(group).await?;
        let mut request = DescribeGroupsRequest::default();
        request.groups = vec![group_id(group)];
        let response = self.cluster.connection(coordinator).await?.send(request, 5).await?;
        let described = response
            .groups
            .into_iter()
            .next()
            .ok_or_else(|| ClientError::Protocol("DescribeGroups answered nothing".into()))?;
        if described.error_code != 0 {
            return Err(ClientError::from_code(
                described.error_code,
                format!("describing group {group}"),
            ));
        }
        let consumer = described.protocol_type.as_str() == "consumer";
        let mut members = Vec::new();
        for m in described.members {
            let assignment = if consumer {
                decode_assignment(m.member_assignment)?
            } else {
                Vec::new()
            };
            members.push(GroupMember {
                member_id: m.member_id.to_string(),
                group_instance_id: m.group_instance_id.map(|i| i.to_string()),
                client_id: m.client_id.to_string(),
                client_host: m.client_host.to_string(),
                assignment,
            });
        }
        Ok(GroupDescription {
            group_id: group.to_string(),
            state: described.group_state.to_string(),
            protocol_type: described.protocol_type.to_string(),
            protocol: described.protocol_data.to_string(),
            coordinator,
            members,
        })
    }

    /// Every offset the group has committed.
    pub async fn committed_offsets(&mut self, group: &str) -> Result<OffsetMap, ClientError> {
        let coordinator = self.cluster.coordinator(group).await?;
        offsets::fetch(self.cluster.connection(coordinator).await?, group, None).await
    }

    /// Commits `offsets` for the group as an admin tool does (generation
    /// -1, no member id): the coordinator refuses while it has members.
    pub async fn commit_offsets(&mut self, group: &str, offsets: &OffsetMap) -> Result<(), ClientError> {
        let coordinator = self.cluster.coordinator(group).await?;
        offsets::commit(self.cluster.connection(coordinator).await?, group, -1, "", offsets).await
    }

    /// Deletes the group and its offsets (DeleteGroups); refused
    /// (`NonEmptyGroup`) while it has members.
    pub async fn delete_group(&mut self, group: &str) -> Result<(), ClientError> {
        let coordinator = self.cluster.coordinator(group).await?;
        let mut request = DeleteGroupsRequest::default();
        request.groups_names = vec![group_id(group)];
        let response = self.cluster.connection(coordinator).await?.send(request, 2).await?;
        for r in response.results {
            if r.error_code != 0 {
                return Err(ClientError::from_code(r.error_code, format!("deleting group {group}")));
            }
        }
        Ok(())
    }

    /// ConsumerGroupDescribe of `group`: `None` when it is not a
    /// consumer-protocol group.
    async fn describe_consumer_group(&mut self, group: &str) -> Result<Option<GroupDescription>, ClientError> {
        let coordinator = self.cluster.coordinator(group).await?;
        let mut request = ConsumerGroupDescribeRequest::default();
        request.group_ids = vec![group_id(group)];
        let response = self.cluster.connection(coordinator).await?.send(request, 0).await?;
        let described = response
            .groups
            .into_iter()
            .next()
            .ok_or_else(|| ClientError::Protocol("ConsumerGroupDescribe answered nothing".into()))?;
        if described.error_code == ResponseError::GroupIdNotFound.code() {
            return Ok(None);
        }
        if described.error_code != 0 {
            return Err(ClientError::from_code(
                described.error_code,
                format!("describing group {group}"),
            ));
        }
        let members = described
            .members
            .into_iter()
            .map(|m| GroupMember {
                member_id: m.member_id.to_string(),
                group_instance_id: m.instance_id.map(|i| i.to_string()),
                client_id: m.client_id.to_string(),
                client_host: m.client_host.to_string(),
                assignment: m
                    .assignment
                    .topic_partitions
                    .into_iter()
                    .flat_map(|t| {
                        let topic = t.topic_name.0.to_string();
                        t.partitions.into_iter().map(move |p| (topic.clone(), p))
                    })
                    .collect(),
            })
            .collect();
        Ok(Some(GroupDescription {
            group_id: group.to_string(),
            state: described.group_state.to_string(),
            protocol_type: "consumer".to_string(),
            protocol: described.assignor_name.to_string(),
            coordinator,
            members,
        }))
    }

    /// Whether the group's coordinator serves `api` (its ApiVersions).
    pub async fn coordinator_supports(&mut self, group: &str, api: ApiKey) -> Result<bool, ClientError> {
        let coordinator = self.cluster.coordinator(group).await?;
        let connection = self.cluster.connection(coordinator).await?;
        let response = connection.send(ApiVersionsRequest::default(), 0).await?;
        if response.error_code != 0 {
            return Err(ClientError::from_code(response.error_code, "asking for API versions"));
        }
        Ok(response.api_keys.iter().any(|k| k.api_key == api as i16))
    }

    /// Deletes the group's committed offsets of `partitions`
    /// (OffsetDelete, KIP-496): each partition's outcome, `None` for done.
    /// A group-level refusal (unknown group, a group consuming one of the
    /// topics…) is the error. Fails clearly when the coordinator does not
    /// serve OffsetDelete.
    pub async fn delete_offsets(
        &mut self,
        group: &str,
        partitions: &[(String, i32)],
    ) -> Result<Vec<((String, i32), Option<ClientError>)>, ClientError> {
        if !self.coordinator_supports(group, ApiKey::OffsetDelete).await? {
            return Err(ClientError::Protocol(format!(
                "the coordinator of group {group} does not support OffsetDelete (API key {})",
                ApiKey::OffsetDelete as i16
            )));
        }
        let mut by_topic: std::collections::BTreeMap<&str, Vec<OffsetDeleteRequestPartition>> = Default::default();
        for (t, p) in partitions {
            let mut partition = OffsetDeleteRequestPartition::default();
            partition.partition_index = *p;
            by_topic.entry(t).or_default().push(partition);
        }
        let mut request = OffsetDeleteRequest::default();
        request.group_id = group_id(group);
        request.topics = by_topic
            .into_iter()
            .map(|(t, ps)| {
                let mut topic = OffsetDeleteRequestTopic::default();
                topic.name = topic_name(t);
                topic.partitions = ps;
                topic
            })
            .collect();
        let coordinator = self.cluster.coordinator(group).await?;
        let response = self.cluster.connection(coordinator).await?.send(request, 0).await?;
        if response.error_code != 0 {
            return Err(ClientError::from_code(
                response.error_code,
                format!("deleting offsets of group {group}"),
            ));
        }
        let mut out = Vec::new();
        for t in response.topics {
            for p in t.partitions {
                let error = (p.error_code != 0).then(|| ClientError::from_code(p.error_code, ""));
                out.push(((t.name.0.to_string(), p.partition_index), error));
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// How many partitions `topic` has; an unknown topic is an error (and
    /// is not created).
    pub async fn partitions(&mut self, topic: &str) -> Result<i32, ClientError> {
        self.cluster.refresh(&[topic]).await?;
        self.cluster
            .partitions(topic)
            .ok_or_else(|| ClientError::from_code(3, format!("topic {topic}")))
    }

    /// ListOffsets on the partition's leader: -2 the log start, -1 the log
    /// end (high watermark), or the first offset at or after a timestamp
    /// (-1: no record that recent).
    pub async fn log_offset(&mut self, topic: &str, partition: i32, timestamp: i64) -> Result<i64, ClientError> {
        self.cluster.list_offset(topic, partition, timestamp).await
    }
}
