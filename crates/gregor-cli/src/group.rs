//! `gregor group list|describe|reset-offsets|delete|delete-offsets`: what
//! people use `kafka-consumer-groups.sh` for, through gregor-client's
//! group admin, as a table (Kafka's columns) or `--json`.

use anyhow::Context;
use gregor_client::{GroupAdmin, GroupDescription, GroupMember, OffsetMap};
use serde_json::json;

use crate::group_reset;
use crate::output::{report, table};
use crate::topic_spec::{parse_topic_spec, resolve_partitions};

/// Flags of `gregor group`.
#[derive(Debug, clap::Args)]
pub struct GroupArgs {
    /// Brokers to reach the cluster through.
    #[arg(long, global = true, default_value = "127.0.0.1:9092")]
    pub bootstrap_server: String,
    /// Print JSON instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub action: GroupAction,
}

/// What to do with consumer groups.
#[derive(Debug, clap::Subcommand)]
pub enum GroupAction {
    /// List groups with their state and protocol type.
    List {
        /// Only groups in these states (Stable, Empty, PreparingRebalance,
        /// CompletingRebalance, Dead; repeatable or comma-separated).
        #[arg(long = "state", value_delimiter = ',')]
        states: Vec<String>,
    },
    /// Show a group's state and members, and per partition the committed
    /// offset, log end offset and lag.
    Describe {
        /// Group id.
        group: String,
    },
    /// Move a group's committed offsets (a dry run unless --execute).
    ResetOffsets(group_reset::ResetArgs),
    /// Delete a group (and its committed offsets); it must have no members.
    Delete {
        /// Group id.
        group: String,
    },
    /// Delete a group's committed offsets of some partitions.
    DeleteOffsets {
        /// Group id.
        group: String,
        /// `TOPIC` (every partition) or `TOPIC:P,P,…` (repeatable).
        #[arg(long = "topic", value_name = "TOPIC[:P,…]", required = true)]
        topics: Vec<String>,
    },
}

/// Group states Kafka's tools accept in a filter, as ListGroups spells them.
const STATES: &[&str] = &[
    "Stable",
    "PreparingRebalance",
    "CompletingRebalance",
    "Empty",
    "Dead",
    "Assigning",
    "Reconciling",
];

/// Runs the action; the output goes to stdout.
pub async fn run(args: GroupArgs) -> anyhow::Result<()> {
    if let GroupAction::List { states } = &args.action {
        // Checked before reaching the cluster: bad input fails fast.
        parse_states(states)?;
    }
    if let GroupAction::ResetOffsets(reset) = &args.action {
        reset.target()?;
    }
    if let GroupAction::DeleteOffsets { topics, .. } = &args.action {
        for t in topics {
            parse_topic_spec(t)?;
        }
    }
    let mut admin = GroupAdmin::connect(&args.bootstrap_server)
        .await
        .with_context(|| format!("connecting to {}", args.bootstrap_server))?;
    match args.action {
        GroupAction::List { states } => list(&mut admin, &parse_states(&states)?, args.json).await,
        GroupAction::Describe { group } => describe(&mut admin, &group, args.json).await,
        GroupAction::ResetOffsets(reset) => group_reset::run(&mut admin, reset, args.json).await,
        GroupAction::Delete { group } => {
            admin
                .delete_group(&group)
                .await
                .with_context(|| format!("deleting group {group}"))?;
            report(args.json, json!({"deleted": group}), &format!("deleted group {group}"));
            Ok(())
        }
        GroupAction::DeleteOffsets { group, topics } => delete_offsets(&mut admin, &group, &topics, args.json).await,
    }
}

/// The states of `--state`, spelled as ListGroups does (the flag is
/// case-insensitive, as kafka-consumer-groups' is).
pub fn parse_states(states: &[String]) -> anyhow::Result<Vec<String>> {
    states
        .iter()
        .filter(|s| !s.trim().is_empty())
        .map(|s| {
            STATES
                .iter()
                .find(|known| known.eq_ignore_ascii_case(s.trim()))
                .map(|known| known.to_string())
                .with_context(|| format!("--state {s:?}: expected one of {}", STATES.join(", ")))
        })
        .collect()
}

async fn list(admin: &mut GroupAdmin, states: &[String], as_json: bool) -> anyhow::Result<()> {
    let groups = admin.list_groups(states).await.context("listing groups")?;
    if as_json {
        let list: Vec<_> = groups
            .iter()
            .map(|g| json!({"group": g.group_id, "state": g.state, "protocol_type": g.protocol_type}))
            .collect();
        println!("{}", serde_json::Value::Array(list));
    } else {
        let rows: Vec<Vec<String>> = groups
            .iter()
            .map(|g| vec![g.group_id.clone(), g.state.clone(), g.protocol_type.clone()])
            .collect();
        println!("{}", table(&["GROUP", "STATE", "PROTOCOL-TYPE"], &rows));
    }
    Ok(())
}

