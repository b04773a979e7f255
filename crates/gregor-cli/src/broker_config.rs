//! `gregor broker config describe|alter`: a broker's configs with where
//! each value comes from, and the dynamic ones changed — per broker
//! (`--broker N`) or cluster-wide (`--default`), as `kafka-configs
//! --entity-type brokers` does.

use anyhow::{bail, Context};
use gregor_client::{BrokerConfigEntry, BrokerConfigs};
use serde_json::json;

use crate::output::{report, table};

/// Flags of `gregor broker`.
#[derive(Debug, clap::Args)]
pub struct BrokerArgs {
    /// Brokers to reach the cluster through.
    #[arg(long, global = true, default_value = "127.0.0.1:9092")]
    pub bootstrap_server: String,
    /// Print JSON instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub action: BrokerAction,
}

/// What to do with brokers.
#[derive(Debug, clap::Subcommand)]
pub enum BrokerAction {
    /// Describe or change broker configs.
    #[command(subcommand)]
    Config(ConfigAction),
}

/// Which configs: one broker's, or the cluster-wide defaults.
#[derive(Debug, clap::Args)]
#[group(required = true, multiple = false)]
pub struct Target {
    /// One broker's configs (its id).
    #[arg(long)]
    pub broker: Option<i32>,
    /// The cluster-wide defaults of every broker.
    #[arg(long)]
    pub default: bool,
}

/// `gregor broker config …`.
#[derive(Debug, clap::Subcommand)]
pub enum ConfigAction {
    /// Every config of a broker with its value, source and synonyms (with
    /// `--default`: the cluster-wide dynamic defaults).
    Describe {
        #[command(flatten)]
        target: Target,
        /// Only the configs set dynamically.
        #[arg(long)]
        dynamic: bool,
    },
    /// Set or delete dynamic configs.
    Alter {
        #[command(flatten)]
        target: Target,
        /// A config to set, `name=value` (repeatable).
        #[arg(long = "set", value_name = "NAME=VALUE")]
        sets: Vec<String>,
        /// A config to delete (repeatable).
        #[arg(long = "delete", value_name = "NAME")]
        deletes: Vec<String>,
    },
}

/// Runs `gregor broker`.
pub async fn run(args: BrokerArgs) -> anyhow::Result<()> {
    let mut configs = BrokerConfigs::new(&args.bootstrap_server);
    match args.action {
        BrokerAction::Config(ConfigAction::Describe { target, dynamic }) => {
            let broker = target.broker;
            let mut entries = configs.describe(broker).await.context("describing broker configs")?;
            if dynamic {
                entries.retain(|e| e.source.starts_with("DYNAMIC_"));
            }
            report(
                args.json,
                json!(entries.iter().map(entry_json).collect::<Vec<_>>()),
                &entries_table(&entries),
            );
        }
        BrokerAction::Config(ConfigAction::Alter { target, sets, deletes }) => {
            let changes = changes(&sets, &deletes)?;
            configs
                .alter(target.broker, &changes)
                .await
                .context("altering broker configs")?;
            let what = match target.broker {
                Some(id) => format!("broker {id}"),
                None => "the cluster-wide defaults".to_string(),
            };
            let text = format!("Updated the dynamic configs of {what}.");
            report(
                args.json,
                json!({"broker": target.broker, "changed": changes.len()}),
                &text,
            );
        }
    }
    Ok(())
}

/// `--set name=value` and `--delete name` as (name, Some(value) | None).
fn changes(sets: &[String], deletes: &[String]) -> anyhow::Result<Vec<(String, Option<String>)>> {
    let mut out = Vec::new();
    for set in sets {
        let Some((name, value)) = set.split_once('=') else {
            bail!("--set takes name=value, not {set:?}");
        };
        out.push((name.trim().to_string(), Some(value.to_string())));
    }
    out.extend(deletes.iter().map(|name| (name.trim().to_string(), None)));
    if out.is_empty() {
        bail!("nothing to change: give --set name=value or --delete name");
    }
    Ok(out)
}

fn entry_json(e: &BrokerConfigEntry) -> serde_json::Value {
    json!({
        "name": e.name,
        "value": e.value,
        "source": e.source,
        "read_only": e.read_only,
        "synonyms": e.synonyms.iter().map(|(source, name, value)| {
            json!({"source": source, "name": name, "value": value})
        }).collect::<Vec<_>>(),
    })
}

fn entries_table(entries: &[BrokerConfigEntry]) -> String {
    let rows: Vec<Vec<String>> = entries
        .iter()
        .map(|e| {
            let synonyms: Vec<String> = e
                .synonyms
                .iter()
                .map(|(source, name, value)| format!("{source}:{name}={}", value.as_deref().unwrap_or("null")))
                .collect();
            vec![
                e.name.clone(),
                e.value.clone().unwrap_or_else(|| "null".into()),
                e.source.to_string(),
                if e.read_only { "read-only" } else { "dynamic" }.to_string(),
                synonyms.join(", "),
            ]
        })
        .collect();
    table(&["NAME", "VALUE", "SOURCE", "MODE", "SYNONYMS"], &rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_and_deletes_become_changes() {
        let got = changes(
            &["log.retention.ms=5000".into(), "a=b=c".into()],
            &["message.max.bytes".into()],
        )
        .unwrap();
        assert_eq!(
            got,
            vec![
                ("log.retention.ms".to_string(), Some("5000".to_string())),
                ("a".to_string(), Some("b=c".to_string())),
                ("message.max.bytes".to_string(), None),
            ]
        );
        assert!(changes(&["novalue".into()], &[]).is_err());
        assert!(changes(&[], &[]).is_err());
    }
}
