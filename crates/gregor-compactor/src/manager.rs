//! `LogCleaner`: the cleaner threads over every compacted log of a
//! `LogManager`, with Kafka's `cleaner-offset-checkpoint` per log directory.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};
use gregor_log::{Clock, Log, LogManager, OffsetCheckpointFile, TopicPartition};
use parking_lot::Mutex;
use tracing::{error, info};

use crate::cleaner::{clean_log, cleanable, CleanStats, Cleanable};
use crate::error::Result;
use crate::offset_map::OffsetMap;
use crate::throttle::Throttler;

/// File name of the checkpoint in each log directory.
pub const CLEANER_CHECKPOINT: &str = "cleaner-offset-checkpoint";

/// Settings, with Kafka's broker-level names.
#[derive(Debug, Clone)]
pub struct CleanerConfig {
    /// `log.cleaner.threads`.
    pub threads: usize,
    /// `log.cleaner.dedupe.buffer.size`: memory for offset maps, shared by
    /// the threads.
    pub dedupe_buffer_size: usize,
    /// `log.cleaner.io.max.bytes.per.second`.
    pub io_max_bytes_per_second: f64,
    /// `log.cleaner.backoff.ms`: pause when there is nothing to clean.
    pub backoff: Duration,
}

impl Default for CleanerConfig {
    fn default() -> Self {
        Self {
            threads: 1,
            dedupe_buffer_size: 128 << 20,
            io_max_bytes_per_second: f64::INFINITY,
            backoff: Duration::from_secs(15),
        }
    }
}

struct Shared {
    manager: Arc<LogManager>,
    config: CleanerConfig,
    clock: Arc<dyn Clock>,
    throttler: Throttler,
    paused: AtomicBool,
    /// `log.cleaner.backoff.ms` in force (a dynamic broker config).
    backoff_ms: Arc<AtomicU64>,
    in_progress: Mutex<HashSet<TopicPartition>>,
    checkpoints: Mutex<()>,
}

/// The log cleaner: threads that repeatedly clean the dirtiest log.
pub struct LogCleaner {
    shared: Arc<Shared>,
    stop: Option<Sender<()>>,
    threads: Vec<JoinHandle<()>>,
}

impl LogCleaner {
    /// A cleaner over `manager`'s logs, not running yet (see [`LogCleaner::start`]).
    pub fn new(manager: Arc<LogManager>, config: CleanerConfig, clock: Arc<dyn Clock>) -> Self {
        let throttler = Throttler::new(config.io_max_bytes_per_second);
        let backoff_ms = Arc::new(AtomicU64::new(config.backoff.as_millis() as u64));
        Self {
            shared: Arc::new(Shared {
                backoff_ms,
                manager,
                config,
                clock,
                throttler,
                paused: AtomicBool::new(false),
                in_progress: Mutex::new(HashSet::new()),
                checkpoints: Mutex::new(()),
            }),
            stop: None,
            threads: Vec::new(),
        }
    }

    /// Starts `log.cleaner.threads` threads.
    pub fn start(&mut self) {
        if self.stop.is_some() {
            return;
        }
        let (stop, stopped) = crossbeam_channel::bounded::<()>(0);
        let threads = self.shared.config.threads.max(1);
        let memory = self.shared.config.dedupe_buffer_size / threads;
        for i in 0..threads {
            let shared = self.shared.clone();
            let stopped = stopped.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("gregor-cleaner-{i}"))
                .spawn(move || run(shared, stopped, memory));
            match spawned {
                Ok(handle) => self.threads.push(handle),
                Err(e) => error!("could not start a cleaner thread: {e}"),
            }
        }
        self.stop = Some(stop);
    }

    /// The pause when nothing needs cleaning, in ms, shared with the
    /// threads: storing a new value changes it from their next pause on
    /// (`log.cleaner.backoff.ms` set dynamically).
    pub fn backoff_ms(&self) -> Arc<AtomicU64> {
        self.shared.backoff_ms.clone()
    }

    /// Stops cleaning new logs (a pass under way finishes).
    pub fn pause(&self) {
        self.shared.paused.store(true, Ordering::Release);
    }

    /// Resumes after [`LogCleaner::pause`].
    pub fn resume(&self) {
        self.shared.paused.store(false, Ordering::Release);
    }

    /// Stops the threads and waits for them (a pass under way finishes).
    pub fn stop(&mut self) {
        drop(self.stop.take());
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }

    /// Cleans the dirtiest log once, on the calling thread, with an offset
    /// map of `memory` bytes. Returns what it cleaned, if anything was due.
    pub fn clean_once(&self, memory: usize) -> Result<Option<(TopicPartition, CleanStats)>> {
        let mut map = OffsetMap::with_memory(memory);
        clean_dirtiest(&self.shared, &mut map)
    }

    /// The cleaner checkpoint of `tp`: everything below it is clean.
    pub fn checkpoint_of(&self, tp: &TopicPartition) -> u64 {
        self.shared
            .manager
            .dir_of(tp)
            .and_then(|dir| read_checkpoints(&dir).ok()?.get(tp).copied())
            .unwrap_or(0)
    }
}

