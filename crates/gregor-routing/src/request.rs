//! Decoding a request frame: header, API, version check, typed body. Kept
//! apart from handling so that every byte from the network goes through
//! one function (the fuzz target calls it directly).

use std::sync::Arc;

use bytes::Bytes;
use gregor_auth::Session;
use kafka_protocol::messages::{
    AddOffsetsToTxnRequest, AddPartitionsToTxnRequest, AlterClientQuotasRequest, AlterConfigsRequest,
    AlterPartitionReassignmentsRequest, ApiKey, ApiVersionsRequest, ConsumerGroupDescribeRequest,
    ConsumerGroupHeartbeatRequest, CreatePartitionsRequest, CreateTopicsRequest, DeleteGroupsRequest,
    DeleteRecordsRequest, DeleteTopicsRequest, DescribeClientQuotasRequest, DescribeClusterRequest,
    DescribeConfigsRequest, DescribeGroupsRequest, DescribeLogDirsRequest, DescribeProducersRequest,
    DescribeTransactionsRequest, ElectLeadersRequest, EndTxnRequest, FetchRequest, FindCoordinatorRequest,
    HeartbeatRequest, IncrementalAlterConfigsRequest, InitProducerIdRequest, JoinGroupRequest, LeaveGroupRequest,
    ListGroupsRequest, ListOffsetsRequest, ListPartitionReassignmentsRequest, ListTransactionsRequest, MetadataRequest,
    OffsetCommitRequest, OffsetDeleteRequest, OffsetFetchRequest, OffsetForLeaderEpochRequest, ProduceRequest,
    RequestHeader, SyncGroupRequest, TxnOffsetCommitRequest, WriteTxnMarkersRequest,
};
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, DescribeUserScramCredentialsRequest, SaslAuthenticateRequest,
    SaslHandshakeRequest,
};
use kafka_protocol::messages::{CreateAclsRequest, DeleteAclsRequest, DescribeAclsRequest};
use kafka_protocol::protocol::Decodable;
use kafka_protocol_zk::messages as zk;
use kafka_protocol_zk::protocol::{Decodable as ZkDecodable, HeaderVersion as ZkHeaderVersion};

use crate::versions::supported;

