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
use crate::dispatch::{dispatch, request_time_throttle};
use crate::request::CONTROLLER_APIS;
use gregor_broker::Broker;
use kafka_protocol::messages::ApiKey;

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
        let user = frame.session.principal.name.clone();
        let started = Instant::now();
        match catch_unwind(AssertUnwindSafe(|| dispatch(broker, frame))) {
            Ok(outcome) => {
                // request_percentage counts handler thread time (Produce
                // and Fetch record theirs in dispatch, to answer with it).
                let throttle = if exempt_from_request_quota(key) {
                    0
                } else {
                    request_time_throttle(broker, &user, &client_id, started)
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
/// as Kafka exempts cluster actions from request quotas; Produce and Fetch
/// are counted in dispatch.
fn exempt_from_request_quota(key: i16) -> bool {
    key == ApiKey::Produce as i16 || key == ApiKey::Fetch as i16 || CONTROLLER_APIS.iter().any(|(k, _, _)| *k == key)
}
