//! What a broken metadata or checkpoint file does when a log directory is
//! opened: each is either an error naming the file, or — where Kafka does
//! so — a logged fallback that costs work (recovering every segment), never
//! a silent default that changes what the log holds.

mod common;

use std::path::Path;

use common::*;
use gregor_log::*;

fn config(dir: &Path) -> LogManagerConfig {
    let mut c = LogManagerConfig::new(vec![dir.to_path_buf()]);
    c.default_log_config = small_segments(300);
    c
}

fn tp() -> TopicPartition {
    TopicPartition::new("events", 0)
}

/// Ten flushed and checkpointed batches of two over several segments,
/// left without a clean shutdown; then the last byte of the first segment
/// (inside its last batch's records) flipped.
fn unclean_log_with_a_damaged_first_segment(dir: &Path) {
    {
        let manager = LogManager::open(config(dir)).unwrap();
        let log = manager.get_or_create(&tp(), None).unwrap();
        for i in 0..10 {
            log.append(&mut batch(&format!("b{i}"), 2, 0), 0).unwrap();
        }
        assert!(log.segment_count() > 2);
        log.flush().unwrap();
        manager.checkpoint().unwrap();
    }
    let first = dir.join("events-0").join(format!("{:020}.log", 0));
    let mut bytes = std::fs::read(&first).unwrap();
    *bytes.last_mut().unwrap() ^= 0xff;
    std::fs::write(&first, bytes).unwrap();
}

#[test]
fn a_recovery_point_checkpoint_trusted_skips_old_segments() {
    // The control: a readable recovery point past the first segment means
    // its damage is not looked at.
    let dir = tempfile::tempdir().unwrap();
    unclean_log_with_a_damaged_first_segment(dir.path());
    let manager = LogManager::open(config(dir.path())).unwrap();
    assert_eq!(manager.get(&tp()).unwrap().end_offset(), 20);
}

#[test]
fn an_unreadable_recovery_point_checkpoint_recovers_every_segment() {
    let dir = tempfile::tempdir().unwrap();
    unclean_log_with_a_damaged_first_segment(dir.path());
    std::fs::write(dir.path().join("recovery-point-offset-checkpoint"), "0\n7\nevents 0").unwrap();
    let manager = LogManager::open(config(dir.path())).unwrap();
    let log = manager.get(&tp()).unwrap();
    // The first segment was scanned: its damaged batch cut, the segments after it dropped.
    assert!(log.end_offset() < 20, "end {}", log.end_offset());
    assert_eq!(all_records(&log, 0).len() as u64, log.end_offset());
}

#[test]
fn an_unreadable_log_start_checkpoint_falls_back_to_the_first_segment() {
    let dir = tempfile::tempdir().unwrap();
    {
        let manager = LogManager::open(config(dir.path())).unwrap();
        let log = manager.get_or_create(&tp(), None).unwrap();
        for i in 0..4 {
            log.append(&mut batch(&format!("b{i}"), 2, 0), 0).unwrap();
        }
        log.delete_records(3).unwrap();
        manager.close().unwrap();
    }
    let start = |dir: &Path| {
        let manager = LogManager::open(config(dir)).unwrap();
        let offset = manager.get(&tp()).unwrap().log_start_offset();
        manager.close().unwrap();
        offset
    };
    assert_eq!(start(dir.path()), 3);
    std::fs::write(dir.path().join("log-start-offset-checkpoint"), "garbage").unwrap();
    let first_base = 0;
    assert_eq!(start(dir.path()), first_base);
}

#[test]
fn an_unreadable_high_watermark_checkpoint_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    {
        let manager = LogManager::open(config(dir.path())).unwrap();
        manager.get_or_create(&tp(), None).unwrap();
        manager.close().unwrap();
    }
    std::fs::write(dir.path().join("replication-offset-checkpoint"), "0\n1\nevents 0 x\n").unwrap();
    let err = LogManager::open(config(dir.path())).err().expect("an error");
    assert!(err.to_string().contains("replication-offset-checkpoint"), "{err}");
}

#[test]
fn an_unreadable_leader_epoch_checkpoint_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    {
        let manager = LogManager::open(config(dir.path())).unwrap();
        let log = manager.get_or_create(&tp(), None).unwrap();
        log.append(&mut batch("b", 2, 0), 3).unwrap();
        manager.close().unwrap();
    }
    let path = dir.path().join("events-0").join("leader-epoch-checkpoint");
    assert!(std::fs::read_to_string(&path).unwrap().contains("3 0"));
    std::fs::write(&path, "0\n1\n3\n").unwrap();
    let err = LogManager::open(config(dir.path())).err().expect("an error");
    assert!(err.to_string().contains("leader-epoch-checkpoint"), "{err}");
}

#[test]
fn no_checkpoint_write_leaves_a_temporary_file_behind() {
    let dir = tempfile::tempdir().unwrap();
    let manager = LogManager::open(config(dir.path())).unwrap();
    let log = manager.get_or_create(&tp(), None).unwrap();
    log.append(&mut batch("b", 2, 0), 1).unwrap();
    manager.checkpoint().unwrap();
    manager.close().unwrap();
    let names = |d: &Path| -> Vec<String> {
        std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    };
    for name in names(dir.path()).into_iter().chain(names(&dir.path().join("events-0"))) {
        assert!(!name.ends_with(".tmp"), "{name}");
    }
}

#[test]
fn a_damaged_producer_snapshot_is_skipped_and_the_state_rebuilt_from_the_batches() {
    use gregor_log::batch::RecordBatchBuilder;
    let dir = tempfile::tempdir().unwrap();
    let append = |log: &Log, sequence: i32| {
        let mut b = RecordBatchBuilder::new(0).producer(7, 0, sequence);
        b.append(None, Some(b"v"), &[], 0);
        log.append(&mut b.build(), 0).unwrap();
    };
    {
        let manager = LogManager::open(config(dir.path())).unwrap();
        let log = manager.get_or_create(&tp(), None).unwrap();
        for sequence in 0..6 {
            append(&log, sequence);
            log.roll().unwrap();
        }
        manager.close().unwrap();
    }
    let partition = dir.path().join("events-0");
    let mut snapshots: Vec<_> = std::fs::read_dir(&partition)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "snapshot"))
        .collect();
    snapshots.sort();
    let newest = snapshots.last().unwrap();
    let mut bytes = std::fs::read(newest).unwrap();
    *bytes.last_mut().unwrap() ^= 0xff;
    std::fs::write(newest, bytes).unwrap();
    let manager = LogManager::open(config(dir.path())).unwrap();
    let log = manager.get(&tp()).unwrap();
    let states = log.producer_states();
    let entry = states.get(7).expect("the producer, rebuilt");
    assert_eq!(entry.last_sequence(), 5);
    assert_eq!(entry.last_data_offset(), Some(5));
    // And it takes the producer's next sequence.
    append(&log, 6);
}
