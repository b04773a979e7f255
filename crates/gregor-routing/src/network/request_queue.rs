//! The bounded queue between processors and handlers.
//!
//! Slots are semaphore permits, so a processor waits for room without
//! blocking its thread, and a handler frees the slot as soon as it takes
//! the request; the queue itself is a crossbeam channel the handler
//! threads block on.

use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender};
use tokio::sync::{oneshot, OwnedSemaphorePermit, Semaphore};

use crate::metrics::BrokerMetrics;
use crate::outcome::Outcome;
use crate::request::Frame;

/// A request waiting for a handler, and where its outcome goes.
pub struct QueuedRequest {
    /// The decoded request.
    pub frame: Frame,
    /// Its connection's response slot.
    pub reply: oneshot::Sender<Outcome>,
    /// The queue slot it holds until a handler takes it.
    pub slot: OwnedSemaphorePermit,
}

/// The processors' end of the queue.
#[derive(Clone)]
pub struct RequestQueue {
    slots: Arc<Semaphore>,
    sender: Sender<QueuedRequest>,
    metrics: Arc<BrokerMetrics>,
}

impl RequestQueue {
    /// A queue of `capacity` slots, and the handlers' end; `metrics`
    /// follows its depth and counts the requests through it.
    pub fn new(capacity: usize, metrics: Arc<BrokerMetrics>) -> (Self, Receiver<QueuedRequest>) {
        let (sender, receiver) = crossbeam_channel::unbounded();
        let slots = Arc::new(Semaphore::new(capacity));
        metrics.watch_queue(slots.clone(), capacity);
        let queue = Self { slots, sender, metrics };
        (queue, receiver)
    }

    /// The broker's metrics.
    pub fn metrics(&self) -> &BrokerMetrics {
        &self.metrics
    }

    /// The broker's metrics, shared.
    pub(crate) fn metrics_handle(&self) -> Arc<BrokerMetrics> {
        self.metrics.clone()
    }

    /// Queues `frame` once a slot is free; the outcome arrives on the
    /// returned receiver (closed without one if the handlers are gone).
    pub async fn submit(&self, frame: Frame) -> oneshot::Receiver<Outcome> {
        let (reply, outcome) = oneshot::channel();
        // The semaphore is never closed, so acquiring only waits.
        if let Ok(slot) = self.slots.clone().acquire_owned().await {
            let _ = self.sender.send(QueuedRequest { frame, reply, slot });
        }
        outcome
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use bytes::Bytes;

    use super::*;
    use crate::request::decode_frame;

    fn api_versions() -> Frame {
        // ApiVersions v0: key 18, version 0, correlation id 1, null client id.
        decode_frame(Bytes::from_static(&[0, 18, 0, 0, 0, 0, 0, 1, 0xff, 0xff])).unwrap()
    }

    #[tokio::test]
    async fn a_full_queue_holds_submitters_until_a_handler_takes_a_request() {
        let (queue, requests) = RequestQueue::new(2, Arc::new(BrokerMetrics::new()));
        let _first = queue.submit(api_versions()).await;
        let _second = queue.submit(api_versions()).await;
        let third = queue.submit(api_versions());
        tokio::pin!(third);
        assert!(tokio::time::timeout(Duration::from_millis(100), &mut third)
            .await
            .is_err());
        assert_eq!(requests.len(), 2);
        let taken = requests.recv().unwrap();
        drop(taken.slot);
        let _third = tokio::time::timeout(Duration::from_secs(10), third).await.unwrap();
        assert_eq!(requests.len(), 2);
    }
}
