//! `gregor produce` (lines from stdin or a file) and `gregor consume`
//! (records printed in a format), through gregor-client.

use std::time::Duration;

use anyhow::Context;
use gregor_client::{Compression, ConsumedRecord, Consumer, ConsumerConfig, Producer, ProducerConfig, StartAt};
use tokio::io::{AsyncBufReadExt, BufReader};

/// Flags of `gregor produce`.
#[derive(Debug, clap::Args)]
pub struct ProduceArgs {
    /// Brokers to reach the cluster through.
    #[arg(long, default_value = "127.0.0.1:9092")]
    pub bootstrap_server: String,
    /// Topic to write to.
    #[arg(long)]
    pub topic: String,
    /// Split each line at the first occurrence into key and value.
    #[arg(long)]
    pub key_separator: Option<String>,
    /// `all` (or -1), 1 or 0.
    #[arg(long, default_value = "all")]
    pub acks: String,
    /// `none`, `gzip`, `snappy`, `lz4` or `zstd`.
    #[arg(long, default_value = "none")]
    pub compression: String,
    /// Read lines from this file instead of stdin.
    #[arg(long)]
    pub file: Option<std::path::PathBuf>,
}

/// Flags of `gregor consume`.
#[derive(Debug, clap::Args)]
pub struct ConsumeArgs {
    /// Brokers to reach the cluster through.
    #[arg(long, default_value = "127.0.0.1:9092")]
    pub bootstrap_server: String,
    /// Topic to read.
    #[arg(long)]
    pub topic: String,
    /// Start at the beginning of each partition (default: only new records).
    #[arg(long, conflicts_with = "offset")]
    pub from_beginning: bool,
    /// Start every partition at this offset.
    #[arg(long)]
    pub offset: Option<i64>,
    /// Join this group: its members share the topic's partitions, each
    /// starting at the group's committed offsets and committing where it
    /// stops.
    #[arg(long)]
    pub group: Option<String>,
    /// Stop after this many records.
    #[arg(long)]
    pub max_messages: Option<u64>,
    /// Stop after this long without a record.
    #[arg(long)]
    pub idle_timeout_ms: Option<u64>,
    /// Output per record: %t topic, %p partition, %o offset, %T timestamp,
    /// %k key, %v value, \n and \t.
    #[arg(long, default_value = "%v")]
    pub format: String,
}

/// The acks a flag value stands for.
pub fn parse_acks(acks: &str) -> anyhow::Result<i16> {
    match acks {
        "all" | "-1" => Ok(-1),
        "1" => Ok(1),
        "0" => Ok(0),
        other => anyhow::bail!("--acks {other:?}: expected all, -1, 1 or 0"),
    }
}

/// The codec a flag value names.
pub fn parse_compression(codec: &str) -> anyhow::Result<Compression> {
    Ok(match codec {
        "none" => Compression::None,
        "gzip" => Compression::Gzip,
        "snappy" => Compression::Snappy,
        "lz4" => Compression::Lz4,
        "zstd" => Compression::Zstd,
        other => anyhow::bail!("--compression {other:?}: expected none, gzip, snappy, lz4 or zstd"),
    })
}

/// Sends every line; a line waits at most `linger.ms` for company.
pub async fn produce(args: ProduceArgs) -> anyhow::Result<()> {
    let config = ProducerConfig {
        acks: parse_acks(&args.acks)?,
        compression: parse_compression(&args.compression)?,
        ..ProducerConfig::default()
    };
    let linger = config.linger;
    let mut producer = Producer::new(&args.bootstrap_server, config);
    let input: Box<dyn tokio::io::AsyncRead + Unpin + Send> = match &args.file {
        Some(path) => Box::new(
            tokio::fs::File::open(path)
                .await
                .with_context(|| format!("opening {}", path.display()))?,
        ),
        None => Box::new(tokio::io::stdin()),
    };
    let mut lines = BufReader::new(input).lines();
    let mut produced = 0u64;
    loop {
        let line = tokio::select! {
            line = lines.next_line() => line.context("reading input")?,
            _ = tokio::time::sleep(linger) => {
                producer.flush().await.with_context(|| format!("producing to {}", args.topic))?;
                continue;
            }
        };
        let Some(line) = line else { break };
        let (key, value) = match args.key_separator.as_deref().and_then(|s| line.split_once(s)) {
            Some((k, v)) => (Some(k.as_bytes()), v.as_bytes()),
            None => (None, line.as_bytes()),
        };
        producer
            .send(&args.topic, key, Some(value))
            .await
            .with_context(|| format!("producing to {}", args.topic))?;
        produced += 1;
    }
    producer
        .flush()
        .await
        .with_context(|| format!("producing to {}", args.topic))?;
    eprintln!("produced {produced} records to {}", args.topic);
    Ok(())
}

