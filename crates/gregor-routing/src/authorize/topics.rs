//! Per-resource checks: the topics, groups and config resources a
//! principal may not touch are taken out of the request before its
//! handler runs, and their error entries put into the response after
//! (Kafka's `filterByAuthorized` and merged `unauthorized…Responses`).
//! Each function returns the [`Merge`] that adds them.

use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

use super::{nothing, take_refused, Access, Merge};
use gregor_auth::acl::AclOperation as Op;
use gregor_broker::Broker;

const TOPIC: i16 = 29; // TOPIC_AUTHORIZATION_FAILED
const GROUP: i16 = 30; // GROUP_AUTHORIZATION_FAILED
const CLUSTER: i16 = 31; // CLUSTER_AUTHORIZATION_FAILED

/// Error entries for every partition of `topics` (Produce).
pub fn produce_errors(
    topics: &[produce_request::TopicProduceData],
    code: i16,
) -> Vec<produce_response::TopicProduceResponse> {
    use produce_response::{PartitionProduceResponse, TopicProduceResponse};
    let refused = |p: &produce_request::PartitionProduceData| {
        PartitionProduceResponse::default()
            .with_index(p.index)
            .with_error_code(code)
            .with_base_offset(-1)
            .with_log_append_time_ms(-1)
            .with_log_start_offset(-1)
    };
    let topic = |t: &produce_request::TopicProduceData| {
        TopicProduceResponse::default()
            .with_name(t.name.clone())
            .with_topic_id(t.topic_id)
            .with_partition_responses(t.partition_data.iter().map(refused).collect())
    };
    topics.iter().map(topic).collect()
}

/// Produce: Write on each topic.
pub fn produce(access: &Access, request: &mut ProduceRequest) -> Merge<ProduceResponse> {
    if !access.enabled() {
        return nothing();
    }
    let refused = take_refused(&mut request.topic_data, |t| access.topic(Op::Write, &t.name));
    let errors = produce_errors(&refused, TOPIC);
    Box::new(move |response| response.responses.extend(errors))
}

/// Fetch: a consumer needs Read on each topic; a follower (a replica id)
/// ClusterAction, or every partition is refused.
pub fn fetch(
    access: &Access,
    broker: &Broker,
    request: &mut FetchRequest,
    version: i16,
    follower: bool,
) -> Merge<FetchResponse> {
    if !access.enabled() {
        return nothing();
    }
    use fetch_response::{FetchableTopicResponse, PartitionData};
    let replica_allowed = follower && access.cluster(Op::ClusterAction);
    let refused = take_refused(&mut request.topics, |t| {
        if follower {
            replica_allowed
        } else if version >= 13 {
            access.topic(Op::Read, &broker.topics().name_of(t.topic_id).unwrap_or_default())
        } else {
            access.topic(Op::Read, &t.topic)
        }
    });
    Box::new(move |response| {
        response.responses.extend(refused.into_iter().map(|t| {
            let partitions = t.partitions.iter().map(|p| {
                PartitionData::default()
                    .with_partition_index(p.partition)
                    .with_error_code(TOPIC)
                    .with_high_watermark(-1)
                    .with_last_stable_offset(-1)
                    .with_log_start_offset(-1)
                    .with_records(Some(Default::default()))
            });
            FetchableTopicResponse::default()
                .with_topic(t.topic)
                .with_topic_id(t.topic_id)
                .with_partitions(partitions.collect())
        }))
    })
}

/// ListOffsets: Describe on each topic.
pub fn list_offsets(access: &Access, request: &mut ListOffsetsRequest) -> Merge<ListOffsetsResponse> {
    use list_offsets_response::{ListOffsetsPartitionResponse, ListOffsetsTopicResponse};
    if !access.enabled() {
        return nothing();
    }
    let refused = take_refused(&mut request.topics, |t| access.topic(Op::Describe, &t.name));
    Box::new(move |response| {
        response.topics.extend(refused.into_iter().map(|t| {
            let partitions = t.partitions.iter().map(|p| {
                ListOffsetsPartitionResponse::default()
                    .with_partition_index(p.partition_index)
                    .with_error_code(TOPIC)
                    .with_timestamp(-1)
                    .with_offset(-1)
                    .with_leader_epoch(-1)
            });
            ListOffsetsTopicResponse::default()
                .with_name(t.name)
                .with_partitions(partitions.collect())
        }))
    })
}

