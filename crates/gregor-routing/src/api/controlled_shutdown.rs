//! ControlledShutdown: a broker about to stop asks the controller to move
//! its leaderships to other in-sync replicas and take it out of ISRs
//! first; the answer lists the partitions it still leads (the broker
//! retries, then stops anyway). Only the controller serves it; another
//! broker answers NOT_CONTROLLER.

use std::future::Future;

use gregor_broker::Broker;
use kafka_protocol::error::ResponseError;
use kafka_protocol_zk::messages::controlled_shutdown_response::RemainingPartition;
use kafka_protocol_zk::messages::{ControlledShutdownRequest, ControlledShutdownResponse, TopicName};
use kafka_protocol_zk::protocol::StrBytes;

/// Hands the request to the controller running here; resolves with its
/// answer.
pub fn handle(broker: &Broker, request: ControlledShutdownRequest) -> impl Future<Output = ControlledShutdownResponse> {
    let answer = broker
        .controller_inbox()
        .controlled_shutdown(request.broker_id.0, request.broker_epoch);
    async move {
        let mut response = ControlledShutdownResponse::default();
        match answer.await {
            Ok(Ok(remaining)) => {
                response.remaining_partitions = remaining
                    .into_iter()
                    .map(|tp| {
                        let mut p = RemainingPartition::default();
                        p.topic_name = TopicName(StrBytes::from_string(tp.topic));
                        p.partition_index = i32::try_from(tp.partition).unwrap_or(i32::MAX);
                        p
                    })
                    .collect();
            }
            Ok(Err(e)) => response.error_code = e.code(),
            // The controller lost the office while working on it.
            Err(_) => response.error_code = ResponseError::NotController.code(),
        }
        response
    }
}
