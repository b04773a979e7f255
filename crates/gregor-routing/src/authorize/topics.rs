//! Per-resource checks: the topics, groups and config resources a
//! principal may not touch are taken out of the request before its
//! handler runs, and their error entries put into the response after
//! (Kafka's `filterByAuthorized` and merged `unauthorized…Responses`).
//! Each function returns the [`Merge`] that adds them.

use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

use super::{take_refused, Access};
use gregor_auth::acl::AclOperation as Op;
use gregor_broker::Broker;

/// Adds the refused entries to a response.
pub type Merge<R> = Box<dyn FnOnce(&mut R) + Send>;

const TOPIC: i16 = 29; // TOPIC_AUTHORIZATION_FAILED
const GROUP: i16 = 30; // GROUP_AUTHORIZATION_FAILED
const CLUSTER: i16 = 31; // CLUSTER_AUTHORIZATION_FAILED

fn nothing<R>() -> Merge<R> {
    Box::new(|_| {})
}

/// Error entries for every partition of `topics` (Produce).
pub fn produce_errors(
    topics: &[produce_request::TopicProduceData],
    code: i16,
) -> Vec<produce_response::TopicProduceResponse> {
    topics
        .iter()
        .map(|t| {
            let mut topic = produce_response::TopicProduceResponse::default();
            topic.name = t.name.clone();
            topic.topic_id = t.topic_id;
            topic.partition_responses = t
                .partition_data
                .iter()
                .map(|p| {
                    let mut partition = produce_response::PartitionProduceResponse::default();
                    partition.index = p.index;
                    partition.error_code = code;
                    partition.base_offset = -1;
                    partition.log_append_time_ms = -1;
                    partition.log_start_offset = -1;
                    partition
                })
                .collect();
            topic
        })
        .collect()
}

/// Produce: Write on each topic.
pub fn produce(access: &Access, request: &mut ProduceRequest) -> Merge<ProduceResponse> {
    if !access.enabled() {
        return nothing();
    }
    let refused = take_refused(
        &mut request.topic_data,
        |t| t.name.to_string(),
        |n| access.topic(Op::Write, n),
    );
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
    let replica_allowed = follower && access.cluster(Op::ClusterAction);
    let name = |t: &fetch_request::FetchTopic| {
        if version >= 13 {
            broker.topics().name_of(t.topic_id).unwrap_or_default()
        } else {
            t.topic.to_string()
        }
    };
    let refused = take_refused(&mut request.topics, name, |n| {
        if follower {
            replica_allowed
        } else {
            access.topic(Op::Read, n)
        }
    });
    let errors: Vec<fetch_response::FetchableTopicResponse> = refused
        .iter()
        .map(|t| {
            let mut topic = fetch_response::FetchableTopicResponse::default();
            topic.topic = t.topic.clone();
            topic.topic_id = t.topic_id;
            topic.partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let mut partition = fetch_response::PartitionData::default();
                    partition.partition_index = p.partition;
                    partition.error_code = TOPIC;
                    partition.high_watermark = -1;
                    partition.last_stable_offset = -1;
                    partition.log_start_offset = -1;
                    partition.records = Some(Default::default());
                    partition
                })
                .collect();
            topic
        })
        .collect();
    Box::new(move |response| response.responses.extend(errors))
}

/// ListOffsets: Describe on each topic.
pub fn list_offsets(access: &Access, request: &mut ListOffsetsRequest) -> Merge<ListOffsetsResponse> {
    if !access.enabled() {
        return nothing();
    }
    let refused = take_refused(
        &mut request.topics,
        |t| t.name.to_string(),
        |n| access.topic(Op::Describe, n),
    );
    Box::new(move |response| {
        response.topics.extend(refused.into_iter().map(|t| {
            let mut topic = list_offsets_response::ListOffsetsTopicResponse::default();
            topic.name = t.name;
            topic.partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let mut partition = list_offsets_response::ListOffsetsPartitionResponse::default();
                    partition.partition_index = p.partition_index;
                    partition.error_code = TOPIC;
                    partition.timestamp = -1;
                    partition.offset = -1;
                    partition.leader_epoch = -1;
                    partition
                })
                .collect();
            topic
        }))
    })
}

