//! `gregor`: the broker (`gregor server`) and the tools around it. Errors
//! are one line on stderr and a non-zero exit, never a panic.

mod acl;
mod bench;
mod broker_config;
mod clients;
mod cluster;
mod dump_log;
mod group;
mod group_reset;
mod log_dirs;
mod ops_json;
mod output;
mod partitions;
mod quota;
mod reassign;
mod reassign_args;
mod records;
mod topic;
mod topic_spec;
mod user;

use clap::{Parser, Subcommand};
use gregor_server::cli::{init_logging, ServerArgs};
use gregor_server::HugeAllocationGuard;

/// Decoding untrusted requests must not be able to abort the process
/// through one impossible allocation (see `HugeAllocationGuard`).
#[global_allocator]
static ALLOCATOR: HugeAllocationGuard = HugeAllocationGuard;

/// gregor: a Kafka-compatible commit log.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// Kafka client properties for a secured listener (security.protocol,
    /// sasl.mechanism, sasl.username/sasl.password or sasl.jaas.config,
    /// ssl.ca.location or ssl.truststore.location, ssl.keystore.location
    /// and ssl.key.password, …), as Kafka's tools.
    #[arg(long, global = true, value_name = "FILE")]
    command_config: Option<std::path::PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a broker (the same flags and GREGOR_* variables as gregor-server).
    Server(ServerArgs),
    /// Print the batches and records of a segment file or a partition
    /// directory, like kafka-dump-log.sh; `--verify` checks them offline.
    DumpLog(dump_log::DumpLogArgs),
    /// Create, list, describe, delete or grow topics.
    Topic(topic::TopicArgs),
    /// Describe a broker's configs or change the dynamic ones, like
    /// kafka-configs.sh --entity-type brokers.
    Broker(broker_config::BrokerArgs),
    /// List, describe, reset the offsets of or delete consumer groups, like
    /// kafka-consumer-groups.sh.
    Group(group::GroupArgs),
    /// Reassign partitions' replicas and elect leaders, like
    /// kafka-reassign-partitions.sh and kafka-leader-election.sh.
    Partitions(partitions::PartitionsArgs),
    /// Delete records before an offset, like kafka-delete-records.sh.
    Records(records::RecordsArgs),
    /// Describe the brokers' log directories, like kafka-log-dirs.sh.
    LogDirs(log_dirs::LogDirsArgs),
    /// Add, list or remove ACLs, like `kafka-acls --bootstrap-server`.
    Acl(acl::AclArgs),
    /// Describe or alter client quotas (users, client ids), like
    /// kafka-configs.sh --entity-type users|clients.
    Quota(quota::QuotaArgs),
    /// SCRAM users: set-password, delete, list.
    User(user::UserArgs),
    /// Write lines from stdin (or --file) as records.
    Produce(clients::ProduceArgs),
    /// Print records of a topic.
    Consume(clients::ConsumeArgs),
    /// Measure produce or consume throughput and latency against a broker.
    Bench(bench::BenchArgs),
    /// Serve the embedded coordination store to brokers in other processes.
    Coordination(cluster::CoordinationArgs),
    /// Run a local cluster: N brokers and their coordination, as child
    /// processes; Ctrl-C stops them all.
    Cluster(cluster::ClusterArgs),
}

/// Runs `work` on a new runtime; 0 on success.
fn block_on(work: impl std::future::Future<Output = anyhow::Result<()>>) -> anyhow::Result<i32> {
    tokio::runtime::Runtime::new()?.block_on(work).map(|()| 0)
}

fn main() {
    let cli = Cli::parse();
    if let Some(path) = &cli.command_config {
        let security =
            gregor_client::read_properties(path).and_then(|p| gregor_client::ClientSecurity::from_properties(&p));
        match security {
            Ok(security) => gregor_client::install_default_security(security),
            Err(e) => {
                eprintln!("gregor: --command-config {}: {e}", path.display());
                std::process::exit(1);
            }
        }
    }
    let command = cli.command;
    if matches!(
        command,
        Command::DumpLog(_)
            | Command::Consume(_)
            | Command::Topic(_)
            | Command::Group(_)
            | Command::Partitions(_)
            | Command::Records(_)
            | Command::LogDirs(_)
            | Command::Broker(_)
    ) {
        // A tool's output piped into `head` ends quietly, as in other Unix
        // tools, not with a panic on the broken pipe. (Services keep
        // ignoring SIGPIPE: a closed stdout must not stop a broker.)
        // SAFETY: setting a signal's disposition at start-up, before any
        // thread exists.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    let outcome = match command {
        Command::Server(args) => {
            init_logging(args.log_format.as_deref());
            tokio::runtime::Runtime::new()
                .map_err(anyhow::Error::from)
                .and_then(|runtime| runtime.block_on(gregor_server::cli::run(args)))
                .map(|()| 0)
        }
        Command::DumpLog(args) => dump_log::run(&args),
        Command::Coordination(args) => {
            init_logging(None);
            tokio::runtime::Runtime::new()
                .map_err(anyhow::Error::from)
                .and_then(|runtime| runtime.block_on(cluster::coordination(args)))
                .map(|()| 0)
        }
        Command::Cluster(args) => cluster::cluster(args).map(|()| 0),
        Command::Topic(args) => block_on(topic::run(args)),
        Command::Group(args) => block_on(group::run(args)),
        Command::Partitions(args) => block_on(partitions::run(args)),
        Command::Records(args) => block_on(records::run(args)),
        Command::LogDirs(args) => block_on(log_dirs::run(args)),
        Command::Broker(args) => block_on(broker_config::run(args)),
        Command::Quota(args) => block_on(quota::run(args)),
        Command::Acl(args) => block_on(acl::run(args)),
        Command::User(args) => block_on(user::run(args)),
        Command::Produce(args) => block_on(clients::produce(args)),
        Command::Consume(args) => block_on(clients::consume(args)),
        Command::Bench(args) => block_on(bench::run(args)),
    };
    match outcome {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("gregor: {e:#}");
            std::process::exit(1);
        }
    }
}
