//! `gregor dump-log`: every batch of a segment file (or of every segment of
//! a partition directory) with its offsets, size, codec, producer fields
//! and whether its CRC holds; records with `--print-records`. `--verify`
//! makes any invalid batch or trailing garbage an exit status of 2.

use std::path::{Path, PathBuf};

use anyhow::Context;
use gregor_log::batch::{record_section, validate_batch_integrity, BatchHeader, Records, LOG_OVERHEAD};

/// Arguments of `gregor dump-log`.
#[derive(Debug, clap::Args)]
pub struct DumpLogArgs {
    /// A `.log` segment file or a partition directory.
    path: PathBuf,
    /// Print every record (offset, timestamp, key, value, headers).
    #[arg(long)]
    print_records: bool,
    /// Exit with status 2 if any batch is invalid or bytes trail the last one.
    #[arg(long)]
    verify: bool,
}

/// Dumps; returns the exit status.
pub fn run(args: &DumpLogArgs) -> anyhow::Result<i32> {
    let files = segment_files(&args.path)?;
    let mut problems = 0;
    for file in &files {
        println!("Dumping {}", file.display());
        problems += dump_file(file, args.print_records)?;
    }
    if problems > 0 {
        println!("{problems} problem(s) found");
    }
    Ok(if args.verify && problems > 0 { 2 } else { 0 })
}

fn segment_files(path: &Path) -> anyhow::Result<Vec<PathBuf>> {
    if !path.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(path)
        .with_context(|| format!("listing {}", path.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    files.sort();
    Ok(files)
}

fn text(bytes: Option<&[u8]>) -> String {
    bytes.map_or_else(|| "null".to_string(), |b| String::from_utf8_lossy(b).into_owned())
}

/// Prints one file's batches; returns how many problems it has.
fn dump_file(path: &Path, print_records: bool) -> anyhow::Result<usize> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let mut position = 0;
    let mut problems = 0;
    while position < bytes.len() {
        let rest = &bytes[position..];
        let header = match BatchHeader::parse(rest) {
            Ok(h) if h.total_size() <= rest.len() => h,
            Ok(h) => {
                println!(
                    "position: {position} truncated batch: needs {} bytes, {} left",
                    h.total_size(),
                    rest.len()
                );
                return Ok(problems + 1);
            }
            Err(e) => {
                println!(
                    "position: {position} not a record batch: {e} ({} bytes left)",
                    rest.len()
                );
                return Ok(problems + 1);
            }
        };
        let batch = &rest[..header.total_size()];
        let valid = validate_batch_integrity(batch);
        let codec = header
            .compression()
            .map_or_else(|e| e.to_string(), |c| format!("{c:?}").to_lowercase());
        println!(
            "baseOffset: {} lastOffset: {} count: {} baseSequence: {} lastSequence: {} producerId: {} \
             producerEpoch: {} partitionLeaderEpoch: {} isTransactional: {} isControl: {} position: {position} \
             CreateTime: {} size: {} magic: 2 compresscodec: {codec} crc: {} isvalid: {}",
            header.base_offset,
            header.last_offset(),
            header.record_count,
            header.base_sequence,
            if header.base_sequence < 0 {
                -1
            } else {
                header.base_sequence.wrapping_add(header.last_offset_delta as i32)
            },
            header.producer_id,
            header.producer_epoch,
            header.partition_leader_epoch,
            header.is_transactional(),
            header.is_control(),
            header.max_timestamp,
            header.total_size(),
            header.crc,
            valid.is_ok(),
        );
        if let Err(e) = &valid {
            println!("  invalid: {e}");
            problems += 1;
        }
        if print_records && valid.is_ok() {
            match record_section(batch, &header) {
                Ok(section) => {
                    for record in Records::from_section(&section, header.record_count) {
                        match record {
                            Ok(r) => {
                                let headers: Vec<String> = r
                                    .headers
                                    .iter()
                                    .map(|(k, v)| format!("{}={}", text(Some(k)), text(*v)))
                                    .collect();
                                println!(
                                    "| offset: {} CreateTime: {} keySize: {} valueSize: {} key: {} payload: {} headers: [{}]",
                                    header.base_offset + r.offset_delta as u64,
                                    header.base_timestamp + r.timestamp_delta,
                                    r.key.map_or(-1, |k| k.len() as i64),
                                    r.value.map_or(-1, |v| v.len() as i64),
                                    text(r.key),
                                    text(r.value),
                                    headers.join(", ")
                                );
                            }
                            Err(e) => {
                                println!("| invalid record: {e}");
                                problems += 1;
                                break;
                            }
                        }
                    }
                }
                Err(e) => {
                    println!("| records unreadable: {e}");
                    problems += 1;
                }
            }
        }
        position += header.total_size().max(LOG_OVERHEAD);
    }
    Ok(problems)
}
