//! Opening a log: finding its segments and recovering after a crash.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64};
use std::sync::Arc;

use parking_lot::{Condvar, Mutex, RwLock};
use tracing::{info, warn};

use super::{AppendState, Log, LogOpenOptions};
use crate::batch::{BatchHeader, BATCH_HEADER_SIZE};
use crate::config::LogConfig;
use crate::epoch_cache::LeaderEpochCache;
use crate::error::{IoContext, LogError, Result};
use crate::file_names::file_name;
use crate::region::FileWindow;
use crate::segment::Segment;

/// Suffixes of files that a crash can leave behind mid-operation.
const LEFTOVER_SUFFIXES: [&str; 3] = [".deleted", ".cleaned", ".tmp"];

impl Log {
    /// Opens the log in `dir` with what the caller's checkpoints say.
    pub fn open_with(dir: impl AsRef<Path>, config: LogConfig, options: LogOpenOptions) -> Result<Self> {
        config.validate()?;
        let dir = dir.as_ref().to_path_buf();
        // The partition directory's own name must be durable before any
        // data in it counts as such (a flush syncs the directory, not its parent).
        crate::disk_io::create_dir_durably(&dir).context(|| format!("creating log directory {}", dir.display()))?;
        let now = options.clock.now_ms();
        let bases = scan_directory(&dir)?;

        let mut segments = BTreeMap::new();
        for &base in &bases {
            let missing_index =
                !dir.join(file_name(base, ".index")).exists() || !dir.join(file_name(base, ".timeindex")).exists();
            let segment =
                Segment::open(&dir, base, now).context(|| format!("opening segment {base} in {}", dir.display()))?;
            segments.insert(base, (Arc::new(segment), missing_index));
        }

        let mut recovered_from = None;
        if options.clean_shutdown {
            for (base, (segment, missing_index)) in &segments {
                if *missing_index || !segment.indexes_are_sane() {
                    warn!(dir = %dir.display(), base, "rebuilding the indexes of a segment");
                    segment
                        .recover(&config)
                        .context(|| format!("rebuilding indexes of segment {base}"))?;
                }
            }
        } else {
            recovered_from = recover_segments(&dir, &config, &mut segments, options.recovery_point.unwrap_or(0))?;
        }

        let mut segments: BTreeMap<u64, Arc<Segment>> = segments.into_iter().map(|(b, (s, _))| (b, s)).collect();
        if segments.is_empty() {
            let base = options.log_start_offset.unwrap_or(0);
            let segment = Segment::create(&dir, base, &config, now)
                .context(|| format!("creating the first segment in {}", dir.display()))?;
            segments.insert(base, Arc::new(segment));
        }
        let (&first_base, _) = segments.iter().next().expect("at least one segment");
        let active = segments.values().next_back().expect("at least one segment").clone();
        active
            .load_tail()
            .context(|| format!("reading the tail of {}", dir.display()))?;
        active
            .make_active(&config)
            .context(|| format!("preparing the active segment of {}", dir.display()))?;
        let end_offset = active.next_offset();

        let log_start_offset = options.log_start_offset.unwrap_or(0).max(first_base).min(end_offset);
        let high_watermark = match options.high_watermark {
            _ if options.high_watermark_follows_end => end_offset,
            Some(hw) => hw.clamp(log_start_offset, end_offset),
            None => log_start_offset,
        };
        let mut epoch_cache = LeaderEpochCache::load(&dir)?;
        epoch_cache.truncate_from_end(end_offset)?;
        epoch_cache.truncate_from_start(log_start_offset)?;

        let recovered = recovered_from.is_some();
        if recovered {
            // What recovery accepted is made durable before it counts.
            for segment in segments.values() {
                segment
                    .flush()
                    .context(|| format!("flushing recovered {}", dir.display()))?;
            }
        }
        let recovery_point = if options.clean_shutdown || recovered {
            end_offset
        } else {
            options.recovery_point.unwrap_or(0).min(end_offset)
        };

        let ordered: Vec<Arc<Segment>> = segments.values().cloned().collect();
        let loaded = super::producers::load(
            &dir,
            &ordered,
            log_start_offset,
            end_offset,
            high_watermark,
            recovered_from,
            now,
        )?;
        if recovered {
            // The rebuilt transaction indexes, as durable as their segments.
            for segment in &ordered {
                segment
                    .txn_index()
                    .sync()
                    .context(|| format!("flushing recovered {}", dir.display()))?;
            }
        }
        let mut txns = loaded.txns;
        txns.on_high_watermark(high_watermark);
        let first_unstable = txns.first_unstable_offset().unwrap_or(u64::MAX);
        Ok(Self {
            dir,
            config: RwLock::new(Arc::new(config)),
            clock: options.clock,
            segments: RwLock::new(segments),
            append_lock: Mutex::new(AppendState {
                unflushed_records: 0,
                producers: loaded.producers,
                verifications: Default::default(),
            }),
            txns: Mutex::new(txns),
            first_unstable: AtomicU64::new(first_unstable),
            end_offset: AtomicU64::new(end_offset),
            log_start_offset: AtomicU64::new(log_start_offset),
            high_watermark: AtomicU64::new(high_watermark),
            high_watermark_follows_end: options.high_watermark_follows_end,
            recovery_point: AtomicU64::new(recovery_point),
            last_flush_ms: AtomicI64::new(now),
            epoch_cache: Mutex::new(epoch_cache),
            flushing: Mutex::new(false),
            unsynced_files: Mutex::new(Vec::new()),
            flush_done: Condvar::new(),
            failure: Mutex::new(None),
            dir_health: std::sync::OnceLock::new(),
            closed: AtomicBool::new(false),
        })
    }
}

