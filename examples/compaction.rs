//! Log compaction: write updates and tombstones for a few keys, compact,
//! and print the surviving key → value view.
//!
//! `cargo run --example compaction`

use std::sync::Arc;

use gregor::compactor::{clean_log, cleanable, OffsetMap, Throttler};
use gregor::log::batch::{BatchIter, RecordBatchBuilder, Records};
use gregor::log::{CleanupPolicy, Clock, Log, LogConfig, LogOpenOptions, ManualClock};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let clock = Arc::new(ManualClock::new(1_700_000_000_000));
    let config = LogConfig {
        cleanup_policy: CleanupPolicy::Compact,
        segment_bytes: 1024,       // small segments, so there is something to clean
        delete_retention_ms: 1000, // tombstones live 1 s after they are compacted
        ..LogConfig::default()
    };
    let options = LogOpenOptions {
        clock: clock.clone(),
        ..Default::default()
    };
    let log = Log::open_with(dir.path(), config, options)?;

    // Prices of five products, updated 20 times; two products are then deleted.
    let now = clock.now_ms();
    for round in 0..20 {
        let mut batch = RecordBatchBuilder::new(now);
        for product in ["apple", "bread", "cheese", "dates", "eggs"] {
            let price = format!("{}.{:02}", 1 + round % 5, round * 7 % 100);
            batch.append(Some(product.as_bytes()), Some(price.as_bytes()), &[], now);
        }
        log.append(&mut batch.build(), 0)?;
    }
    let mut tombstones = RecordBatchBuilder::new(now);
    tombstones.append(Some(b"bread"), None, &[], now);
    tombstones.append(Some(b"dates"), None, &[], now);
    log.append(&mut tombstones.build(), 0)?;
    log.roll()?; // the active segment is never compacted
    println!("before: {} records in {} bytes", count(&log)?, log.size_bytes());

    let mut map = OffsetMap::with_memory(1 << 20);
    let throttle = Throttler::new(f64::INFINITY);
    let mut checkpoint = 0;
    for pass in 1..=2 {
        if let Some(target) = cleanable(&log, checkpoint, clock.now_ms())? {
            let stats = clean_log(&log, target, &mut map, &throttle, clock.now_ms())?;
            checkpoint = stats.cleaned_up_to;
            println!(
                "pass {pass}: removed {} records; {} records in {} bytes remain",
                stats.records_removed,
                count(&log)?,
                log.size_bytes()
            );
        }
        // Let the tombstones' delete.retention.ms pass, with a little new data.
        clock.advance(5_000);
        let mut more = RecordBatchBuilder::new(clock.now_ms());
        more.append(Some(b"figs"), Some(b"4.20"), &[], clock.now_ms());
        log.append(&mut more.build(), 0)?;
        log.roll()?;
    }

    println!("surviving key -> value:");
    let mut view = std::collections::BTreeMap::new();
    for (key, value) in records(&log)? {
        let key = String::from_utf8_lossy(&key).into_owned();
        match value {
            Some(v) => view.insert(key, String::from_utf8_lossy(&v).into_owned()),
            None => view.remove(&key),
        };
    }
    for (key, value) in view {
        println!("  {key} -> {value}");
    }
    log.close()?;
    Ok(())
}

type KeyValue = (Vec<u8>, Option<Vec<u8>>);

/// Every record of the log, oldest first (reads stop at segment ends, so
/// this reads on from where each read ended).
fn records(log: &Log) -> Result<Vec<KeyValue>, Box<dyn std::error::Error>> {
    let mut out = Vec::new();
    let mut offset = log.log_start_offset();
    while offset < log.end_offset() {
        let bytes = log.read_bytes(offset, 1 << 20)?;
        for item in BatchIter::new(&bytes) {
            let (at, header) = item?;
            for record in Records::new(&bytes[at..at + header.total_size()], &header) {
                let record = record?;
                out.push((
                    record.key.unwrap_or_default().to_vec(),
                    record.value.map(<[u8]>::to_vec),
                ));
            }
            offset = header.next_offset();
        }
    }
    Ok(out)
}

fn count(log: &Log) -> Result<usize, Box<dyn std::error::Error>> {
    Ok(records(log)?.len())
}
