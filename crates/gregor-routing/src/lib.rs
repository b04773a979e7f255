//! # gregor-routing
//!
//! The network request pipeline of a gregor broker and the Kafka API
//! handlers, speaking the real Kafka protocol through the `kafka-protocol`
//! crate: `network` is the pipeline (acceptor, processors, request queue,
//! handler pool), `request` decodes frames, `dispatch` is the table from
//! API key to handler, `authorize` checks each request's session against
//! the ACLs, and `api/` holds one file per Kafka API.
//!
//! What it is not: it holds no broker state; it works on a
//! [`gregor_broker::Broker`] (topics, replicas, groups) that the server
//! assembles.

#![deny(missing_docs)]

mod allocator;
pub mod api;
pub mod authorize;
mod dispatch;
pub mod metrics;
mod network;
mod outcome;
mod request;
mod splice;
mod versions;

pub use allocator::HugeAllocationGuard;
pub use dispatch::dispatch;
pub use metrics::BrokerMetrics;
pub use network::{parse_per_ip_overrides, ConnectionLimits, ListenerContext, NetworkConfig, SocketServer};
pub use outcome::Outcome;
pub use request::{decode_frame, Frame, Request, CONTROLLER_APIS};
pub use versions::SUPPORTED;
