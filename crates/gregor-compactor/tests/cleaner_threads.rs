//! The LogCleaner over a LogManager: choice by dirty ratio, checkpoints,
//! background threads, pause and stop.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use gregor_compactor::*;
use gregor_log::*;

fn manager(dir: &std::path::Path, clock: &Arc<ManualClock>) -> Arc<LogManager> {
    let config = LogManagerConfig::new(vec![dir.to_path_buf()]);
    Arc::new(LogManager::open_with_clock(config, clock.clone()).unwrap())
}

#[test]
fn cleans_the_dirtiest_compacted_log_and_checkpoints_it() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(1_000_000));
    let logs = manager(dir.path(), &clock);
    let (hot, cold, plain) = (
        TopicPartition::new("hot", 0),
        TopicPartition::new("cold", 0),
        TopicPartition::new("plain", 0),
    );
    let strict = LogConfig {
        min_cleanable_dirty_ratio: 0.5,
        ..compacted(1024)
    };
    let hot_log = logs.get_or_create(&hot, Some(strict.clone())).unwrap();
    let cold_log = logs.get_or_create(&cold, Some(strict)).unwrap();
    let plain_log = logs
        .get_or_create(
            &plain,
            Some(LogConfig {
                segment_bytes: 1024,
                ..LogConfig::default()
            }),
        )
        .unwrap();
    // 150 keys, 300 updates: the cleaned section stays large.
    let updates: Vec<_> = (0..300).map(|i| (i % 150, Some(format!("v{i}")))).collect();
    for log in [&hot_log, &cold_log, &plain_log] {
        write(log, &updates, 5, clock.now_ms());
    }
    let cleaner = LogCleaner::new(logs.clone(), CleanerConfig::default(), clock.clone());
    let mut cleaned = Vec::new();
    while let Some((tp, stats)) = cleaner.clean_once(1 << 20).unwrap() {
        assert_eq!(cleaner.checkpoint_of(&tp), stats.cleaned_up_to);
        cleaned.push(tp);
    }
    cleaned.sort();
    assert_eq!(
        cleaned,
        vec![cold.clone(), hot.clone()],
        "only compacted logs, each once"
    );
    let checkpoint = std::fs::read_to_string(dir.path().join(CLEANER_CHECKPOINT)).unwrap();
    assert!(
        checkpoint.starts_with("0\n2\ncold 0 ") && checkpoint.contains("\nhot 0 "),
        "{checkpoint}"
    );
    // A little new dirt stays below min.cleanable.dirty.ratio: nothing to do.
    write(&hot_log, &[(1, Some("new".into()))], 1, clock.now_ms());
    hot_log.roll().unwrap();
    assert!(cleaner.clean_once(1 << 20).unwrap().is_none());
    assert_eq!(scan(&plain_log).len(), 300, "a delete-policy log is never compacted");
    logs.close().unwrap();
}

#[test]
fn background_threads_clean_pause_and_stop() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(1_000_000));
    let logs = manager(dir.path(), &clock);
    let tp = TopicPartition::new("compacted", 0);
    let log = logs.get_or_create(&tp, Some(compacted(1024))).unwrap();
    let config = CleanerConfig {
        threads: 2,
        backoff: Duration::from_millis(10),
        ..CleanerConfig::default()
    };
    let mut cleaner = LogCleaner::new(logs.clone(), config, clock.clone());
    cleaner.pause();
    cleaner.start();
    let updates: Vec<_> = (0..300).map(|i| (i % 7, Some(format!("v{i}")))).collect();
    write(&log, &updates, 5, clock.now_ms());
    let expected = view(&log);
    let size = log.size_bytes();
    cleaner.resume();
    let deadline = Instant::now() + Duration::from_secs(20);
    while cleaner.checkpoint_of(&tp) == 0 {
        assert!(Instant::now() < deadline, "the cleaner threads never cleaned");
        std::thread::sleep(Duration::from_millis(10));
    }
    cleaner.stop();
    assert!(log.size_bytes() < size);
    assert_eq!(view(&log), expected);
    logs.close().unwrap();
}
