//! The API keys and version ranges this broker implements: the one table
//! ApiVersions answers with and the decoder checks requests against.

use kafka_protocol::messages::ApiKey;

/// Every API this broker implements, with the versions it accepts.
pub const SUPPORTED: &[(ApiKey, i16, i16)] = &[
    // v12 is v11 on the wire; a transactional batch at v12+ adds its
    // partition to the transaction (transactions v2, KIP-890 part 2).
    (ApiKey::Produce, 3, 12),
    // From v12 the records length is a varint, which the zero-copy path
    // rewrites (splice.rs); v13 names topics by id, v15 the follower in
    // ReplicaState.
    (ApiKey::Fetch, 4, 17),
    (ApiKey::ListOffsets, 1, 9),
    (ApiKey::Metadata, 0, 12),
    (ApiKey::ApiVersions, 0, 4),
    (ApiKey::CreateTopics, 2, 7),
    (ApiKey::DeleteTopics, 1, 6),
    (ApiKey::InitProducerId, 0, 5),
    (ApiKey::DescribeConfigs, 1, 4),
    (ApiKey::CreatePartitions, 0, 3),
    (ApiKey::FindCoordinator, 0, 6),
    (ApiKey::JoinGroup, 0, 9),
    (ApiKey::SyncGroup, 0, 5),
    (ApiKey::Heartbeat, 0, 4),
    (ApiKey::LeaveGroup, 0, 5),
    (ApiKey::OffsetCommit, 2, 9),
    (ApiKey::OffsetFetch, 1, 9),
    (ApiKey::DescribeGroups, 0, 5),
    (ApiKey::ListGroups, 0, 5),
    // The consumer group protocol (KIP-848); v1 takes the client's own
    // member id (KIP-1082) and may subscribe by pattern.
    (ApiKey::ConsumerGroupHeartbeat, 0, 1),
    (ApiKey::ConsumerGroupDescribe, 0, 1),
    (ApiKey::DeleteGroups, 0, 2),
    (ApiKey::DeleteRecords, 0, 2),
    (ApiKey::OffsetForLeaderEpoch, 2, 4),
    (ApiKey::IncrementalAlterConfigs, 0, 1),
    // Transactions (KIP-98). AddPartitionsToTxn v4–5 are the brokers'
    // verification batches (KIP-890 part 1; clients keep to v0–3).
    // AddOffsetsToTxn and EndTxn v4 only add TRANSACTION_ABORTABLE; EndTxn
    // v5 is transactions v2 (the epoch bumps; the answer names the producer).
    (ApiKey::AddPartitionsToTxn, 0, 5),
    (ApiKey::AddOffsetsToTxn, 0, 4),
    (ApiKey::EndTxn, 0, 5),
    (ApiKey::DescribeTransactions, 0, 0),
    (ApiKey::ListTransactions, 0, 1),
    // v0 was dropped from the codec (and from Kafka 4.0, KIP-896):
    // advertised, it could not be decoded.
    (ApiKey::WriteTxnMarkers, 1, 1),
    (ApiKey::DescribeProducers, 0, 0),
    // v4 only adds TRANSACTION_ABORTABLE (KIP-890); v5 adds the offsets
    // partition to the transaction (transactions v2).
    (ApiKey::TxnOffsetCommit, 0, 5),
    // Admin (issue 19). DescribeCluster v2 (fenced brokers) is Kafka 4.0's;
    // DescribeLogDirs v0 is gone from the codec (KIP-896), v1 is the same.
    (ApiKey::DescribeCluster, 0, 1),
    (ApiKey::DescribeLogDirs, 1, 4),
    (ApiKey::AlterConfigs, 0, 2),
    (ApiKey::OffsetDelete, 0, 0),
    // To the controller. AlterPartitionReassignments v1 (KIP-860's
    // allow_replication_factor_change) is Kafka 4.0's.
    (ApiKey::AlterPartitionReassignments, 0, 0),
    (ApiKey::ListPartitionReassignments, 0, 0),
    (ApiKey::ElectLeaders, 0, 2),
    // Client quotas (issue 19).
    (ApiKey::DescribeClientQuotas, 0, 1),
    (ApiKey::AlterClientQuotas, 0, 1),
    // ACLs (issue 16). v0 is gone from the codec (KIP-896).
    (ApiKey::CreateAcls, 1, 3),
    (ApiKey::DeleteAcls, 1, 3),
    (ApiKey::DescribeAcls, 1, 3),
    // Authentication (issue 16): SASL on SASL listeners (answered by the
    // connection itself; ILLEGAL_SASL_STATE elsewhere), SCRAM credentials.
    (ApiKey::SaslHandshake, 0, 1),
    (ApiKey::SaslAuthenticate, 0, 2),
    (ApiKey::DescribeUserScramCredentials, 0, 0),
    (ApiKey::AlterUserScramCredentials, 0, 0),
];

/// The version range of `key`, if supported.
pub fn supported(key: ApiKey) -> Option<(i16, i16)> {
    SUPPORTED
        .iter()
        .find(|(k, _, _)| *k == key)
        .map(|(_, min, max)| (*min, *max))
}