/// A decoded request of an API this broker implements.
#[derive(Debug)]
pub enum Request {
    /// ApiVersions.
    ApiVersions(ApiVersionsRequest),
    /// Metadata.
    Metadata(MetadataRequest),
    /// Produce.
    Produce(ProduceRequest),
    /// Fetch.
    Fetch(FetchRequest),
    /// ListOffsets.
    ListOffsets(ListOffsetsRequest),
    /// CreateTopics.
    CreateTopics(CreateTopicsRequest),
    /// DeleteTopics.
    DeleteTopics(DeleteTopicsRequest),
    /// InitProducerId.
    InitProducerId(InitProducerIdRequest),
    /// DescribeConfigs.
    DescribeConfigs(DescribeConfigsRequest),
    /// CreatePartitions.
    CreatePartitions(CreatePartitionsRequest),
    /// FindCoordinator.
    FindCoordinator(FindCoordinatorRequest),
    /// JoinGroup.
    JoinGroup(JoinGroupRequest),
    /// SyncGroup.
    SyncGroup(SyncGroupRequest),
    /// Heartbeat.
    Heartbeat(HeartbeatRequest),
    /// LeaveGroup.
    LeaveGroup(LeaveGroupRequest),
    /// OffsetCommit.
    OffsetCommit(OffsetCommitRequest),
    /// OffsetFetch.
    OffsetFetch(OffsetFetchRequest),
    /// DescribeGroups.
    DescribeGroups(DescribeGroupsRequest),
    /// ListGroups.
    ListGroups(ListGroupsRequest),
    /// ConsumerGroupHeartbeat (KIP-848).
    ConsumerGroupHeartbeat(ConsumerGroupHeartbeatRequest),
    /// ConsumerGroupDescribe (KIP-848).
    ConsumerGroupDescribe(ConsumerGroupDescribeRequest),
    /// DeleteGroups.
    DeleteGroups(DeleteGroupsRequest),
    /// DeleteRecords.
    DeleteRecords(DeleteRecordsRequest),
    /// OffsetForLeaderEpoch (followers truncating, consumers validating).
    OffsetForLeaderEpoch(OffsetForLeaderEpochRequest),
    /// IncrementalAlterConfigs.
    IncrementalAlterConfigs(IncrementalAlterConfigsRequest),
    /// AddPartitionsToTxn (from producers, v0–3).
    AddPartitionsToTxn(AddPartitionsToTxnRequest),
    /// AddOffsetsToTxn.
    AddOffsetsToTxn(AddOffsetsToTxnRequest),
    /// EndTxn.
    EndTxn(EndTxnRequest),
    /// DescribeTransactions.
    DescribeTransactions(DescribeTransactionsRequest),
    /// ListTransactions.
    ListTransactions(ListTransactionsRequest),
    /// WriteTxnMarkers, from a transaction coordinator.
    WriteTxnMarkers(WriteTxnMarkersRequest),
    /// DescribeProducers.
    DescribeProducers(DescribeProducersRequest),
    /// TxnOffsetCommit.
    TxnOffsetCommit(TxnOffsetCommitRequest),
    /// DescribeCluster.
    DescribeCluster(DescribeClusterRequest),
    /// DescribeLogDirs.
    DescribeLogDirs(DescribeLogDirsRequest),
    /// AlterConfigs (the legacy, replace-all form).
    AlterConfigs(AlterConfigsRequest),
    /// OffsetDelete.
    OffsetDelete(OffsetDeleteRequest),
    /// AlterPartitionReassignments, to the controller.
    AlterPartitionReassignments(AlterPartitionReassignmentsRequest),
    /// ListPartitionReassignments, to the controller.
    ListPartitionReassignments(ListPartitionReassignmentsRequest),
    /// ElectLeaders, to the controller.
    ElectLeaders(ElectLeadersRequest),
    /// DescribeClientQuotas.
    DescribeClientQuotas(DescribeClientQuotasRequest),
    /// AlterClientQuotas.
    AlterClientQuotas(AlterClientQuotasRequest),
    /// CreateAcls.
    CreateAcls(CreateAclsRequest),
    /// DeleteAcls.
    DeleteAcls(DeleteAclsRequest),
    /// DescribeAcls.
    DescribeAcls(DescribeAclsRequest),
    /// SaslHandshake: the mechanism a SASL listener's client picks.
    SaslHandshake(SaslHandshakeRequest),
    /// SaslAuthenticate: one token of the SASL exchange.
    SaslAuthenticate(SaslAuthenticateRequest),
    /// DescribeUserScramCredentials (KIP-554).
    DescribeUserScramCredentials(DescribeUserScramCredentialsRequest),
    /// AlterUserScramCredentials (KIP-554).
    AlterUserScramCredentials(AlterUserScramCredentialsRequest),
    /// LeaderAndIsr, from the controller.
    LeaderAndIsr(zk::LeaderAndIsrRequest),
    /// UpdateMetadata, from the controller.
    UpdateMetadata(zk::UpdateMetadataRequest),
    /// StopReplica, from the controller.
    StopReplica(zk::StopReplicaRequest),
    /// ControlledShutdown, from a broker stopping, to the controller.
    ControlledShutdown(zk::ControlledShutdownRequest),
    /// An ApiVersions request of a version above ours: answered at v0 with
    /// UNSUPPORTED_VERSION, as Kafka does, so the client can downgrade.
    ApiVersionsTooNew,
}

/// A request with its header.
#[derive(Debug)]
pub struct Frame {
    /// The API key.
    pub api_key: i16,
    /// The request header (correlation id, version, client id).
    pub header: RequestHeader,
    /// The response header's version for this request.
    pub response_header_version: i16,
    /// The typed request.
    pub request: Request,
    /// Who sent it: the connection's principal, address and listener; set
    /// by the connection that read the frame (anonymous until then).
    pub session: Arc<Session>,
    /// The request's size in bytes (after its length prefix), which
    /// produce quotas count; set by the connection that read it.
    pub size: usize,
}

/// The controller's APIs, which the current codec no longer carries:
/// (key, lowest and highest version accepted).
pub const CONTROLLER_APIS: [(i16, i16, i16); 4] = [
    (LEADER_AND_ISR, 4, 4),
    (STOP_REPLICA, 3, 3),
    (UPDATE_METADATA, 6, 6),
    (CONTROLLED_SHUTDOWN, 0, 3),
];
/// LeaderAndIsr's API key.
pub const LEADER_AND_ISR: i16 = 4;
/// StopReplica's API key.
pub const STOP_REPLICA: i16 = 5;
/// UpdateMetadata's API key.
pub const UPDATE_METADATA: i16 = 6;
/// ControlledShutdown's API key.
pub const CONTROLLED_SHUTDOWN: i16 = 7;

