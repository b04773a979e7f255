//! `gregor quota describe|alter`: client quotas (users, client ids, their
//! defaults) through the admin client, as text like `kafka-configs`'s or
//! `--json`.

use anyhow::{bail, Context};
use gregor_client::{Admin, QuotaEntry, QuotaMatch};
use serde_json::json;

use crate::output::report;

/// Flags of `gregor quota`.
#[derive(Debug, clap::Args)]
pub struct QuotaArgs {
    /// Brokers to reach the cluster through.
    #[arg(long, global = true, default_value = "127.0.0.1:9092")]
    pub bootstrap_server: String,
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub action: QuotaAction,
}

/// Which entity: a user and/or a client id, each named or the default.
#[derive(Debug, Clone, clap::Args)]
pub struct EntityArgs {
    /// A user principal's name (`ANONYMOUS` without authentication).
    #[arg(long, conflicts_with = "user_default")]
    pub user: Option<String>,
    /// The default user.
    #[arg(long)]
    pub user_default: bool,
    /// A client id.
    #[arg(long, conflicts_with = "client_default")]
    pub client_id: Option<String>,
    /// The default client id.
    #[arg(long)]
    pub client_default: bool,
}

/// What to do with quotas.
#[derive(Debug, clap::Subcommand)]
pub enum QuotaAction {
    /// Show the quotas of the entities matching: with no entity flag,
    /// every entity; `--strict`: only entities with no other part.
    Describe {
        #[command(flatten)]
        entity: EntityArgs,
        /// Only entities made of exactly the given parts.
        #[arg(long)]
        strict: bool,
    },
    /// Set or remove quotas of one entity.
    Alter {
        #[command(flatten)]
        entity: EntityArgs,
        /// Set quotas, `key=value[,key=value]` (producer_byte_rate,
        /// consumer_byte_rate, request_percentage, controller_mutation_rate).
        #[arg(long = "add-config", value_name = "K=V,...")]
        add: Vec<String>,
        /// Remove quotas, `key[,key]`.
        #[arg(long = "delete-config", value_name = "K,...")]
        delete: Vec<String>,
        /// Check only.
        #[arg(long)]
        validate_only: bool,
    },
}

fn parts(entity: &EntityArgs) -> Vec<(String, Option<Option<String>>)> {
    let mut out = Vec::new();
    if entity.user_default {
        out.push(("user".to_string(), Some(None)));
    } else if let Some(user) = &entity.user {
        out.push(("user".to_string(), Some(Some(user.clone()))));
    }
    if entity.client_default {
        out.push(("client-id".to_string(), Some(None)));
    } else if let Some(client) = &entity.client_id {
        out.push(("client-id".to_string(), Some(Some(client.clone()))));
    }
    out
}

/// Runs the action; the output goes to stdout.
pub async fn run(args: QuotaArgs) -> anyhow::Result<()> {
    let mut admin = Admin::connect(&args.bootstrap_server)
        .await
        .with_context(|| format!("connecting to {}", args.bootstrap_server))?;
    match args.action {
        QuotaAction::Describe { entity, strict } => {
            let components: Vec<(String, QuotaMatch)> = parts(&entity)
                .into_iter()
                .map(|(t, name)| match name.flatten() {
                    Some(n) => (t, QuotaMatch::Exact(n)),
                    None => (t, QuotaMatch::Default),
                })
                .collect();
            let mut entries = admin.describe_client_quotas(&components, strict).await?;
            entries.sort_by(|a, b| a.entity.cmp(&b.entity));
            let value = json!(entries.iter().map(entry_json).collect::<Vec<_>>());
            let text: Vec<String> = entries.iter().map(entry_text).collect();
            report(args.json, value, &text.join("\n"));
        }
        QuotaAction::Alter {
            entity,
            add,
            delete,
            validate_only,
        } => {
            let entity: Vec<(String, Option<String>)> =
                parts(&entity).into_iter().map(|(t, n)| (t, n.flatten())).collect();
            if entity.is_empty() {
                bail!("name an entity: --user/--user-default and/or --client-id/--client-default");
            }
            let mut ops = Vec::new();
            for pair in add.iter().flat_map(|a| a.split(',')).filter(|p| !p.trim().is_empty()) {
                let (key, value) = pair
                    .split_once('=')
                    .with_context(|| format!("--add-config {pair:?}: expected key=value"))?;
                let value: f64 = value
                    .trim()
                    .parse()
                    .with_context(|| format!("--add-config {pair:?}: not a number"))?;
                ops.push((key.trim().to_string(), Some(value)));
            }
            for key in delete
                .iter()
                .flat_map(|d| d.split(','))
                .filter(|k| !k.trim().is_empty())
            {
                ops.push((key.trim().to_string(), None));
            }
            if ops.is_empty() {
                bail!("nothing to change: give --add-config or --delete-config");
            }
            admin.alter_client_quotas(&entity, &ops, validate_only).await?;
            let described = describe_entity(&entity);
            let verb = if validate_only { "Validated" } else { "Completed" };
            report(
                args.json,
                json!({"entity": entity_json(&entity), "validate_only": validate_only, "ok": true}),
                &format!("{verb} updating config for {described}."),
            );
        }
    }
    Ok(())
}

fn entity_json(entity: &[(String, Option<String>)]) -> serde_json::Value {
    entity.iter().map(|(t, n)| (t.clone(), json!(n))).collect()
}

fn entry_json(entry: &QuotaEntry) -> serde_json::Value {
    json!({"entity": entity_json(&entry.entity), "values": entry.values})
}

/// `user-principal 'alice', client-id 'app'`, `the default client-id`.
fn describe_entity(entity: &[(String, Option<String>)]) -> String {
    entity
        .iter()
        .map(|(t, n)| {
            let t = if t == "user" { "user-principal" } else { t.as_str() };
            match n {
                Some(n) => format!("{t} '{n}'"),
                None => format!("the default {t}"),
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Kafka's line: `Quota configs for client-id 'app' are producer_byte_rate=1024.0`.
fn entry_text(entry: &QuotaEntry) -> String {
    let values: Vec<String> = entry.values.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    format!(
        "Quota configs for {} are {}",
        describe_entity(&entry.entity),
        values.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_read_like_kafka_configs() {
        let entry = QuotaEntry {
            entity: vec![("user".into(), Some("alice".into())), ("client-id".into(), None)],
            values: [("producer_byte_rate".to_string(), 1024.0)].into(),
        };
        assert_eq!(
            entry_text(&entry),
            "Quota configs for user-principal 'alice', the default client-id are producer_byte_rate=1024.0"
        );
    }
}
