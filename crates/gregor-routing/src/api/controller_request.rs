//! What the controller's requests (LeaderAndIsr, UpdateMetadata,
//! StopReplica) share: the controller epoch check and partition records.

use gregor_broker::errors::replication_error;
use gregor_broker::{Broker, ReplicaManager};
use gregor_replication::{LeaderAndIsr, PartitionRecord};
use kafka_protocol::error::ResponseError;
use kafka_protocol_zk::messages::BrokerId;

/// The replica manager, if the request's controller epoch is current
/// (`STALE_CONTROLLER_EPOCH` otherwise).
pub(super) fn checked_controller(broker: &Broker, controller_epoch: i32) -> Result<&ReplicaManager, ResponseError> {
    let replicas = broker.replicas();
    replicas
        .check_controller_epoch(controller_epoch)
        .map_err(replication_error)?;
    Ok(replicas)
}

/// A partition index from the wire, if it is one.
pub(super) fn partition_index(p: i32) -> Option<u32> {
    u32::try_from(p).ok()
}

/// A partition's record from the fields both controller requests carry.
pub(super) fn record(
    replicas: &[BrokerId],
    leader: BrokerId,
    leader_epoch: i32,
    isr: &[BrokerId],
    controller_epoch: i32,
    version: i32,
) -> PartitionRecord {
    PartitionRecord {
        replicas: replicas.iter().map(|b| b.0).collect(),
        state: LeaderAndIsr {
            leader: leader.0,
            leader_epoch,
            isr: isr.iter().map(|b| b.0).collect(),
            controller_epoch,
        },
        version,
    }
}
