//! Produce requests waiting for `acks=all`.

use std::collections::{BTreeMap, BTreeSet};

use crate::types::ReplicationError;

/// How one partition of a waiting produce ended.
pub type AckOutcome = Result<(), ReplicationError>;

struct Waiting<P, T> {
    token: T,
    deadline_ms: u64,
    partitions: BTreeMap<P, (u64, Option<AckOutcome>)>,
}

/// Produce requests waiting until every ISR member has their records,
/// keyed by partition: progress on a partition checks only the requests
/// waiting on it; the deadline fails what is left with
/// `REQUEST_TIMED_OUT`. `T` is whatever answers the request (a channel).
pub struct AckPurgatory<P, T> {
    next_id: u64,
    waiting: BTreeMap<u64, Waiting<P, T>>,
    by_partition: BTreeMap<P, BTreeSet<u64>>,
}

impl<P: Ord + Clone, T> Default for AckPurgatory<P, T> {
    fn default() -> Self {
        Self {
            next_id: 0,
            waiting: BTreeMap::new(),
            by_partition: BTreeMap::new(),
        }
    }
}

/// A finished request: its token and each partition's outcome.
pub type Completed<P, T> = (T, Vec<(P, AckOutcome)>);

impl<P: Ord + Clone, T> AckPurgatory<P, T> {
    /// An empty purgatory.
    pub fn new() -> Self {
        Self::default()
    }

    /// Requests waiting.
    pub fn len(&self) -> usize {
        self.waiting.len()
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }

    /// Parks a request until each partition's high watermark reaches its
    /// required offset (its last record's offset + 1) or `deadline_ms`;
    /// `already` holds outcomes known now (errors, or partitions already
    /// acknowledged). Returns the request at once if nothing is left to
    /// wait for.
    pub fn watch(
        &mut self,
        token: T,
        deadline_ms: u64,
        waiting_on: impl IntoIterator<Item = (P, u64)>,
        already: impl IntoIterator<Item = (P, AckOutcome)>,
    ) -> Option<Completed<P, T>> {
        let mut partitions: BTreeMap<P, (u64, Option<AckOutcome>)> =
            already.into_iter().map(|(p, o)| (p, (0, Some(o)))).collect();
        let id = self.next_id;
        let mut any = false;
        for (p, required) in waiting_on {
            self.by_partition.entry(p.clone()).or_default().insert(id);
            partitions.insert(p, (required, None));
            any = true;
        }
        let waiting = Waiting {
            token,
            deadline_ms,
            partitions,
        };
        if !any {
            return Some(finish(waiting, Ok(())));
        }
        self.next_id += 1;
        self.waiting.insert(id, waiting);
        None
    }

    /// `partition` made progress (or changed leader): `status` tells for a
    /// required offset whether it is settled. Returns the requests now
    /// complete.
    pub fn check(&mut self, partition: &P, status: impl Fn(u64) -> Option<AckOutcome>) -> Vec<Completed<P, T>> {
        let Some(ids) = self.by_partition.get(partition) else {
            return Vec::new();
        };
        let mut done = Vec::new();
        for &id in ids {
            let Some(w) = self.waiting.get_mut(&id) else { continue };
            if let Some(slot) = w.partitions.get_mut(partition) {
                if slot.1.is_none() {
                    slot.1 = status(slot.0);
                }
            }
            if w.partitions.values().all(|s| s.1.is_some()) {
                done.push(id);
            }
        }
        done.into_iter()
            .filter_map(|id| self.remove(id))
            .map(|w| finish(w, Err(ReplicationError::RequestTimedOut)))
            .collect()
    }

    /// Fails the requests whose deadline is at or before `now_ms`: their
    /// unsettled partitions get `REQUEST_TIMED_OUT`.
    pub fn expire(&mut self, now_ms: u64) -> Vec<Completed<P, T>> {
        let due: Vec<u64> = self
            .waiting
            .iter()
            .filter(|(_, w)| w.deadline_ms <= now_ms)
            .map(|(&id, _)| id)
            .collect();
        due.into_iter()
            .filter_map(|id| self.remove(id))
            .map(|w| finish(w, Err(ReplicationError::RequestTimedOut)))
            .collect()
    }

    fn remove(&mut self, id: u64) -> Option<Waiting<P, T>> {
        let w = self.waiting.remove(&id)?;
        for p in w.partitions.keys() {
            if let Some(ids) = self.by_partition.get_mut(p) {
                ids.remove(&id);
                if ids.is_empty() {
                    self.by_partition.remove(p);
                }
            }
        }
        Some(w)
    }
}

fn finish<P, T>(w: Waiting<P, T>, unsettled: AckOutcome) -> Completed<P, T> {
    let outcomes = w
        .partitions
        .into_iter()
        .map(|(p, (_, o))| (p, o.unwrap_or(unsettled)))
        .collect();
    (w.token, outcomes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completes_when_every_partition_is_settled() {
        let mut p: AckPurgatory<u32, &str> = AckPurgatory::new();
        assert!(p.watch("a", 100, [(0, 10), (1, 5)], []).is_none());
        assert!(p
            .watch("b", 100, [(1, 7)], [(2, Err(ReplicationError::NotLeaderOrFollower))])
            .is_none());
        assert!(p.check(&0, |req| (req <= 10).then_some(Ok(()))).is_empty());
        let done = p.check(&1, |req| (req <= 6).then_some(Ok(())));
        assert_eq!(done, vec![("a", vec![(0, Ok(())), (1, Ok(()))])]);
        let expired = p.expire(100);
        assert_eq!(
            expired,
            vec![(
                "b",
                vec![
                    (1, Err(ReplicationError::RequestTimedOut)),
                    (2, Err(ReplicationError::NotLeaderOrFollower))
                ]
            )]
        );
        assert!(p.is_empty() && p.by_partition.is_empty());
    }

    #[test]
    fn nothing_to_wait_for_returns_at_once() {
        let mut p: AckPurgatory<u32, u8> = AckPurgatory::new();
        let done = p.watch(1, 0, [], [(3, Ok(()))]);
        assert_eq!(done, Some((1, vec![(3, Ok(()))])));
        assert!(p.is_empty());
    }
}
