//! `gregor topic create|list|describe|delete|alter`: topics through the
//! admin client, as a table or `--json`.

use std::collections::BTreeMap;

use anyhow::Context;
use gregor_client::{Admin, TopicInfo};
use serde_json::json;

use crate::output::report;

/// Flags of `gregor topic`.
#[derive(Debug, clap::Args)]
pub struct TopicArgs {
    /// Brokers to reach the cluster through.
    #[arg(long, global = true, default_value = "127.0.0.1:9092")]
    pub bootstrap_server: String,
    /// Print JSON instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub action: TopicAction,
}

/// What to do with topics.
#[derive(Debug, clap::Subcommand)]
pub enum TopicAction {
    /// Create a topic.
    Create {
        /// Topic name.
        name: String,
        /// Partitions (default: the broker's `num.partitions`).
        #[arg(long, default_value_t = -1)]
        partitions: i32,
        /// Replicas per partition (default: `default.replication.factor`).
        #[arg(long, default_value_t = -1)]
        replication_factor: i16,
        /// Topic configuration, `name=value` (repeatable).
        #[arg(long = "config", value_name = "NAME=VALUE")]
        configs: Vec<String>,
    },
    /// List topics.
    List,
    /// Show partitions, leaders, replicas, ISR and configuration.
    Describe {
        /// Topic name.
        name: String,
    },
    /// Delete a topic.
    Delete {
        /// Topic name.
        name: String,
    },
    /// Grow a topic's partition count, set or delete its configs.
    Alter {
        /// Topic name.
        name: String,
        /// The new partition count.
        #[arg(long)]
        partitions: Option<i32>,
        /// Set a config, `name=value` (repeatable).
        #[arg(long = "config", value_name = "NAME=VALUE")]
        configs: Vec<String>,
        /// Remove a config override (repeatable).
        #[arg(long = "delete-config", value_name = "NAME")]
        delete_configs: Vec<String>,
    },
}

/// Runs the action; the output goes to stdout.
pub async fn run(args: TopicArgs) -> anyhow::Result<()> {
    let mut admin = Admin::connect(&args.bootstrap_server)
        .await
        .with_context(|| format!("connecting to {}", args.bootstrap_server))?;
    match args.action {
        TopicAction::Create {
            name,
            partitions,
            replication_factor,
            configs,
        } => {
            let configs = parse_configs(&configs)?;
            admin
                .create_topic(&name, partitions, replication_factor, &configs)
                .await
                .with_context(|| format!("creating topic {name}"))?;
            report(args.json, json!({"created": name}), &format!("created topic {name}"));
        }
        TopicAction::Delete { name } => {
            admin
                .delete_topic(&name)
                .await
                .with_context(|| format!("deleting topic {name}"))?;
            report(args.json, json!({"deleted": name}), &format!("deleted topic {name}"));
        }
        TopicAction::Alter {
            name,
            partitions,
            configs,
            delete_configs,
        } => {
            let mut changes: Vec<(String, Option<String>)> = parse_configs(&configs)?
                .into_iter()
                .map(|(k, v)| (k, Some(v)))
                .collect();
            changes.extend(delete_configs.into_iter().map(|k| (k, None)));
            anyhow::ensure!(
                partitions.is_some() || !changes.is_empty(),
                "nothing to alter: give --partitions, --config or --delete-config"
            );
            if let Some(partitions) = partitions {
                admin
                    .add_partitions(&name, partitions)
                    .await
                    .with_context(|| format!("altering topic {name}"))?;
            }
            if !changes.is_empty() {
                admin
                    .alter_topic_config(&name, &changes)
                    .await
                    .with_context(|| format!("altering topic {name}'s configs"))?;
            }
            let text = match partitions {
                Some(p) if changes.is_empty() => format!("topic {name} now has {p} partitions"),
                _ => format!("altered topic {name}"),
            };
            report(args.json, json!({"altered": name, "partitions": partitions}), &text);
        }
        TopicAction::List => {
            let topics = admin.topics(None).await.context("listing topics")?;
            if args.json {
                let list: Vec<_> = topics.iter().map(topic_json).collect();
                println!("{}", serde_json::Value::Array(list));
            } else {
                println!("{:<40} {:>10} {:>8}", "TOPIC", "PARTITIONS", "REPLICAS");
                for t in &topics {
                    let replicas = t.partitions.first().map_or(0, |p| p.replicas.len());
                    println!("{:<40} {:>10} {:>8}", t.name, t.partitions.len(), replicas);
                }
            }
        }
        TopicAction::Describe { name } => {
            let topic = admin
                .topics(Some(&[name.as_str()]))
                .await
                .with_context(|| format!("describing topic {name}"))?
                .into_iter()
                .next()
                .with_context(|| format!("no topic {name}"))?;
            let configs = admin.topic_config(&name).await.unwrap_or_default();
            let offsets = admin.list_offsets(&name).await.unwrap_or_default();
            let offsets_of = |p: i32| offsets.iter().find(|o| o.0 == p).map_or((-1, -1), |o| (o.1, o.2));
            if args.json {
                let mut value = topic_json(&topic);
                value["configs"] = json!(configs);
                if let Some(partitions) = value["partitions"].as_array_mut() {
                    for entry in partitions {
                        let (earliest, latest) = offsets_of(entry["partition"].as_i64().unwrap_or(-1) as i32);
                        entry["earliest_offset"] = json!(earliest);
                        entry["latest_offset"] = json!(latest);
                    }
                }
                println!("{value}");
            } else {
                println!(
                    "topic {} (id {}){}",
                    topic.name,
                    topic.id,
                    if topic.internal { ", internal" } else { "" }
                );
                println!(
                    "{:>9} {:>7} {:>6}  {:<16} {:<16} {:>10} {:>10}",
                    "PARTITION", "LEADER", "EPOCH", "REPLICAS", "ISR", "EARLIEST", "LATEST"
                );
                for p in &topic.partitions {
                    let (earliest, latest) = offsets_of(p.partition);
                    println!(
                        "{:>9} {:>7} {:>6}  {:<16} {:<16} {:>10} {:>10}",
                        p.partition,
                        p.leader,
                        p.leader_epoch,
                        list(&p.replicas),
                        list(&p.isr),
                        earliest,
                        latest
                    );
                }
                for (k, v) in &configs {
                    println!("  {k}={v}");
                }
            }
        }
    }
    Ok(())
}

fn parse_configs(configs: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
    configs
        .iter()
        .map(|c| {
            c.split_once('=')
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                .with_context(|| format!("--config {c:?}: expected NAME=VALUE"))
        })
        .collect()
}

fn list(ids: &[i32]) -> String {
    ids.iter().map(i32::to_string).collect::<Vec<_>>().join(",")
}

fn topic_json(t: &TopicInfo) -> serde_json::Value {
    json!({
        "name": t.name,
        "id": t.id,
        "internal": t.internal,
        "partitions": t.partitions.iter().map(|p| json!({
            "partition": p.partition,
            "leader": p.leader,
            "leader_epoch": p.leader_epoch,
            "replicas": p.replicas,
            "isr": p.isr,
        })).collect::<Vec<_>>(),
    })
}
