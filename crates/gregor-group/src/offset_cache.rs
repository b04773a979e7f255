//! The offsets cache: each group's committed offsets, and the offsets
//! transactions wrote that are not committed yet (pending per producer
//! until its COMMIT or ABORT marker), each with the log offset of its
//! record in `__consumer_offsets`.
//!
//! The same rules apply whether a record arrives live (a write
//! acknowledged, a marker reported by the broker) or is replayed from the
//! log on a reload, so both give the same offsets (Kafka's
//! `OffsetMetadataManager.replay` and `replayEndTransactionMarker`):
//!
//! - a plain commit becomes the committed offset, unless the committed
//!   one's record is later in the log (a transaction committed while the
//!   plain commit was being acknowledged);
//! - a tombstone removes the committed offset and the partition's pending
//!   ones;
//! - a transactional commit waits, per producer; COMMIT makes each of its
//!   offsets the committed one unless a record later in the log is
//!   committed already, ABORT drops them.

use std::collections::BTreeMap;

use crate::protocol::CommittedOffset;

/// A topic partition of a group's offsets.
pub(crate) type Partition = (String, i32);

/// Offsets of a commit, by partition, in the order of its records.
pub(crate) type PartitionOffsets = Vec<(Partition, CommittedOffset)>;

/// An offset and where its record is in `__consumer_offsets`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Placed {
    /// The offset.
    pub(crate) value: CommittedOffset,
    /// Its record's offset in the group's `__consumer_offsets` partition.
    pub(crate) log_offset: u64,
}

/// One group's offsets.
#[derive(Debug, Default)]
struct GroupOffsets {
    committed: BTreeMap<Partition, Placed>,
    /// Producer id → offsets its open transaction wrote.
    pending: BTreeMap<i64, BTreeMap<Partition, Placed>>,
}

impl GroupOffsets {
    fn is_empty(&self) -> bool {
        self.committed.is_empty() && self.pending.is_empty()
    }

    /// Makes `placed` the committed offset of `partition` unless a later
    /// record is.
    fn commit(&mut self, partition: Partition, placed: Placed) {
        match self.committed.get(&partition) {
            Some(current) if current.log_offset > placed.log_offset => {}
            _ => {
                self.committed.insert(partition, placed);
            }
        }
    }
}

/// Every loaded group's committed and pending offsets.
#[derive(Debug, Default)]
pub(crate) struct OffsetCache {
    groups: BTreeMap<String, GroupOffsets>,
}

impl OffsetCache {
    /// A plain commit of `partition` written at `placed.log_offset`.
    pub(crate) fn commit(&mut self, group: &str, partition: Partition, placed: Placed) {
        self.entry(group).commit(partition, placed);
    }

    /// A transactional commit of `partition` by `producer_id`: pending
    /// until the producer's marker.
    pub(crate) fn stage(&mut self, group: &str, producer_id: i64, partition: Partition, placed: Placed) {
        self.entry(group)
            .pending
            .entry(producer_id)
            .or_default()
            .insert(partition, placed);
    }

    /// A tombstone of `partition`: its committed offset and pending ones go.
    pub(crate) fn remove(&mut self, group: &str, partition: &Partition) {
        let Some(offsets) = self.groups.get_mut(group) else {
            return;
        };
        offsets.committed.remove(partition);
        for pending in offsets.pending.values_mut() {
            pending.remove(partition);
        }
        offsets.pending.retain(|_, p| !p.is_empty());
        self.drop_if_empty(group);
    }

    /// `producer_id`'s marker in the partition of the groups `owned`
    /// picks: its pending offsets there are committed or dropped.
    pub(crate) fn complete(&mut self, owned: &impl Fn(&str) -> bool, producer_id: i64, commit: bool) {
        for (_, offsets) in self.groups.iter_mut().filter(|(g, _)| owned(g)) {
            let Some(pending) = offsets.pending.remove(&producer_id) else {
                continue;
            };
            if commit {
                for (partition, placed) in pending {
                    offsets.commit(partition, placed);
                }
            }
        }
        self.groups.retain(|_, o| !o.is_empty());
    }

    /// The committed offset of `partition`.
    pub(crate) fn get(&self, group: &str, partition: &Partition) -> Option<&CommittedOffset> {
        Some(&self.groups.get(group)?.committed.get(partition)?.value)
    }

