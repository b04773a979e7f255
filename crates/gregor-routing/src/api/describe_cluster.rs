//! DescribeCluster (KIP-700): the cluster id, the controller and the live
//! brokers (what the Admin client's `describeCluster` shows), from the
//! cluster view Metadata answers from too.
//!
//! As Kafka 3.9 (`AuthHelper.computeDescribeClusterResponse`): only the
//! broker endpoint type is served (v1 asking for controllers gets
//! MISMATCHED_ENDPOINT_TYPE, an unknown type UNSUPPORTED_ENDPOINT_TYPE; at
//! v0 both are INVALID_REQUEST); a controller id no live broker has is
//! answered as -1; without an authorizer every operation is allowed, and
//! the authorized operations are Kafka's "not asked" sentinel unless the
//! client asks for them.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};

use super::str_bytes;
use gregor_broker::Broker;

/// Kafka's EndpointType ids.
const BROKER_ENDPOINT: i8 = 1;
const CONTROLLER_ENDPOINT: i8 = 2;

/// Answers a DescribeCluster request from a client connected through
/// `listener` (brokers given with their endpoints of that listener).
pub fn handle(
    broker: &Broker,
    request: DescribeClusterRequest,
    version: i16,
    listener: &str,
) -> DescribeClusterResponse {
    let mut response = DescribeClusterResponse::default();
    if request.endpoint_type != BROKER_ENDPOINT {
        let (error, message) = match request.endpoint_type {
            CONTROLLER_ENDPOINT => (
                ResponseError::MismatchedEndpointType,
                "The request was sent to an endpoint of type BROKER, but we wanted an endpoint of type CONTROLLER"
                    .to_string(),
            ),
            other => (
                ResponseError::UnsupportedEndpointType,
                format!("Unsupported endpoint type {other}"),
            ),
        };
        let error = if version == 0 {
            ResponseError::InvalidRequest
        } else {
            error
        };
        response.error_code = error.code();
        response.error_message = Some(str_bytes(&message));
        return response;
    }
    let config = broker.config();
    let view = broker.replicas().view();
    response.cluster_id = str_bytes(&config.cluster_id);
    response.brokers = if view.brokers.is_empty() {
        // Before the first UpdateMetadata: this broker alone, as Metadata answers.
        config
            .advertised_for(listener)
            .map(|(host, port)| {
                let mut me = DescribeClusterBroker::default();
                me.broker_id = BrokerId(config.node_id);
                me.host = str_bytes(host);
                me.port = i32::from(port);
                me
            })
            .into_iter()
            .collect()
    } else {
        view.brokers
            .iter()
            .filter_map(|(&id, endpoint)| {
                let (host, port) = endpoint.for_listener(listener)?;
                let mut b = DescribeClusterBroker::default();
                b.broker_id = BrokerId(id);
                b.host = str_bytes(host);
                b.port = i32::from(port);
                b.rack = endpoint.rack.as_deref().map(str_bytes);
                Some(b)
            })
            .collect()
    };
    let controller_known = response.brokers.iter().any(|b| b.broker_id.0 == view.controller);
    response.controller_id = BrokerId(if controller_known { view.controller } else { -1 });
    // cluster_authorized_operations: filled in by authorize::operations.
    response.endpoint_type = BROKER_ENDPOINT;
    response
}
