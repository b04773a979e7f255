//! Idempotent producers across restarts and leader changes (issue #20,
//! finding 2 in docs/RELIABILITY.md): a replica that restarted (its
//! producer state rebuilt from snapshots and segments), copied its
//! leader's batches as a follower, maybe truncated a diverging tail, and
//! then became leader must answer a producer's retry of any of its last
//! batches as a duplicate with the original offsets — never append it
//! again.
//!
//! Two replicas of one partition are two `Log`s in their own directories;
//! "replication" copies the leader's bytes into the follower with
//! `append_replicated`, as the replica fetcher does; a restart drops the
//! `Log` (a crash: no close, no snapshot at the end) or closes it, and
//! opens it again with the options a broker passes (checkpointed recovery
//! point, log start and high watermark; the high watermark does not follow
//! the end).

use std::collections::{BTreeMap, BTreeSet};

use gregor_log::batch::{BatchHeader, RecordBatchBuilder};
use gregor_log::producer_state::ProducerError;
use gregor_log::{Log, LogConfig, LogError, LogOpenOptions};
use proptest::prelude::*;

fn batch(producer_id: i64, epoch: i16, first_seq: i32, records: usize) -> Vec<u8> {
    let mut b = RecordBatchBuilder::new(1_000).producer(producer_id, epoch, first_seq);
    for i in 0..records {
        b.append(Some(format!("k{i}").as_bytes()), Some(b"value"), &[], 1_000);
    }
    b.build()
}

/// Segments of a few batches: rolls, and a producer snapshot at each.
fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 700,
        ..LogConfig::default()
    }
}

/// One batch a producer had written, where the current leader's log has it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Sent {
    epoch: i16,
    first_seq: i32,
    records: usize,
    first_offset: u64,
    last_offset: u64,
}

/// One replica: its directory and its open log.
struct Replica {
    dir: tempfile::TempDir,
    log: Option<Log>,
    /// Base offsets of the batches this `Log` appended (as leader or
    /// follower) since it was opened or last truncated: their producer
    /// state came from the appends themselves, not from a rebuild (which,
    /// from a snapshot, keeps only each producer's last batch before it,
    /// as Kafka's does).
    appended_since_load: BTreeSet<u64>,
}

impl Replica {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let options = LogOpenOptions {
            high_watermark_follows_end: false,
            ..Default::default()
        };
        let log = Log::open_with(dir.path(), config(), options).unwrap();
        Self {
            dir,
            log: Some(log),
            appended_since_load: BTreeSet::new(),
        }
    }

    fn log(&self) -> &Log {
        self.log.as_ref().expect("open")
    }

    /// Stops and starts again: a crash (the `Log` dropped; recovery from
    /// `stale_checkpoint` or the last flush's recovery point) or a clean
    /// shutdown (closed: a snapshot at the log end).
    fn restart(&mut self, crash: bool, stale_checkpoint: bool) {
        let log = self.log.take().expect("open");
        let (recovery_point, log_start, hw) = (log.recovery_point(), log.log_start_offset(), log.high_watermark());
        if crash {
            drop(log);
        } else {
            log.close().unwrap();
        }
        let options = LogOpenOptions {
            clean_shutdown: !crash,
            recovery_point: Some(if stale_checkpoint { 0 } else { recovery_point }),
            log_start_offset: Some(log_start),
            high_watermark: Some(hw),
            high_watermark_follows_end: false,
            ..Default::default()
        };
        self.log = Some(Log::open_with(self.dir.path(), config(), options).unwrap());
        self.appended_since_load.clear();
    }

    /// Truncates to `offset` (a follower's diverging tail).
    fn truncate_to(&mut self, offset: u64) {
        if offset < self.log().end_offset() {
            self.log().truncate_to(offset).unwrap();
            self.appended_since_load.clear();
        }
    }
}

