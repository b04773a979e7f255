//! # gregor-transaction
//!
//! Kafka's transaction coordinator (KIP-98): it maps each transactional
//! id to a producer id and epoch, fences older producers with the same
//! id, tracks which partitions a transaction wrote to, and ends
//! transactions in two phases — PrepareCommit/PrepareAbort stored in the
//! compacted `__transaction_state` topic, then transaction markers written
//! to every partition, then CompleteCommit/CompleteAbort stored — so a
//! transaction commits everywhere or nowhere, even across coordinator
//! failover.
//!
//! Two layers, as gregor-group:
//!
//! - [`TransactionStateMachine`] is the coordinator as a sans-IO state
//!   machine: requests and events go in with the time (`now_ms`) and a
//!   [`RequestId`]; [`Output`]s come out — answers, [`Write`]s to
//!   `__transaction_state` (outcome fed back with
//!   [`TransactionStateMachine::persisted`]) and [`MarkerRequest`]s (fed
//!   back with [`TransactionStateMachine::markers_written`]). Producer
//!   ids come from a [`ProducerIdGenerator`]. No thread, clock or IO, so a
//!   deterministic simulation drives it (`tests/simulation.rs`).
//! - [`TransactionCoordinator`] drives it for a broker: the machine behind
//!   a lock, answers on one-shot channels, writes appended through a
//!   [`TransactionLog`] outside the lock, markers handed to a
//!   [`MarkerSender`], a [`Ticker`] thread for timeouts and expiry.
//!
//! ```
//! use std::sync::Arc;
//! use gregor_log::{ManualClock, TopicPartition};
//! use gregor_transaction::*;
//!
//! #[derive(Default)]
//! struct MemoryLog(parking_lot::Mutex<Vec<StoredRecord>>);
//! impl TransactionLog for MemoryLog {
//!     fn append(&self, _: i32, _: i32, records: &[StoredRecord]) -> Result<(), String> {
//!         self.0.lock().extend_from_slice(records);
//!         Ok(())
//!     }
//!     fn load_partition(&self, _: i32) -> Result<Vec<StoredRecord>, String> {
//!         Ok(self.0.lock().clone())
//!     }
//! }
//! #[derive(Default)]
//! struct Markers(parking_lot::Mutex<Vec<MarkerRequest>>);
//! impl MarkerSender for Markers {
//!     fn send(&self, request: MarkerRequest) { self.0.lock().push(request) }
//! }
//!
//! let settings = TransactionSettings { state_log_partitions: 1, ..Default::default() };
//! let markers = Arc::new(Markers::default());
//! let mut next = 1000;
//! let coordinator = TransactionCoordinator::new(
//!     settings,
//!     Arc::new(MemoryLog::default()),
//!     markers.clone(),
//!     Box::new(move || { next += 1; Ok(next) }),
//!     Arc::new(ManualClock::new(0)),
//! );
//! coordinator.partition_changed(0, true, 1);
//! let producer = coordinator.init_producer_id(Some("tx"), 60_000, None).blocking_recv().unwrap().unwrap();
//! let tp = TopicPartition::new("orders", 0);
//! let (id, epoch) = (producer.producer_id, producer.producer_epoch);
//! let added = coordinator.add_partitions("tx", id, epoch, vec![tp.clone()], TransactionVersion::V0);
//! assert_eq!(added.blocking_recv().unwrap(), vec![(tp, Ok(()))]);
//! let ended = coordinator.end_txn("tx", id, epoch, TransactionResult::Commit, TransactionVersion::V0);
//! assert_eq!(ended.blocking_recv().unwrap(), Ok(ProducerIdAndEpoch::NONE));
//! // The marker sender writes the markers, then reports:
//! let request = markers.0.lock().pop().unwrap();
//! coordinator.markers_written(request.id);
//! assert_eq!(coordinator.describe(&["tx".into()])[0].1.as_ref().unwrap().state, TransactionState::CompleteCommit);
//! ```
//!
//! Modules by job: `protocol` (states, errors, settings, descriptions),
//! [`records`] (Kafka's record schemas), `metadata` (one id's state and
//! transitions), `requests` (the producer's requests), `ending` (EndTxn's
//! checks under each transaction version), `queries`
//! (Describe/ListTransactions), `verification` (partition leaders' checks
//! that a partition is in a transaction, KIP-890), `machine` (loading,
//! outcomes, timeouts, expiry), `outputs`, `driver`.
//!
//! What it is not: it does not speak the wire protocol (gregor-routing
//! maps requests to it), deliver markers (gregor-server's sender), or
//! keep producer state in the data partitions (gregor-log).

#![deny(missing_docs)]

mod driver;
mod ending;
mod loading;
mod machine;
mod metadata;
mod outputs;
mod protocol;
mod queries;
pub mod records;
mod requests;
mod verification;

pub use driver::{MarkerSender, TransactionCoordinator, TransactionLog};
/// The thread of [`TransactionCoordinator::spawn_ticker`].
pub use gregor_log::Ticker;
pub use machine::TransactionStateMachine;
pub use outputs::{
    MarkerId, MarkerRequest, Output, ProducerIdGenerator, RequestId, Response, StoredRecord, Write, WriteId,
};
pub use protocol::{
    ListedTransaction, ProducerIdAndEpoch, TransactionDescription, TransactionError, TransactionListing,
    TransactionResult, TransactionSettings, TransactionState, TransactionVersion, NO_PRODUCER_EPOCH, NO_PRODUCER_ID,
};
pub use records::{partition_for, TRANSACTION_STATE_TOPIC};