fn decode_controller_request(api_key: i16, version: i16, mut body: Bytes) -> Result<Frame, String> {
    let (_, min, max) = CONTROLLER_APIS
        .iter()
        .find(|(k, _, _)| *k == api_key)
        .copied()
        .ok_or_else(|| format!("unknown API key {api_key}"))?;
    if version < min || version > max {
        return Err(format!("controller API {api_key} v{version} is not supported"));
    }
    fn typed<T: ZkDecodable>(body: &mut Bytes, version: i16) -> Result<T, String> {
        T::decode(body, version).map_err(|e| format!("malformed controller request v{version}: {e}"))
    }
    let (request_header, response_header) = match api_key {
        LEADER_AND_ISR => (
            zk::LeaderAndIsrRequest::header_version(version),
            zk::LeaderAndIsrResponse::header_version(version),
        ),
        STOP_REPLICA => (
            zk::StopReplicaRequest::header_version(version),
            zk::StopReplicaResponse::header_version(version),
        ),
        CONTROLLED_SHUTDOWN => (
            zk::ControlledShutdownRequest::header_version(version),
            zk::ControlledShutdownResponse::header_version(version),
        ),
        _ => (
            zk::UpdateMetadataRequest::header_version(version),
            zk::UpdateMetadataResponse::header_version(version),
        ),
    };
    let header = RequestHeader::decode(&mut body, request_header).map_err(|e| format!("bad header: {e}"))?;
    let b = &mut body;
    let request = match api_key {
        LEADER_AND_ISR => Request::LeaderAndIsr(typed(b, version)?),
        STOP_REPLICA => Request::StopReplica(typed(b, version)?),
        CONTROLLED_SHUTDOWN => Request::ControlledShutdown(typed(b, version)?),
        _ => Request::UpdateMetadata(typed(b, version)?),
    };
    Ok(Frame {
        api_key,
        header,
        response_header_version: response_header,
        request,
        session: Arc::default(),
        size: 0,
    })
}

