//! `gregor partitions reassign`: Kafka's kafka-reassign-partitions.sh —
//! the same plan (Kafka's placement, from gregor-replication), the same
//! throttles (`leader/follower.replication.throttled.rate` on the moving
//! brokers, `*.replication.throttled.replicas` on the topics), the same
//! messages.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{bail, Context};
use gregor_client::{OngoingReassignment, PartitionAdmin, TopicPartition, BROKER_RESOURCE, TOPIC_RESOURCE};
use gregor_replication::{assign_replicas, BrokerInfo};
use serde_json::{json, Value};

use crate::ops_json::{format_reassignment, parse_reassignment, parse_topics_to_move, read, ANY_LOG_DIR};
use crate::reassign_args::ReassignArgs;

const CANNOT_EXECUTE_BECAUSE_OF_EXISTING: &str = "Cannot execute because there is an existing partition \
     assignment.  Use --additional to override this and create a new partition assignment in addition to the \
     existing one. The --additional flag can also be used to change the throttle by resubmitting the current \
     reassignment.";
const RUN_VERIFY_PERIODICALLY: &str =
    "Warning: You must run --verify periodically, until the reassignment completes, to ensure the throttle is removed.";
const LEADER_RATE: &str = "leader.replication.throttled.rate";
const FOLLOWER_RATE: &str = "follower.replication.throttled.rate";
const LOG_DIRS_RATE: &str = "replica.alter.log.dirs.io.max.bytes.per.second";
const LEADER_REPLICAS: &str = "leader.replication.throttled.replicas";
const FOLLOWER_REPLICAS: &str = "follower.replication.throttled.replicas";

type Assignment = Vec<(TopicPartition, Vec<i32>)>;

/// Runs one of --generate, --execute, --verify, --cancel.
pub async fn run(admin: &mut PartitionAdmin, args: ReassignArgs, as_json: bool) -> anyhow::Result<()> {
    let file = |f: &Option<String>| f.clone().context("a JSON file is required");
    if args.generate {
        let topics = parse_topics_to_move(&read(&file(&args.topics_to_move_json_file)?)?)?;
        let brokers = parse_broker_list(args.broker_list.as_deref().unwrap_or_default())?;
        return generate(admin, &topics, &brokers, !args.disable_rack_aware, as_json).await;
    }
    let path = file(&args.reassignment_json_file)?;
    let planned = parse_reassignment(&read(&path)?).with_context(|| format!("in {path}"))?;
    let targets: Assignment = planned
        .iter()
        .map(|p| (p.partition.clone(), p.replicas.clone()))
        .collect();
    if args.execute {
        if planned.is_empty() {
            bail!("Partition reassignment list cannot be empty");
        }
        if planned.iter().any(|p| p.log_dirs.iter().any(|d| d != ANY_LOG_DIR)) {
            bail!("moving replicas between log directories is not supported: every log_dirs entry must be \"any\"");
        }
        execute(admin, &targets, args.throttle, args.additional, as_json).await
    } else if args.verify {
        verify(admin, &targets, args.preserve_throttles, as_json).await
    } else {
        cancel(admin, &targets, args.preserve_throttles, as_json).await
    }
}

/// `1,2,3`: each broker once.
fn parse_broker_list(list: &str) -> anyhow::Result<Vec<i32>> {
    let ids = list
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<i32>()
                .with_context(|| format!("--broker-list: {s:?} is not a broker id"))
        })
        .collect::<anyhow::Result<Vec<i32>>>()?;
    let mut seen = BTreeSet::new();
    let twice: BTreeSet<i32> = ids.iter().copied().filter(|id| !seen.insert(*id)).collect();
    if !twice.is_empty() {
        bail!("Broker list contains duplicate entries: {twice:?}");
    }
    if ids.is_empty() {
        bail!("--broker-list names no broker");
    }
    Ok(ids)
}

/// The replicas of every partition of `topics` (an unknown topic is an
/// error).
async fn current_assignment(admin: &mut PartitionAdmin, topics: &[&str]) -> anyhow::Result<Assignment> {
    let described = admin.topics(topics).await.context("describing the topics")?;
    Ok(described
        .into_iter()
        .flat_map(|t| {
            let name = t.name;
            t.partitions
                .into_iter()
                .map(move |p| (TopicPartition::new(name.clone(), p.partition), p.replicas))
        })
        .collect())
}

/// A number in `0..n` Kafka would draw at random (its placement's start
/// index and shift).
fn random_below(n: usize) -> usize {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    (hasher.finish() as usize) % n.max(1)
}

