//! LogManager: placement, checkpoints, clean shutdown, locking.

mod common;

use common::*;
use gregor_log::*;

fn config(dirs: &[&std::path::Path]) -> LogManagerConfig {
    LogManagerConfig::new(dirs.iter().map(|d| d.to_path_buf()).collect())
}

#[test]
fn new_partitions_go_to_the_dir_with_the_fewest() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let manager = LogManager::open(config(&[a.path(), b.path()])).unwrap();
    for p in 0..6 {
        manager.get_or_create(&TopicPartition::new("t", p), None).unwrap();
    }
    let in_a = manager
        .logs()
        .iter()
        .filter(|(tp, _)| manager.dir_of(tp).unwrap() == a.path())
        .count();
    assert_eq!(in_a, 3);
    assert!(a.path().join("t-0").is_dir() && b.path().join("t-1").is_dir());
    manager.close().unwrap();
}

#[test]
fn logs_by_dir_lists_every_dir_in_order_with_its_partitions() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let manager = LogManager::open(config(&[a.path(), b.path()])).unwrap();
    for p in 0..3 {
        manager.get_or_create(&TopicPartition::new("t", p), None).unwrap();
    }
    let dirs = manager.logs_by_dir();
    assert_eq!(dirs.len(), 2);
    assert_eq!(dirs[0].0, a.path());
    assert_eq!(dirs[1].0, b.path());
    let names = |i: usize| dirs[i].1.iter().map(|(tp, _)| tp.partition).collect::<Vec<_>>();
    assert_eq!((names(0), names(1)), (vec![0, 2], vec![1]));
    let (total, usable) = volume_space(a.path()).unwrap();
    assert!(total > 0 && usable <= total, "{total} {usable}");
    assert!(volume_space(&a.path().join("missing")).is_err());
    manager.close().unwrap();
}

#[test]
fn clean_close_writes_checkpoints_and_reopen_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let tp = TopicPartition::new("orders", 2);
    {
        let manager = LogManager::open(config(&[dir.path()])).unwrap();
        let log = manager.get_or_create(&tp, Some(small_segments(600))).unwrap();
        for _ in 0..20 {
            log.append(&mut batch("m", 3, 0), 0).unwrap();
        }
        log.delete_records(10).unwrap();
        manager.close().unwrap();
    }
    assert!(dir.path().join(".kafka_cleanshutdown").exists());
    let rp = std::fs::read_to_string(dir.path().join("recovery-point-offset-checkpoint")).unwrap();
    assert_eq!(rp, "0\n1\norders 2 60\n");
    let ls = std::fs::read_to_string(dir.path().join("log-start-offset-checkpoint")).unwrap();
    assert_eq!(ls, "0\n1\norders 2 10\n");

    let manager = LogManager::open(config(&[dir.path()])).unwrap();
    assert!(
        !dir.path().join(".kafka_cleanshutdown").exists(),
        "marker consumed at start"
    );
    let log = manager.get(&tp).unwrap();
    assert_eq!(
        (log.log_start_offset(), log.end_offset(), log.recovery_point()),
        (10, 60, 60)
    );
    assert_eq!(all_records(&log, 10).len(), 50);
    manager.close().unwrap();
}

#[test]
fn an_unclean_stop_recovers_from_the_recovery_point() {
    let dir = tempfile::tempdir().unwrap();
    let tp = TopicPartition::new("events", 0);
    {
        let manager = LogManager::open(config(&[dir.path()])).unwrap();
        let log = manager.get_or_create(&tp, None).unwrap();
        for _ in 0..10 {
            log.append(&mut batch("u", 2, 0), 0).unwrap();
        }
        log.flush().unwrap();
        manager.checkpoint().unwrap();
        log.append(&mut batch("late", 2, 0), 0).unwrap();
        // Dropped without close: no clean-shutdown marker.
    }
    let file = dir.path().join("events-0").join(format!("{:020}.log", 0));
    let len = std::fs::metadata(&file).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&file)
        .unwrap()
        .set_len(len - 3)
        .unwrap();
    let manager = LogManager::open(config(&[dir.path()])).unwrap();
    let log = manager.get(&tp).unwrap();
    assert_eq!(log.end_offset(), 20, "the torn last batch is gone, the rest stays");
    manager.close().unwrap();
}

