//! `gregor user set-password|delete|list`: SCRAM credentials (KIP-554)
//! through the admin client, as `kafka-configs --entity-type users
//! --add-config 'SCRAM-SHA-512=[password=…]'` sets them. The password is
//! salted here; only the salted form travels.

use anyhow::{bail, Context};
use gregor_auth::sasl::ScramMechanism;
use gregor_client::Admin;
use serde_json::json;

use crate::output::{report, table};

/// Flags of `gregor user`.
#[derive(Debug, clap::Args)]
pub struct UserArgs {
    /// Brokers to reach the cluster through.
    #[arg(long, global = true, default_value = "127.0.0.1:9092")]
    pub bootstrap_server: String,
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub action: UserAction,
}

/// What to do with a user's credentials.
#[derive(Debug, clap::Subcommand)]
pub enum UserAction {
    /// Set a user's SCRAM password (every mechanism unless named).
    SetPassword {
        /// The user.
        #[arg(long)]
        user: String,
        /// The password (or the GREGOR_USER_PASSWORD variable).
        #[arg(long, env = "GREGOR_USER_PASSWORD", hide_env_values = true)]
        password: String,
        /// SCRAM-SHA-256 or SCRAM-SHA-512 (repeatable; default both).
        #[arg(long)]
        mechanism: Vec<String>,
        /// PBKDF2 iterations (Kafka accepts 4096 to 16384).
        #[arg(long, default_value_t = 4096)]
        iterations: i32,
    },
    /// Delete a user's SCRAM credentials (every mechanism it has unless named).
    Delete {
        /// The user.
        #[arg(long)]
        user: String,
        /// SCRAM-SHA-256 or SCRAM-SHA-512 (repeatable).
        #[arg(long)]
        mechanism: Vec<String>,
    },
    /// The users with SCRAM credentials, their mechanisms and iterations.
    List {
        /// Only these users (repeatable).
        #[arg(long)]
        user: Vec<String>,
    },
}

fn mechanisms(names: &[String]) -> anyhow::Result<Vec<ScramMechanism>> {
    if names.is_empty() {
        return Ok(ScramMechanism::ALL.to_vec());
    }
    names
        .iter()
        .map(|n| {
            ScramMechanism::from_name(&n.to_ascii_uppercase())
                .with_context(|| format!("--mechanism {n}: SCRAM-SHA-256 or SCRAM-SHA-512"))
        })
        .collect()
}

/// Runs the action; the output goes to stdout.
pub async fn run(args: UserArgs) -> anyhow::Result<()> {
    let mut admin = Admin::connect(&args.bootstrap_server)
        .await
        .with_context(|| format!("connecting to {}", args.bootstrap_server))?;
    match args.action {
        UserAction::SetPassword {
            user,
            password,
            mechanism,
            iterations,
        } => {
            if password.is_empty() {
                bail!("the password is empty");
            }
            let mechanisms = mechanisms(&mechanism)?;
            for m in &mechanisms {
                admin.set_scram_password(&user, *m, &password, iterations).await?;
            }
            let names: Vec<&str> = mechanisms.iter().map(|m| m.name()).collect();
            report(
                args.json,
                json!({"user": user, "mechanisms": names, "iterations": iterations}),
                &format!("Set the {} password of user {user}.", names.join(" and ")),
            );
        }
        UserAction::Delete { user, mechanism } => {
            let mechanisms = if mechanism.is_empty() {
                let described = admin.describe_scram_credentials(std::slice::from_ref(&user)).await?;
                described.into_iter().flat_map(|(_, c)| c).map(|(m, _)| m).collect()
            } else {
                mechanisms(&mechanism)?
            };
            for m in &mechanisms {
                admin.delete_scram_credential(&user, *m).await?;
            }
            let names: Vec<&str> = mechanisms.iter().map(|m| m.name()).collect();
            report(
                args.json,
                json!({"user": user, "deleted": names}),
                &format!("Deleted the {} credentials of user {user}.", names.join(" and ")),
            );
        }
        UserAction::List { user } => {
            let users = admin.describe_scram_credentials(&user).await?;
            let value = json!(users
                .iter()
                .map(|(u, c)| json!({
                    "user": u,
                    "credentials": c.iter().map(|(m, i)| json!({"mechanism": m.name(), "iterations": i})).collect::<Vec<_>>(),
                }))
                .collect::<Vec<_>>());
            let rows: Vec<Vec<String>> = users
                .iter()
                .flat_map(|(u, c)| {
                    c.iter()
                        .map(move |(m, i)| vec![u.clone(), m.name().to_string(), i.to_string()])
                })
                .collect();
            report(args.json, value, &table(&["USER", "MECHANISM", "ITERATIONS"], &rows));
        }
    }
    Ok(())
}
