//! Fetch sessions (KIP-227): a fetcher that sends the same partitions
//! again and again opens a session once (a full fetch at epoch 0) and then
//! sends only what changed — partitions added or moved on, partitions
//! forgotten — while the broker answers only partitions with something new
//! (records, an error, a moved high watermark or log start).
//!
//! [`FetchSessions`] is the broker's cache of them, sans IO: time comes in
//! as an argument. Kafka's rules: at most
//! `max.incremental.fetch.session.cache.slots` sessions; when full, a
//! session idle for 2 minutes makes room first, then the weakest session
//! (a consumer's before a follower's, a smaller before a larger) if the
//! new one outranks it; otherwise the fetch carries on without a session
//! (session id 0: the client keeps sending full fetches).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use indexmap::IndexMap;
use parking_lot::Mutex;

/// Kafka's `min.incremental.fetch.session.eviction.ms`.
const EVICTION_MS: i64 = 120_000;
/// The epoch that ends a session (or asks for none).
pub const FINAL_EPOCH: i32 = -1;
/// The epoch that opens a session.
pub const INITIAL_EPOCH: i32 = 0;

/// A partition in a session: a topic's id and name, and the index.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionPartition {
    /// The topic's name (shared: a session of thousands of partitions
    /// hands its partitions out on every fetch).
    pub topic: Arc<str>,
    /// The partition index.
    pub partition: i32,
}

/// What the fetcher asked of one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FetchPosition {
    /// Where to read from.
    pub fetch_offset: i64,
    /// At most this many bytes of it.
    pub partition_max_bytes: i32,
    /// The leader epoch the fetcher knows (-1: none).
    pub current_leader_epoch: i32,
    /// A follower's log start offset (-1: not said).
    pub log_start_offset: i64,
}

/// What the broker last told the fetcher of one partition, to tell only
/// changes next time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PartitionMarks {
    /// The high watermark sent.
    pub high_watermark: i64,
    /// The log start offset sent.
    pub log_start_offset: i64,
}

/// A fetch request's session fields and partitions.
#[derive(Debug, Clone)]
pub struct SessionRequest {
    /// `session_id` (0: none).
    pub session_id: i32,
    /// `session_epoch`.
    pub epoch: i32,
    /// The partitions the request names, with what it asks of them.
    pub partitions: Vec<(SessionPartition, FetchPosition)>,
    /// `forgotten_topics_data`: partitions to drop from the session.
    pub forgotten: Vec<SessionPartition>,
    /// A follower's fetch (its sessions outrank consumers').
    pub privileged: bool,
}

/// How to serve a fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionFetch {
    /// Read every partition of `partitions` and answer all of them with
    /// `session_id` (0: no session was opened).
    Full {
        /// The session opened (0: none).
        session_id: i32,
        /// The partitions to read, in request order.
        partitions: Vec<(SessionPartition, FetchPosition)>,
    },
    /// Read every partition of the session; answer only those that
    /// changed (see [`FetchSessions::changed`]).
    Incremental {
        /// The session.
        session_id: i32,
        /// The session's partitions, in the order they joined it.
        partitions: Vec<(SessionPartition, FetchPosition)>,
    },
}

/// Why a fetch's session fields were refused (the whole fetch fails).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    /// FETCH_SESSION_ID_NOT_FOUND: the session is gone (evicted, or this
    /// broker restarted).
    #[error("fetch session id not found")]
    NotFound,
    /// INVALID_FETCH_SESSION_EPOCH: not the epoch the session expects.
    #[error("invalid fetch session epoch")]
    InvalidEpoch,
}

struct Session {
    /// The epoch the next request must carry.
    next_epoch: i32,
    privileged: bool,
    last_used_ms: i64,
    /// In the order they joined, found by partition in O(1): a
    /// follower's session holds every partition it follows here.
    partitions: IndexMap<SessionPartition, (FetchPosition, Option<PartitionMarks>)>,
}

struct Cache {
    slots: usize,
    next_id: i32,
    sessions: HashMap<i32, Session>,
}

/// The broker's fetch sessions.
pub struct FetchSessions {
    cache: Mutex<Cache>,
}

impl FetchSessions {
    /// A cache of at most `slots` sessions
    /// (`max.incremental.fetch.session.cache.slots`).
    pub fn new(slots: usize) -> Self {
        Self {
            cache: Mutex::new(Cache {
                slots,
                next_id: 1,
                sessions: HashMap::new(),
            }),
        }
    }

    /// Sessions held.
    pub fn len(&self) -> usize {
        self.cache.lock().sessions.len()
    }