/// Decodes one request (the bytes after the size prefix). An error means
/// the connection must be closed: unknown API, unsupported version,
/// malformed bytes.
pub fn decode_frame(mut body: Bytes) -> Result<Frame, String> {
    if body.len() < 4 {
        return Err(format!("a request of {} bytes", body.len()));
    }
    let api_key = i16::from_be_bytes([body[0], body[1]]);
    let version = i16::from_be_bytes([body[2], body[3]]);
    if CONTROLLER_APIS.iter().any(|(k, _, _)| *k == api_key) {
        return decode_controller_request(api_key, version, body);
    }
    let key = ApiKey::try_from(api_key).map_err(|_| format!("unknown API key {api_key}"))?;
    let (min, max) = supported(key).ok_or_else(|| format!("unsupported API {key:?}"))?;
    if key == ApiKey::ApiVersions && version > max {
        // Only the header's first fields are readable in an unknown version.
        let header = RequestHeader::decode(&mut body, 1).map_err(|e| format!("bad header: {e}"))?;
        return Ok(Frame {
            api_key,
            header,
            response_header_version: 0,
            request: Request::ApiVersionsTooNew,
            session: Arc::default(),
            size: 0,
        });
    }
    if version < min || version > max {
        return Err(format!("{key:?} v{version} is not supported"));
    }
    let header = RequestHeader::decode(&mut body, key.request_header_version(version))
        .map_err(|e| format!("bad header: {e}"))?;
    fn typed<T: Decodable>(body: &mut Bytes, key: ApiKey, version: i16) -> Result<T, String> {
        T::decode(body, version).map_err(|e| format!("malformed {key:?} v{version} request: {e}"))
    }
    let b = &mut body;
    let request = match key {
        ApiKey::ApiVersions => Request::ApiVersions(typed(b, key, version)?),
        ApiKey::Metadata => Request::Metadata(typed(b, key, version)?),
        ApiKey::Produce => Request::Produce(typed(b, key, version)?),
        ApiKey::Fetch => Request::Fetch(typed(b, key, version)?),
        ApiKey::ListOffsets => Request::ListOffsets(typed(b, key, version)?),
        ApiKey::CreateTopics => Request::CreateTopics(typed(b, key, version)?),
        ApiKey::DeleteTopics => Request::DeleteTopics(typed(b, key, version)?),
        ApiKey::InitProducerId => Request::InitProducerId(typed(b, key, version)?),
        ApiKey::DescribeConfigs => Request::DescribeConfigs(typed(b, key, version)?),
        ApiKey::CreatePartitions => Request::CreatePartitions(typed(b, key, version)?),
        ApiKey::FindCoordinator => Request::FindCoordinator(typed(b, key, version)?),
        ApiKey::JoinGroup => Request::JoinGroup(typed(b, key, version)?),
        ApiKey::SyncGroup => Request::SyncGroup(typed(b, key, version)?),
        ApiKey::Heartbeat => Request::Heartbeat(typed(b, key, version)?),
        ApiKey::LeaveGroup => Request::LeaveGroup(typed(b, key, version)?),
        ApiKey::OffsetCommit => Request::OffsetCommit(typed(b, key, version)?),
        ApiKey::OffsetFetch => Request::OffsetFetch(typed(b, key, version)?),
        ApiKey::DescribeGroups => Request::DescribeGroups(typed(b, key, version)?),
        ApiKey::ListGroups => Request::ListGroups(typed(b, key, version)?),
        ApiKey::ConsumerGroupHeartbeat => Request::ConsumerGroupHeartbeat(typed(b, key, version)?),
        ApiKey::ConsumerGroupDescribe => Request::ConsumerGroupDescribe(typed(b, key, version)?),
        ApiKey::DeleteGroups => Request::DeleteGroups(typed(b, key, version)?),
        ApiKey::DeleteRecords => Request::DeleteRecords(typed(b, key, version)?),
        ApiKey::OffsetForLeaderEpoch => Request::OffsetForLeaderEpoch(typed(b, key, version)?),
        ApiKey::IncrementalAlterConfigs => Request::IncrementalAlterConfigs(typed(b, key, version)?),
        ApiKey::AddPartitionsToTxn => Request::AddPartitionsToTxn(typed(b, key, version)?),
        ApiKey::AddOffsetsToTxn => Request::AddOffsetsToTxn(typed(b, key, version)?),
        ApiKey::EndTxn => Request::EndTxn(typed(b, key, version)?),
        ApiKey::DescribeTransactions => Request::DescribeTransactions(typed(b, key, version)?),
        ApiKey::ListTransactions => Request::ListTransactions(typed(b, key, version)?),
        ApiKey::WriteTxnMarkers => Request::WriteTxnMarkers(typed(b, key, version)?),
        ApiKey::DescribeProducers => Request::DescribeProducers(typed(b, key, version)?),
        ApiKey::TxnOffsetCommit => Request::TxnOffsetCommit(typed(b, key, version)?),
        ApiKey::DescribeCluster => Request::DescribeCluster(typed(b, key, version)?),
        ApiKey::DescribeLogDirs => Request::DescribeLogDirs(typed(b, key, version)?),
        ApiKey::AlterConfigs => Request::AlterConfigs(typed(b, key, version)?),
        ApiKey::OffsetDelete => Request::OffsetDelete(typed(b, key, version)?),
        ApiKey::AlterPartitionReassignments => Request::AlterPartitionReassignments(typed(b, key, version)?),
        ApiKey::ListPartitionReassignments => Request::ListPartitionReassignments(typed(b, key, version)?),
        ApiKey::ElectLeaders => Request::ElectLeaders(typed(b, key, version)?),
        ApiKey::DescribeClientQuotas => Request::DescribeClientQuotas(typed(b, key, version)?),
        ApiKey::AlterClientQuotas => Request::AlterClientQuotas(typed(b, key, version)?),
        ApiKey::CreateAcls => Request::CreateAcls(typed(b, key, version)?),
        ApiKey::DeleteAcls => Request::DeleteAcls(typed(b, key, version)?),
        ApiKey::DescribeAcls => Request::DescribeAcls(typed(b, key, version)?),
        ApiKey::SaslHandshake => Request::SaslHandshake(typed(b, key, version)?),
        ApiKey::SaslAuthenticate => Request::SaslAuthenticate(typed(b, key, version)?),
        ApiKey::DescribeUserScramCredentials => Request::DescribeUserScramCredentials(typed(b, key, version)?),
        ApiKey::AlterUserScramCredentials => Request::AlterUserScramCredentials(typed(b, key, version)?),
        other => return Err(format!("unsupported API {other:?}")),
    };
    Ok(Frame {
        api_key,
        header,
        response_header_version: key.response_header_version(version),
        request,
        session: Arc::default(),
        size: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn garbage_and_unknown_apis_are_refused() {
        assert!(decode_frame(Bytes::from_static(b"\x00")).is_err());
        assert!(
            decode_frame(Bytes::from_static(b"\x03\xe7\x00\x00\x00\x00\x00\x01\xff\xff"))
                .unwrap_err()
                .contains("unknown API")
        );
        // Metadata v99.
        assert!(decode_frame(Bytes::from_static(b"\x00\x03\x00\x63\x00\x00\x00\x01\xff\xff")).is_err());
    }

    #[test]
    fn a_too_new_api_versions_request_is_answered_not_refused() {
        // ApiVersions v9, correlation id 7, null client id, then anything.
        let frame = decode_frame(Bytes::from_static(b"\x00\x12\x00\x09\x00\x00\x00\x07\xff\xff\x00")).unwrap();
        assert_eq!(frame.header.correlation_id, 7);
        assert!(matches!(frame.request, Request::ApiVersionsTooNew));
    }

    proptest! {
        #[test]
        fn arbitrary_frames_never_panic(key in 0i16..80, version in -1i16..20, rest in proptest::collection::vec(any::<u8>(), 0..200)) {
            let mut bytes = key.to_be_bytes().to_vec();
            bytes.extend_from_slice(&version.to_be_bytes());
            bytes.extend_from_slice(&rest);
            let _ = decode_frame(Bytes::from(bytes));
        }
    }
}