/// DeleteRecords: Delete on each topic.
pub fn delete_records(access: &Access, request: &mut DeleteRecordsRequest) -> Merge<DeleteRecordsResponse> {
    if !access.enabled() {
        return nothing();
    }
    let refused = take_refused(
        &mut request.topics,
        |t| t.name.to_string(),
        |n| access.topic(Op::Delete, n),
    );
    Box::new(move |response| {
        response.topics.extend(refused.into_iter().map(|t| {
            let mut topic = delete_records_response::DeleteRecordsTopicResult::default();
            topic.name = t.name;
            topic.partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let mut partition = delete_records_response::DeleteRecordsPartitionResult::default();
                    partition.partition_index = p.partition_index;
                    partition.error_code = TOPIC;
                    partition.low_watermark = -1;
                    partition
                })
                .collect();
            topic
        }))
    })
}

/// OffsetCommit (the group already allowed): Read on each topic.
pub fn offset_commit(access: &Access, request: &mut OffsetCommitRequest) -> Merge<OffsetCommitResponse> {
    if !access.enabled() {
        return nothing();
    }
    let refused = take_refused(
        &mut request.topics,
        |t| t.name.to_string(),
        |n| access.topic(Op::Read, n),
    );
    Box::new(move |response| {
        response.topics.extend(refused.into_iter().map(|t| {
            let mut topic = offset_commit_response::OffsetCommitResponseTopic::default();
            topic.name = t.name;
            topic.partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let mut partition = offset_commit_response::OffsetCommitResponsePartition::default();
                    partition.partition_index = p.partition_index;
                    partition.error_code = TOPIC;
                    partition
                })
                .collect();
            topic
        }))
    })
}

/// OffsetForLeaderEpoch: a replica needs ClusterAction, a client
/// Describe on each topic.
pub fn offset_for_leader_epoch(
    access: &Access,
    request: &mut OffsetForLeaderEpochRequest,
) -> Merge<OffsetForLeaderEpochResponse> {
    if !access.enabled() {
        return nothing();
    }
    let replica = request.replica_id.0 >= 0;
    let replica_allowed = replica && access.cluster(Op::ClusterAction);
    let refused = take_refused(
        &mut request.topics,
        |t| t.topic.to_string(),
        |n| {
            if replica {
                replica_allowed
            } else {
                access.topic(Op::Describe, n)
            }
        },
    );
    let code = if replica { CLUSTER } else { TOPIC };
    Box::new(move |response| {
        response.topics.extend(refused.into_iter().map(|t| {
            let mut topic = offset_for_leader_epoch_response::OffsetForLeaderTopicResult::default();
            topic.topic = t.topic;
            topic.partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let mut partition = offset_for_leader_epoch_response::EpochEndOffset::default();
                    partition.partition = p.partition;
                    partition.error_code = code;
                    partition.leader_epoch = -1;
                    partition.end_offset = -1;
                    partition
                })
                .collect();
            topic
        }))
    })
}

