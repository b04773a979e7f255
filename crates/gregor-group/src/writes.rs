//! Writes to `__consumer_offsets`, one group at a time in order: a group
//! has at most one write in flight; later ones wait in line and go out
//! (as [`Output::Persist`]) when the one before has been acknowledged.
//! So the log holds a group's records in the order the state machine
//! decided them, and their effects are applied in that order too, however
//! the driver schedules its IO.

use std::collections::{BTreeMap, VecDeque};

use crate::consumer::records::RecordKey;
use crate::consumer::ConsumerHeartbeatAnswer;
use crate::offset_cache::PartitionOffsets;
use crate::outputs::{Output, Persist, PersistId, RequestId, Response};
use crate::protocol::{GroupError, StoredRecord, TxnProducer};

/// What to do once a write has been acknowledged (or refused).
#[derive(Debug)]
pub(crate) enum AfterWrite {
    /// OffsetCommit: cache the offsets, then answer.
    Commit {
        /// The OffsetCommit waiting.
        request: RequestId,
        /// The offsets written.
        offsets: PartitionOffsets,
    },
    /// TxnOffsetCommit: the offsets wait for the producer's marker, then
    /// answer.
    TxnCommit {
        /// The TxnOffsetCommit waiting.
        request: RequestId,
        /// The transaction's producer.
        producer: TxnProducer,
        /// The offsets written.
        offsets: PartitionOffsets,
    },
    /// The leader's SyncGroup: the group becomes stable and every member
    /// gets its assignment.
    Assignment {
        /// The generation the assignment is for.
        generation: i32,
        /// Member id → assignment.
        assignments: BTreeMap<String, Vec<u8>>,
    },
    /// The metadata of a group left empty (nobody waits).
    Emptied,
    /// Offsets past retention removed.
    Expiry {
        /// The partitions removed.
        partitions: Vec<(String, i32)>,
    },
    /// The metadata of an empty group without offsets tombstoned.
    Retire {
        /// The generation the group was in.
        generation: i32,
    },
    /// DeleteGroups: offsets and metadata tombstoned, then answer.
    Delete {
        /// The DeleteGroups waiting.
        request: RequestId,
        /// The partitions removed.
        partitions: Vec<(String, i32)>,
        /// The generation the group was in, if it was known.
        generation: Option<i32>,
    },
    /// OffsetDelete: offsets tombstoned, then answer.
    DeleteOffsets {
        /// The OffsetDelete waiting.
        request: RequestId,
        /// The partitions removed.
        partitions: Vec<(String, i32)>,
        /// The answer once they are: one result per partition asked for.
        results: Vec<((String, i32), Result<(), GroupError>)>,
    },
    /// A consumer group's records (KIP-848): the change is applied
    /// already; the heartbeat, if one waits, is answered.
    Consumer {
        /// The ConsumerGroupHeartbeat waiting, if any.
        request: Option<RequestId>,
        /// Its answer once the records are stored.
        answer: ConsumerHeartbeatAnswer,
        /// The keys it writes, to write again if it is refused.
        keys: std::collections::BTreeSet<RecordKey>,
    },
}

impl AfterWrite {
    /// The request waiting on the write, if any, and its answer when the
    /// write ended with `result`.
    pub(crate) fn answer(&self, result: Result<(), GroupError>) -> Option<(RequestId, Response)> {
        match self {
            Self::Commit { request, .. } | Self::TxnCommit { request, .. } => {
                Some((*request, Response::Commit(result)))
            }
            Self::Delete { request, .. } => Some((*request, Response::Delete(result))),
            Self::DeleteOffsets { request, results, .. } => {
                Some((*request, Response::DeleteOffsets(result.map(|()| results.clone()))))
            }
            Self::Consumer {
                request: Some(request),
                answer,
                ..
            } => Some((*request, Response::ConsumerHeartbeat(result.map(|()| answer.clone())))),
            _ => None,
        }
    }

    /// The transactional producer the write is for, if any.
    fn producer(&self) -> Option<TxnProducer> {
        match self {
            Self::TxnCommit { producer, .. } => Some(*producer),
            _ => None,
        }
    }

    /// Whether it commits an offset of `partition`.
    fn commits(&self, partition: &(String, i32)) -> bool {
        match self {
            Self::Commit { offsets, .. } | Self::TxnCommit { offsets, .. } => {
                offsets.iter().any(|(p, _)| p == partition)
            }
            _ => false,
        }
    }
}