/// Prints records until `--max-messages` or `--idle-timeout-ms`.
pub async fn consume(args: ConsumeArgs) -> anyhow::Result<()> {
    let mut consumer = Consumer::new(&args.bootstrap_server, ConsumerConfig::default());
    let start = match (args.offset, args.from_beginning) {
        (Some(o), _) => StartAt::Offset(o),
        (None, true) => StartAt::Earliest,
        (None, false) => StartAt::Latest,
    };
    match &args.group {
        Some(group) => consumer
            .subscribe(group, &[args.topic.as_str()], start)
            .await
            .with_context(|| format!("joining group {group}"))?,
        None => consumer
            .assign(&args.topic, start)
            .await
            .with_context(|| format!("assigning {}", args.topic))?,
    }
    let idle = args.idle_timeout_ms.map(Duration::from_millis);
    let mut last = std::time::Instant::now();
    let mut count = 0u64;
    loop {
        let records = consumer
            .poll()
            .await
            .with_context(|| format!("reading {}", args.topic))?;
        if !records.is_empty() {
            last = std::time::Instant::now();
        }
        let mut unprinted = Vec::new();
        for record in records {
            if args.max_messages.is_some_and(|m| count >= m) {
                unprinted.push(record);
                continue;
            }
            // Positions follow what was printed, for the commit.
            consumer.seek(&record.topic, record.partition, record.offset + 1);
            println!("{}", format_record(&args.format, &record));
            count += 1;
        }
        // Records fetched past --max-messages were not consumed: each
        // partition goes back to its first of them (latest seek wins,
        // hence in reverse), so the group's commit does not skip them.
        for record in unprinted.iter().rev() {
            consumer.seek(&record.topic, record.partition, record.offset);
        }
        if args.max_messages.is_some_and(|m| count >= m) || idle.is_some_and(|i| last.elapsed() >= i) {
            break;
        }
    }
    if let Some(group) = &args.group {
        consumer
            .commit(group)
            .await
            .with_context(|| format!("committing group {group}'s offsets"))?;
        consumer
            .close()
            .await
            .with_context(|| format!("leaving group {group}"))?;
    }
    Ok(())
}

/// A record in `format` (kcat's placeholders).
pub fn format_record(format: &str, r: &ConsumedRecord) -> String {
    let text = |b: &Option<Vec<u8>>| {
        b.as_deref()
            .map(String::from_utf8_lossy)
            .unwrap_or_default()
            .into_owned()
    };
    let mut out = String::new();
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        match (c, chars.clone().next()) {
            ('%', Some(n @ ('t' | 'p' | 'o' | 'T' | 'k' | 'v'))) => {
                chars.next();
                match n {
                    't' => out.push_str(&r.topic),
                    'p' => out.push_str(&r.partition.to_string()),
                    'o' => out.push_str(&r.offset.to_string()),
                    'T' => out.push_str(&r.timestamp.to_string()),
                    'k' => out.push_str(&text(&r.key)),
                    _ => out.push_str(&text(&r.value)),
                }
            }
            ('\\', Some('n')) => {
                chars.next();
                out.push('\n');
            }
            ('\\', Some('t')) => {
                chars.next();
                out.push('\t');
            }
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_kcat() {
        let r = ConsumedRecord {
            topic: "t".into(),
            partition: 2,
            offset: 7,
            timestamp: 99,
            key: Some(b"k".to_vec()),
            value: None,
        };
        assert_eq!(format_record("%t/%p@%o %T %k=%v%%\\t.", &r), "t/2@7 99 k=%%\t.");
    }
}