/// Copies up to `max_batches` of the leader's batches after the
/// follower's end into the follower, as its fetcher does, and moves the
/// high watermarks as fetches do (two replicas, both in the ISR): a fetch
/// from offset X moves the leader's to X, and the follower takes the
/// leader's — so the follower's lags its log end by its last fetch.
fn replicate(leader: &Replica, follower: &mut Replica, max_batches: usize) {
    // Fetches of up to three batches (a fetch's size limit), each appended
    // as it comes: the follower rolls its own segments.
    let mut copied = 0;
    while copied < max_batches && follower.log().end_offset() < leader.log().end_offset() {
        let fetch_offset = follower.log().end_offset();
        leader.log().set_high_watermark(fetch_offset);
        let bytes = leader.log().read_bytes(fetch_offset, 250).unwrap();
        let mut at = 0;
        while at < bytes.len() && copied < max_batches {
            let start = at;
            for _ in 0..3 {
                if at == bytes.len() || copied == max_batches {
                    break;
                }
                let header = BatchHeader::parse(&bytes[at..]).unwrap();
                follower.appended_since_load.insert(header.base_offset);
                at += header.total_size();
                copied += 1;
            }
            follower.log().append_replicated(&bytes[start..at]).unwrap();
        }
        follower.log().set_high_watermark(leader.log().high_watermark());
    }
}

/// What the leader answers a retry of `sent`: `Ok(Some((first, last)))` a
/// duplicate with those offsets, `Ok(None)` appended anew (written
/// twice!), or the refusal.
fn retry(log: &Log, producer_id: i64, sent: &Sent, leader_epoch: i32) -> Result<Option<(u64, u64)>, LogError> {
    let info = log.append(
        &mut batch(producer_id, sent.epoch, sent.first_seq, sent.records),
        leader_epoch,
    )?;
    Ok(info.duplicate.then_some((info.first_offset, info.last_offset)))
}

/// One producer's batches as the current leader's log holds them.
#[derive(Debug, Default)]
struct Producer {
    epoch: i16,
    next_seq: i32,
    sent: Vec<Sent>,
}

/// Two replicas of a partition, the leader's epoch, the producers.
struct Cluster {
    replicas: [Replica; 2],
    leader: usize,
    leader_epoch: i32,
    producers: BTreeMap<i64, Producer>,
}

impl Cluster {
    fn new() -> Self {
        Self {
            replicas: [Replica::new(), Replica::new()],
            leader: 0,
            leader_epoch: 0,
            producers: BTreeMap::new(),
        }
    }

    fn leader(&self) -> &Replica {
        &self.replicas[self.leader]
    }

    fn follower_index(&self) -> usize {
        1 - self.leader
    }

    /// The producer's next batch, appended by the leader.
    fn produce(&mut self, producer_id: i64, records: usize) {
        let p = self.producers.entry(producer_id).or_default();
        let mut bytes = batch(producer_id, p.epoch, p.next_seq, records);
        let leader = &mut self.replicas[self.leader];
        let info = leader.log().append(&mut bytes, self.leader_epoch).unwrap();
        assert!(!info.duplicate, "a new batch is no duplicate");
        leader.appended_since_load.insert(info.first_offset);
        p.sent.push(Sent {
            epoch: p.epoch,
            first_seq: p.next_seq,
            records,
            first_offset: info.first_offset,
            last_offset: info.last_offset,
        });
        p.next_seq += records as i32;
    }

    fn bump_epoch(&mut self, producer_id: i64) {
        let p = self.producers.entry(producer_id).or_default();
        p.epoch += 1;
        p.next_seq = 0;
    }

    fn replicate(&mut self, max_batches: usize) {
        let [a, b] = &mut self.replicas;
        let (leader, follower) = if self.leader == 0 { (&*a, b) } else { (&*b, a) };
        replicate(leader, follower, max_batches);
    }

    /// The follower becomes leader at the next epoch; the old leader
    /// truncates what the new one lacks (its end, as OffsetsForLeaderEpoch
    /// answers: the follower's log is a prefix of the leader's) and
    /// follows. The producers re-send what was lost, with the same
    /// sequences.
    fn fail_over(&mut self) {
        let new = self.follower_index();
        let end = self.replicas[new].log().end_offset();
        self.replicas[self.leader].truncate_to(end);
        self.leader = new;
        self.leader_epoch += 1;
        for p in self.producers.values_mut() {
            if let Some(lost) = p.sent.iter().position(|s| s.last_offset >= end) {
                if let Some(first) = p.sent[lost..].iter().find(|s| s.epoch == p.epoch) {
                    p.next_seq = first.first_seq;
                }
                p.sent.truncate(lost);
            }
        }
    }