/// A write decided by the state machine.
struct Write {
    id: PersistId,
    records: Vec<StoredRecord>,
    then: AfterWrite,
}

/// One group's line of writes.
#[derive(Default)]
struct Line {
    /// The write out for IO, and whether its group was unloaded since
    /// (then its effects no longer apply).
    in_flight: Option<(PersistId, AfterWrite, bool)>,
    /// Writes waiting for it, oldest first.
    waiting: VecDeque<Write>,
}

/// A write that completed: its group, what it was for, and whether the
/// group was unloaded while it was out.
pub(crate) struct Completed {
    /// The group written for.
    pub(crate) group: String,
    /// What to do now.
    pub(crate) then: AfterWrite,
    /// The group was unloaded (or reloaded) meanwhile.
    pub(crate) orphaned: bool,
}

/// Every group's line of writes.
#[derive(Default)]
pub(crate) struct Writes {
    next_id: u64,
    lines: BTreeMap<String, Line>,
}

impl Writes {
    /// Queues a write for `group`; it goes out now if the group has none
    /// in flight.
    pub(crate) fn enqueue(&mut self, group: &str, records: Vec<StoredRecord>, then: AfterWrite, out: &mut Vec<Output>) {
        self.next_id += 1;
        let write = Write {
            id: PersistId(self.next_id),
            records,
            then,
        };
        let line = self.lines.entry(group.to_string()).or_default();
        line.waiting.push_back(write);
        if line.in_flight.is_none() {
            Self::send_next(group, line, out);
        }
    }

    fn send_next(group: &str, line: &mut Line, out: &mut Vec<Output>) {
        if let Some(write) = line.waiting.pop_front() {
            out.push(Output::Persist(Persist {
                id: write.id,
                group: group.to_string(),
                records: write.records,
                producer: write.then.producer(),
            }));
            line.in_flight = Some((write.id, write.then, false));
        }
    }

    /// The write `id` is done: returns what it was for (`None` for an id
    /// not in flight) and sends the group's next write, if any — after
    /// taking out of the line the waiting writes `dependent(done,
    /// waiting)` picks (returned, never sent: writes decided on the state
    /// a refused one was to store).
    pub(crate) fn complete(
        &mut self,
        id: PersistId,
        dependent: impl Fn(&AfterWrite, &AfterWrite) -> bool,
        out: &mut Vec<Output>,
    ) -> Option<(Completed, Vec<AfterWrite>)> {
        let group = self
            .lines
            .iter()
            .find(|(_, line)| line.in_flight.as_ref().is_some_and(|(i, _, _)| *i == id))
            .map(|(g, _)| g.clone())?;
        let line = self.lines.get_mut(&group)?;
        let (_, then, orphaned) = line.in_flight.take()?;
        let mut taken = Vec::new();
        let mut kept = VecDeque::new();
        for write in line.waiting.drain(..) {
            if dependent(&then, &write.then) {
                taken.push(write.then);
            } else {
                kept.push_back(write);
            }
        }
        line.waiting = kept;
        Self::send_next(&group, line, out);
        if line.in_flight.is_none() {
            self.lines.remove(&group);
        }
        Some((Completed { group, then, orphaned }, taken))
    }

    /// Whether `group` has writes in flight or waiting.
    pub(crate) fn busy(&self, group: &str) -> bool {
        self.lines.contains_key(group)
    }

    /// Whether a commit of `group`'s `partition` is being written or
    /// waits to be.
    pub(crate) fn commit_under_way(&self, group: &str, partition: &(String, i32)) -> bool {
        self.lines.get(group).is_some_and(|line| {
            line.in_flight.iter().any(|(_, then, _)| then.commits(partition))
                || line.waiting.iter().any(|w| w.then.commits(partition))
        })
    }

    /// The groups `owned` picks are unloaded: their waiting writes are
    /// dropped (returned, for their requests to be answered) and the one
    /// in flight will complete without effect.
    pub(crate) fn abandon(&mut self, owned: &impl Fn(&str) -> bool) -> Vec<AfterWrite> {
        let mut dropped = Vec::new();
        for (_, line) in self.lines.iter_mut().filter(|(g, _)| owned(g)) {
            dropped.extend(line.waiting.drain(..).map(|w| w.then));
            if let Some((_, _, orphaned)) = line.in_flight.as_mut() {
                *orphaned = true;
            }
        }
        dropped
    }
}
