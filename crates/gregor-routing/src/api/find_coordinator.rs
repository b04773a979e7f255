//! FindCoordinator: a group's coordinator is the leader of the group's
//! `__consumer_offsets` partition, a transactional id's the leader of its
//! `__transaction_state` partition (each topic created on first use).
//! Share groups are not supported: their coordinator is not available.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::StrBytes;

use super::str_bytes;
use gregor_broker::Broker;

const GROUP: i8 = 0;
const TRANSACTION: i8 = 1;
const SHARE: i8 = 2;

fn answer(broker: &Broker, key: &StrBytes, key_type: i8, version: i16, listener: &str) -> Coordinator {
    let mut c = Coordinator::default();
    c.key = key.clone();
    let found = if key_type == SHARE && version < 6 {
        // Share groups exist from v6 (KIP-932); Kafka 3.9 refuses them before.
        Err(ResponseError::InvalidRequest)
    } else if key_type == GROUP {
        match broker.groups().offsets_topic().ensure() {
            Err(e) => {
                tracing::warn!("no offsets topic: {e}");
                Err(ResponseError::CoordinatorNotAvailable)
            }
            Ok(partitions) => {
                let p = gregor_group::records::partition_for(key.as_str(), partitions);
                leader_of(broker, gregor_group::OFFSETS_TOPIC, p, listener)
            }
        }
    } else if key_type == TRANSACTION {
        match broker.transactions().state_topic().ensure() {
            Err(e) => {
                tracing::warn!("no transaction state topic: {e}");
                Err(ResponseError::CoordinatorNotAvailable)
            }
            Ok(partitions) => {
                let p = gregor_transaction::partition_for(key.as_str(), partitions);
                leader_of(broker, gregor_transaction::TRANSACTION_STATE_TOPIC, p, listener)
            }
        }
    } else {
        Err(ResponseError::CoordinatorNotAvailable)
    };
    match found {
        Err(e) => {
            c.error_code = e.code();
            c.node_id = BrokerId(-1);
            c.port = -1;
        }
        Ok((id, host, port)) => {
            c.node_id = BrokerId(id);
            c.host = str_bytes(&host);
            c.port = i32::from(port);
        }
    }
    c
}

/// The leader of an internal topic's partition, with its endpoint on
/// `listener` (a leader without that listener is not available, as Kafka
/// answers).
fn leader_of(
    broker: &Broker,
    topic: &str,
    partition: i32,
    listener: &str,
) -> Result<(i32, String, u16), ResponseError> {
    let replicas = broker.replicas();
    let tp = gregor_log::TopicPartition::new(topic, partition.unsigned_abs());
    replicas
        .partition_record(&tp)
        .and_then(|r| {
            let endpoint = replicas.endpoint(r.state.leader)?;
            let (host, port) = endpoint.for_listener(listener)?;
            Some((r.state.leader, host.to_string(), port))
        })
        .ok_or(ResponseError::CoordinatorNotAvailable)
}

/// Answers a FindCoordinator request (one key before v4, a list from v4)
/// from a client connected through `listener`.
pub fn handle(
    broker: &Broker,
    request: FindCoordinatorRequest,
    version: i16,
    listener: &str,
) -> FindCoordinatorResponse {
    let mut response = FindCoordinatorResponse::default();
    if version >= 4 {
        response.coordinators = request
            .coordinator_keys
            .iter()
            .map(|k| answer(broker, k, request.key_type, version, listener))
            .collect();
    } else {
        let c = answer(broker, &request.key, request.key_type, version, listener);
        response.error_code = c.error_code;
        response.node_id = c.node_id;
        response.host = c.host;
        response.port = c.port;
    }
    response
}
