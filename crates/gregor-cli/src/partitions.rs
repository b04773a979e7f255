//! `gregor partitions reassign|list-reassignments|elect-leaders`: moving
//! replicas between brokers and electing leaders, with the flags, files
//! and output of Kafka's kafka-reassign-partitions.sh and
//! kafka-leader-election.sh (or `--json`).

use anyhow::{bail, Context};
use gregor_client::{ElectionType, PartitionAdmin, TopicPartition, ELECTION_NOT_NEEDED};
use serde_json::json;

use crate::ops_json::{parse_election_partitions, read};
use crate::reassign;
use crate::reassign_args::ReassignArgs;

/// Flags of `gregor partitions`.
#[derive(Debug, clap::Args)]
pub struct PartitionsArgs {
    /// Brokers to reach the cluster through.
    #[arg(long, global = true, default_value = "127.0.0.1:9092")]
    pub bootstrap_server: String,
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub action: PartitionsAction,
}

/// What to do with partitions.
#[derive(Debug, clap::Subcommand)]
pub enum PartitionsAction {
    /// Move partitions' replicas between brokers, like
    /// kafka-reassign-partitions.sh: --generate a plan, --execute it,
    /// --verify it (removing the throttles once done) or --cancel it.
    Reassign(ReassignArgs),
    /// The reassignments under way.
    ListReassignments,
    /// Elect the preferred (or, with no leader left, any) replica as
    /// leader, like kafka-leader-election.sh.
    ElectLeaders(ElectArgs),
}

/// The election kinds of kafka-leader-election.sh.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Election {
    /// The first replica of the assignment, if in sync.
    Preferred,
    /// Any live replica, for partitions with no leader.
    Unclean,
}

/// Flags of `gregor partitions elect-leaders`.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("which").required(true).args(["topic", "all_topic_partitions", "path_to_json_file"])))]
pub struct ElectArgs {
    /// The kind of election.
    #[arg(long, value_enum)]
    pub election_type: Election,
    /// The topic of the one partition to elect for.
    #[arg(long, requires = "partition")]
    pub topic: Option<String>,
    /// The partition (with --topic).
    #[arg(long, requires = "topic")]
    pub partition: Option<i32>,
    /// Every partition of the cluster.
    #[arg(long)]
    pub all_topic_partitions: bool,
    /// `{"partitions":[{"topic":"a","partition":0}]}`.
    #[arg(long, value_name = "FILE")]
    pub path_to_json_file: Option<String>,
}

/// Runs the action; the output goes to stdout.
pub async fn run(args: PartitionsArgs) -> anyhow::Result<()> {
    let mut admin = PartitionAdmin::connect(&args.bootstrap_server)
        .await
        .with_context(|| format!("connecting to {}", args.bootstrap_server))?;
    match args.action {
        PartitionsAction::Reassign(r) => reassign::run(&mut admin, r, args.json).await,
        PartitionsAction::ListReassignments => {
            let ongoing = admin
                .list_reassignments(None)
                .await
                .context("listing reassignments (ListPartitionReassignments)")?;
            if args.json {
                let list: Vec<_> = ongoing
                    .iter()
                    .map(|r| {
                        json!({"topic": r.partition.topic, "partition": r.partition.partition,
                               "replicas": r.replicas, "adding_replicas": r.adding,
                               "removing_replicas": r.removing})
                    })
                    .collect();
                println!("{}", json!({ "reassignments": list }));
            } else {
                println!("{}", reassign::ongoing_text(&ongoing));
            }
            Ok(())
        }
        PartitionsAction::ElectLeaders(e) => elect(&mut admin, e, args.json).await,
    }
}

async fn elect(admin: &mut PartitionAdmin, args: ElectArgs, as_json: bool) -> anyhow::Result<()> {
    let partitions = match (&args.topic, args.partition, &args.path_to_json_file) {
        (Some(topic), Some(p), _) => Some(vec![TopicPartition::new(topic.clone(), p)]),
        (_, _, Some(path)) => Some(parse_election_partitions(&read(path)?).with_context(|| format!("in {path}"))?),
        _ => None,
    };
    let (election, name) = match args.election_type {
        Election::Preferred => (ElectionType::Preferred, "PREFERRED"),
        Election::Unclean => (ElectionType::Unclean, "UNCLEAN"),
    };
    let answers = admin
        .elect_leaders(election, partitions.as_deref())
        .await
        .context("electing leaders (ElectLeaders)")?;
    let names = |code: fn(i16) -> bool| {
        answers
            .iter()
            .filter(|a| code(a.error_code))
            .map(|a| a.partition.to_string())
            .collect::<Vec<_>>()
    };
    let succeeded = names(|c| c == 0);
    let not_needed = names(|c| c == ELECTION_NOT_NEEDED);
    let failed: Vec<_> = answers
        .iter()
        .filter_map(|a| match a.error() {
            Some(e) if a.error_code != ELECTION_NOT_NEEDED => Some((a.partition.to_string(), e.to_string())),
            _ => None,
        })
        .collect();
    if as_json {
        let failed_json: Vec<_> = failed
            .iter()
            .map(|(p, e)| json!({"partition": p, "error": e}))
            .collect();
        println!(
            "{}",
            json!({"election_type": name, "succeeded": succeeded,
                   "not_needed": not_needed, "failed": failed_json})
        );
    } else {
        if !succeeded.is_empty() {
            println!(
                "Successfully completed leader election ({name}) for partitions {}",
                succeeded.join(", ")
            );
        }
        if !not_needed.is_empty() {
            println!("Valid replica already elected for partitions {}", not_needed.join(", "));
        }
        for (partition, error) in &failed {
            println!("Error completing leader election ({name}) for partition: {partition}: {error}");
        }
    }
    if !failed.is_empty() {
        bail!("{} replica(s) could not be elected", failed.len());
    }
    Ok(())
}
