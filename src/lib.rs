//! # gregor
//!
//! A Kafka-compatible, replicated, partitioned commit log, built as layered
//! crates that are each usable on their own. This facade re-exports them;
//! depend on a single layer (for example `gregor-log` as an embedded storage
//! engine) when that is all you need.
//!
//! - [`log`]: segments, indexes, recovery, retention — the storage engine.
//! - [`compactor`]: log compaction (latest value per key).
//! - [`group`]: the group coordinator (consumer groups, committed offsets).
//! - [`coord`]: coordination — embedded or ZooKeeper.
//! - [`replication`]: leaders, followers, ISR, high watermark, the
//!   controller — sans-IO state machines.
//! - [`broker`]: a broker's state — topics, the replica manager, groups,
//!   producer ids.
//! - [`routing`]: the Kafka protocol pipeline and API handlers.
//! - [`client`]: a Kafka client (producer, consumer, admin; brokers use
//!   its connections to talk to each other).
//! - [`server`]: the broker, assembled.

#![deny(missing_docs)]

pub use gregor_broker as broker;
pub use gregor_client as client;
pub use gregor_compactor as compactor;
pub use gregor_coord as coord;
pub use gregor_group as group;
pub use gregor_log as log;
pub use gregor_replication as replication;
pub use gregor_routing as routing;
pub use gregor_server as server;