/// DeleteRecords: Delete on each topic.
pub fn delete_records(access: &Access, request: &mut DeleteRecordsRequest) -> Merge<DeleteRecordsResponse> {
    use delete_records_response::{DeleteRecordsPartitionResult, DeleteRecordsTopicResult};
    if !access.enabled() {
        return nothing();
    }
    let refused = take_refused(&mut request.topics, |t| access.topic(Op::Delete, &t.name));
    Box::new(move |response| {
        response.topics.extend(refused.into_iter().map(|t| {
            let partitions = t.partitions.iter().map(|p| {
                DeleteRecordsPartitionResult::default()
                    .with_partition_index(p.partition_index)
                    .with_error_code(TOPIC)
                    .with_low_watermark(-1)
            });
            DeleteRecordsTopicResult::default()
                .with_name(t.name)
                .with_partitions(partitions.collect())
        }))
    })
}

/// OffsetCommit (the group already allowed): Read on each topic.
pub fn offset_commit(access: &Access, request: &mut OffsetCommitRequest) -> Merge<OffsetCommitResponse> {
    if !access.enabled() {
        return nothing();
    }
    let refused = OffsetCommitRequest::default()
        .with_topics(take_refused(&mut request.topics, |t| access.topic(Op::Read, &t.name)));
    let errors = crate::api::offset_commit::answer(&refused, |_, _| TOPIC);
    Box::new(move |response| response.topics.extend(errors.topics))
}

/// OffsetForLeaderEpoch: a replica needs ClusterAction, a client
/// Describe on each topic.
pub fn offset_for_leader_epoch(
    access: &Access,
    request: &mut OffsetForLeaderEpochRequest,
) -> Merge<OffsetForLeaderEpochResponse> {
    use offset_for_leader_epoch_response::{EpochEndOffset, OffsetForLeaderTopicResult};
    if !access.enabled() {
        return nothing();
    }
    let replica = request.replica_id.0 >= 0;
    let replica_allowed = replica && access.cluster(Op::ClusterAction);
    let refused = take_refused(&mut request.topics, |t| {
        if replica {
            replica_allowed
        } else {
            access.topic(Op::Describe, &t.topic)
        }
    });
    let code = if replica { CLUSTER } else { TOPIC };
    Box::new(move |response| {
        response.topics.extend(refused.into_iter().map(|t| {
            let partitions = t.partitions.iter().map(|p| {
                EpochEndOffset::default()
                    .with_partition(p.partition)
                    .with_error_code(code)
                    .with_leader_epoch(-1)
                    .with_end_offset(-1)
            });
            OffsetForLeaderTopicResult::default()
                .with_topic(t.topic)
                .with_partitions(partitions.collect())
        }))
    })
}

/// CreateTopics: Create on the cluster, or on each topic.
pub fn create_topics(access: &Access, request: &mut CreateTopicsRequest) -> Merge<CreateTopicsResponse> {
    if !access.enabled() || access.cluster(Op::Create) {
        return nothing();
    }
    let refused = take_refused(&mut request.topics, |t| access.topic(Op::Create, &t.name));
    Box::new(move |response| {
        response.topics.extend(refused.into_iter().map(|t| {
            create_topics_response::CreatableTopicResult::default()
                .with_name(t.name)
                .with_error_code(TOPIC)
                .with_error_message(Some(StrBytes::from_static_str("Authorization failed.")))
                .with_topic_config_error_code(TOPIC)
                .with_num_partitions(-1)
                .with_replication_factor(-1)
        }))
    })
}

