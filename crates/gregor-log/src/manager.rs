//! `LogManager`: every partition log of a broker across its log directories.
//!
//! Keeps Kafka's per-directory bookkeeping: a `.lock` file so two processes
//! never share a directory, the `recovery-point-offset-checkpoint`,
//! `log-start-offset-checkpoint` and `replication-offset-checkpoint` files,
//! and the `.kafka_cleanshutdown` marker that lets a restart skip recovery.

use std::collections::HashMap;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{select, tick, Receiver, Sender};
use parking_lot::{Mutex, RwLock};
use tracing::{error, info, warn};

use crate::checkpoint::OffsetCheckpointFile;
use crate::clock::{Clock, SystemClock};
use crate::config::LogConfig;
use crate::disk_io;
use crate::error::{IoContext, LogError, Result};
use crate::log::{Log, LogOpenOptions};
use crate::log_dir::{lock_dir, DirHealth};
use crate::topic_partition::TopicPartition;

const CLEAN_SHUTDOWN_FILE: &str = ".kafka_cleanshutdown";
const RECOVERY_POINT_FILE: &str = "recovery-point-offset-checkpoint";
const LOG_START_FILE: &str = "log-start-offset-checkpoint";
const HIGH_WATERMARK_FILE: &str = "replication-offset-checkpoint";
const DELETE_SUFFIX: &str = "-delete";
/// Suffix of a partition directory set aside (kept, no longer served).
const STRAY_SUFFIX: &str = "-stray";

/// A log directory and the partitions it holds, by partition.
pub type DirLogs = (PathBuf, Vec<(TopicPartition, Arc<Log>)>);

/// Settings of a [`LogManager`] (Kafka's broker-level names in comments).
#[derive(Debug, Clone)]
pub struct LogManagerConfig {
    /// `log.dirs`: where partitions live.
    pub log_dirs: Vec<PathBuf>,
    /// Configuration for logs found at start-up and created without one.
    pub default_log_config: LogConfig,
    /// `num.recovery.threads.per.data.dir`: threads opening logs per
    /// directory (default: one per core, so start-up recovery is parallel).
    pub recovery_threads_per_dir: usize,
    /// How often idle logs are checked for `flush.ms`.
    pub flush_check_interval: Duration,
    /// `log.retention.check.interval.ms`.
    pub retention_check_interval: Duration,
    /// `log.flush.offset.checkpoint.interval.ms`.
    pub checkpoint_interval: Duration,
    /// Whether logs are replicated (high watermark moved by the caller) or
    /// their own source of truth (high watermark = log end).
    pub replicated: bool,
}

impl LogManagerConfig {
    /// Defaults for the given directories.
    pub fn new(log_dirs: Vec<PathBuf>) -> Self {
        Self {
            log_dirs,
            default_log_config: LogConfig::default(),
            recovery_threads_per_dir: std::thread::available_parallelism().map_or(2, |n| n.get()),
            flush_check_interval: Duration::from_millis(100),
            retention_check_interval: Duration::from_secs(300),
            checkpoint_interval: Duration::from_secs(60),
            replicated: false,
        }
    }
}

struct LogDir {
    path: PathBuf,
    _lock: File,
    health: Arc<DirHealth>,
}

struct Background {
    stop: Sender<()>,
    thread: JoinHandle<()>,
}

/// All partition logs of a broker.
pub struct LogManager {
    config: LogManagerConfig,
    clock: Arc<dyn Clock>,
    dirs: Vec<LogDir>,
    logs: RwLock<HashMap<TopicPartition, (usize, Arc<Log>)>>,
    background: Mutex<Option<Background>>,
    failures: Receiver<PathBuf>,
}

impl LogManager {
    /// Opens every log in every directory (in parallel), recovering the
    /// ones that were not shut down cleanly.
    pub fn open(config: LogManagerConfig) -> Result<Self> {
        Self::open_with_clock(config, Arc::new(SystemClock))
    }

