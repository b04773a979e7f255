//! Whole requests a principal may not make, answered with the API's error
//! response as Kafka's `KafkaApis` answers them.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::alter_client_quotas_response::EntryData;
use kafka_protocol::messages::elect_leaders_response::{PartitionResult, ReplicaElectionResult};
use kafka_protocol::messages::write_txn_markers_response::{
    WritableTxnMarkerPartitionResult, WritableTxnMarkerResult, WritableTxnMarkerTopicResult,
};
use kafka_protocol::messages::*;
use kafka_protocol_zk::messages as zk;

use super::Access;
use crate::api::{offset_commit, txn_offset_commit};
use crate::outcome::{respond, respond_zk, Outcome};
use crate::request::Request;
use gregor_auth::acl::{AclOperation as Op, ResourceType};

const CLUSTER: i16 = 31; // CLUSTER_AUTHORIZATION_FAILED
const GROUP: i16 = 30; // GROUP_AUTHORIZATION_FAILED
const TXN_ID: i16 = 53; // TRANSACTIONAL_ID_AUTHORIZATION_FAILED

/// The answer refusing `request`, when its session may not make it.
pub fn refuse(access: &Access, request: &Request, version: i16) -> Option<Outcome> {
    if !access.enabled() {
        return None;
    }
    let cluster_action = || access.cluster(Op::ClusterAction);
    match request {
        // The controller's and the replicas' APIs.
        Request::LeaderAndIsr(_) if !cluster_action() => Some(respond_zk(
            zk::LeaderAndIsrResponse::default().with_error_code(CLUSTER),
            version,
        )),
        Request::UpdateMetadata(_) if !cluster_action() => Some(respond_zk(
            zk::UpdateMetadataResponse::default().with_error_code(CLUSTER),
            version,
        )),
        Request::StopReplica(_) if !cluster_action() => Some(respond_zk(
            zk::StopReplicaResponse::default().with_error_code(CLUSTER),
            version,
        )),
        Request::ControlledShutdown(_) if !cluster_action() => Some(respond_zk(
            zk::ControlledShutdownResponse::default().with_error_code(CLUSTER),
            version,
        )),
        Request::WriteTxnMarkers(r) if !access.cluster(Op::Alter) && !cluster_action() => {
            let partition = |&p: &i32| {
                WritableTxnMarkerPartitionResult::default()
                    .with_partition_index(p)
                    .with_error_code(CLUSTER)
            };
            let topic = |t: &write_txn_markers_request::WritableTxnMarkerTopic| {
                WritableTxnMarkerTopicResult::default()
                    .with_name(t.name.clone())
                    .with_partitions(t.partition_indexes.iter().map(partition).collect())
            };
            let marker = |m: &write_txn_markers_request::WritableTxnMarker| {
                WritableTxnMarkerResult::default()
                    .with_producer_id(m.producer_id)
                    .with_topics(m.topics.iter().map(topic).collect())
            };
            let markers = r.markers.iter().map(marker).collect();
            Some(respond(
                WriteTxnMarkersResponse::default().with_markers(markers),
                version,
            ))
        }
        // Groups: Read on the group.
        Request::ConsumerGroupHeartbeat(r) if !access.group(Op::Read, &r.group_id) => {
            let response = ConsumerGroupHeartbeatResponse::default().with_error_code(GROUP);
            Some(respond(response, version))
        }
        Request::JoinGroup(r) if !access.group(Op::Read, &r.group_id) => {
            let mut response = JoinGroupResponse::default();
            response.error_code = GROUP;
            response.generation_id = -1;
            Some(respond(response, version))
        }
        Request::SyncGroup(r) if !access.group(Op::Read, &r.group_id) => {
            Some(respond(SyncGroupResponse::default().with_error_code(GROUP), version))
        }
        Request::Heartbeat(r) if !access.group(Op::Read, &r.group_id) => {
            Some(respond(HeartbeatResponse::default().with_error_code(GROUP), version))
        }
        Request::LeaveGroup(r) if !access.group(Op::Read, &r.group_id) => {
            Some(respond(LeaveGroupResponse::default().with_error_code(GROUP), version))
        }
        Request::OffsetCommit(r) if !access.group(Op::Read, &r.group_id) => {
            Some(respond(offset_commit::answer(r, |_, _| GROUP), version))
        }
        Request::OffsetDelete(r) if !access.group(Op::Delete, &r.group_id) => {
            Some(respond(OffsetDeleteResponse::default().with_error_code(GROUP), version))
        }
        // Transactions: Write on the transactional id (and Read on the group).
        Request::InitProducerId(r) => {
            let error = match &r.transactional_id {
                Some(id) if !access.transactional_id(Op::Write, id) => TXN_ID,
                Some(_) => return None,
                None if !access.cluster(Op::IdempotentWrite) && !access.any_of(Op::Write, ResourceType::Topic) => {
                    CLUSTER
                }
                None => return None,
            };
            let mut response = InitProducerIdResponse::default();
            response.error_code = error;
            response.producer_id = (-1).into();
            response.producer_epoch = -1;
            Some(respond(response, version))
        }
        Request::EndTxn(r) if !access.transactional_id(Op::Write, &r.transactional_id) => {
            let mut response = EndTxnResponse::default();
            response.error_code = TXN_ID;
            response.producer_id = (-1).into();
            response.producer_epoch = -1;
            Some(respond(response, version))
        }
        Request::AddOffsetsToTxn(r) => {
            let error = if !access.transactional_id(Op::Write, &r.transactional_id) {
                TXN_ID
            } else if !access.group(Op::Read, &r.group_id) {
                GROUP
            } else {
                return None;
            };
            Some(respond(
                AddOffsetsToTxnResponse::default().with_error_code(error),
                version,
            ))
        }
        Request::TxnOffsetCommit(r) => {
            let error = if !access.transactional_id(Op::Write, &r.transactional_id) {
                TXN_ID
            } else if !access.group(Op::Read, &r.group_id) {
                GROUP
            } else {
                return None;
            };
            Some(respond(txn_offset_commit::answer(r, |_, _| error), version))
        }
        Request::AddPartitionsToTxn(r) => {
            if version >= 4 {
                if cluster_action() {
                    return None;
                }
                let mut response = AddPartitionsToTxnResponse::default();
                response.error_code = CLUSTER;
                return Some(respond(response, version));
            }
            if access.transactional_id(Op::Write, &r.v3_and_below_transactional_id) {
                let refused = r
                    .v3_and_below_topics
                    .iter()
                    .any(|t| !crate::api::is_internal_topic(&t.name) && !access.topic(Op::Write, &t.name));
                if !refused {
                    return None;
                }
            }
            // As Kafka: the refused topics TOPIC_AUTHORIZATION_FAILED, the
            // others OPERATION_NOT_ATTEMPTED (or every partition
            // TRANSACTIONAL_ID_AUTHORIZATION_FAILED).
            let txn_refused = !access.transactional_id(Op::Write, &r.v3_and_below_transactional_id);
            let mut response = AddPartitionsToTxnResponse::default();
            response.results_by_topic_v3_and_below = r
                .v3_and_below_topics
                .iter()
                .map(|t| {
                    let code = if txn_refused {
                        TXN_ID
                    } else if !crate::api::is_internal_topic(&t.name) && !access.topic(Op::Write, &t.name) {
                        ResponseError::TopicAuthorizationFailed.code()
                    } else {
                        ResponseError::OperationNotAttempted.code()
                    };
                    let partitions = t.partitions.iter().map(|&p| {
                        AddPartitionsToTxnPartitionResult::default()
                            .with_partition_index(p)
                            .with_partition_error_code(code)
                    });
                    AddPartitionsToTxnTopicResult::default()
                        .with_name(t.name.clone())
                        .with_results_by_partition(partitions.collect())
                })
                .collect();
            Some(respond(response, version))
        }
        Request::Produce(r) => match &r.transactional_id {
            Some(id) if !access.transactional_id(Op::Write, id) => {
                let response =
                    ProduceResponse::default().with_responses(super::topics::produce_errors(&r.topic_data, TXN_ID));
                Some(respond(response, version))
            }
            _ => None,
        },
        // The cluster's administration.
        Request::ElectLeaders(r) if !access.cluster(Op::Alter) => {
            let partition = |&p: &i32| PartitionResult::default().with_partition_id(p).with_error_code(CLUSTER);
            let results = r.topic_partitions.iter().flatten().map(|t| {
                ReplicaElectionResult::default()
                    .with_topic(t.topic.clone())
                    .with_partition_result(t.partitions.iter().map(partition).collect())
            });
            let response = ElectLeadersResponse::default()
                .with_error_code(CLUSTER)
                .with_replica_election_results(results.collect());
            Some(respond(response, version))
        }
        Request::AlterPartitionReassignments(_) if !access.cluster(Op::Alter) => Some(respond(
            AlterPartitionReassignmentsResponse::default().with_error_code(CLUSTER),
            version,
        )),
        Request::ListPartitionReassignments(_) if !access.cluster(Op::Describe) => Some(respond(
            ListPartitionReassignmentsResponse::default().with_error_code(CLUSTER),
            version,
        )),
        Request::DescribeLogDirs(_) if !access.cluster(Op::Describe) => Some(respond(
            DescribeLogDirsResponse::default().with_error_code(CLUSTER),
            version,
        )),
        Request::DescribeClientQuotas(_) if !access.cluster(Op::DescribeConfigs) => Some(respond(
            DescribeClientQuotasResponse::default().with_error_code(CLUSTER),
            version,
        )),
        Request::AlterClientQuotas(r) if !access.cluster(Op::AlterConfigs) => {
            let entity = |d: &alter_client_quotas_request::EntityData| {
                alter_client_quotas_response::EntityData::default()
                    .with_entity_type(d.entity_type.clone())
                    .with_entity_name(d.entity_name.clone())
            };
            let entries = r.entries.iter().map(|e| {
                EntryData::default()
                    .with_error_code(CLUSTER)
                    .with_entity(e.entity.iter().map(entity).collect())
            });
            let response = AlterClientQuotasResponse::default().with_entries(entries.collect());
            Some(respond(response, version))
        }
        _ => None,
    }
}
