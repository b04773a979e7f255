//! # gregor-coord
//!
//! Coordination for gregor brokers: registering brokers, electing the
//! controller, and storing cluster metadata — behind one trait,
//! [`Coordinator`], with ZooKeeper's semantics (a tree of nodes, versions
//! for compare-and-set, ephemeral nodes owned by sessions, one-shot
//! watches, all-or-nothing transactions) and two backends that pass one
//! conformance suite:
//!
//! - **embedded** (the default, no external service): an [`EmbeddedStore`]
//!   in the broker's process, durable on disk (bincode snapshot plus a
//!   CRC-checked change log), shared with other processes through a
//!   [`CoordServer`] and [`RemoteCoordinator`];
//! - **ZooKeeper**: [`ZooKeeperCoordinator`] on a real ensemble.
//!
//! [`kafka::KafkaMetadata`] lays Kafka's paths and JSON over either.
//!
//! ```
//! use std::time::Duration;
//! use gregor_coord::{Coordinator, CreateMode, EmbeddedCoordinator, EmbeddedStore};
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let store = EmbeddedStore::in_memory();
//! let broker = EmbeddedCoordinator::connect(&store, Duration::from_secs(6));
//! broker.create("/controller", b"{\"brokerid\":1}", CreateMode::Ephemeral).await.unwrap();
//! let (data, stat) = broker.get("/controller").await.unwrap();
//! assert_eq!(stat.ephemeral_owner, broker.session_id());
//! # assert!(!data.is_empty());
//! # });
//! ```
//!
//! What it is not: it does not decide anything (which broker leads which
//! partition is gregor-replication's job); it stores and notifies.

#![deny(missing_docs)]

pub mod acls;
mod coordinator;
mod embedded;
mod error;
pub mod kafka;
pub mod quotas;
mod renewing;
mod types;
mod zookeeper;

pub use coordinator::Coordinator;
pub use embedded::{CoordSecret, CoordServer, EmbeddedCoordinator, EmbeddedStore, RemoteCoordinator};
pub use error::{CoordError, Result};
pub use renewing::{RenewingCoordinator, SessionFactory};
pub use types::{CreateMode, Op, OpResult, SessionState, Stat, Watch, WatchEvent, WatchEventKind};
pub use zookeeper::{ZooKeeperAuth, ZooKeeperCoordinator};
