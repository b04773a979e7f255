//! The broker rejoins the cluster after its coordination session expired
//! (a split brain or a coordination cut longer than
//! `zookeeper.session.timeout.ms`), as Kafka's `KafkaZkClient` does on
//! session expiration: the coordinator has opened a new session; this
//! registers the broker again on it (`/brokers/ids/<id>`, a new broker
//! epoch — the new node's czxid — which fences the controller's requests
//! addressed to the old registration). The controller then sees the broker
//! come back and sends it LeaderAndIsr: leaderships it lost meanwhile turn
//! into followerships, which truncate to their new leaders. The watchers
//! (config, quota and SCRAM, ACL changes, the controller election and the
//! active controller's own) set their watches again by themselves: a watch
//! of the expired session ends with `SessionExpired`, and each of them
//! reads and watches again — on the new session.

use std::sync::Arc;
use std::time::Duration;

use gregor_broker::Broker;
use gregor_coord::kafka::RegisteredEndpoint;
use gregor_coord::RenewingCoordinator;
use tokio::sync::watch;

use crate::coordination::register;

/// Pause between failed registrations.
const RETRY: Duration = Duration::from_secs(1);

/// What the broker registers with.
#[derive(Debug, Clone)]
pub struct Registration {
    /// `broker.id`.
    pub id: i32,
    /// The advertised listeners.
    pub endpoints: Vec<RegisteredEndpoint>,
    /// `broker.rack`.
    pub rack: Option<String>,
    /// How long an earlier session's registration is waited for.
    pub wait: Duration,
}

/// Registers the broker again on each new session, from the one after
/// session number `registered_in` (the one the broker registered on when
/// it started), until `stop` turns true.
pub fn spawn(
    coordinator: Arc<RenewingCoordinator>,
    broker: Arc<Broker>,
    registration: Registration,
    registered_in: u64,
    mut stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    let mut sessions = coordinator.sessions();
    tokio::spawn(async move {
        if *sessions.borrow_and_update() != registered_in {
            sessions.mark_changed();
        }
        loop {
            tokio::select! {
                changed = sessions.changed() => if changed.is_err() { return },
                _ = stop.changed() => return,
            }
            let session = *sessions.borrow_and_update();
            tracing::warn!(
                broker = registration.id,
                session,
                "the coordination session expired: registering the broker again"
            );
            loop {
                let registered = register(
                    coordinator.as_ref(),
                    registration.id,
                    &registration.endpoints,
                    registration.rack.clone(),
                    registration.wait,
                )
                .await;
                match registered {
                    Ok(epoch) => {
                        broker.replicas().set_broker_epoch(epoch);
                        tracing::info!(broker = registration.id, broker_epoch = epoch, "registered again");
                        break;
                    }
                    Err(e) => tracing::warn!(broker = registration.id, "registering again: {e:#}"),
                }
                if sessions.has_changed().unwrap_or(false) {
                    // Expired again: register on the newer session.
                    break;
                }
                tokio::select! {
                    _ = tokio::time::sleep(RETRY) => {}
                    _ = stop.changed() => return,
                }
            }
        }
    })
}
