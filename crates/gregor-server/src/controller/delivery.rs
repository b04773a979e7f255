//! Delivery of the controller's requests: to this broker's own handlers
//! in process, to the others over the Kafka protocol — in order, each
//! retried until it is answered or the broker leaves.

use std::sync::Arc;
use std::time::Duration;

use gregor_broker::Broker;
use gregor_routing::api;
use kafka_protocol_zk::messages as zk;
use kafka_protocol_zk::protocol::{Encodable, HeaderVersion};
use tokio::sync::mpsc;

use super::log_dirs::OfflineReplicas;
use super::requests::{BrokerRequest, LEADER_AND_ISR_VERSION, STOP_REPLICA_VERSION, UPDATE_METADATA_VERSION};

/// Where answers naming replicas in offline log directories go.
type OfflineReporter = mpsc::UnboundedSender<OfflineReplicas>;

/// A broker's answer: its top-level error code and the partitions it
/// answered KAFKA_STORAGE_ERROR for (LeaderAndIsr only).
struct Answer {
    code: i16,
    offline: Vec<gregor_log::TopicPartition>,
}

impl Answer {
    fn code(code: i16) -> Self {
        Self {
            code,
            offline: Vec::new(),
        }
    }

    fn of_leader_and_isr(response: &zk::LeaderAndIsrResponse) -> Self {
        let storage = kafka_protocol::error::ResponseError::KafkaStorageError.code();
        let offline = response
            .partition_errors
            .iter()
            .filter(|e| e.error_code == storage)
            .filter_map(|e| {
                let p = u32::try_from(e.partition_index).ok()?;
                Some(gregor_log::TopicPartition::new(e.topic_name.0.to_string(), p))
            })
            .collect();
        Self {
            code: response.error_code,
            offline,
        }
    }

    /// Passes the offline replicas of broker `id` on to the controller.
    fn report(&mut self, id: i32, to: &OfflineReporter) {
        if !self.offline.is_empty() {
            let _ = to.send((id, std::mem::take(&mut self.offline)));
        }
    }
}

/// A request on its way, and what to do once the broker accepted it.
pub(super) struct Outgoing {
    /// The request.
    pub(super) request: BrokerRequest,
    /// Called when the broker answered without error.
    pub(super) accepted: Option<Box<dyn FnOnce() + Send>>,
}

impl Outgoing {
    /// The broker answered with `code`.
    fn answered(self, code: i16) {
        if code == 0 {
            if let Some(accepted) = self.accepted {
                accepted();
            }
        }
    }
}

/// Hands requests to this broker's own handlers, in order.
pub(super) async fn deliver_locally(
    broker: Arc<Broker>,
    mut requests: mpsc::UnboundedReceiver<Outgoing>,
    offline: OfflineReporter,
) {
    let id = broker.config().node_id;
    while let Some(outgoing) = requests.recv().await {
        let broker = broker.clone();
        let request = outgoing.request.clone();
        let handled = tokio::task::spawn_blocking(move || match request {
            BrokerRequest::LeaderAndIsr(r) => Answer::of_leader_and_isr(&api::leader_and_isr::handle(&broker, r)),
            BrokerRequest::UpdateMetadata(r) => Answer::code(api::update_metadata::handle(&broker, r).error_code),
            BrokerRequest::StopReplica(r) => Answer::code(api::stop_replica::handle(&broker, r).error_code),
        })
        .await;
        if let Ok(mut answer) = handled {
            answer.report(id, &offline);
            let code = answer.code;
            if code != 0 {
                tracing::warn!(code, "this broker refused a controller request");
            }
            outgoing.answered(code);
        }
    }
}

/// Sends requests to broker `id` at `address`, in order, each retried
/// until it is answered; ends when the channel closes (the broker left).
pub(super) async fn deliver_remotely(
    id: i32,
    address: String,
    security: gregor_client::ClientSecurity,
    local: i32,
    mut requests: mpsc::UnboundedReceiver<Outgoing>,
    offline: OfflineReporter,
) {
    let mut connection: Option<gregor_client::Connection> = None;
    while let Some(outgoing) = requests.recv().await {
        let request = &outgoing.request;
        loop {
            if requests.is_closed() && connection.is_none() {
                // The broker left while we could not reach it.
                return;
            }
            if connection.is_none() {
                let client_id = format!("gregor-controller-{local}");
                match gregor_client::Connection::connect_with(address.as_str(), &client_id, &security).await {
                    Ok(c) => connection = Some(c),
                    Err(e) => {
                        tracing::debug!(broker = id, "controller cannot reach the broker yet: {e}");
                        tokio::time::sleep(Duration::from_millis(300)).await;
                        continue;
                    }
                }
            }
            let Some(conn) = connection.as_mut() else { continue };
            match call(conn, request).await {
                Ok(mut answer) => {
                    answer.report(id, &offline);
                    let code = answer.code;
                    if code != 0 {
                        tracing::warn!(broker = id, code, "the broker refused a controller request");
                    }
                    outgoing.answered(code);
                    break;
                }
                Err(e) => {
                    tracing::debug!(broker = id, "controller request failed: {e}");
                    connection = None;
                    tokio::time::sleep(Duration::from_millis(300)).await;
                }
            }
        }
    }
}

/// Sends one controller request; returns the answer.
async fn call(
    conn: &mut gregor_client::Connection,
    request: &BrokerRequest,
) -> Result<Answer, gregor_client::ClientError> {
    match request {
        BrokerRequest::LeaderAndIsr(r) => exchange::<_, zk::LeaderAndIsrResponse>(conn, 4, LEADER_AND_ISR_VERSION, r)
            .await
            .map(|a| Answer::of_leader_and_isr(&a)),
        BrokerRequest::UpdateMetadata(r) => {
            exchange::<_, zk::UpdateMetadataResponse>(conn, 6, UPDATE_METADATA_VERSION, r)
                .await
                .map(|a| Answer::code(a.error_code))
        }
        BrokerRequest::StopReplica(r) => exchange::<_, zk::StopReplicaResponse>(conn, 5, STOP_REPLICA_VERSION, r)
            .await
            .map(|a| Answer::code(a.error_code)),
    }
}

/// One request and its response in the controller APIs' codec.
pub(crate) async fn exchange<Req, Resp>(
    conn: &mut gregor_client::Connection,
    api_key: i16,
    version: i16,
    request: &Req,
) -> Result<Resp, gregor_client::ClientError>
where
    Req: Encodable + HeaderVersion,
    Resp: kafka_protocol_zk::protocol::Decodable + HeaderVersion,
{
    use kafka_protocol::protocol::Decodable as _;
    let protocol = |e: String| gregor_client::ClientError::Protocol(e);
    let mut body = conn
        .call(api_key, version, Req::header_version(version), |out| {
            request.encode(out, version).map_err(|e| e.to_string())
        })
        .await?;
    kafka_protocol::messages::ResponseHeader::decode(&mut body, Resp::header_version(version))
        .map_err(|e| protocol(e.to_string()))?;
    Resp::decode(&mut body, version).map_err(|e| protocol(e.to_string()))
}
