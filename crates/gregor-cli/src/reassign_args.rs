//! The flags of `gregor partitions reassign` (kafka-reassign-partitions.sh's).

/// Flags of `gregor partitions reassign`.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("action").required(true).args(["generate", "execute", "verify", "cancel"])))]
pub struct ReassignArgs {
    /// Propose a reassignment of the topics of --topics-to-move-json-file
    /// onto --broker-list (printed, not executed).
    #[arg(long, requires_all = ["topics_to_move_json_file", "broker_list"])]
    pub generate: bool,
    /// Start the reassignment of --reassignment-json-file.
    #[arg(long, requires = "reassignment_json_file")]
    pub execute: bool,
    /// Tell how far the reassignment of --reassignment-json-file has come;
    /// once no reassignment is under way, remove the throttles.
    #[arg(long, requires = "reassignment_json_file")]
    pub verify: bool,
    /// Cancel the reassignment of --reassignment-json-file.
    #[arg(long, requires = "reassignment_json_file")]
    pub cancel: bool,
    /// `{"topics":[{"topic":"a"}],"version":1}`.
    #[arg(long, value_name = "FILE")]
    pub topics_to_move_json_file: Option<String>,
    /// The brokers to place replicas on, `1,2,3`.
    #[arg(long, value_name = "IDS")]
    pub broker_list: Option<String>,
    /// Place replicas ignoring `broker.rack`.
    #[arg(long, requires = "generate")]
    pub disable_rack_aware: bool,
    /// `{"version":1,"partitions":[{"topic":"t","partition":0,"replicas":[1,2]}]}`.
    #[arg(long, value_name = "FILE")]
    pub reassignment_json_file: Option<String>,
    /// Limit replication between the moving brokers to this many bytes/s
    /// (the `*.replication.throttled.*` configs) while moving.
    #[arg(long, value_name = "B/s", requires = "execute")]
    pub throttle: Option<u64>,
    /// Execute even though other reassignments are under way.
    #[arg(long, requires = "execute")]
    pub additional: bool,
    /// Leave the throttles in place (--verify, --cancel).
    #[arg(long)]
    pub preserve_throttles: bool,
}
