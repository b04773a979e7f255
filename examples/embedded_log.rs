//! gregor-log as an embedded storage engine: append, read back, survive a
//! crash, and let retention drop old segments.
//!
//! `cargo run --example embedded_log`

use std::fs::OpenOptions;

use gregor::log::batch::{BatchIter, RecordBatchBuilder, Records};
use gregor::log::{Log, LogConfig};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let config = LogConfig {
        segment_bytes: 1024, // tiny segments so that rolls and retention show
        retention_bytes: 2048,
        retention_ms: -1, // keep by size only: these timestamps are years old
        ..LogConfig::default()
    };
    let now = 1_700_000_000_000;

    // 1. Append twenty batches of five records each.
    let log = Log::open(dir.path(), config.clone())?;
    for b in 0..20 {
        let mut batch = RecordBatchBuilder::new(now);
        for r in 0..5 {
            let key = format!("sensor-{r}");
            let value = format!("reading {b}.{r}");
            batch.append(Some(key.as_bytes()), Some(value.as_bytes()), &[], now + b);
        }
        let info = log.append(&mut batch.build(), 0)?;
        println!("appended offsets {}..={}", info.first_offset, info.last_offset);
    }
    println!("log end offset {}, {} segments", log.end_offset(), log.segment_count());

    // 2. Read back from offset 12: whole batches, starting with the one holding it.
    let bytes = log.read_bytes(12, 512)?;
    for item in BatchIter::new(&bytes) {
        let (at, header) = item?;
        for record in Records::new(&bytes[at..at + header.total_size()], &header) {
            let record = record?;
            let value = String::from_utf8_lossy(record.value.unwrap_or_default());
            println!(
                "  offset {} -> {value}",
                header.base_offset + record.offset_delta as u64
            );
        }
    }

    // 3. Simulate a crash: drop the log without closing it, and tear the
    //    last 10 bytes off the active segment as a half-written batch would.
    let active = log.segments().last().map(|s| s.base_offset).unwrap_or(0);
    drop(log);
    let file = dir.path().join(format!("{active:020}.log"));
    let len = std::fs::metadata(&file)?.len();
    OpenOptions::new().write(true).open(&file)?.set_len(len - 10)?;
    let log = Log::open(dir.path(), config)?;
    println!(
        "after the crash: log end offset {} (the torn batch is gone)",
        log.end_offset()
    );

    // 4. Retention: keep about 2 KiB; whole old segments go.
    let before = log.segment_count();
    let outcome = log.apply_retention()?;
    println!(
        "retention deleted {} of {before} segments; log start offset is now {}",
        outcome.deleted_segments,
        log.log_start_offset()
    );
    log.close()?;
    Ok(())
}
