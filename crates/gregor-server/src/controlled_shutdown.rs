//! The stopping broker's side of a controlled shutdown (Kafka's
//! `controlled.shutdown.*`): it asks the controller — over the Kafka
//! protocol, even when the controller runs in this process — to move its
//! leaderships to other in-sync replicas and take it out of ISRs, and
//! retries while partitions remain; then the broker stops. Clients only
//! refresh metadata: the new leaders serve before the old one goes.

use std::time::Duration;

use gregor_coord::kafka::KafkaMetadata;
use gregor_coord::Coordinator;
use kafka_protocol_zk::messages::{BrokerId, ControlledShutdownRequest, ControlledShutdownResponse};

use crate::controller::exchange;

/// ControlledShutdown's API key and the version sent (the first with
/// flexible fields, as Kafka 3.9's brokers send).
const CONTROLLED_SHUTDOWN: (i16, i16) = (7, 3);

/// How a controlled shutdown is tried.
#[derive(Debug, Clone)]
pub struct ShutdownSettings {
    /// `inter.broker.listener.name`: the controller is reached there.
    pub inter_broker_listener: String,
    /// That listener's TLS and SASL.
    pub security: gregor_client::ClientSecurity,
    /// Attempts after the first (`controlled.shutdown.max.retries`).
    pub max_retries: u32,
    /// Wait between attempts (`controlled.shutdown.retry.backoff.ms`).
    pub retry_backoff: Duration,
}

/// Runs broker `broker_id`'s (of `broker_epoch`) controlled shutdown;
/// true when it leads nothing the others could take.
pub async fn run(coordinator: &dyn Coordinator, broker_id: i32, broker_epoch: i64, settings: ShutdownSettings) -> bool {
    for attempt in 0..=settings.max_retries {
        match ask(
            coordinator,
            broker_id,
            broker_epoch,
            &settings.inter_broker_listener,
            &settings.security,
        )
        .await
        {
            Ok(remaining) if remaining.is_empty() => {
                tracing::info!(attempt, "controlled shutdown: every leadership moved");
                return true;
            }
            Ok(remaining) => tracing::info!(attempt, ?remaining, "controlled shutdown: partitions still led here"),
            Err(e) => tracing::warn!(attempt, "controlled shutdown: {e}"),
        }
        if attempt < settings.max_retries {
            tokio::time::sleep(settings.retry_backoff).await;
        }
    }
    tracing::warn!("controlled shutdown did not complete: stopping anyway");
    false
}

/// One ControlledShutdown to the current controller; the partitions it
/// says this broker still leads.
async fn ask(
    coordinator: &dyn Coordinator,
    broker_id: i32,
    broker_epoch: i64,
    listener: &str,
    security: &gregor_client::ClientSecurity,
) -> Result<Vec<String>, String> {
    let meta = KafkaMetadata::new(coordinator);
    let controller = meta
        .controller()
        .await
        .map_err(|e| e.to_string())?
        .ok_or("no controller")?;
    let brokers = meta.brokers().await.map_err(|e| e.to_string())?;
    let registration = brokers
        .get(&controller)
        .ok_or_else(|| format!("the controller (broker {controller}) is not registered"))?;
    let endpoint = crate::controller::inter_broker_endpoint(registration, listener)
        .ok_or_else(|| format!("the controller (broker {controller}) registered no endpoint"))?;
    let mut connection = gregor_client::Connection::connect_with(
        (endpoint.host.as_str(), endpoint.port),
        &format!("gregor-broker-{broker_id}"),
        security,
    )
    .await
    .map_err(|e| format!("reaching the controller (broker {controller}): {e}"))?;
    let mut request = ControlledShutdownRequest::default();
    request.broker_id = BrokerId(broker_id);
    request.broker_epoch = broker_epoch;
    let (key, version) = CONTROLLED_SHUTDOWN;
    let response: ControlledShutdownResponse = exchange(&mut connection, key, version, &request)
        .await
        .map_err(|e| format!("asking the controller (broker {controller}): {e}"))?;
    if response.error_code != 0 {
        let error = kafka_protocol::error::ResponseError::try_from_code(response.error_code);
        return Err(format!("the controller (broker {controller}) answered {error:?}"));
    }
    Ok(response
        .remaining_partitions
        .iter()
        .map(|p| format!("{}-{}", p.topic_name.0, p.partition_index))
        .collect())
}