/// Kafka's `calculateAssignment`: each topic placed afresh on `brokers`
/// with the replication factor of its first partition.
pub fn propose(
    current: &Assignment,
    brokers: &[BrokerInfo],
    mut random: impl FnMut(usize) -> usize,
) -> anyhow::Result<Assignment> {
    let mut by_topic: BTreeMap<&str, Vec<&(TopicPartition, Vec<i32>)>> = BTreeMap::new();
    for entry in current {
        by_topic.entry(entry.0.topic.as_str()).or_default().push(entry);
    }
    let mut proposed = Vec::new();
    for (topic, mut partitions) in by_topic {
        partitions.sort_by_key(|(tp, _)| tp.partition);
        let factor = partitions[0].1.len();
        if factor == 0 {
            bail!("topic {topic}: partition {} has no replicas", partitions[0].0.partition);
        }
        let factor = u16::try_from(factor).with_context(|| format!("topic {topic}: {factor} replicas"))?;
        let start = random(brokers.len());
        let shift = random(brokers.len());
        let placed = assign_replicas(brokers, partitions.len() as u32, factor, start, shift)
            .with_context(|| format!("placing topic {topic}"))?;
        proposed.extend(
            placed
                .into_iter()
                .enumerate()
                .map(|(p, replicas)| (TopicPartition::new(topic, p as i32), replicas)),
        );
    }
    Ok(proposed)
}

async fn generate(
    admin: &mut PartitionAdmin,
    topics: &[String],
    broker_list: &[i32],
    rack_aware: bool,
    as_json: bool,
) -> anyhow::Result<()> {
    let names: Vec<&str> = topics.iter().map(String::as_str).collect();
    let current = current_assignment(admin, &names).await?;
    // Brokers of the list that are not in the cluster are left out, as
    // Kafka does.
    let brokers: Vec<BrokerInfo> = admin
        .brokers()
        .into_iter()
        .filter(|(id, _)| broker_list.contains(id))
        .map(|(id, rack)| BrokerInfo {
            id,
            rack: rack.filter(|_| rack_aware),
        })
        .collect();
    let racked = brokers.iter().filter(|b| b.rack.is_some()).count();
    if racked != 0 && racked != brokers.len() {
        bail!(
            "Not all brokers have rack information. Add --disable-rack-aware in command line to make replica \
             assignment without rack information."
        );
    }
    let proposed = propose(&current, &brokers, random_below)?;
    let (current_text, proposed_text) = (format_reassignment(&current), format_reassignment(&proposed));
    if as_json {
        let value = |text: &str| serde_json::from_str::<Value>(text).unwrap_or(Value::Null);
        println!(
            "{}",
            json!({"current": value(&current_text), "proposed": value(&proposed_text)})
        );
    } else {
        println!("Current partition replica assignment\n{current_text}\n");
        println!("Proposed partition reassignment configuration\n{proposed_text}");
    }
    Ok(())
}

/// What moves: per partition, the brokers it leaves from (its current
/// replicas, or the sources of a move under way) and those it goes to.
type MoveMap = BTreeMap<TopicPartition, (BTreeSet<i32>, BTreeSet<i32>)>;

/// Kafka's `calculateProposedMoveMap`.
fn move_map(
    ongoing: &[OngoingReassignment],
    targets: &Assignment,
    current: &BTreeMap<TopicPartition, Vec<i32>>,
) -> MoveMap {
    let mut moves: MoveMap = ongoing
        .iter()
        .map(|r| {
            let adding: BTreeSet<i32> = r.adding.iter().copied().collect();
            let sources = r.replicas.iter().copied().filter(|b| !adding.contains(b)).collect();
            (r.partition.clone(), (sources, adding))
        })
        .collect();
    for (tp, replicas) in targets {
        let sources = match moves.get(tp) {
            Some((sources, _)) => sources.clone(),
            None => current.get(tp).map(|r| r.iter().copied().collect()).unwrap_or_default(),
        };
        let destinations = replicas.iter().copied().filter(|b| !sources.contains(b)).collect();
        moves.insert(tp.clone(), (sources, destinations));
    }
    moves
}

/// Each topic's `leader.replication.throttled.replicas` (the sources) and
/// `follower.replication.throttled.replicas` (the destinations), as
/// `partition:broker,…`.
pub fn throttled_replicas(moves: &MoveMap) -> BTreeMap<String, (String, String)> {
    let mut by_topic: BTreeMap<String, (BTreeSet<String>, BTreeSet<String>)> = BTreeMap::new();
    for (tp, (sources, destinations)) in moves {
        let entry = by_topic.entry(tp.topic.clone()).or_default();
        entry.0.extend(sources.iter().map(|b| format!("{}:{b}", tp.partition)));
        entry.1.extend(
            destinations
                .iter()
                .filter(|b| !sources.contains(b))
                .map(|b| format!("{}:{b}", tp.partition)),
        );
    }
    let join = |s: BTreeSet<String>| s.into_iter().collect::<Vec<_>>().join(",");
    by_topic
        .into_iter()
        .map(|(topic, (leaders, followers))| (topic, (join(leaders), join(followers))))
        .collect()
}

