//! The transactions this broker coordinates: the transaction coordinator
//! over `__transaction_state` (a transactional id's coordinator is the
//! leader of its partition, at that partition's leader epoch), producer
//! ids from the cluster's blocks, the queue of marker requests the
//! server's marker sender delivers to partition leaders, and transaction
//! verification (KIP-890) and transactions v2's implicit add as a
//! partition leader.

mod implicit_add;
mod markers;
mod state_topic;
mod verification;

use std::sync::Arc;

use gregor_log::Clock;
use gregor_transaction::{MarkerRequest, MarkerSender, TransactionCoordinator, TransactionError, TransactionSettings};
use parking_lot::Mutex;
use tokio::sync::mpsc;

pub use implicit_add::ADD_ATTEMPTS;
pub use markers::TxnMarker;
pub use state_topic::{TransactionStateSettings, TransactionStateTopic};
pub use verification::{coordinator_error, ProduceRefusal, RemoteVerification, Unverified, Verdicts};

use crate::producer_ids::ProducerIds;
use crate::replicas::ReplicaManager;
use crate::topics::Topics;

/// The transaction coordinator and what it writes through.
pub struct Transactions {
    coordinator: Arc<TransactionCoordinator>,
    state: Arc<TransactionStateTopic>,
    markers: Mutex<Option<mpsc::UnboundedReceiver<MarkerRequest>>>,
    verifications: mpsc::UnboundedSender<RemoteVerification>,
    verifications_out: Mutex<Option<mpsc::UnboundedReceiver<RemoteVerification>>>,
}

/// Marker requests queued for the server's sender.
struct MarkerQueue(mpsc::UnboundedSender<MarkerRequest>);

impl MarkerSender for MarkerQueue {
    fn send(&self, request: MarkerRequest) {
        if self.0.send(request).is_err() {
            tracing::debug!("no marker sender: the broker is stopping");
        }
    }
}

impl Transactions {
    /// A transaction coordinator over `__transaction_state` (created on
    /// first use as `state` says), with producer ids from `producer_ids`.
    pub fn start(
        settings: TransactionSettings,
        state: TransactionStateSettings,
        topics: Arc<Topics>,
        replicas: Arc<ReplicaManager>,
        producer_ids: Arc<ProducerIds>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let state = Arc::new(TransactionStateTopic::new(state, topics, replicas, clock.clone()));
        let (queue, markers) = mpsc::unbounded_channel();
        let ids = move || {
            producer_ids.next().map_err(|e| {
                tracing::warn!("no producer id for a transactional producer: {e}");
                TransactionError::CoordinatorNotAvailable
            })
        };
        let coordinator = Arc::new(TransactionCoordinator::new(
            settings,
            state.clone(),
            Arc::new(MarkerQueue(queue)),
            Box::new(ids),
            clock,
        ));
        let (verifications, verifications_out) = mpsc::unbounded_channel();
        Self {
            coordinator,
            state,
            markers: Mutex::new(Some(markers)),
            verifications,
            verifications_out: Mutex::new(Some(verifications_out)),
        }
    }

    /// The transaction coordinator.
    pub fn coordinator(&self) -> &Arc<TransactionCoordinator> {
        &self.coordinator
    }

    /// The state topic.
    pub fn state_topic(&self) -> &TransactionStateTopic {
        &self.state
    }

    /// The coordinator if this broker coordinates `transactional_id` (it
    /// leads the id's partition and has loaded it); `None` makes clients
    /// look the coordinator up again (NOT_COORDINATOR).
    pub fn coordinating(&self, transactional_id: &str) -> Option<&Arc<TransactionCoordinator>> {
        self.coordinator
            .coordinating(transactional_id)
            .then_some(&self.coordinator)
    }

    /// This broker leads `__transaction_state` partition `p` at
    /// `leader_epoch` (`Some`), or does not lead it (`None`): its
    /// transactions are loaded at that epoch unless they already are
    /// (those half-ended get their markers again), or forgotten. Blocks
    /// on the disk.
    pub fn partition_led(&self, p: u32, leader_epoch: Option<i32>) -> Result<(), String> {
        let p = i32::try_from(p).map_err(|_| format!("partition {p} out of range"))?;
        let loaded = self.coordinator.coordinator_epoch(p);
        match leader_epoch {
            Some(epoch) if loaded != Some(epoch) => self.coordinator.partition_changed(p, true, epoch),
            None if loaded.is_some() => self.coordinator.partition_changed(p, false, -1),
            _ => Ok(()),
        }
    }

    /// The marker requests, once: for the server's marker sender.
    pub fn take_marker_requests(&self) -> Option<mpsc::UnboundedReceiver<MarkerRequest>> {
        self.markers.lock().take()
    }

    /// The verifications for coordinators on other brokers, once: for the
    /// server's verifier.
    pub fn take_remote_verifications(&self) -> Option<mpsc::UnboundedReceiver<RemoteVerification>> {
        self.verifications_out.lock().take()
    }

    /// Queues a verification for the server's verifier; `Err` when none
    /// runs any more (the broker is stopping).
    pub(crate) fn queue_verification(&self, request: RemoteVerification) -> Result<(), ()> {
        self.verifications.send(request).map_err(|_| ())
    }
}