/// Lists the base offsets of the segments in `dir`, removing files a crash
/// left half-done and index files whose log file is gone.
fn scan_directory(dir: &Path) -> Result<Vec<u64>> {
    let entries = fs::read_dir(dir).context(|| format!("listing {}", dir.display()))?;
    let mut bases = Vec::new();
    let mut orphans = Vec::new();
    let mut swaps = Vec::new();
    for entry in entries {
        let entry = entry.context(|| format!("listing {}", dir.display()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if LEFTOVER_SUFFIXES.iter().any(|s| name.ends_with(s)) {
            crate::disk_io::remove_file(&entry.path()).context(|| format!("removing leftover {name}"))?;
            continue;
        }
        if let Some(stem) = name.strip_suffix(".log.swap") {
            if let Some(base) = parse_base_offset(stem) {
                swaps.push(base);
            }
            continue;
        }
        if name.ends_with(".swap") {
            continue; // index swaps move with their log swap
        }
        let Some((stem, ext)) = name.split_once('.') else {
            continue;
        };
        let Some(base) = parse_base_offset(stem) else { continue };
        match ext {
            "log" => bases.push(base),
            "index" | "timeindex" | "txnindex" | "end" => orphans.push((base, entry.path())),
            _ => {}
        }
    }
    for swap in swaps {
        complete_swap(dir, swap, &mut bases)?;
    }
    for (base, path) in orphans {
        if !bases.contains(&base) {
            match crate::disk_io::remove_file(&path) {
                // Already gone with the segments a completed swap replaced.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                other => other.context(|| format!("removing orphan index {}", path.display()))?,
            }
        }
    }
    bases.sort_unstable();
    Ok(bases)
}

/// Finishes a segment swap a crash interrupted: the `.swap` segment
/// replaces every live segment whose base offset lies in the offsets it
/// covers, then takes its live name.
fn complete_swap(dir: &Path, base: u64, bases: &mut Vec<u64>) -> Result<()> {
    let swap_log = dir.join(file_name(base, ".log.swap"));
    let fail = |e: std::io::Error| LogError::Io {
        context: format!("completing the swap of segment {base} in {}", dir.display()),
        source: e,
    };
    let file = fs::File::open(&swap_log).map_err(fail)?;
    let len = file.metadata().map_err(fail)?.len();
    let mut window = FileWindow::new(&file, len);
    let (mut position, mut end) = (0u64, base + 1);
    while let Some(head) = window.get(position, BATCH_HEADER_SIZE).map_err(fail)? {
        let Ok(header) = BatchHeader::parse(head) else { break };
        end = end.max(header.next_offset());
        position += header.total_size() as u64;
    }
    let covered: Vec<u64> = bases.iter().copied().filter(|b| (base..end).contains(b)).collect();
    for b in &covered {
        for ext in [
            ".log",
            ".index",
            ".timeindex",
            ".txnindex",
            crate::segment_end::EXTENSION,
        ] {
            match crate::disk_io::remove_file(&dir.join(file_name(*b, ext))) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(fail(e)),
                _ => {}
            }
        }
    }
    bases.retain(|b| !covered.contains(b));
    for ext in [".index", ".timeindex", ".txnindex", ".log"] {
        let from = dir.join(file_name(base, ext) + ".swap");
        if from.exists() {
            crate::disk_io::rename(&from, &dir.join(file_name(base, ext))).map_err(fail)?;
        }
    }
    warn!(dir = %dir.display(), base, replaced = covered.len(), "completed an interrupted segment swap");
    bases.push(base);
    Ok(())
}

fn parse_base_offset(stem: &str) -> Option<u64> {
    (stem.len() == 20 && stem.bytes().all(|b| b.is_ascii_digit()))
        .then(|| stem.parse().ok())
        .flatten()
}

/// Validates every batch from the segment holding `recovery_point` on.
/// After the first segment that had to be cut, that overlaps the next, or
/// that ends before the end its roll recorded (its unsynced tail was lost
/// while a later segment's bytes survived: see [`crate::segment_end`]),
/// the later segments are deleted: nothing after a hole can be trusted.
/// Returns the base offset of the first segment it recovered.
fn recover_segments(
    dir: &Path,
    config: &LogConfig,
    segments: &mut BTreeMap<u64, (Arc<Segment>, bool)>,
    recovery_point: u64,
) -> Result<Option<u64>> {
    let start = segments
        .range(..=recovery_point)
        .next_back()
        .map(|(b, _)| *b)
        .unwrap_or(0);
    let to_check: Vec<u64> = segments.range(start..).map(|(b, _)| *b).collect();
    let mut cut_after = None;
    for (i, &base) in to_check.iter().enumerate() {
        let segment = &segments[&base].0;
        let outcome = segment
            .recover(config)
            .context(|| format!("recovering segment {base} in {}", dir.display()))?;
        if outcome.truncated_bytes > 0 {
            warn!(dir = %dir.display(), base, bytes = outcome.truncated_bytes, "truncated an invalid segment tail");
        }
        let next_base = to_check.get(i + 1).copied();
        let lost_tail = next_base
            .and_then(|_| crate::segment_end::recorded(dir, base))
            .filter(|&end| outcome.next_offset < end);
        if let Some(end) = lost_tail {
            warn!(dir = %dir.display(), base, found = outcome.next_offset, recorded = end, "a rolled segment lost its tail");
        }
        if next_base.is_some_and(|n| outcome.truncated_bytes > 0 || n < outcome.next_offset || lost_tail.is_some()) {
            cut_after = Some(base);
            break;
        }
    }
    if let Some(base) = cut_after {
        // The segment becomes the active one, at its recovered end.
        crate::segment_end::remove(dir, base).context(|| format!("removing the end marker of segment {base}"))?;
        let later: Vec<u64> = segments.range(base + 1..).map(|(b, _)| *b).collect();
        for b in later {
            let (segment, _) = segments.remove(&b).expect("listed above");
            warn!(dir = %dir.display(), base = b, "deleting a segment after a corrupt one");
            segment.delete_files().context(|| format!("deleting segment {b}"))?;
        }
    }
    if !to_check.is_empty() {
        info!(dir = %dir.display(), segments = to_check.len(), "recovered log");
    }
    Ok(to_check.first().copied())
}