async fn execute(
    admin: &mut PartitionAdmin,
    targets: &Assignment,
    throttle: Option<u64>,
    additional: bool,
    as_json: bool,
) -> anyhow::Result<()> {
    let ongoing = admin
        .list_reassignments(None)
        .await
        .context("listing reassignments (ListPartitionReassignments)")?;
    if !additional && !ongoing.is_empty() {
        bail!(CANNOT_EXECUTE_BECAUSE_OF_EXISTING);
    }
    let known: BTreeSet<i32> = admin.brokers().into_iter().map(|(id, _)| id).collect();
    if let Some(unknown) = targets.iter().flat_map(|(_, r)| r).find(|b| !known.contains(b)) {
        bail!("Unknown broker id {unknown}");
    }
    let topics: BTreeSet<&str> = targets.iter().map(|(tp, _)| tp.topic.as_str()).collect();
    let all = current_assignment(admin, &topics.into_iter().collect::<Vec<_>>()).await?;
    let current: BTreeMap<TopicPartition, Vec<i32>> = all.into_iter().collect();
    let missing: Vec<String> = targets
        .iter()
        .filter(|(tp, _)| !current.contains_key(tp))
        .map(|(tp, _)| tp.to_string())
        .collect();
    if !missing.is_empty() {
        bail!("Unable to find partition: {}", missing.join(", "));
    }
    let rollback: Assignment = targets
        .iter()
        .map(|(tp, _)| (tp.clone(), current[tp].clone()))
        .collect();
    let rollback_text = format_reassignment(&rollback);
    if !as_json {
        println!(
            "Current partition replica assignment\n\n{rollback_text}\n\nSave this to use as the \
             --reassignment-json-file option during rollback"
        );
    }
    if let Some(rate) = throttle {
        if !as_json {
            println!("{RUN_VERIFY_PERIODICALLY}");
        }
        let moves = move_map(&ongoing, targets, &current);
        for (topic, (leaders, followers)) in throttled_replicas(&moves) {
            admin
                .alter_configs(
                    TOPIC_RESOURCE,
                    &topic,
                    &[(LEADER_REPLICAS, Some(leaders)), (FOLLOWER_REPLICAS, Some(followers))],
                )
                .await
                .with_context(|| format!("throttling the replicas of topic {topic}"))?;
        }
        let brokers: BTreeSet<i32> = moves.values().flat_map(|(s, d)| s.iter().chain(d)).copied().collect();
        for broker in brokers {
            admin
                .alter_configs(
                    BROKER_RESOURCE,
                    &broker.to_string(),
                    &[
                        (LEADER_RATE, Some(rate.to_string())),
                        (FOLLOWER_RATE, Some(rate.to_string())),
                    ],
                )
                .await
                .with_context(|| format!("setting the replication throttle of broker {broker}"))?;
        }
        if !as_json {
            println!("The inter-broker throttle limit was set to {rate} B/s");
        }
    }
    let changes: Vec<(TopicPartition, Option<Vec<i32>>)> =
        targets.iter().map(|(tp, r)| (tp.clone(), Some(r.clone()))).collect();
    let answers = admin
        .alter_reassignments(&changes)
        .await
        .context("starting the reassignment (AlterPartitionReassignments)")?;
    let errors: Vec<String> = answers
        .iter()
        .filter_map(|a| a.error().map(|e| format!("{}: {e}", a.partition)))
        .collect();
    if !errors.is_empty() {
        bail!("Error reassigning partition(s):\n{}", errors.join("\n"));
    }
    let mut started: Vec<&TopicPartition> = targets.iter().map(|(tp, _)| tp).collect();
    started.sort();
    let names: Vec<String> = started.iter().map(|tp| tp.to_string()).collect();
    if as_json {
        let rollback: Value = serde_json::from_str(&rollback_text).unwrap_or(Value::Null);
        println!(
            "{}",
            json!({"current": rollback, "started": names, "throttle": throttle})
        );
    } else {
        println!(
            "Successfully started partition reassignment{} for {}",
            if names.len() == 1 { "" } else { "s" },
            names.join(",")
        );
    }
    Ok(())
}

