//! FindCoordinator: this broker coordinates every group (the leader of the
//! group's `__consumer_offsets` partition, which on one broker is itself).
//! Transactions are not supported: their coordinator is not available.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::StrBytes;

use super::str_bytes;
use crate::broker::Broker;

const GROUP: i8 = 0;

fn answer(broker: &Broker, key: &StrBytes, key_type: i8) -> Coordinator {
    let mut c = Coordinator::default();
    c.key = key.clone();
    let error = if key_type != GROUP {
        Some(ResponseError::CoordinatorNotAvailable)
    } else if let Err(e) = broker.ensure_offsets_topic() {
        tracing::warn!("no offsets topic: {e}");
        Some(ResponseError::CoordinatorNotAvailable)
    } else {
        None
    };
    match error {
        Some(e) => {
            c.error_code = e.code();
            c.node_id = BrokerId(-1);
            c.port = -1;
        }
        None => {
            let config = broker.config();
            c.node_id = BrokerId(config.node_id);
            c.host = str_bytes(&config.advertised_host);
            c.port = i32::from(config.advertised_port);
        }
    }
    c
}

/// Answers a FindCoordinator request (one key before v4, a list from v4).
pub fn handle(broker: &Broker, request: FindCoordinatorRequest, version: i16) -> FindCoordinatorResponse {
    let mut response = FindCoordinatorResponse::default();
    if version >= 4 {
        response.coordinators = request
            .coordinator_keys
            .iter()
            .map(|k| answer(broker, k, request.key_type))
            .collect();
    } else {
        let c = answer(broker, &request.key, request.key_type);
        response.error_code = c.error_code;
        response.node_id = c.node_id;
        response.host = c.host;
        response.port = c.port;
    }
    response
}
