//! The `authorized_operations` bit sets some answers carry when the
//! client asks for them (Kafka 3.9's `AuthHelper.authorizedOperations`):
//! every operation `AclEntry.supportedOperations` lists for the resource's
//! type that the session may do on it, a bit per `AclOperation` code. Not
//! asked: the schema's default, `i32::MIN`. Without an authorizer every
//! supported operation is allowed.

use kafka_protocol::messages::{
    ConsumerGroupDescribeResponse, DescribeClusterResponse, DescribeGroupsResponse, MetadataResponse,
};

use super::Access;
use gregor_auth::acl::{operations_bit_set, AclOperation, ResourceType, CLUSTER_NAME};

/// Kafka's `authorizedOperations(request, resource)`: the bit set of the
/// operations on `name` of `resource_type` the session may do.
pub fn authorized_operations(access: &Access, resource_type: ResourceType, name: &str) -> i32 {
    operations_bit_set(
        resource_type
            .supported_operations()
            .iter()
            .copied()
            .filter(|op| access.allowed(*op, resource_type, name)),
    )
}

/// The cluster's operations for a client that asked: 0 without Describe
/// on the cluster, as Kafka answers.
fn cluster_operations(access: &Access) -> i32 {
    if access.cluster(AclOperation::Describe) {
        authorized_operations(access, ResourceType::Cluster, CLUSTER_NAME)
    } else {
        0
    }
}

/// Metadata v8+: each topic's operations when `topics` was asked (the
/// topics the handler answered, which the principal may describe; the
/// refused ones, merged in after, keep the default), the cluster's in
/// v8–10 when `cluster` was.
pub fn metadata(access: &Access, response: &mut MetadataResponse, version: i16, topics: bool, cluster: bool) {
    if version < 8 {
        return;
    }
    if topics {
        for topic in &mut response.topics {
            if let Some(name) = &topic.name {
                topic.topic_authorized_operations = authorized_operations(access, ResourceType::Topic, name);
            }
        }
    }
    if cluster && version <= 10 {
        response.cluster_authorized_operations = cluster_operations(access);
    }
}

/// DescribeGroups v3+ with `include_authorized_operations`: each group
/// described without an error gets its operations.
pub fn describe_groups(access: &Access, response: &mut DescribeGroupsResponse, version: i16, asked: bool) {
    if version < 3 || !asked {
        return;
    }
    for group in response.groups.iter_mut().filter(|g| g.error_code == 0) {
        group.authorized_operations = authorized_operations(access, ResourceType::Group, &group.group_id);
    }
}

/// ConsumerGroupDescribe with `include_authorized_operations`: each group
/// described without an error gets its operations.
pub fn consumer_group_describe(access: &Access, response: &mut ConsumerGroupDescribeResponse, asked: bool) {
    if !asked {
        return;
    }
    for group in response.groups.iter_mut().filter(|g| g.error_code == 0) {
        group.authorized_operations = authorized_operations(access, ResourceType::Group, &group.group_id);
    }
}

/// DescribeCluster with `include_cluster_authorized_operations`.
pub fn describe_cluster(access: &Access, response: &mut DescribeClusterResponse, asked: bool) {
    if asked && response.error_code == 0 {
        response.cluster_authorized_operations = cluster_operations(access);
    }
}