/// Kafka's `--list` text.
pub fn ongoing_text(ongoing: &[OngoingReassignment]) -> String {
    if ongoing.is_empty() {
        return "No partition reassignments found.".to_string();
    }
    let ids = |v: &[i32]| v.iter().map(i32::to_string).collect::<Vec<_>>().join(",");
    let lines: Vec<String> = ongoing
        .iter()
        .map(|r| {
            let mut line = format!("{}: replicas: {}.", r.partition, ids(&r.replicas));
            if !r.adding.is_empty() {
                line.push_str(&format!(" adding: {}.", ids(&r.adding)));
            }
            if !r.removing.is_empty() {
                line.push_str(&format!(" removing: {}.", ids(&r.removing)));
            }
            line
        })
        .collect();
    format!("Current partition reassignments:\n{}", lines.join("\n"))
}

async fn verify(admin: &mut PartitionAdmin, targets: &Assignment, preserve: bool, as_json: bool) -> anyhow::Result<()> {
    let ongoing = admin
        .list_reassignments(None)
        .await
        .context("listing reassignments (ListPartitionReassignments)")?;
    let moving: BTreeMap<&TopicPartition, &OngoingReassignment> = ongoing.iter().map(|r| (&r.partition, r)).collect();
    let topics: BTreeSet<&str> = targets.iter().map(|(tp, _)| tp.topic.as_str()).collect();
    let current: BTreeMap<TopicPartition, Vec<i32>> =
        current_assignment(admin, &topics.iter().copied().collect::<Vec<_>>())
            .await?
            .into_iter()
            .collect();
    let mut sorted: Vec<&(TopicPartition, Vec<i32>)> = targets.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let mut lines = vec!["Status of partition reassignment:".to_string()];
    let mut states = Vec::new();
    for (tp, target) in sorted {
        let ids = |v: &[i32]| v.iter().map(i32::to_string).collect::<Vec<_>>().join(",");
        let (state, line) = if moving.contains_key(tp) {
            (
                "in_progress",
                format!("Reassignment of partition {tp} is still in progress."),
            )
        } else {
            let now = current
                .get(tp)
                .with_context(|| format!("Unable to find partition: {tp}"))?;
            if now == target {
                ("completed", format!("Reassignment of partition {tp} is completed."))
            } else {
                (
                    "not_active",
                    format!(
                        "There is no active reassignment of partition {tp}, but replica set is {} rather than {}.",
                        ids(now),
                        ids(target)
                    ),
                )
            }
        };
        lines.push(line);
        states.push(json!({"topic": tp.topic, "partition": tp.partition, "state": state}));
    }
    if !as_json {
        println!("{}", lines.join("\n"));
    }
    // Throttles go once nothing moves any more: all of them, since which
    // brokers an earlier move throttled is not known.
    let cleared = ongoing.is_empty() && !preserve;
    if cleared {
        clear_throttles(admin, targets, as_json).await?;
    }
    if as_json {
        println!("{}", json!({"partitions": states, "throttles_cleared": cleared}));
    }
    Ok(())
}

async fn cancel(admin: &mut PartitionAdmin, targets: &Assignment, preserve: bool, as_json: bool) -> anyhow::Result<()> {
    let partitions: Vec<TopicPartition> = targets.iter().map(|(tp, _)| tp.clone()).collect();
    let active: Vec<TopicPartition> = admin
        .list_reassignments(Some(&partitions))
        .await
        .context("listing reassignments (ListPartitionReassignments)")?
        .into_iter()
        .map(|r| r.partition)
        .collect();
    if active.is_empty() {
        if !as_json {
            println!("None of the specified partition reassignments are active.");
        }
    } else {
        let changes: Vec<(TopicPartition, Option<Vec<i32>>)> = active.iter().map(|tp| (tp.clone(), None)).collect();
        let answers = admin
            .alter_reassignments(&changes)
            .await
            .context("cancelling the reassignment (AlterPartitionReassignments)")?;
        let errors: Vec<String> = answers
            .iter()
            .filter_map(|a| a.error().map(|e| format!("{}: {e}", a.partition)))
            .collect();
        if !errors.is_empty() {
            bail!(
                "Error cancelling partition reassignment{} for:\n{}",
                if errors.len() == 1 { "" } else { "s" },
                errors.join("\n")
            );
        }
        if !as_json {
            let names: Vec<String> = active.iter().map(TopicPartition::to_string).collect();
            println!(
                "Successfully cancelled partition reassignment{} for: {}",
                if names.len() == 1 { "" } else { "s" },
                names.join(",")
            );
        }
    }
    if !preserve {
        clear_throttles(admin, targets, as_json).await?;
    }
    if as_json {
        let names: Vec<String> = active.iter().map(TopicPartition::to_string).collect();
        println!("{}", json!({"cancelled": names, "throttles_cleared": !preserve}));
    }
    Ok(())
}