/// CreateTopics' answer: the configs of a created topic are shown only
/// with DescribeConfigs on it (TOPIC_AUTHORIZATION_FAILED as its
/// config error otherwise).
pub fn created_topic_configs(access: &Access, response: &mut CreateTopicsResponse) {
    if !access.enabled() {
        return;
    }
    for topic in &mut response.topics {
        if topic.error_code == 0 && !access.topic(Op::DescribeConfigs, &topic.name) {
            topic.topic_config_error_code = TOPIC;
            topic.configs = None;
        }
    }
}

/// DeleteTopics: Delete on each topic (named; by id, Describe first).
pub fn delete_topics(
    access: &Access,
    broker: &Broker,
    request: &mut DeleteTopicsRequest,
) -> Merge<DeleteTopicsResponse> {
    if !access.enabled() {
        return nothing();
    }
    let refused_names = take_refused(&mut request.topic_names, |n| access.topic(Op::Delete, n));
    let refused_states = take_refused(&mut request.topics, |t| match &t.name {
        Some(name) => access.topic(Op::Delete, name),
        None => access.topic(Op::Delete, &broker.topics().name_of(t.topic_id).unwrap_or_default()),
    });
    Box::new(move |response| {
        let refused = delete_topics_response::DeletableTopicResult::default().with_error_code(TOPIC);
        let names = refused_names
            .into_iter()
            .map(|name| refused.clone().with_name(Some(name)));
        let states = refused_states
            .into_iter()
            .map(|state| refused.clone().with_name(state.name).with_topic_id(state.topic_id));
        response.responses.extend(names.chain(states).collect::<Vec<_>>());
    })
}

/// CreatePartitions: Alter on each topic.
pub fn create_partitions(access: &Access, request: &mut CreatePartitionsRequest) -> Merge<CreatePartitionsResponse> {
    if !access.enabled() {
        return nothing();
    }
    let refused = take_refused(&mut request.topics, |t| access.topic(Op::Alter, &t.name));
    Box::new(move |response| {
        response.results.extend(refused.into_iter().map(|t| {
            create_partitions_response::CreatePartitionsTopicResult::default()
                .with_name(t.name)
                .with_error_code(TOPIC)
                .with_error_message(Some(StrBytes::from_static_str("The topic authorization is failed.")))
        }))
    })
}

/// DescribeGroups: Describe on each group.
pub fn describe_groups(access: &Access, request: &mut DescribeGroupsRequest) -> Merge<DescribeGroupsResponse> {
    if !access.enabled() {
        return nothing();
    }
    let refused = take_refused(&mut request.groups, |g| access.group(Op::Describe, g));
    Box::new(move |response| {
        response.groups.extend(refused.into_iter().map(|g| {
            describe_groups_response::DescribedGroup::default()
                .with_group_id(g)
                .with_error_code(GROUP)
        }))
    })
}

/// ConsumerGroupDescribe: Describe on each group.
pub fn consumer_group_describe(
    access: &Access,
    request: &mut ConsumerGroupDescribeRequest,
) -> Merge<ConsumerGroupDescribeResponse> {
    if !access.enabled() {
        return nothing();
    }
    let refused = take_refused(&mut request.group_ids, |g| access.group(Op::Describe, g));
    Box::new(move |response| {
        response.groups.extend(refused.into_iter().map(|g| {
            consumer_group_describe_response::DescribedGroup::default()
                .with_group_id(g)
                .with_error_code(GROUP)
        }))
    })
}

/// DeleteGroups: Delete on each group.
pub fn delete_groups(access: &Access, request: &mut DeleteGroupsRequest) -> Merge<DeleteGroupsResponse> {
    if !access.enabled() {
        return nothing();
    }
    let refused = take_refused(&mut request.groups_names, |g| access.group(Op::Delete, g));
    Box::new(move |response| {
        response.results.extend(refused.into_iter().map(|g| {
            delete_groups_response::DeletableGroupResult::default()
                .with_group_id(g)
                .with_error_code(GROUP)
        }))
    })
}

/// ListGroups: every group with Describe on the cluster, else those the
/// principal may describe.
pub fn list_groups(access: &Access, response: &mut ListGroupsResponse) {
    if access.enabled() && !access.cluster(Op::Describe) {
        response.groups.retain(|g| access.group(Op::Describe, &g.group_id));
    }
}