    /// [`LogManager::open`] with an injected clock.
    pub fn open_with_clock(config: LogManagerConfig, clock: Arc<dyn Clock>) -> Result<Self> {
        if config.log_dirs.is_empty() {
            return Err(LogError::InvalidConfig("log.dirs is empty".into()));
        }
        config.default_log_config.validate()?;
        let (announce, failures) = crossbeam_channel::unbounded();
        let mut dirs = Vec::new();
        let mut logs = HashMap::new();
        let several = config.log_dirs.len() > 1;
        for (i, path) in config.log_dirs.iter().enumerate() {
            let health = Arc::new(DirHealth::new(path.clone(), announce.clone()));
            fs::create_dir_all(path).context(|| format!("creating log directory {}", path.display()))?;
            let lock = lock_dir(path)?;
            match open_dir_logs(path, &config, &clock) {
                Ok(opened) => {
                    for (tp, log) in opened {
                        if logs.contains_key(&tp) {
                            return Err(LogError::Unrecoverable {
                                dir: path.clone(),
                                reason: format!("partition {tp} exists in more than one log directory"),
                            });
                        }
                        log.attach_dir(health.clone());
                        logs.insert(tp, (i, Arc::new(log)));
                    }
                }
                // As Kafka: a directory that fails to load is offline, the
                // others serve (with one directory there is nothing to serve).
                Err(e @ (LogError::Io { .. } | LogError::BadCheckpoint { .. })) if several => {
                    health.fail(&format!("opening failed: {e}"));
                }
                Err(e) => return Err(e),
            }
            dirs.push(LogDir {
                path: path.clone(),
                _lock: lock,
                health,
            });
        }
        if dirs.iter().all(|d| d.health.failure().is_some()) {
            return Err(LogError::InvalidConfig("every log directory failed to open".into()));
        }
        info!(partitions = logs.len(), dirs = dirs.len(), "log manager opened");
        Ok(Self {
            config,
            clock,
            dirs,
            logs: RwLock::new(logs),
            background: Mutex::new(None),
            failures,
        })
    }

    /// Log directories taken offline, each announced once, in order (for
    /// the one consumer that acts on them: the broker stops serving their
    /// partitions and tells the controller). Directories that failed to
    /// open are announced too.
    pub fn dir_failures(&self) -> Receiver<PathBuf> {
        self.failures.clone()
    }

    /// Why the log directory `dir` is offline; `None` when it is online
    /// (or not one of this manager's).
    pub fn dir_failure(&self, dir: &Path) -> Option<String> {
        self.dirs
            .iter()
            .find(|d| d.path == dir)
            .and_then(|d| d.health.failure())
    }

    /// The offline log directories, with why.
    pub fn offline_dirs(&self) -> Vec<(PathBuf, String)> {
        self.dirs
            .iter()
            .filter_map(|d| d.health.failure().map(|r| (d.path.clone(), r)))
            .collect()
    }

    /// Whether every log directory is offline (Kafka then stops the broker).
    pub fn all_dirs_offline(&self) -> bool {
        self.dirs.iter().all(|d| d.health.failure().is_some())
    }

    /// Whether `tp`'s log lies in an offline directory.
    pub fn is_offline(&self, tp: &TopicPartition) -> bool {
        self.logs
            .read()
            .get(tp)
            .is_some_and(|(i, _)| self.dirs[*i].health.failure().is_some())
    }

    /// Takes the log directory `dir` offline (an I/O error met outside
    /// the logs: a checkpoint, a new partition's directory).
    pub fn fail_dir(&self, dir: &Path, reason: &str) {
        if let Some(d) = self.dirs.iter().find(|d| d.path == dir) {
            d.health.fail(reason);
        }
    }

    fn online(&self, i: usize) -> bool {
        self.dirs[i].health.failure().is_none()
    }

    /// The log of `tp`, if it exists.
    pub fn get(&self, tp: &TopicPartition) -> Option<Arc<Log>> {
        self.logs.read().get(tp).map(|(_, l)| l.clone())
    }

    /// Every partition and its log.
    pub fn logs(&self) -> Vec<(TopicPartition, Arc<Log>)> {
        self.logs
            .read()
            .iter()
            .map(|(tp, (_, l))| (tp.clone(), l.clone()))
            .collect()
    }

    /// Every log directory (`log.dirs`, in order) with the partitions it
    /// holds (what DescribeLogDirs lists).
    pub fn logs_by_dir(&self) -> Vec<DirLogs> {
        let logs = self.logs.read();
        self.dirs
            .iter()
            .enumerate()
            .map(|(i, dir)| {
                let mut mine: Vec<_> = logs
                    .iter()
                    .filter(|(_, (d, _))| *d == i)
                    .map(|(tp, (_, l))| (tp.clone(), l.clone()))
                    .collect();
                mine.sort_by(|a, b| a.0.cmp(&b.0));
                (dir.path.clone(), mine)
            })
            .collect()
    }

