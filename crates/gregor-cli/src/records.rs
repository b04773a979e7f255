//! `gregor records delete`: records before an offset deleted
//! (DeleteRecords on each partition's leader), from kafka-delete-records'
//! offset file or one `--topic --partition --before`.

use anyhow::{bail, Context};
use gregor_client::{PartitionAdmin, TopicPartition};
use serde_json::json;

use crate::ops_json::{parse_offsets, read};

/// Flags of `gregor records`.
#[derive(Debug, clap::Args)]
pub struct RecordsArgs {
    /// Brokers to reach the cluster through.
    #[arg(long, global = true, default_value = "127.0.0.1:9092")]
    pub bootstrap_server: String,
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub action: RecordsAction,
}

/// What to do with records.
#[derive(Debug, clap::Subcommand)]
pub enum RecordsAction {
    /// Delete the records before an offset (the partition's log start
    /// moves there), like kafka-delete-records.sh.
    #[command(group(clap::ArgGroup::new("which").required(true).args(["offset_json_file", "topic"])))]
    Delete {
        /// `{"partitions":[{"topic":"a","partition":0,"offset":10}],"version":1}`
        /// (offset -1: everything up to the high watermark).
        #[arg(long, value_name = "FILE", conflicts_with_all = ["topic", "partition", "before"])]
        offset_json_file: Option<String>,
        /// The topic (with --partition and --before).
        #[arg(long, requires_all = ["partition", "before"])]
        topic: Option<String>,
        /// The partition.
        #[arg(long, requires = "topic")]
        partition: Option<i32>,
        /// Delete the records before this offset (-1: the high watermark).
        #[arg(long, requires = "topic", allow_negative_numbers = true)]
        before: Option<i64>,
    },
}

/// Runs the action; the output goes to stdout.
pub async fn run(args: RecordsArgs) -> anyhow::Result<()> {
    let RecordsAction::Delete {
        offset_json_file,
        topic,
        partition,
        before,
    } = args.action;
    let offsets = match (offset_json_file, topic, partition, before) {
        (Some(path), ..) => parse_offsets(&read(&path)?).with_context(|| format!("in {path}"))?,
        (None, Some(topic), Some(partition), Some(before)) => {
            if before < -1 {
                bail!("--before {before}: expected an offset, or -1 for the high watermark");
            }
            vec![(TopicPartition::new(topic, partition), before)]
        }
        _ => bail!("give --offset-json-file, or --topic, --partition and --before"),
    };
    let mut admin = PartitionAdmin::connect(&args.bootstrap_server)
        .await
        .with_context(|| format!("connecting to {}", args.bootstrap_server))?;
    if !args.json {
        println!("Executing records delete operation");
    }
    let answers = admin.delete_records(&offsets).await.context("deleting records")?;
    let failures = answers.iter().filter(|(a, _)| a.error_code != 0).count();
    if args.json {
        let list: Vec<_> = answers
            .iter()
            .map(|(a, low)| match a.error() {
                None => json!({"topic": a.partition.topic, "partition": a.partition.partition, "low_watermark": low}),
                Some(e) => {
                    json!({"topic": a.partition.topic, "partition": a.partition.partition, "error": e.to_string()})
                }
            })
            .collect();
        println!("{}", json!({ "partitions": list }));
    } else {
        println!("Records delete operation completed:");
        for (a, low) in &answers {
            match a.error() {
                None => println!("partition: {}\tlow_watermark: {low}", a.partition),
                Some(e) => println!("partition: {}\terror: {e}", a.partition),
            }
        }
    }
    if failures > 0 {
        bail!("{failures} partition(s) could not be truncated");
    }
    Ok(())
}
