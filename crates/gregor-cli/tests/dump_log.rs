//! `gregor dump-log` on a segment written by gregor-log: it shows the
//! batches and records, and flags a corrupted byte (`--verify` fails).

use std::process::Command;

use gregor_log::batch::{Compression, RecordBatchBuilder};
use gregor_log::{Log, LogConfig};

fn gregor(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_gregor")).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn written_log(dir: &std::path::Path) {
    let log = Log::open(dir, LogConfig::default()).unwrap();
    let mut plain = RecordBatchBuilder::new(1_000);
    plain.append(Some(b"k1"), Some(b"hello"), &[(b"h", Some(b"v"))], 1_000);
    plain.append(None, Some(b"world"), &[], 1_001);
    log.append(&mut plain.build(), 0).unwrap();
    let mut zipped = RecordBatchBuilder::new(2_000);
    zipped.append(Some(b"k2"), Some(b"squeezed"), &[], 2_000);
    log.append(&mut zipped.build_compressed(Compression::Zstd).unwrap(), 0)
        .unwrap();
    log.close().unwrap();
}

#[test]
fn dump_log_prints_batches_and_records() {
    let dir = tempfile::tempdir().unwrap();
    written_log(dir.path());
    let (code, out, err) = gregor(&["dump-log", "--print-records", "--verify", dir.path().to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("baseOffset: 0 lastOffset: 1 count: 2"), "{out}");
    assert!(out.contains("compresscodec: zstd"), "{out}");
    assert!(out.contains("| offset: 0 CreateTime: 1000 keySize: 2 valueSize: 5 key: k1 payload: hello headers: [h=v]"));
    assert!(out.contains("key: null payload: world"));
    assert!(out.contains("| offset: 2 CreateTime: 2000 keySize: 2 valueSize: 8 key: k2 payload: squeezed"));
    assert_eq!(out.matches("isvalid: true").count(), 2);
}

#[test]
fn dump_log_flags_a_corrupted_byte_and_verify_fails() {
    let dir = tempfile::tempdir().unwrap();
    written_log(dir.path());
    let segment = dir.path().join("00000000000000000000.log");
    let mut bytes = std::fs::read(&segment).unwrap();
    bytes[70] ^= 0xff; // inside the first batch's records
    std::fs::write(&segment, bytes).unwrap();
    let (code, out, _) = gregor(&["dump-log", "--verify", segment.to_str().unwrap()]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("isvalid: false"), "{out}");
    assert!(out.contains("CRC mismatch"), "{out}");
    let (code, _, _) = gregor(&["dump-log", segment.to_str().unwrap()]);
    assert_eq!(code, 0, "without --verify the dump itself succeeds");
}

#[test]
fn errors_are_one_line_and_a_non_zero_exit() {
    let (code, out, err) = gregor(&["dump-log", "/nonexistent/segment.log"]);
    assert_eq!(code, 1);
    assert!(out.is_empty() || out.starts_with("Dumping"));
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("gregor: reading /nonexistent/segment.log"), "{err}");
}
