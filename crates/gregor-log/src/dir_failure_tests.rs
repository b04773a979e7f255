//! A log directory on a full (or failing) disk: the first I/O error takes
//! the whole directory offline, the others keep serving, nothing half
//! written is acknowledged, and after a restart with space every
//! acknowledged record is there. The disk is filled with
//! [`crate::disk_io::full_disk::FullDisk`].

use std::path::PathBuf;

use crate::batch::RecordBatchBuilder;
use crate::disk_io::full_disk::FullDisk;
use crate::{LogConfig, LogError, LogManager, LogManagerConfig, TopicPartition};

fn batch(tag: &str, n: usize) -> Vec<u8> {
    let mut b = RecordBatchBuilder::new(1_000);
    for i in 0..n {
        b.append(Some(b"k"), Some(format!("{tag}-{i}").as_bytes()), &[], 1_000);
    }
    b.build()
}

fn config(dirs: &[PathBuf]) -> LogManagerConfig {
    let mut config = LogManagerConfig::new(dirs.to_vec());
    config.default_log_config = LogConfig {
        segment_bytes: 2048,
        segment_index_bytes: 4096,
        index_interval_bytes: 64,
        ..LogConfig::default()
    };
    config.recovery_threads_per_dir = 1;
    config
}

/// Values of every record of `log`, in offset order, read from disk.
fn values(log: &crate::Log) -> Vec<String> {
    let mut out = Vec::new();
    let mut offset = log.log_start_offset();
    while offset < log.end_offset() {
        let bytes = log.read_bytes(offset, 1 << 20).unwrap();
        assert!(!bytes.is_empty(), "nothing readable at {offset}");
        for item in crate::batch::BatchIter::new(&bytes) {
            let (at, h) = item.unwrap();
            let one = &bytes[at..at + h.total_size()];
            crate::batch::validate_batch_integrity(one).unwrap();
            for r in crate::batch::Records::new(one, &h) {
                let r = r.unwrap();
                out.push(String::from_utf8(r.value.unwrap().to_vec()).unwrap());
            }
            offset = h.next_offset();
        }
    }
    out
}

#[test]
fn a_failed_write_takes_its_whole_directory_offline_and_the_other_keeps_serving() {
    let root = tempfile::tempdir().unwrap();
    let dirs = vec![root.path().join("d0"), root.path().join("d1")];
    let manager = LogManager::open(config(&dirs)).unwrap();
    let failures = manager.dir_failures();
    let (a, b, c) = (
        TopicPartition::new("a", 0),
        TopicPartition::new("b", 0),
        TopicPartition::new("c", 0),
    );
    // New logs go to the directory holding the fewest: a → d0, b → d1, c → d0.
    let log_a = manager.get_or_create(&a, None).unwrap();
    let log_b = manager.get_or_create(&b, None).unwrap();
    let log_c = manager.get_or_create(&c, None).unwrap();
    assert_eq!(manager.dir_of(&a), Some(dirs[0].clone()));
    assert_eq!(manager.dir_of(&c), Some(dirs[0].clone()));
    let mut acknowledged = Vec::new();
    for i in 0..20 {
        log_a.append(&mut batch(&format!("a{i}"), 3), 0).unwrap();
        acknowledged.extend((0..3).map(|r| format!("a{i}-{r}")));
    }
    log_c.append(&mut batch("c", 2), 0).unwrap();

    // The disk of d0 fills in the middle of the next batch.
    let full = FullDisk::with_room(&dirs[0], 40).unwrap();
    let refused = log_a.append(&mut batch("torn", 3), 0);
    assert!(matches!(refused, Err(LogError::Io { .. })), "{refused:?}");
    assert_eq!(failures.try_recv().unwrap(), dirs[0]);
    assert_eq!(manager.offline_dirs().len(), 1);
    assert!(manager.dir_failure(&dirs[0]).is_some() && manager.dir_failure(&dirs[1]).is_none());
    assert!(manager.is_offline(&a) && manager.is_offline(&c) && !manager.is_offline(&b));
    assert!(!manager.all_dirs_offline());

    // Every log of d0 refuses reads and writes, even one that never failed.
    assert!(matches!(log_a.append(&mut batch("x", 1), 0), Err(LogError::Offline(_))));
    assert!(matches!(log_c.append(&mut batch("x", 1), 0), Err(LogError::Offline(_))));
    assert!(matches!(log_c.read(0, 1 << 20), Err(LogError::Offline(_))));
    assert!(matches!(log_a.truncate_to(0), Err(LogError::Offline(_))));
    // d1 serves, and new logs go there.
    log_b.append(&mut batch("b", 2), 0).unwrap();
    assert_eq!(values(&log_b), vec!["b-0", "b-1"]);
    let d = TopicPartition::new("d", 0);
    manager.get_or_create(&d, None).unwrap();
    assert_eq!(manager.dir_of(&d), Some(dirs[1].clone()));
    // Announced once.
    assert!(failures.try_recv().is_err());
    manager.checkpoint().unwrap();
    manager.close().unwrap();
    assert!(
        !dirs[0].join(".kafka_cleanshutdown").exists(),
        "an offline directory is recovered at the next start"
    );
    assert!(dirs[1].join(".kafka_cleanshutdown").exists());
    drop((log_a, log_b, log_c, manager));

    // Space freed, restarted: the directory is online, every acknowledged
    // record is there and readable, the torn batch is not, appends work.
    drop(full);
    let manager = LogManager::open(config(&dirs)).unwrap();
    assert!(manager.offline_dirs().is_empty());
    let log_a = manager.get(&a).unwrap();
    assert_eq!(values(&log_a), acknowledged);
    assert_eq!(values(&manager.get(&c).unwrap()), vec!["c-0", "c-1"]);
    log_a.append(&mut batch("after", 1), 0).unwrap();
    assert_eq!(values(&log_a).last().map(String::as_str), Some("after-0"));
    manager.close().unwrap();
}