    /// True when none is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Applies a fetch request's session fields: opens, continues or
    /// closes a session, and says what to read and answer.
    pub fn begin(&self, request: SessionRequest, now_ms: i64) -> Result<SessionFetch, SessionError> {
        let mut cache = self.cache.lock();
        let SessionRequest {
            session_id,
            epoch,
            partitions,
            forgotten,
            privileged,
        } = request;
        if epoch == FINAL_EPOCH || epoch == INITIAL_EPOCH {
            if session_id != 0 {
                cache.sessions.remove(&session_id);
            }
            let opened = if epoch == INITIAL_EPOCH {
                cache.open(&partitions, privileged, now_ms)
            } else {
                0
            };
            return Ok(SessionFetch::Full {
                session_id: opened,
                partitions,
            });
        }
        let session = cache.sessions.get_mut(&session_id).ok_or(SessionError::NotFound)?;
        if epoch != session.next_epoch {
            return Err(SessionError::InvalidEpoch);
        }
        session.next_epoch = if epoch == i32::MAX { 1 } else { epoch + 1 };
        session.last_used_ms = now_ms;
        if !forgotten.is_empty() {
            let forgotten: HashSet<&SessionPartition> = forgotten.iter().collect();
            session.partitions.retain(|p, _| !forgotten.contains(p));
        }
        for (partition, position) in partitions {
            session.partitions.entry(partition).or_insert((position, None)).0 = position;
        }
        Ok(SessionFetch::Incremental {
            session_id,
            partitions: session.partitions.iter().map(|(p, (f, _))| (p.clone(), *f)).collect(),
        })
    }

    /// Whether an incremental answer must carry `partition` — it has
    /// records or an error, or its marks moved since last told — and if
    /// so records the marks as told. Partitions of a full answer are all
    /// carried; their marks are recorded here too.
    pub fn changed(
        &self,
        session_id: i32,
        partition: &SessionPartition,
        marks: PartitionMarks,
        has_records_or_error: bool,
    ) -> bool {
        let mut cache = self.cache.lock();
        let Some(session) = cache.sessions.get_mut(&session_id) else {
            return true;
        };
        let Some((_, told)) = session.partitions.get_mut(partition) else {
            return true;
        };
        let moved = *told != Some(marks);
        *told = Some(marks);
        moved || has_records_or_error
    }
}

impl Cache {
    /// Opens a session for `partitions` if there is room (making some as
    /// Kafka does); returns its id, or 0.
    fn open(&mut self, partitions: &[(SessionPartition, FetchPosition)], privileged: bool, now_ms: i64) -> i32 {
        if self.slots == 0 {
            return 0;
        }
        if self.sessions.len() >= self.slots && !self.evict_for(privileged, partitions.len(), now_ms) {
            return 0;
        }
        let id = self.fresh_id();
        self.sessions.insert(
            id,
            Session {
                next_epoch: 1,
                privileged,
                last_used_ms: now_ms,
                partitions: partitions.iter().map(|(p, f)| (p.clone(), (*f, None))).collect(),
            },
        );
        id
    }

    /// Evicts the least recently used stale session, else the weakest one
    /// if the new session (`privileged`, `size`) outranks it.
    fn evict_for(&mut self, privileged: bool, size: usize, now_ms: i64) -> bool {
        let stale = self
            .sessions
            .iter()
            .filter(|(_, s)| now_ms - s.last_used_ms > EVICTION_MS)
            .min_by_key(|(_, s)| s.last_used_ms)
            .map(|(id, _)| *id);
        let victim = stale.or_else(|| {
            let (id, weakest) = self
                .sessions
                .iter()
                .min_by_key(|(id, s)| (s.privileged, s.partitions.len(), s.last_used_ms, **id))?;
            ((privileged, size) > (weakest.privileged, weakest.partitions.len())).then_some(*id)
        });
        match victim {
            Some(id) => {
                self.sessions.remove(&id);
                true
            }
            None => false,
        }
    }

