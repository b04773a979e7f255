//! `gregor log-dirs describe`: each broker's log directories and the
//! replicas in them (DescribeLogDirs), as a table or, with `--json`, the
//! JSON kafka-log-dirs.sh prints.

use anyhow::{bail, Context};
use gregor_client::{ClientError, LogDir, PartitionAdmin};
use serde_json::{json, Value};

use crate::output::table;

/// Flags of `gregor log-dirs`.
#[derive(Debug, clap::Args)]
pub struct LogDirsArgs {
    /// Brokers to reach the cluster through.
    #[arg(long, global = true, default_value = "127.0.0.1:9092")]
    pub bootstrap_server: String,
    /// Print kafka-log-dirs.sh's JSON instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub action: LogDirsAction,
}

/// What to do with log directories.
#[derive(Debug, clap::Subcommand)]
pub enum LogDirsAction {
    /// Show the brokers' log directories, their replicas' sizes and lags.
    Describe {
        /// The brokers to ask, `0,1` (default: every broker).
        #[arg(long, value_name = "IDS", value_delimiter = ',')]
        broker_list: Vec<i32>,
        /// Only these topics' replicas, `a,b` (default: all).
        #[arg(long, value_name = "TOPICS", value_delimiter = ',')]
        topic_list: Vec<String>,
    },
}

/// Runs the action; the output goes to stdout.
pub async fn run(args: LogDirsArgs) -> anyhow::Result<()> {
    let LogDirsAction::Describe {
        broker_list,
        topic_list,
    } = args.action;
    let mut admin = PartitionAdmin::connect(&args.bootstrap_server)
        .await
        .with_context(|| format!("connecting to {}", args.bootstrap_server))?;
    let cluster: Vec<i32> = admin.brokers().into_iter().map(|(id, _)| id).collect();
    let unknown: Vec<String> = broker_list
        .iter()
        .filter(|b| !cluster.contains(b))
        .map(i32::to_string)
        .collect();
    if !unknown.is_empty() {
        let existing: Vec<String> = cluster.iter().map(i32::to_string).collect();
        bail!(
            "The given brokers do not exist from --broker-list: {}. Current existent brokers: {}",
            unknown.join(","),
            existing.join(",")
        );
    }
    let mut brokers = if broker_list.is_empty() { cluster } else { broker_list };
    brokers.sort_unstable();
    brokers.dedup();
    let topics: Vec<String> = topic_list.into_iter().filter(|t| !t.is_empty()).collect();
    let filter = (!topics.is_empty()).then_some(topics.as_slice());
    let mut described = Vec::new();
    for broker in brokers {
        let dirs = admin
            .describe_log_dirs(broker, filter)
            .await
            .with_context(|| format!("describing the log dirs of broker {broker}"))?;
        described.push((broker, dirs));
    }
    if args.json {
        println!("{}", kafka_json(&described));
    } else {
        println!("{}", text(&described));
    }
    Ok(())
}

/// The error's class name in kafka-log-dirs' JSON (null when online).
fn error_name(code: i16) -> Value {
    match ClientError::from_code(code, "") {
        _ if code == 0 => Value::Null,
        ClientError::Broker { error, .. } => json!(format!(
            "org.apache.kafka.common.errors.{}Exception",
            error.trim_end_matches("Error")
        )),
        other => json!(other.to_string()),
    }
}

/// kafka-log-dirs' JSON: `{"version":1,"brokers":[{"broker":0,"logDirs":
/// [{"logDir":…,"error":null,"partitions":[{"partition":"t-0","size":…,
/// "offsetLag":0,"isFuture":false}]}]}]}`.
pub fn kafka_json(described: &[(i32, Vec<LogDir>)]) -> Value {
    let brokers: Vec<Value> = described
        .iter()
        .map(|(broker, dirs)| {
            let dirs: Vec<Value> = dirs
                .iter()
                .map(|d| {
                    let partitions: Vec<Value> = d
                        .replicas
                        .iter()
                        .map(|r| {
                            json!({"partition": r.partition.to_string(), "size": r.size,
                                   "offsetLag": r.offset_lag, "isFuture": r.is_future})
                        })
                        .collect();
                    json!({"logDir": d.path, "error": error_name(d.error_code), "partitions": partitions})
                })
                .collect();
            json!({"broker": broker, "logDirs": dirs})
        })
        .collect();
    json!({"version": 1, "brokers": brokers})
}

fn bytes(n: i64) -> String {
    if n < 0 {
        "-".to_string()
    } else {
        n.to_string()
    }
}

/// One row per replica (or per empty or failed directory).
pub fn text(described: &[(i32, Vec<LogDir>)]) -> String {
    let mut rows = Vec::new();
    for (broker, dirs) in described {
        for d in dirs {
            let status = match error_name(d.error_code) {
                Value::String(e) => e,
                _ => "online".to_string(),
            };
            let dir = vec![
                broker.to_string(),
                d.path.clone(),
                status,
                bytes(d.total_bytes),
                bytes(d.usable_bytes),
            ];
            if d.replicas.is_empty() {
                rows.push([dir.clone(), vec!["-".into(), "-".into(), "-".into(), "-".into()]].concat());
            }
            for r in &d.replicas {
                rows.push(
                    [
                        dir.clone(),
                        vec![
                            r.partition.to_string(),
                            r.size.to_string(),
                            r.offset_lag.to_string(),
                            r.is_future.to_string(),
                        ],
                    ]
                    .concat(),
                );
            }
        }
    }
    table(
        &[
            "BROKER",
            "LOG-DIR",
            "STATUS",
            "TOTAL-BYTES",
            "USABLE-BYTES",
            "PARTITION",
            "SIZE",
            "OFFSET-LAG",
            "FUTURE",
        ],
        &rows,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use gregor_client::{LogDirReplica, TopicPartition};

    #[test]
    fn prints_kafka_log_dirs_json() {
        let dir = LogDir {
            path: "/data".into(),
            error_code: 0,
            total_bytes: 100,
            usable_bytes: 50,
            replicas: vec![LogDirReplica {
                partition: TopicPartition::new("t", 1),
                size: 42,
                offset_lag: 0,
                is_future: false,
            }],
        };
        let offline = LogDir {
            path: "/bad".into(),
            error_code: 56,
            total_bytes: -1,
            usable_bytes: -1,
            replicas: vec![],
        };
        let value = kafka_json(&[(0, vec![dir, offline])]);
        assert_eq!(
            value,
            json!({"version": 1, "brokers": [{"broker": 0, "logDirs": [
                {"logDir": "/data", "error": null, "partitions": [
                    {"partition": "t-1", "size": 42, "offsetLag": 0, "isFuture": false}]},
                {"logDir": "/bad", "error": "org.apache.kafka.common.errors.KafkaStorageException", "partitions": []}]}]})
        );
        let shown = text(&kafka_json_dirs());
        assert!(shown.starts_with("BROKER  LOG-DIR"), "{shown}");
    }

    fn kafka_json_dirs() -> Vec<(i32, Vec<LogDir>)> {
        vec![(
            3,
            vec![LogDir {
                path: "/d".into(),
                error_code: 0,
                total_bytes: -1,
                usable_bytes: -1,
                replicas: vec![],
            }],
        )]
    }
}