    /// Every committed offset of `group`.
    pub(crate) fn committed(&self, group: &str) -> impl Iterator<Item = (&Partition, &CommittedOffset)> {
        self.groups
            .get(group)
            .into_iter()
            .flat_map(|o| o.committed.iter().map(|(p, placed)| (p, &placed.value)))
    }

    /// Whether an open transaction wrote an offset of `partition`.
    pub(crate) fn is_pending(&self, group: &str, partition: &Partition) -> bool {
        self.groups
            .get(group)
            .is_some_and(|o| o.pending.values().any(|p| p.contains_key(partition)))
    }

    /// Partitions open transactions wrote offsets of.
    pub(crate) fn pending_partitions(&self, group: &str) -> impl Iterator<Item = &Partition> {
        self.groups
            .get(group)
            .into_iter()
            .flat_map(|o| o.pending.values().flat_map(|p| p.keys()))
    }

    /// Whether `group` has offsets, committed or pending (such a group is
    /// known, and not forgotten, even without members).
    pub(crate) fn knows(&self, group: &str) -> bool {
        self.groups.contains_key(group)
    }

    /// Groups with offsets, committed or pending.
    pub(crate) fn groups(&self) -> impl Iterator<Item = &String> {
        self.groups.keys()
    }

    /// Forgets the groups `drop` picks.
    pub(crate) fn forget(&mut self, drop: impl Fn(&str) -> bool) {
        self.groups.retain(|g, _| !drop(g));
    }

    /// Takes every group of `other` (loaded from a partition this cache
    /// holds nothing of).
    pub(crate) fn absorb(&mut self, other: OffsetCache) {
        self.groups.extend(other.groups);
    }

    fn entry(&mut self, group: &str) -> &mut GroupOffsets {
        self.groups.entry(group.to_string()).or_default()
    }

    fn drop_if_empty(&mut self, group: &str) {
        if self.groups.get(group).is_some_and(GroupOffsets::is_empty) {
            self.groups.remove(group);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(offset: i64, log_offset: u64) -> Placed {
        Placed {
            value: CommittedOffset {
                offset,
                leader_epoch: -1,
                metadata: String::new(),
                commit_timestamp: 0,
            },
            log_offset,
        }
    }

    fn p0() -> Partition {
        ("t".to_string(), 0)
    }

    fn offset(cache: &OffsetCache) -> Option<i64> {
        cache.get("g", &p0()).map(|o| o.offset)
    }

    #[test]
    fn a_committed_transaction_loses_to_a_later_plain_commit() {
        let mut cache = OffsetCache::default();
        cache.stage("g", 7, p0(), at(10, 1));
        cache.commit("g", p0(), at(20, 2));
        cache.complete(&|_| true, 7, true);
        assert_eq!(offset(&cache), Some(20));
        // Acknowledged out of log order: the transaction's record is later.
        cache.stage("g", 7, p0(), at(30, 4));
        cache.complete(&|_| true, 7, true);
        cache.commit("g", p0(), at(25, 3));
        assert_eq!(offset(&cache), Some(30));
    }

    #[test]
    fn pending_offsets_are_invisible_until_committed_and_dropped_on_abort() {
        let mut cache = OffsetCache::default();
        cache.stage("g", 7, p0(), at(10, 1));
        assert_eq!(offset(&cache), None);
        assert!(cache.is_pending("g", &p0()) && cache.knows("g"));
        cache.complete(&|_| true, 7, false);
        assert_eq!(offset(&cache), None);
        assert!(!cache.knows("g"), "nothing left of the group");
        cache.stage("g", 7, p0(), at(10, 2));
        cache.complete(&|g| g != "g", 7, true);
        assert!(cache.is_pending("g", &p0()), "another partition's marker");
        cache.complete(&|_| true, 7, true);
        assert_eq!(offset(&cache), Some(10));
        assert!(!cache.is_pending("g", &p0()));
    }

    #[test]
    fn a_tombstone_removes_pending_offsets_too() {
        let mut cache = OffsetCache::default();
        cache.commit("g", p0(), at(5, 1));
        cache.stage("g", 7, p0(), at(10, 2));
        cache.remove("g", &p0());
        assert!(!cache.knows("g"));
        cache.complete(&|_| true, 7, true);
        assert_eq!(offset(&cache), None);
    }
}