/// CreateTopics: Create on the cluster, or on each topic.
pub fn create_topics(access: &Access, request: &mut CreateTopicsRequest) -> Merge<CreateTopicsResponse> {
    if !access.enabled() || access.cluster(Op::Create) {
        return nothing();
    }
    let refused = take_refused(
        &mut request.topics,
        |t| t.name.to_string(),
        |n| access.topic(Op::Create, n),
    );
    Box::new(move |response| {
        response.topics.extend(refused.into_iter().map(|t| {
            let mut topic = create_topics_response::CreatableTopicResult::default();
            topic.name = t.name;
            topic.error_code = TOPIC;
            topic.error_message = Some(StrBytes::from_static_str("Authorization failed."));
            topic.topic_config_error_code = TOPIC;
            topic.num_partitions = -1;
            topic.replication_factor = -1;
            topic
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
    let mut refused_names = take_refused(
        &mut request.topic_names,
        |n| n.to_string(),
        |n| access.topic(Op::Delete, n),
    );
    let name_of = |t: &delete_topics_request::DeleteTopicState| match &t.name {
        Some(name) => name.to_string(),
        None => broker.topics().name_of(t.topic_id).unwrap_or_default(),
    };
    let refused_states = take_refused(&mut request.topics, name_of, |n| access.topic(Op::Delete, n));
    Box::new(move |response| {
        for name in refused_names.drain(..) {
            let mut result = delete_topics_response::DeletableTopicResult::default();
            result.name = Some(name);
            result.error_code = TOPIC;
            response.responses.push(result);
        }
        for state in refused_states {
            let mut result = delete_topics_response::DeletableTopicResult::default();
            result.name = state.name;
            result.topic_id = state.topic_id;
            result.error_code = TOPIC;
            response.responses.push(result);
        }
    })
}

/// CreatePartitions: Alter on each topic.
pub fn create_partitions(access: &Access, request: &mut CreatePartitionsRequest) -> Merge<CreatePartitionsResponse> {
    if !access.enabled() {
        return nothing();
    }
    let refused = take_refused(
        &mut request.topics,
        |t| t.name.to_string(),
        |n| access.topic(Op::Alter, n),
    );
    Box::new(move |response| {
        response.results.extend(refused.into_iter().map(|t| {
            let mut result = create_partitions_response::CreatePartitionsTopicResult::default();
            result.name = t.name;
            result.error_code = TOPIC;
            result.error_message = Some(StrBytes::from_static_str("The topic authorization is failed."));
            result
        }))
    })
}

/// DescribeGroups: Describe on each group.
pub fn describe_groups(access: &Access, request: &mut DescribeGroupsRequest) -> Merge<DescribeGroupsResponse> {
    if !access.enabled() {
        return nothing();
    }
    let refused = take_refused(
        &mut request.groups,
        |g| g.to_string(),
        |n| access.group(Op::Describe, n),
    );
    Box::new(move |response| {
        response.groups.extend(refused.into_iter().map(|g| {
            let mut group = describe_groups_response::DescribedGroup::default();
            group.group_id = g;
            group.error_code = GROUP;
            group
        }))
    })
}

/// DeleteGroups: Delete on each group.
pub fn delete_groups(access: &Access, request: &mut DeleteGroupsRequest) -> Merge<DeleteGroupsResponse> {
    if !access.enabled() {
        return nothing();
    }
    let refused = take_refused(
        &mut request.groups_names,
        |g| g.to_string(),
        |n| access.group(Op::Delete, n),
    );
    Box::new(move |response| {
        response.results.extend(refused.into_iter().map(|g| {
            let mut result = delete_groups_response::DeletableGroupResult::default();
            result.group_id = g;
            result.error_code = GROUP;
            result
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
        let access_all: Vec<String> = broker
            .topics()
            .all()
            .into_keys()
            .filter(|n| access.topic(Op::Describe, n))
            .collect();
        return Box::new(move |response| {
            response
                .topics
                .retain(|t| t.name.as_ref().is_some_and(|n| access_all.iter().any(|a| **a == ***n)))
        });
    };
    let auto_create = version < 4 || request.allow_auto_topic_creation;
    let may_create_any = auto_create && access.cluster(Op::Create);
    let name = |t: &metadata_request::MetadataRequestTopic| t.name.as_ref().map(|n| n.to_string()).unwrap_or_default();
    let refused = take_refused(topics, name, |n| {
        access.topic(Op::Describe, n)
            && (!auto_create || may_create_any || broker.topics().exists(n) || access.topic(Op::Create, n))
    });
    Box::new(move |response| {
        response.topics.extend(refused.into_iter().map(|t| {
            let mut topic = metadata_response::MetadataResponseTopic::default();
            topic.name = t.name;
            topic.topic_id = t.topic_id;
            topic.error_code = TOPIC;
            topic
        }))
    })
}
