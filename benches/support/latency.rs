//! A producer context recording each record's delivery latency (µs from
//! `send` to the delivery callback) in an HDR histogram.

use std::time::Instant;

use hdrhistogram::Histogram;
use rdkafka::producer::{DeliveryResult, ProducerContext};
use rdkafka::ClientContext;

/// The context; send records with `Box::new(Instant::now())` as opaque.
pub struct Latency {
    /// Delivery latencies in µs.
    pub histogram: std::sync::Mutex<Histogram<u64>>,
}

impl Latency {
    /// An empty histogram.
    pub fn new() -> Self {
        Self {
            histogram: std::sync::Mutex::new(Histogram::new(3).unwrap()),
        }
    }
}

impl ClientContext for Latency {}

impl ProducerContext for Latency {
    type DeliveryOpaque = Box<Instant>;
    fn delivery(&self, result: &DeliveryResult<'_>, sent: Self::DeliveryOpaque) {
        assert!(result.is_ok(), "delivery failed: {result:?}");
        let _ = self.histogram.lock().unwrap().record(sent.elapsed().as_micros() as u64);
    }
}
