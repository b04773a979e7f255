//! A broker's controlled shutdown, on the controller's side: its
//! leaderships move to other in-sync replicas and it leaves the ISRs it
//! follows in (decided by gregor-replication's `Controller`); the states
//! are written before the answer. The new leaders' LeaderAndIsr and every
//! broker's UpdateMetadata are waited for (up to [`SETTLE_TIMEOUT`])
//! before the shutting broker is told to stop following (StopReplica) and
//! answered: so a client that meets NOT_LEADER_OR_FOLLOWER there, or its
//! connection closing, finds the new leaders in any broker's metadata.

use std::time::Duration;

use gregor_broker::ShutdownAsk;
use gregor_coord::CoordError;
use gregor_log::TopicPartition;
use gregor_replication::Controller;
use kafka_protocol::error::ResponseError;
use tokio::sync::oneshot;

use super::requests::BrokerRequest;
use super::ActiveController;

/// The longest wait for the brokers to accept a controlled shutdown's
/// changes (a broker that does not answer is not waited for longer).
pub(super) const SETTLE_TIMEOUT: Duration = Duration::from_secs(1);

/// The sends of a controlled shutdown's changes, and the StopReplica held
/// back until they are accepted.
#[derive(Default)]
pub(super) struct Settling {
    accepted: Vec<oneshot::Receiver<()>>,
    held: Vec<(i32, BrokerRequest)>,
}

impl Settling {
    /// A callback for one more send to wait for.
    pub(super) fn track(&mut self) -> Box<dyn FnOnce() + Send> {
        let (accepted, receiver) = oneshot::channel();
        self.accepted.push(receiver);
        Box::new(move || {
            let _ = accepted.send(());
        })
    }

    /// Holds back a StopReplica for `broker`.
    pub(super) fn hold(&mut self, broker: i32, request: BrokerRequest) {
        self.held.push((broker, request));
    }
}

impl ActiveController {
    /// A broker's controlled shutdown: checks it is the broker's current
    /// run, moves its leaderships and ISR memberships (written, and
    /// accepted by the brokers, before the answer), and answers with what
    /// it still leads.
    pub(super) async fn controlled_shutdown(
        &mut self,
        controller: &mut Controller<TopicPartition>,
        ask: ShutdownAsk,
    ) -> Result<(), CoordError> {
        let id = ask.broker_id;
        let refusal = match self.registrations.get(&id) {
            None => Some(ResponseError::BrokerNotAvailable),
            Some(r) if ask.broker_epoch >= 0 && ask.broker_epoch < r.broker_epoch => {
                Some(ResponseError::StaleBrokerEpoch)
            }
            Some(_) => None,
        };
        if let Some(error) = refusal {
            tracing::warn!(
                broker = id,
                epoch = ask.broker_epoch,
                "controlled shutdown refused: {error:?}"
            );
            let _ = ask.reply.send(Err(error));
            return Ok(());
        }
        let commands = controller.broker_shutting_down(id);
        tracing::info!(broker = id, moves = commands.len(), "controlled shutdown");
        self.settling = Some(Settling::default());
        let executed = self.execute(controller, commands).await;
        let settling = self.settling.take().unwrap_or_default();
        executed?;
        let deadline = tokio::time::Instant::now() + SETTLE_TIMEOUT;
        for accepted in settling.accepted {
            // A broker that left drops its callback: no wait for it.
            let _ = tokio::time::timeout_at(deadline, accepted).await;
        }
        for (broker, request) in settling.held {
            self.send(broker, request);
        }
        let remaining = controller.leaderships_remaining(id);
        let _ = ask.reply.send(Ok(remaining));
        Ok(())
    }
}