/// OffsetFetch: Describe on the group (GROUP_AUTHORIZATION_FAILED, no
/// offsets) and on each topic (the others left out, or
/// TOPIC_AUTHORIZATION_FAILED when named).
pub fn offset_fetch(access: &Access, request: &OffsetFetchRequest, response: &mut OffsetFetchResponse) {
    if !access.enabled() {
        return;
    }
    let single_group = request.groups.is_empty();
    if single_group && !access.group(Op::Describe, &request.group_id) {
        response.topics.clear();
        response.error_code = GROUP;
        return;
    }
    for group in &mut response.groups {
        if !access.group(Op::Describe, &group.group_id) {
            group.topics.clear();
            group.error_code = GROUP;
        } else {
            for topic in &mut group.topics {
                if !access.topic(Op::Describe, &topic.name) {
                    for p in &mut topic.partitions {
                        p.committed_offset = -1;
                        p.metadata = None;
                        p.error_code = TOPIC;
                    }
                }
            }
        }
    }
    for topic in &mut response.topics {
        if !access.topic(Op::Describe, &topic.name) {
            for p in &mut topic.partitions {
                p.committed_offset = -1;
                p.metadata = None;
                p.error_code = TOPIC;
            }
        }
    }
}

/// FindCoordinator: Describe on the group or transactional id.
pub fn find_coordinator(access: &Access, request: &FindCoordinatorRequest, response: &mut FindCoordinatorResponse) {
    if !access.enabled() {
        return;
    }
    let allowed = |key: &str| match request.key_type {
        0 => access.group(Op::Describe, key).then_some(()).ok_or(GROUP),
        1 => access.transactional_id(Op::Describe, key).then_some(()).ok_or(53),
        _ => Ok(()),
    };
    if request.coordinator_keys.is_empty() && response.coordinators.is_empty() {
        if let Err(code) = allowed(&request.key) {
            response.error_code = code;
            response.error_message = None;
            response.node_id = (-1).into();
            response.host = StrBytes::default();
            response.port = -1;
        }
    }
    for coordinator in &mut response.coordinators {
        if let Err(code) = allowed(&coordinator.key) {
            coordinator.error_code = code;
            coordinator.error_message = None;
            coordinator.node_id = (-1).into();
            coordinator.host = StrBytes::default();
            coordinator.port = -1;
        }
    }
}

/// Metadata: topics without Describe are left out of an all-topics
/// answer and answered TOPIC_AUTHORIZATION_FAILED when named; a named
/// topic that does not exist is auto-created only with Create on the
/// cluster or the topic (TOPIC_AUTHORIZATION_FAILED otherwise).
pub fn metadata(
    access: &Access,
    broker: &Broker,
    request: &mut MetadataRequest,
    version: i16,
) -> Merge<MetadataResponse> {
    if !access.enabled() {
        return nothing();
    }
    let Some(topics) = request.topics.as_mut() else {
        // A set: a list searched for each of 10,000 topics would be
        // 100 million comparisons.
        let access_all: std::collections::HashSet<String> = broker
            .topics()
            .all()
            .into_keys()
            .filter(|n| access.topic(Op::Describe, n))
            .collect();
        return Box::new(move |response| {
            response
                .topics
                .retain(|t| t.name.as_ref().is_some_and(|n| access_all.contains(&***n)))
        });
    };
    let auto_create = version < 4 || request.allow_auto_topic_creation;
    let may_create_any = auto_create && access.cluster(Op::Create);
    let refused = take_refused(topics, |t| {
        let name = t.name.as_deref().map(|n| n.as_str()).unwrap_or_default();
        access.topic(Op::Describe, name)
            && (!auto_create || may_create_any || broker.topics().exists(name) || access.topic(Op::Create, name))
    });
    Box::new(move |response| {
        response.topics.extend(refused.into_iter().map(|t| {
            metadata_response::MetadataResponseTopic::default()
                .with_name(t.name)
                .with_topic_id(t.topic_id)
                .with_error_code(TOPIC)
        }))
    })
}