    /// A positive id not in use.
    fn fresh_id(&mut self) -> i32 {
        loop {
            let id = self.next_id;
            self.next_id = if self.next_id == i32::MAX { 1 } else { self.next_id + 1 };
            if !self.sessions.contains_key(&id) {
                return id;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(topic: &str, partition: i32) -> SessionPartition {
        SessionPartition {
            topic: topic.into(),
            partition,
        }
    }

    fn at(offset: i64) -> FetchPosition {
        FetchPosition {
            fetch_offset: offset,
            partition_max_bytes: 1 << 20,
            current_leader_epoch: -1,
            log_start_offset: -1,
        }
    }

    fn request(session_id: i32, epoch: i32, partitions: &[(&str, i32, i64)]) -> SessionRequest {
        SessionRequest {
            session_id,
            epoch,
            partitions: partitions.iter().map(|(t, p, o)| (part(t, *p), at(*o))).collect(),
            forgotten: Vec::new(),
            privileged: false,
        }
    }

    fn opened(fetch: SessionFetch) -> i32 {
        match fetch {
            SessionFetch::Full { session_id, .. } => session_id,
            other => panic!("not a full fetch: {other:?}"),
        }
    }

    #[test]
    fn a_session_adds_updates_and_forgets_partitions_by_epoch() {
        let sessions = FetchSessions::new(10);
        let id = opened(sessions.begin(request(0, 0, &[("a", 0, 0), ("a", 1, 0)]), 0).unwrap());
        assert!(id > 0);
        // Epoch 1: one partition moved on, one added, none forgotten.
        let next = sessions.begin(request(id, 1, &[("a", 1, 7), ("b", 0, 3)]), 10).unwrap();
        let SessionFetch::Incremental { partitions, .. } = next else {
            panic!("{next:?}")
        };
        let offsets: Vec<_> = partitions
            .iter()
            .map(|(p, f)| (&*p.topic, p.partition, f.fetch_offset))
            .collect();
        assert_eq!(offsets, vec![("a", 0, 0), ("a", 1, 7), ("b", 0, 3)]);
        // Epoch 2 forgets a-0.
        let mut forget = request(id, 2, &[]);
        forget.forgotten = vec![part("a", 0)];
        let SessionFetch::Incremental { partitions, .. } = sessions.begin(forget, 20).unwrap() else {
            panic!()
        };
        assert_eq!(partitions.len(), 2);
        // A repeated or skipped epoch is refused; an unknown id too.
        assert_eq!(sessions.begin(request(id, 2, &[]), 30), Err(SessionError::InvalidEpoch));
        assert_eq!(sessions.begin(request(id, 5, &[]), 30), Err(SessionError::InvalidEpoch));
        assert_eq!(sessions.begin(request(id + 1, 1, &[]), 30), Err(SessionError::NotFound));
        // The final epoch closes it: a full fetch without a session.
        assert_eq!(
            opened(sessions.begin(request(id, FINAL_EPOCH, &[("a", 1, 7)]), 40).unwrap()),
            0
        );
        assert!(sessions.is_empty());
    }

    #[test]
    fn only_changes_are_answered_incrementally() {
        let sessions = FetchSessions::new(10);
        let id = opened(sessions.begin(request(0, 0, &[("a", 0, 0)]), 0).unwrap());
        let marks = PartitionMarks {
            high_watermark: 5,
            log_start_offset: 0,
        };
        assert!(sessions.changed(id, &part("a", 0), marks, false), "first told");
        assert!(!sessions.changed(id, &part("a", 0), marks, false), "nothing new");
        assert!(sessions.changed(id, &part("a", 0), marks, true), "records");
        let moved = PartitionMarks {
            high_watermark: 6,
            ..marks
        };
        assert!(
            sessions.changed(id, &part("a", 0), moved, false),
            "the high watermark moved"
        );
    }

    #[test]
    fn a_full_cache_makes_room_as_kafka_does() {
        let sessions = FetchSessions::new(2);
        let small = opened(sessions.begin(request(0, 0, &[("a", 0, 0)]), 0).unwrap());
        let big = opened(
            sessions
                .begin(request(0, 0, &[("a", 0, 0), ("a", 1, 0), ("a", 2, 0)]), 0)
                .unwrap(),
        );
        // A new small consumer session does not outrank either: no session.
        assert_eq!(opened(sessions.begin(request(0, 0, &[("b", 0, 0)]), 10).unwrap()), 0);
        // A larger one evicts the smallest.
        let larger = opened(sessions.begin(request(0, 0, &[("c", 0, 0), ("c", 1, 0)]), 20).unwrap());
        assert!(larger > 0);
        assert_eq!(sessions.begin(request(small, 1, &[]), 30), Err(SessionError::NotFound));
        // A follower's session outranks consumers'.
        let mut follower = request(0, 0, &[("d", 0, 0)]);
        follower.privileged = true;
        assert!(opened(sessions.begin(follower, 40).unwrap()) > 0);
        // After two idle minutes any newcomer gets the stale session's slot.
        let late = opened(
            sessions
                .begin(request(0, 0, &[("e", 0, 0)]), 40 + EVICTION_MS + 1)
                .unwrap(),
        );
        assert!(late > 0);
        assert!(sessions.len() <= 2);
        let _ = big;
    }
}
