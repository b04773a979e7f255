//! The groups this broker coordinates: the group coordinator over
//! `__consumer_offsets`, and which of that topic's partitions it leads and
//! has loaded (a group's coordinator is the leader of its partition).

mod offsets_topic;

use std::collections::BTreeSet;
use std::sync::Arc;

use gregor_group::{GroupConfig, GroupCoordinator};
use gregor_log::Clock;
use parking_lot::Mutex;

pub use offsets_topic::{OffsetsTopic, OffsetsTopicSettings};

/// The group coordinator and the offsets partitions it serves.
pub struct Groups {
    coordinator: Arc<GroupCoordinator>,
    offsets: Arc<OffsetsTopic>,
    /// `__consumer_offsets` partitions led here and loaded.
    loaded: Mutex<BTreeSet<u32>>,
}

impl Groups {
    /// Starts the group coordinator over `offsets` on `clock` (blocks on
    /// the disk).
    pub fn start(config: GroupConfig, offsets: Arc<OffsetsTopic>, clock: Arc<dyn Clock>) -> Result<Self, String> {
        let coordinator = Arc::new(GroupCoordinator::new(config, offsets.clone(), clock)?);
        Ok(Self {
            coordinator,
            offsets,
            loaded: Mutex::new(BTreeSet::new()),
        })
    }

    /// The group coordinator.
    pub fn coordinator(&self) -> &Arc<GroupCoordinator> {
        &self.coordinator
    }

    /// The offsets topic.
    pub fn offsets_topic(&self) -> &OffsetsTopic {
        &self.offsets
    }

    /// The group coordinator if this broker coordinates `group`: it leads
    /// the group's `__consumer_offsets` partition and has loaded it (`None`
    /// makes clients look the coordinator up again).
    pub fn coordinating(&self, group: &str) -> Option<&Arc<GroupCoordinator>> {
        let p = self.offsets.partition_of(group)?;
        self.loaded.lock().contains(&p).then_some(&self.coordinator)
    }

    /// `producer_id`'s transaction ended: its COMMIT (`commit`) or ABORT
    /// marker was appended to `__consumer_offsets` partition `p` (Kafka's
    /// `scheduleHandleTxnCompletion`, done here before returning, so the
    /// offsets are committed once WriteTxnMarkers answers). The offsets the
    /// transaction wrote for that partition's groups become committed or
    /// are dropped. A partition not loaded here is left alone: its new
    /// coordinator reads the marker from the log.
    pub fn complete_transaction(&self, p: u32, producer_id: i64, commit: bool) {
        // Under the lock a load holds, so a marker reported while its
        // partition is being loaded is applied after that load.
        let loaded = self.loaded.lock();
        if loaded.contains(&p) {
            let owned = |group: &str| self.offsets.partition_of(group) == Some(p);
            self.coordinator.complete_transaction(owned, producer_id, commit);
        }
    }

    /// This broker became the leader of `__consumer_offsets` partition `p`
    /// (`leads`) or stopped leading it: its groups are loaded from the
    /// partition's log (at `now_ms`: session timeouts restart then), or
    /// forgotten.
    pub fn partition_changed(&self, p: u32, leads: bool, now_ms: i64) -> Result<(), String> {
        let owned = |group: &str| self.offsets.partition_of(group) == Some(p);
        let mut loaded = self.loaded.lock();
        if leads {
            let records = self.offsets.load_partition(p)?;
            self.coordinator.reload(owned, &records, now_ms);
            loaded.insert(p);
        } else {
            loaded.remove(&p);
            self.coordinator.unload(owned);
        }
        Ok(())
    }
}