/// Kafka's `clearAllThrottles`: the rates off every broker of the cluster
/// and of the targets, the throttled replicas off the targets' topics.
async fn clear_throttles(admin: &mut PartitionAdmin, targets: &Assignment, as_json: bool) -> anyhow::Result<()> {
    let mut brokers: BTreeSet<i32> = admin.brokers().into_iter().map(|(id, _)| id).collect();
    brokers.extend(targets.iter().flat_map(|(_, r)| r.iter().copied()));
    let topics: BTreeSet<&str> = targets.iter().map(|(tp, _)| tp.topic.as_str()).collect();
    if !as_json {
        let list = |v: Vec<String>| v.join(",");
        println!(
            "Clearing broker-level throttles on broker{} {}",
            if brokers.len() == 1 { "" } else { "s" },
            list(brokers.iter().map(i32::to_string).collect())
        );
    }
    for broker in &brokers {
        admin
            .alter_configs(
                BROKER_RESOURCE,
                &broker.to_string(),
                &[(LEADER_RATE, None), (FOLLOWER_RATE, None), (LOG_DIRS_RATE, None)],
            )
            .await
            .with_context(|| format!("clearing the throttles of broker {broker}"))?;
    }
    if !as_json {
        println!(
            "Clearing topic-level throttles on topic{} {}",
            if topics.len() == 1 { "" } else { "s" },
            topics.iter().copied().collect::<Vec<_>>().join(",")
        );
    }
    for topic in topics {
        admin
            .alter_configs(
                TOPIC_RESOURCE,
                topic,
                &[(LEADER_REPLICAS, None), (FOLLOWER_REPLICAS, None)],
            )
            .await
            .with_context(|| format!("clearing the throttles of topic {topic}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tp(t: &str, p: i32) -> TopicPartition {
        TopicPartition::new(t, p)
    }

    #[test]
    fn proposes_kafkas_placement_per_topic() {
        let current = vec![
            (tp("a", 0), vec![0, 1]),
            (tp("a", 1), vec![1, 2]),
            (tp("a", 2), vec![2, 0]),
            (tp("b", 0), vec![0]),
        ];
        let brokers: Vec<BrokerInfo> = [1, 2, 3].into_iter().map(|id| BrokerInfo { id, rack: None }).collect();
        let proposed = propose(&current, &brokers, |_| 0).unwrap();
        // Kafka's round robin from broker index 0, shift 0: a's replicas
        // 1,2 / 2,3 / 3,1; b keeps one replica.
        assert_eq!(
            proposed,
            vec![
                (tp("a", 0), vec![1, 2]),
                (tp("a", 1), vec![2, 3]),
                (tp("a", 2), vec![3, 1]),
                (tp("b", 0), vec![1]),
            ]
        );
        let too_few = propose(&current, &brokers[..1], |_| 0).unwrap_err();
        assert!(format!("{too_few:#}").contains("replication factor 2"), "{too_few:#}");
    }

    #[test]
    fn throttles_name_sources_for_leaders_and_destinations_for_followers() {
        let current: BTreeMap<TopicPartition, Vec<i32>> = [(tp("t", 0), vec![0, 1]), (tp("t", 1), vec![1, 2])]
            .into_iter()
            .collect();
        let targets = vec![(tp("t", 0), vec![2, 1]), (tp("t", 1), vec![1, 2])];
        let moves = move_map(&[], &targets, &current);
        let throttles = throttled_replicas(&moves);
        assert_eq!(throttles["t"], ("0:0,0:1,1:1,1:2".to_string(), "0:2".to_string()));
    }

    #[test]
    fn broker_lists() {
        assert_eq!(parse_broker_list("1, 2,3").unwrap(), vec![1, 2, 3]);
        assert!(parse_broker_list("1,1").unwrap_err().to_string().contains("duplicate"));
        assert!(parse_broker_list("1,x").is_err());
        assert!(parse_broker_list("").is_err());
    }

    #[test]
    fn lists_ongoing_reassignments_as_kafka_does() {
        assert_eq!(ongoing_text(&[]), "No partition reassignments found.");
        let r = OngoingReassignment {
            partition: tp("t", 0),
            replicas: vec![1, 0],
            adding: vec![1],
            removing: vec![0],
        };
        assert_eq!(
            ongoing_text(&[r]),
            "Current partition reassignments:\nt-0: replicas: 1,0. adding: 1. removing: 0."
        );
    }
}