    /// The directory holding `tp`.
    pub fn dir_of(&self, tp: &TopicPartition) -> Option<PathBuf> {
        self.logs.read().get(tp).map(|(i, _)| self.dirs[*i].path.clone())
    }

    /// The log of `tp`, created with `config` in the log directory holding
    /// the fewest partitions when it does not exist yet.
    pub fn get_or_create(&self, tp: &TopicPartition, config: Option<LogConfig>) -> Result<Arc<Log>> {
        if let Some(log) = self.get(tp) {
            return Ok(log);
        }
        let mut logs = self.logs.write();
        if let Some((_, log)) = logs.get(tp) {
            return Ok(log.clone());
        }
        let mut counts = vec![0usize; self.dirs.len()];
        for (i, _) in logs.values() {
            counts[*i] += 1;
        }
        let Some(dir) = (0..counts.len()).filter(|&i| self.online(i)).min_by_key(|&i| counts[i]) else {
            return Err(LogError::Offline("every log directory is offline".into()));
        };
        let path = self.dirs[dir].path.join(tp.dir_name());
        let options = LogOpenOptions {
            clock: self.clock.clone(),
            clean_shutdown: true,
            high_watermark_follows_end: !self.config.replicated,
            ..Default::default()
        };
        let opened = Log::open_with(
            &path,
            config.unwrap_or_else(|| self.config.default_log_config.clone()),
            options,
        );
        if let Err(e @ LogError::Io { .. }) = &opened {
            self.dirs[dir]
                .health
                .fail(&format!("creating the log of {tp} failed: {e}"));
        }
        let log = Arc::new(opened?);
        log.attach_dir(self.dirs[dir].health.clone());
        logs.insert(tp.clone(), (dir, log.clone()));
        info!(partition = %tp, dir = %path.display(), "created log");
        Ok(log)
    }

    /// Closes and removes the log of `tp` with its files.
    pub fn delete(&self, tp: &TopicPartition) -> Result<()> {
        let doomed = self.detach(tp, DELETE_SUFFIX)?;
        fs::remove_dir_all(&doomed).context(|| format!("deleting {}", doomed.display()))?;
        info!(partition = %tp, "deleted log");
        Ok(())
    }

    /// Removes a partition's log from the manager, closes it and renames
    /// its directory `<topic>-<partition>.<nanos><suffix>`; returns the new
    /// path.
    fn detach(&self, tp: &TopicPartition, suffix: &str) -> Result<PathBuf> {
        let Some((_, log)) = self.logs.write().remove(tp) else {
            return Err(LogError::Partition(format!("no log for {tp}")));
        };
        log.close()?;
        let from = log.dir().to_path_buf();
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let to = from.with_file_name(format!("{}.{nanos}{suffix}", tp.dir_name()));
        disk_io::rename(&from, &to).context(|| format!("renaming {}", from.display()))?;
        if let Some(parent) = to.parent() {
            disk_io::sync_dir(parent).context(|| format!("syncing directory {}", parent.display()))?;
        }
        Ok(to)
    }

    /// Closes a partition's log and keeps its directory aside, renamed
    /// `<topic>-<partition>.<nanos>-stray`: no longer opened or served, not
    /// deleted (a replica of a topic deleted while this broker was down, to
    /// be removed by an operator). Returns the new path.
    pub fn set_aside(&self, tp: &TopicPartition) -> Result<PathBuf> {
        let aside = self.detach(tp, STRAY_SUFFIX)?;
        warn!(partition = %tp, dir = %aside.display(), "log set aside");
        Ok(aside)
    }

