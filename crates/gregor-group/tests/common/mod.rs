//! What the coordinator's integration tests share: an in-memory offsets
//! partition and coordinators over it.

use std::sync::Arc;

use gregor_group::*;
use gregor_log::SystemClock;
use parking_lot::Mutex;

/// One in-memory `__consumer_offsets` partition: records at their offsets
/// (and, appended by a test, transaction markers); producers whose epoch
/// is older than `fenced_below` are refused as a log refuses a fenced
/// producer.
#[derive(Default)]
pub struct MemoryStore {
    /// The partition's entries, in order.
    pub log: Mutex<Vec<LoadedRecord>>,
    /// Every write's producer, in order.
    pub producers: Mutex<Vec<Option<TxnProducer>>>,
    /// The oldest producer epoch still taken.
    pub fenced_below: Mutex<i16>,
}

impl OffsetStore for MemoryStore {
    fn append(&self, _group: &str, records: &[StoredRecord], producer: Option<TxnProducer>) -> Result<u64, StoreError> {
        if producer.is_some_and(|p| p.epoch < *self.fenced_below.lock()) {
            return Err(StoreError::ProducerFenced("older epoch".into()));
        }
        self.producers.lock().push(producer);
        let mut log = self.log.lock();
        let first = log.len() as u64;
        for (offset, (key, value)) in (first..).zip(records) {
            log.push(LoadedRecord::Record {
                key: key.clone(),
                value: value.clone(),
                offset,
                producer: producer.map(|p| p.id),
            });
        }
        Ok(first)
    }
    fn load(&self) -> Result<Vec<Vec<LoadedRecord>>, String> {
        Ok(vec![self.log.lock().clone()])
    }
}

/// A coordinator with `config` over a new, empty store.
pub fn coordinator_with(config: GroupConfig) -> (GroupCoordinator, Arc<MemoryStore>) {
    let store = Arc::new(MemoryStore::default());
    let c = GroupCoordinator::new(config, store.clone(), Arc::new(SystemClock)).unwrap();
    (c, store)
}

/// A coordinator with the default settings over a new, empty store.
pub fn coordinator() -> (GroupCoordinator, Arc<MemoryStore>) {
    coordinator_with(GroupConfig::default())
}

/// A new coordinator over `store`, loading what it holds (a restart, or a
/// failover to another broker).
pub fn restarted(store: &Arc<MemoryStore>) -> GroupCoordinator {
    GroupCoordinator::new(GroupConfig::default(), store.clone(), Arc::new(SystemClock)).unwrap()
}

/// Offset `o`, with metadata "m".
pub fn offset(o: i64) -> CommittedOffset {
    CommittedOffset {
        offset: o,
        leader_epoch: -1,
        metadata: "m".into(),
        commit_timestamp: 1_000,
    }
}