/// One partition of a group as `describe` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionLag {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// The group's committed offset, if any.
    pub committed: Option<i64>,
    /// The log end offset (high watermark), if known.
    pub log_end: Option<i64>,
    /// Records between the two, when both are known.
    pub lag: Option<i64>,
    /// Index (in the description's members) of the member it is assigned to.
    pub member: Option<usize>,
}

/// Kafka's lag: log end minus committed offset, unknown when either is.
pub fn lag(committed: Option<i64>, log_end: Option<i64>) -> Option<i64> {
    Some(log_end? - committed.filter(|&c| c >= 0)?)
}

/// The rows of `describe`: every partition assigned to a member or with a
/// committed offset, sorted by topic and partition.
pub fn partition_lags(members: &[GroupMember], committed: &OffsetMap, log_ends: &OffsetMap) -> Vec<PartitionLag> {
    let mut keys: Vec<(String, i32)> = committed.keys().cloned().collect();
    keys.extend(members.iter().flat_map(|m| m.assignment.iter().cloned()));
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .map(|key| {
            let committed = committed.get(&key).copied();
            let log_end = log_ends.get(&key).copied();
            PartitionLag {
                member: members.iter().position(|m| m.assignment.contains(&key)),
                lag: lag(committed, log_end),
                topic: key.0,
                partition: key.1,
                committed,
                log_end,
            }
        })
        .collect()
}

/// The sum of the known lags.
pub fn total_lag(rows: &[PartitionLag]) -> i64 {
    rows.iter().filter_map(|r| r.lag).sum()
}

async fn describe(admin: &mut GroupAdmin, group: &str, as_json: bool) -> anyhow::Result<()> {
    let description = admin
        .describe_group(group)
        .await
        .with_context(|| format!("describing group {group}"))?;
    let committed = admin
        .committed_offsets(group)
        .await
        .with_context(|| format!("fetching group {group}'s offsets"))?;
    anyhow::ensure!(
        description.state != "Dead" || !committed.is_empty(),
        "consumer group {group} does not exist"
    );
    let mut partitions: Vec<(String, i32)> = committed.keys().cloned().collect();
    partitions.extend(description.members.iter().flat_map(|m| m.assignment.iter().cloned()));
    partitions.sort();
    partitions.dedup();
    let mut log_ends = OffsetMap::new();
    for (topic, p) in partitions {
        match admin.log_offset(&topic, p, -1).await {
            Ok(end) => {
                log_ends.insert((topic, p), end);
            }
            // A deleted topic's offsets stay committed: shown without lag.
            Err(e) => eprintln!("gregor: no log end offset for {topic}-{p}: {e}"),
        }
    }
    let rows = partition_lags(&description.members, &committed, &log_ends);
    if as_json {
        println!("{}", describe_json(&description, &rows));
    } else {
        print!("{}", describe_text(&description, &rows));
    }
    Ok(())
}

fn describe_json(d: &GroupDescription, rows: &[PartitionLag]) -> serde_json::Value {
    let members: Vec<_> = d
        .members
        .iter()
        .map(|m| {
            json!({
                "member_id": m.member_id,
                "group_instance_id": m.group_instance_id,
                "client_id": m.client_id,
                "host": m.client_host,
                "assignment": m.assignment.iter().map(|(t, p)| json!({"topic": t, "partition": p})).collect::<Vec<_>>(),
            })
        })
        .collect();
    let partitions: Vec<_> = rows
        .iter()
        .map(|r| {
            let member = r.member.map(|i| &d.members[i]);
            json!({
                "topic": r.topic,
                "partition": r.partition,
                "committed_offset": r.committed,
                "log_end_offset": r.log_end,
                "lag": r.lag,
                "member_id": member.map(|m| &m.member_id),
                "host": member.map(|m| &m.client_host),
                "client_id": member.map(|m| &m.client_id),
            })
        })
        .collect();
    json!({
        "group": d.group_id,
        "state": d.state,
        "protocol_type": d.protocol_type,
        "protocol": d.protocol,
        "coordinator": d.coordinator,
        "members": members,
        "partitions": partitions,
        "total_lag": total_lag(rows),
    })
}