    /// Every producer's retry of each of its last five batches (in its
    /// current epoch) on the leader: a duplicate with the original offsets
    /// for the last one and for those this `Log` appended itself since it
    /// was loaded; for the others (known before a restart, which keeps the
    /// last batch before the snapshot, as Kafka's does) a duplicate or
    /// OUT_OF_ORDER_SEQUENCE_NUMBER. Never written again. Older batches: a
    /// refusal, never an append.
    fn check_retries(&self) -> Result<(), String> {
        let leader = self.leader();
        for (&id, p) in &self.producers {
            let current: Vec<&Sent> = p.sent.iter().filter(|s| s.epoch == p.epoch).collect();
            let n = current.len();
            for (i, sent) in current.iter().enumerate() {
                let answer = retry(leader.log(), id, sent, self.leader_epoch);
                let original = (sent.first_offset, sent.last_offset);
                let recent = i + 5 >= n;
                let must_know = i + 1 == n || (recent && leader.appended_since_load.contains(&sent.first_offset));
                let ok = match &answer {
                    Ok(Some(offsets)) => *offsets == original,
                    Ok(None) => false,
                    Err(LogError::Producer(ProducerError::OutOfOrderSequence { .. })) => !must_know,
                    Err(_) => false,
                };
                if !ok {
                    return Err(format!(
                        "producer {id}: retry of batch {i} of {n} {sent:?} (must be known: {must_know}) answered {answer:?}"
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Finding 2's shape: a follower that crashed and restarted (its state
/// rebuilt from roll snapshots and segments, its checkpoint stale), that
/// copied the leader's latest batches as a follower, then became leader,
/// answers a retry of each of the producer's last five batches with the
/// original offsets.
#[test]
fn a_restarted_follower_that_becomes_leader_recognises_retries_of_what_it_copied() {
    for crash in [true, false] {
        let mut cluster = Cluster::new();
        for i in 0..60 {
            cluster.produce(1, 1 + i % 3);
            cluster.produce(2, 1);
        }
        cluster.replicate(usize::MAX);
        cluster.replicas[0].log().flush().unwrap();
        cluster.replicas[1].log().flush().unwrap();
        // More batches, copied but not flushed: the follower's tail is
        // past its recovery point when it restarts.
        for _ in 0..7 {
            cluster.produce(1, 2);
        }
        cluster.replicate(usize::MAX);
        let counts = (
            cluster.replicas[0].log().segment_count(),
            cluster.replicas[1].log().segment_count(),
        );
        assert!(counts.1 > 5, "the test needs several segments: {counts:?}");
        cluster.replicas[1].restart(crash, crash);
        cluster.check_retries_on(1).unwrap();
        // The leader's next batches, copied by the restarted follower.
        for i in 0..6 {
            cluster.produce(1, 1 + i % 2);
        }
        cluster.replicate(usize::MAX);
        cluster.fail_over();
        assert_eq!(cluster.leader, 1);
        cluster.check_retries().unwrap();
        // The last five in particular, and none is written again.
        let end = cluster.leader().log().end_offset();
        let p = &cluster.producers[&1];
        for sent in &p.sent[p.sent.len() - 5..] {
            assert_eq!(
                retry(cluster.leader().log(), 1, sent, cluster.leader_epoch).unwrap(),
                Some((sent.first_offset, sent.last_offset)),
                "crash: {crash}"
            );
        }
        assert_eq!(cluster.leader().log().end_offset(), end);
    }
}

/// The same after a truncation: the restarted replica had led, written
/// batches nobody copied, then followed — truncating them and copying the
/// new leader's (the producer's re-sends of the same sequences, at other
/// offsets) — and leads again.
#[test]
fn retries_are_recognised_after_truncation_and_copy_as_follower() {
    for restart_after_truncation in [false, true] {
        let mut cluster = Cluster::new();
        for _ in 0..30 {
            cluster.produce(1, 2);
        }
        cluster.replicate(usize::MAX);
        for _ in 0..4 {
            cluster.produce(1, 1); // never copied
        }
        cluster.replicas[1].restart(true, false);
        cluster.fail_over(); // replica 0 truncates its 4 batches
        assert_eq!(cluster.leader, 1);
        // Another producer first: the re-sends land at other offsets than
        // the truncated batches had.
        cluster.produce(2, 1);
        cluster.produce(1, 1);
        cluster.produce(1, 1);
        if restart_after_truncation {
            cluster.replicas[0].restart(true, true);
        }
        cluster.replicate(usize::MAX);
        cluster.fail_over();
        assert_eq!(cluster.leader, 0);
        cluster.check_retries().unwrap();
        let p = &cluster.producers[&1];
        for sent in &p.sent[p.sent.len() - 5..] {
            assert_eq!(
                retry(cluster.leader().log(), 1, sent, cluster.leader_epoch).unwrap(),
                Some((sent.first_offset, sent.last_offset)),
                "restarted after the truncation: {restart_after_truncation}"
            );
        }
    }
}

impl Cluster {
    /// [`Cluster::check_retries`] as if replica `index` led.
    fn check_retries_on(&mut self, index: usize) -> Result<(), String> {
        let leader = self.leader;
        self.leader = index;
        let result = self.check_retries();
        self.leader = leader;
        result
    }
}

/// One step of the property test.
#[derive(Debug, Clone)]
enum Op {
    Produce {
        producer: i64,
        records: usize,
    },
    BumpEpoch {
        producer: i64,
    },
    Replicate {
        batches: usize,
    },
    Restart {
        leader: bool,
        crash: bool,
        stale_checkpoint: bool,
    },
    Roll {
        leader: bool,
    },
    Flush {
        leader: bool,
    },
    FailOver,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (1i64..3, 1usize..4).prop_map(|(producer, records)| Op::Produce { producer, records }),
        1 => (1i64..3).prop_map(|producer| Op::BumpEpoch { producer }),
        4 => (0usize..8).prop_map(|batches| Op::Replicate { batches }),
        2 => (any::<bool>(), any::<bool>(), any::<bool>())
            .prop_map(|(leader, crash, stale_checkpoint)| Op::Restart { leader, crash, stale_checkpoint }),
        1 => any::<bool>().prop_map(|leader| Op::Roll { leader }),
        1 => any::<bool>().prop_map(|leader| Op::Flush { leader }),
        2 => Just(Op::FailOver),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, failure_persistence: None, ..ProptestConfig::default() })]

    /// After any sequence of appends, copies, restarts (crash or clean,
    /// with a stale checkpoint or not), rolls, flushes, leader changes
    /// (with truncation) and epoch bumps, the leader answers a retry of
    /// any of a producer's batches of its current epoch as
    /// [`Cluster::check_retries`] requires: the last one, and those of the
    /// last five it appended since it was loaded, as duplicates with their
    /// original offsets; never an append.
    #[test]
    fn retries_of_the_last_batches_are_duplicates_across_restarts_and_leader_changes(
        ops in proptest::collection::vec(op(), 1..70),
    ) {
        let mut cluster = Cluster::new();
        for op in ops {
            match op {
                Op::Produce { producer, records } => cluster.produce(producer, records),
                Op::BumpEpoch { producer } => cluster.bump_epoch(producer),
                Op::Replicate { batches } => cluster.replicate(batches),
                Op::Restart { leader, crash, stale_checkpoint } => {
                    let i = if leader { cluster.leader } else { cluster.follower_index() };
                    cluster.replicas[i].restart(crash, stale_checkpoint);
                }
                Op::Roll { leader } => {
                    let i = if leader { cluster.leader } else { cluster.follower_index() };
                    cluster.replicas[i].log().roll().unwrap();
                }
                Op::Flush { leader } => {
                    let i = if leader { cluster.leader } else { cluster.follower_index() };
                    cluster.replicas[i].log().flush().unwrap();
                }
                Op::FailOver => cluster.fail_over(),
            }
            let checked = cluster.check_retries();
            prop_assert!(checked.is_ok(), "{}", checked.unwrap_err());
        }
    }
}