    /// Writes the recovery-point, log-start and high-watermark checkpoints
    /// of every directory.
    /// A directory whose checkpoint cannot be written goes offline (as in
    /// Kafka); the others are still written. Offline directories are
    /// skipped.
    pub fn checkpoint(&self) -> Result<()> {
        let mut first_error = None;
        for (i, dir) in self.dirs.iter().enumerate().filter(|(i, _)| self.online(*i)) {
            // Taken from the map, written after: the map's lock is not held
            // across the writes and their fsyncs.
            let mine: Vec<_> = (self.logs.read().iter())
                .filter(|(_, (d, _))| *d == i)
                .map(|(tp, (_, l))| (tp.clone(), l.clone()))
                .collect();
            let collect = |f: fn(&Log) -> u64| mine.iter().map(|(tp, l)| (tp.clone(), f(l))).collect::<Vec<_>>();
            let written = OffsetCheckpointFile::new(dir.path.join(RECOVERY_POINT_FILE))
                .write(&collect(Log::recovery_point))
                .and_then(|()| {
                    OffsetCheckpointFile::new(dir.path.join(LOG_START_FILE)).write(&collect(Log::log_start_offset))
                })
                .and_then(|()| {
                    OffsetCheckpointFile::new(dir.path.join(HIGH_WATERMARK_FILE)).write(&collect(Log::high_watermark))
                });
            if let Err(e) = written {
                if matches!(e, LogError::Io { .. }) {
                    dir.health.fail(&format!("writing a checkpoint failed: {e}"));
                }
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Runs retention on every log and forgets expired idempotent
    /// producers; returns the number of segments deleted.
    pub fn apply_retention(&self) -> usize {
        let mut deleted = 0;
        for (tp, log) in self.logs().into_iter().filter(|(_, l)| !l.is_offline()) {
            let expired = log.expire_producers();
            if expired > 0 {
                tracing::info!(partition = %tp, expired, "expired idempotent producers");
            }
            match log.apply_retention() {
                Ok(outcome) => deleted += outcome.deleted_segments,
                Err(e) => error!(partition = %tp, "retention failed: {e}"),
            }
        }
        deleted
    }

    /// Flushes the logs whose `flush.ms` has passed.
    pub fn flush_due(&self) {
        // Only the due ones are collected (runs every
        // `flush_check_interval`, over every log the broker holds).
        let due: Vec<_> = (self.logs.read().iter())
            .filter(|(_, (_, l))| l.flush_is_due() && !l.is_offline())
            .map(|(tp, (_, l))| (tp.clone(), l.clone()))
            .collect();
        for (tp, log) in due {
            if let Err(e) = log.flush_if_due() {
                error!(partition = %tp, "scheduled flush failed: {e}");
            }
        }
    }

    /// Starts the background thread that flushes by interval, applies
    /// retention and writes checkpoints. Stopped by [`LogManager::close`].
    pub fn start_background(self: &Arc<Self>) {
        let mut slot = self.background.lock();
        if slot.is_some() {
            return;
        }
        let (stop, stopped) = crossbeam_channel::bounded(1);
        let weak = Arc::downgrade(self);
        let c = &self.config;
        let intervals = (
            c.flush_check_interval,
            c.retention_check_interval,
            c.checkpoint_interval,
        );
        let thread = std::thread::Builder::new()
            .name("gregor-log-scheduler".into())
            .spawn(move || run_background(weak, stopped, intervals))
            .ok();
        match thread {
            Some(thread) => *slot = Some(Background { stop, thread }),
            None => error!("could not start the log scheduler thread"),
        }
    }

    /// Stops the background thread, closes every log (flushed, indexes
    /// trimmed), writes the checkpoints and the clean-shutdown markers. An
    /// offline directory is left as it is, without a marker: the next
    /// start recovers its logs (cutting what a failed write left torn).
    pub fn close(&self) -> Result<()> {
        if let Some(bg) = self.background.lock().take() {
            let _ = bg.stop.send(());
            let _ = bg.thread.join();
        }
        let mut first_error = None;
        let online: Vec<_> = {
            let logs = self.logs.read();
            logs.iter()
                .filter(|(_, (i, _))| self.online(*i))
                .map(|(tp, (i, l))| (tp.clone(), *i, l.clone()))
                .collect()
        };
        // A directory with a log that did not close cleanly gets no marker.
        let mut unclean = vec![false; self.dirs.len()];
        for (tp, i, log) in online {
            if let Err(e) = log.close() {
                error!(partition = %tp, "close failed: {e}");
                unclean[i] = true;
                first_error.get_or_insert(e);
            }
        }
        if let Err(e) = self.checkpoint() {
            first_error.get_or_insert(e);
        }
        for (i, dir) in self.dirs.iter().enumerate() {
            if unclean[i] || !self.online(i) {
                continue;
            }
            let marker = dir.path.join(CLEAN_SHUTDOWN_FILE);
            let written = disk_io::create(&marker)
                .and_then(|f| disk_io::sync_all(&f))
                .and_then(|_| disk_io::sync_dir(&dir.path))
                .context(|| format!("writing {}", marker.display()));
            if let Err(e) = written {
                first_error.get_or_insert(e);
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => {
                info!("log manager closed cleanly");
                Ok(())
            }
        }
    }
}

fn run_background(
    manager: Weak<LogManager>,
    stop: Receiver<()>,
    (flush, retention, checkpoint): (Duration, Duration, Duration),
) {
    let (flush_tick, retention_tick, checkpoint_tick) = (tick(flush), tick(retention), tick(checkpoint));
    loop {
        select! {
            recv(stop) -> _ => return,
            recv(flush_tick) -> _ => match manager.upgrade() {
                Some(m) => m.flush_due(),
                None => return,
            },
            recv(retention_tick) -> _ => match manager.upgrade() {
                Some(m) => { m.apply_retention(); }
                None => return,
            },
            recv(checkpoint_tick) -> _ => match manager.upgrade() {
                Some(m) => if let Err(e) = m.checkpoint() { error!("checkpoint failed: {e}") },
                None => return,
            },
        }
    }
}

/// Opens every partition directory of one log directory.
fn open_dir_logs(path: &Path, config: &LogManagerConfig, clock: &Arc<dyn Clock>) -> Result<Vec<(TopicPartition, Log)>> {
    let marker = path.join(CLEAN_SHUTDOWN_FILE);
    let clean = marker.exists();
    let as_map = |file: &str| -> Result<HashMap<TopicPartition, u64>> {
        Ok(OffsetCheckpointFile::new(path.join(file)).read()?.into_iter().collect())
    };
    // As Kafka: an unreadable recovery point means recovering every segment,
    // an unreadable log start the first segment's base (both logged, naming
    // the file); an unreadable high-watermark checkpoint is an error (Kafka
    // takes the directory offline): guessing one could expose uncommitted data.
    let or_recover_all = |file: &str, meaning: &str| {
        as_map(file).unwrap_or_else(|e| {
            warn!(dir = %path.display(), "{e}: {meaning}");
            HashMap::new()
        })
    };
    let recovery_points = or_recover_all(RECOVERY_POINT_FILE, "recovering every segment");
    let log_starts = or_recover_all(LOG_START_FILE, "log start offsets reset to the first segments");
    let high_watermarks = as_map(HIGH_WATERMARK_FILE)?;

    let mut partitions = Vec::new();
    for entry in fs::read_dir(path).context(|| format!("listing {}", path.display()))? {
        let entry = entry.context(|| format!("listing {}", path.display()))?;
        if !entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with(disk_io::TEMPORARY_SUFFIX) {
                // A checkpoint write a crash interrupted.
                disk_io::remove_file(&entry.path()).context(|| format!("removing leftover {name}"))?;
            }
            continue;
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(DELETE_SUFFIX) {
            fs::remove_dir_all(entry.path()).context(|| format!("finishing the deletion of {name}"))?;
            continue;
        }
        if name.ends_with(STRAY_SUFFIX) {
            continue;
        }
        match TopicPartition::from_dir_name(&name) {
            Some(tp) => partitions.push(tp),
            // Hidden directories belong to others (a server's coordination store).
            None if name.starts_with('.') => {}
            None => warn!(dir = %entry.path().display(), "ignoring a directory that is not a partition"),
        }
    }
    if !clean && !partitions.is_empty() {
        warn!(dir = %path.display(), "no clean shutdown marker: recovering logs");
    }

    // A pool of recovery threads fed through a channel.
    let (work, jobs) = crossbeam_channel::unbounded();
    for tp in partitions {
        let _ = work.send(tp);
    }
    drop(work);
    let results = Mutex::new(Vec::new());
    let threads = config.recovery_threads_per_dir.max(1);
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                for tp in jobs.iter() {
                    let options = LogOpenOptions {
                        clock: clock.clone(),
                        clean_shutdown: clean,
                        recovery_point: recovery_points.get(&tp).copied(),
                        log_start_offset: log_starts.get(&tp).copied(),
                        high_watermark: high_watermarks.get(&tp).copied(),
                        high_watermark_follows_end: !config.replicated,
                    };
                    let opened = Log::open_with(path.join(tp.dir_name()), config.default_log_config.clone(), options);
                    results.lock().push(opened.map(|log| (tp, log)));
                }
            });
        }
    });
    let logs = results.into_inner().into_iter().collect::<Result<Vec<_>>>()?;
    if clean {
        // Durably gone before anything is appended: a marker a crash
        // brought back would skip the recovery of what is written next.
        disk_io::remove_file(&marker)
            .and_then(|()| disk_io::sync_dir(path))
            .context(|| format!("removing {}", marker.display()))?;
    }
    Ok(logs)
}
