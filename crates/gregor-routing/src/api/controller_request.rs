//! What the controller's requests (LeaderAndIsr, UpdateMetadata,
//! StopReplica) share: the controller epoch check and partition records.

use gregor_broker::errors::replication_error;
use gregor_broker::{Broker, ReplicaManager};
use gregor_replication::{LeaderAndIsr, PartitionRecord};
use kafka_protocol::error::ResponseError;
use kafka_protocol_zk::messages::{BrokerId, LeaderAndIsrResponse, StopReplicaResponse, UpdateMetadataResponse};

/// A controller request's response, which carries one top-level error.
pub(super) trait ControllerResponse: Default {
    /// Sets the top-level error code.
    fn set_error_code(&mut self, code: i16);
}

impl ControllerResponse for LeaderAndIsrResponse {
    fn set_error_code(&mut self, code: i16) {
        self.error_code = code;
    }
}

impl ControllerResponse for UpdateMetadataResponse {
    fn set_error_code(&mut self, code: i16) {
        self.error_code = code;
    }
}

impl ControllerResponse for StopReplicaResponse {
    fn set_error_code(&mut self, code: i16) {
        self.error_code = code;
    }
}

/// The response to a request from the controller of `controller_epoch`
/// addressed to this broker's `broker_epoch`: `STALE_BROKER_EPOCH` when it
/// was meant for an earlier run of this broker, `STALE_CONTROLLER_EPOCH`
/// from an older controller, otherwise what `apply` makes of it on the
/// replica manager.
pub(super) fn answer<R: ControllerResponse>(
    broker: &Broker,
    controller_epoch: i32,
    broker_epoch: i64,
    apply: impl FnOnce(&ReplicaManager, &mut R),
) -> R {
    let mut response = R::default();
    let replicas = broker.replicas();
    if replicas.is_broker_epoch_stale(broker_epoch) {
        response.set_error_code(ResponseError::StaleBrokerEpoch.code());
        return response;
    }
    match replicas.check_controller_epoch(controller_epoch) {
        Ok(()) => apply(replicas, &mut response),
        Err(e) => response.set_error_code(replication_error(e).code()),
    }
    response
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