fn describe_text(d: &GroupDescription, rows: &[PartitionLag]) -> String {
    let dash = |v: Option<i64>| v.map_or_else(|| "-".to_string(), |v| v.to_string());
    let mut lines: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let member = r.member.map(|i| &d.members[i]);
            let of = |f: fn(&GroupMember) -> &String| member.map_or_else(|| "-".to_string(), |m| f(m).clone());
            vec![
                d.group_id.clone(),
                r.topic.clone(),
                r.partition.to_string(),
                dash(r.committed),
                dash(r.log_end),
                dash(r.lag),
                of(|m| &m.member_id),
                of(|m| &m.client_host),
                of(|m| &m.client_id),
            ]
        })
        .collect();
    // Members without partitions, as kafka-consumer-groups lists them.
    for m in d.members.iter().filter(|m| m.assignment.is_empty()) {
        let mut line = vec![d.group_id.clone()];
        line.extend(["-"; 5].map(String::from));
        line.extend([m.member_id.clone(), m.client_host.clone(), m.client_id.clone()]);
        lines.push(line);
    }
    let headers = [
        "GROUP",
        "TOPIC",
        "PARTITION",
        "CURRENT-OFFSET",
        "LOG-END-OFFSET",
        "LAG",
        "CONSUMER-ID",
        "HOST",
        "CLIENT-ID",
    ];
    format!(
        "group {}: {}, protocol {}, coordinator {}, {} members, total lag {}\n\n{}\n",
        d.group_id,
        d.state,
        match (d.protocol_type.as_str(), d.protocol.as_str()) {
            ("", "") => "-".to_string(),
            (kind, protocol) => format!("{kind}/{protocol}"),
        },
        d.coordinator,
        d.members.len(),
        total_lag(rows),
        table(&headers, &lines)
    )
}

async fn delete_offsets(admin: &mut GroupAdmin, group: &str, specs: &[String], as_json: bool) -> anyhow::Result<()> {
    let partitions = resolve_partitions(admin, specs).await?;
    let outcomes = admin
        .delete_offsets(group, &partitions)
        .await
        .with_context(|| format!("deleting group {group}'s offsets"))?;
    let failed = outcomes.iter().filter(|(_, e)| e.is_some()).count();
    let status =
        |e: &Option<gregor_client::ClientError>| e.as_ref().map_or_else(|| "Successful".into(), |e| e.to_string());
    if as_json {
        let list: Vec<_> = outcomes
            .iter()
            .map(|((t, p), e)| json!({"topic": t, "partition": p, "error": e.as_ref().map(|e| e.to_string())}))
            .collect();
        println!("{}", json!({"group": group, "partitions": list}));
    } else {
        let rows: Vec<Vec<String>> = outcomes
            .iter()
            .map(|((t, p), e)| vec![t.clone(), p.to_string(), status(e)])
            .collect();
        println!("{}", table(&["TOPIC", "PARTITION", "STATUS"], &rows));
    }
    anyhow::ensure!(failed == 0, "{failed} of group {group}'s offsets were not deleted");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: &str, assignment: &[(&str, i32)]) -> GroupMember {
        GroupMember {
            member_id: id.into(),
            group_instance_id: None,
            client_id: "c".into(),
            client_host: "/127.0.0.1".into(),
            assignment: assignment.iter().map(|(t, p)| (t.to_string(), *p)).collect(),
        }
    }

    fn offsets(entries: &[(&str, i32, i64)]) -> OffsetMap {
        entries.iter().map(|(t, p, o)| ((t.to_string(), *p), *o)).collect()
    }

    #[test]
    fn states_are_case_insensitive_and_checked() {
        assert_eq!(
            parse_states(&["stable".into(), "EMPTY".into()]).unwrap(),
            ["Stable", "Empty"]
        );
        let e = parse_states(&["running".into()]).unwrap_err().to_string();
        assert!(e.contains("running") && e.contains("PreparingRebalance"), "{e}");
    }

    #[test]
    fn lag_is_log_end_minus_committed_and_unknown_without_either() {
        let members = [member("m1", &[("t", 0), ("t", 1)]), member("m2", &[("u", 0)])];
        let committed = offsets(&[("t", 0, 3), ("t", 1, 10), ("gone", 0, 5)]);
        let ends = offsets(&[("t", 0, 10), ("t", 1, 10), ("u", 0, 4)]);
        let rows = partition_lags(&members, &committed, &ends);
        let summary: Vec<_> = rows
            .iter()
            .map(|r| (r.topic.as_str(), r.partition, r.committed, r.log_end, r.lag, r.member))
            .collect();
        assert_eq!(
            summary,
            [
                ("gone", 0, Some(5), None, None, None),
                ("t", 0, Some(3), Some(10), Some(7), Some(0)),
                ("t", 1, Some(10), Some(10), Some(0), Some(0)),
                ("u", 0, None, Some(4), None, Some(1)),
            ]
        );
        assert_eq!(total_lag(&rows), 7);
    }

    #[test]
    fn describe_json_carries_hosts_and_lags() {
        let d = GroupDescription {
            group_id: "g".into(),
            state: "Stable".into(),
            protocol_type: "consumer".into(),
            protocol: "range".into(),
            coordinator: 0,
            members: vec![member("m1", &[("t", 0)])],
        };
        let rows = partition_lags(&d.members, &offsets(&[("t", 0, 2)]), &offsets(&[("t", 0, 5)]));
        let v = describe_json(&d, &rows);
        assert_eq!(v["partitions"][0]["lag"], 3);
        assert_eq!(v["partitions"][0]["host"], "/127.0.0.1");
        assert_eq!(v["members"][0]["assignment"][0]["topic"], "t");
        assert_eq!(v["total_lag"], 3);
        let text = describe_text(&d, &rows);
        assert!(text.contains("total lag 3"), "{text}");
    }
}