impl Drop for LogCleaner {
    fn drop(&mut self) {
        self.stop();
    }
}

fn run(shared: Arc<Shared>, stopped: Receiver<()>, memory: usize) {
    let mut map = OffsetMap::with_memory(memory);
    loop {
        let worked = if shared.paused.load(Ordering::Acquire) {
            false
        } else {
            match clean_dirtiest(&shared, &mut map) {
                Ok(done) => done.is_some(),
                Err(e) => {
                    error!("cleaning failed: {e}");
                    false
                }
            }
        };
        let wait = if worked {
            Duration::ZERO
        } else {
            Duration::from_millis(shared.backoff_ms.load(Ordering::Acquire))
        };
        match stopped.recv_timeout(wait) {
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
            _ => return,
        }
    }
}

/// Picks the compacted log most in need of cleaning and cleans it.
fn clean_dirtiest(shared: &Shared, map: &mut OffsetMap) -> Result<Option<(TopicPartition, CleanStats)>> {
    let now = shared.clock.now_ms();
    let mut best: Option<(TopicPartition, Arc<Log>, Cleanable)> = None;
    {
        let mut in_progress = shared.in_progress.lock();
        let mut checkpoints: HashMap<PathBuf, HashMap<TopicPartition, u64>> = HashMap::new();
        for (tp, log) in shared.manager.logs() {
            let config = log.config();
            if !config.cleanup_policy.compacts() || in_progress.contains(&tp) {
                continue;
            }
            let Some(dir) = shared.manager.dir_of(&tp) else {
                continue;
            };
            if !checkpoints.contains_key(&dir) {
                checkpoints.insert(dir.clone(), read_checkpoints(&dir)?);
            }
            let checkpoint = checkpoints[&dir].get(&tp).copied().unwrap_or(0);
            let Some(c) = cleanable(&log, checkpoint, now)? else {
                continue;
            };
            if !(c.overdue || c.dirty_ratio() >= config.min_cleanable_dirty_ratio) {
                continue;
            }
            let better = best.as_ref().is_none_or(|(_, _, b)| {
                (c.overdue && !b.overdue) || (c.overdue == b.overdue && c.dirty_ratio() > b.dirty_ratio())
            });
            if better {
                best = Some((tp, log, c));
            }
        }
        if let Some((tp, _, _)) = &best {
            in_progress.insert(tp.clone());
        }
    }
    let Some((tp, log, target)) = best else { return Ok(None) };
    info!(partition = %tp, ratio = format!("{:.2}", target.dirty_ratio()), "cleaning");
    let result = clean_log(&log, target, map, &shared.throttler, now);
    if let Ok(stats) = &result {
        if let Some(dir) = shared.manager.dir_of(&tp) {
            let _guard = shared.checkpoints.lock();
            let mut all = read_checkpoints(&dir)?;
            all.insert(tp.clone(), stats.cleaned_up_to);
            write_checkpoints(&dir, &all)?;
        }
    }
    shared.in_progress.lock().remove(&tp);
    result.map(|stats| Some((tp, stats)))
}

fn read_checkpoints(dir: &Path) -> Result<HashMap<TopicPartition, u64>> {
    Ok(OffsetCheckpointFile::new(dir.join(CLEANER_CHECKPOINT))
        .read()?
        .into_iter()
        .collect())
}

fn write_checkpoints(dir: &Path, all: &HashMap<TopicPartition, u64>) -> Result<()> {
    let mut entries: Vec<(TopicPartition, u64)> = all.iter().map(|(tp, o)| (tp.clone(), *o)).collect();
    entries.sort();
    Ok(OffsetCheckpointFile::new(dir.join(CLEANER_CHECKPOINT)).write(&entries)?)
}