#[test]
fn a_directory_is_locked_against_a_second_manager() {
    let dir = tempfile::tempdir().unwrap();
    let first = LogManager::open(config(&[dir.path()])).unwrap();
    let second = LogManager::open(config(&[dir.path()]));
    assert!(matches!(second, Err(LogError::Unrecoverable { .. })));
    first.close().unwrap();
}

#[test]
fn delete_removes_the_partition_directory() {
    let dir = tempfile::tempdir().unwrap();
    let manager = LogManager::open(config(&[dir.path()])).unwrap();
    let tp = TopicPartition::new("gone", 0);
    manager
        .get_or_create(&tp, None)
        .unwrap()
        .append(&mut batch("x", 1, 0), 0)
        .unwrap();
    manager.delete(&tp).unwrap();
    assert!(manager.get(&tp).is_none());
    assert!(!dir.path().join("gone-0").exists());
    assert!(manager.delete(&tp).is_err());
}

#[test]
fn the_background_thread_applies_retention_and_stops_on_close() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(&[dir.path()]);
    cfg.retention_check_interval = std::time::Duration::from_millis(20);
    let manager = std::sync::Arc::new(LogManager::open(cfg).unwrap());
    let log_config = LogConfig {
        retention_bytes: 0,
        ..small_segments(400)
    };
    let log = manager
        .get_or_create(&TopicPartition::new("r", 0), Some(log_config))
        .unwrap();
    for _ in 0..20 {
        log.append(&mut batch("r", 3, 0), 0).unwrap();
    }
    manager.start_background();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while log.segment_count() > 1 {
        assert!(std::time::Instant::now() < deadline, "retention never ran");
        std::thread::yield_now();
    }
    manager.close().unwrap();
}

#[test]
fn the_background_thread_flushes_only_logs_whose_flush_ms_passed() {
    let dir = tempfile::tempdir().unwrap();
    let clock = std::sync::Arc::new(ManualClock::new(0));
    let mut cfg = config(&[dir.path()]);
    cfg.flush_check_interval = std::time::Duration::from_millis(5);
    let manager = std::sync::Arc::new(LogManager::open_with_clock(cfg, clock.clone()).unwrap());
    let timed = LogConfig {
        flush_ms: 1000,
        ..LogConfig::default()
    };
    let due = manager
        .get_or_create(&TopicPartition::new("f", 0), Some(timed))
        .unwrap();
    let untimed = manager.get_or_create(&TopicPartition::new("f", 1), None).unwrap();
    for log in [&due, &untimed] {
        log.append(&mut batch("f", 3, 0), 0).unwrap();
    }
    manager.start_background();
    std::thread::sleep(std::time::Duration::from_millis(50));
    assert_eq!(due.recovery_point(), 0, "flushed before its flush.ms");
    clock.advance(1000);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while due.recovery_point() < 3 {
        assert!(std::time::Instant::now() < deadline, "the scheduled flush never ran");
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    assert_eq!(untimed.recovery_point(), 0, "a log without flush.ms was flushed");
    manager.close().unwrap();
}

#[test]
fn partition_directory_names_parse_like_kafkas() {
    assert_eq!(
        TopicPartition::from_dir_name("my-topic-12"),
        Some(TopicPartition::new("my-topic", 12))
    );
    assert_eq!(TopicPartition::from_dir_name("nopartition"), None);
    assert_eq!(TopicPartition::from_dir_name("-3"), None);
    assert_eq!(TopicPartition::from_dir_name("t-x"), None);
}

#[cfg(target_os = "linux")]
#[test]
fn a_partition_holds_one_file_descriptor_per_segment() {
    // Kafka's budget: the log file stays open, the mapped indexes do not,
    // so 10,000 partitions fit under a 20,000-descriptor limit.
    let open_fds = || std::fs::read_dir("/proc/self/fd").unwrap().count();
    let dir = tempfile::tempdir().unwrap();
    let manager = LogManager::open(config(&[dir.path()])).unwrap();
    let before = open_fds();
    for p in 0..200 {
        let log = manager.get_or_create(&TopicPartition::new("fds", p), None).unwrap();
        log.append(&mut batch("m", 1, 0), 0).unwrap();
    }
    let added = open_fds() - before;
    // Other tests in this process may open files meanwhile: allow a little.
    assert!(added <= 200 + 20, "{added} descriptors for 200 one-segment partitions");
    manager.close().unwrap();
}