#[test]
fn a_failed_group_commit_is_not_acknowledged_and_a_roll_on_a_full_disk_fails_cleanly() {
    let root = tempfile::tempdir().unwrap();
    let dirs = vec![root.path().join("d0"), root.path().join("d1")];
    let mut cfg = config(&dirs);
    cfg.default_log_config.flush_group_commit = true;
    let manager = LogManager::open(cfg).unwrap();
    let tp = TopicPartition::new("t", 0);
    let log = manager.get_or_create(&tp, None).unwrap();
    let mut acknowledged = Vec::new();
    // Enough to roll several 2 KiB segments.
    let mut i = 0;
    while log.segment_count() < 3 {
        log.append(&mut batch(&format!("r{i}"), 5), 0).unwrap();
        acknowledged.extend((0..5).map(|r| format!("r{i}-{r}")));
        i += 1;
    }
    let full = FullDisk::fill(&dirs[0]).unwrap();
    // Appends until one fails: none after the failure is acknowledged.
    assert!(log.roll().is_err() || log.append(&mut batch("late", 5), 0).is_err());
    assert!(log.is_offline());
    assert!(matches!(log.flush(), Err(LogError::Offline(_))));
    manager.close().unwrap();
    drop((log, manager, full));
    let manager = LogManager::open(config(&dirs)).unwrap();
    let log = manager.get(&tp).unwrap();
    assert_eq!(values(&log), acknowledged);
    log.append(&mut batch("after", 1), 0).unwrap();
}

#[test]
fn with_every_directory_offline_the_manager_says_so_and_creates_nothing() {
    let root = tempfile::tempdir().unwrap();
    let dirs = vec![root.path().join("d0"), root.path().join("d1")];
    let manager = LogManager::open(config(&dirs)).unwrap();
    let logs: Vec<_> = ["a", "b"]
        .iter()
        .map(|t| manager.get_or_create(&TopicPartition::new(*t, 0), None).unwrap())
        .collect();
    let _full = (FullDisk::fill(&dirs[0]).unwrap(), FullDisk::fill(&dirs[1]).unwrap());
    for log in &logs {
        assert!(log.append(&mut batch("x", 1), 0).is_err());
    }
    assert!(manager.all_dirs_offline());
    assert!(matches!(
        manager.get_or_create(&TopicPartition::new("new", 0), None),
        Err(LogError::Offline(_))
    ));
}
