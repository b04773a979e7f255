//! The handler pool: `num.io.threads` OS threads that take requests off
//! the queue and run them. Appends, fsyncs and topic changes block here,
//! never on a processor.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use crossbeam_channel::Receiver;
use tracing::error;

use super::request_queue::QueuedRequest;
use crate::dispatch::dispatch;
use crate::request::CONTROLLER_APIS;
use gregor_broker::quotas::entity::ANONYMOUS;
use gregor_broker::quotas::QuotaType;
use gregor_broker::Broker;

/// The running handler threads.
pub struct HandlerPool {
    threads: Vec<JoinHandle<()>>,
}

impl HandlerPool {
    /// Starts `threads` handlers on `requests`; they stop when every
    /// sender of the queue is gone.
    pub fn start(threads: usize, broker: Arc<Broker>, requests: Receiver<QueuedRequest>) -> std::io::Result<Self> {
        let threads = (0..threads)
            .map(|id| {
                let (broker, requests) = (broker.clone(), requests.clone());
                std::thread::Builder::new()
                    .name(format!("gregor-handler-{id}"))
                    .spawn(move || handle_until_closed(&broker, &requests))
            })
            .collect::<std::io::Result<_>>()?;
        Ok(Self { threads })
    }

    /// Waits for every handler to finish.
    pub fn join(self) {
        for t in self.threads {
            let _ = t.join();
        }
    }
}

fn handle_until_closed(broker: &Arc<Broker>, requests: &Receiver<QueuedRequest>) {
    while let Ok(QueuedRequest { frame, reply, slot }) = requests.recv() {
        drop(slot);
        let key = frame.api_key;
        let client_id = frame
            .header
            .client_id
            .as_ref()
            .map(|c| c.to_string())
            .unwrap_or_default();
        let started = Instant::now();
        match catch_unwind(AssertUnwindSafe(|| dispatch(broker, frame))) {
            Ok(outcome) => {
                let throttle = if exempt_from_request_quota(key) {
                    0
                } else {
                    // request_percentage counts handler thread time: a
                    // percent of one thread's second.
                    let percent = started.elapsed().as_nanos() as f64 * 100.0 / 1e9;
                    broker
                        .quotas()
                        .record(QuotaType::Request, ANONYMOUS, &client_id, percent)
                };
                let _ = reply.send(outcome.muted_at_least(throttle));
            }
            // A bug in a handler: that client's connection closes (its
            // reply is dropped), everyone else carries on.
            Err(_) => error!(api = key, "a request handler panicked; closing its connection"),
        }
    }
}

/// The brokers' own requests (the controller's) are not a client's load,
/// as Kafka exempts cluster actions from request quotas.
fn exempt_from_request_quota(key: i16) -> bool {
    CONTROLLER_APIS.iter().any(|(k, _, _)| *k == key)
}
