//! The JSON files of Kafka's operations tools, read and written as they
//! read and write them: kafka-reassign-partitions' topics-to-move and
//! reassignment files, kafka-leader-election's partition list and
//! kafka-delete-records' offsets. A bad file is an error naming the field
//! at fault, never a panic.

use std::collections::BTreeSet;

use anyhow::{bail, Context};
use gregor_client::TopicPartition;
use serde_json::{json, Value};

/// The log directory of a replica that may go anywhere.
pub const ANY_LOG_DIR: &str = "any";

/// One partition of a reassignment file: where its replicas go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedPartition {
    /// The partition.
    pub partition: TopicPartition,
    /// The target replicas, preferred leader first.
    pub replicas: Vec<i32>,
    /// Each replica's log directory (`any` for none in particular).
    pub log_dirs: Vec<String>,
}

/// Reads a file, naming it in the error.
pub fn read(path: &str) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {path}"))
}

fn parse_object(text: &str) -> anyhow::Result<serde_json::Map<String, Value>> {
    let value: Value = serde_json::from_str(text).context("the input is not valid JSON")?;
    match value {
        Value::Object(map) => Ok(map),
        other => bail!("expected a JSON object, found {}", kind(&other)),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The file's `version` (1 when absent); only version 1 exists.
fn check_version(map: &serde_json::Map<String, Value>) -> anyhow::Result<()> {
    match map.get("version") {
        None => Ok(()),
        Some(v) if v.as_i64() == Some(1) => Ok(()),
        Some(v) => bail!("not supported version field value {v}"),
    }
}

/// The array at `field`: absent is empty when `required` is false.
fn array<'a>(map: &'a serde_json::Map<String, Value>, field: &str, required: bool) -> anyhow::Result<&'a [Value]> {
    match map.get(field) {
        None if !required => Ok(&[]),
        None => bail!("missing \"{field}\" field"),
        Some(Value::Array(items)) => Ok(items),
        Some(other) => bail!("\"{field}\": expected an array, found {}", kind(other)),
    }
}

fn entry<'a>(item: &'a Value, at: &str) -> anyhow::Result<&'a serde_json::Map<String, Value>> {
    item.as_object()
        .with_context(|| format!("{at}: expected an object, found {}", kind(item)))
}

fn string(obj: &serde_json::Map<String, Value>, field: &str, at: &str) -> anyhow::Result<String> {
    match obj.get(field) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(other) => bail!("{at}.{field}: expected a string, found {}", kind(other)),
        None => bail!("{at}: missing \"{field}\""),
    }
}

fn int(obj: &serde_json::Map<String, Value>, field: &str, at: &str) -> anyhow::Result<i64> {
    match obj.get(field) {
        Some(v) => v
            .as_i64()
            .with_context(|| format!("{at}.{field}: expected an integer, found {v}")),
        None => bail!("{at}: missing \"{field}\""),
    }
}

fn partition_of(obj: &serde_json::Map<String, Value>, at: &str) -> anyhow::Result<TopicPartition> {
    let topic = string(obj, "topic", at)?;
    let partition = int(obj, "partition", at)?;
    let partition = i32::try_from(partition)
        .ok()
        .filter(|p| *p >= 0)
        .with_context(|| format!("{at}.partition: {partition} is not a partition number"))?;
    Ok(TopicPartition::new(topic, partition))
}

/// The items of `items` that occur more than once, in order.
fn duplicates<T: Ord + Clone>(items: impl IntoIterator<Item = T>) -> Vec<T> {
    let mut seen = BTreeSet::new();
    let mut twice = BTreeSet::new();
    for item in items {
        if !seen.insert(item.clone()) {
            twice.insert(item);
        }
    }
    twice.into_iter().collect()
}

fn joined<T: std::fmt::Display>(items: &[T]) -> String {
    items.iter().map(T::to_string).collect::<Vec<_>>().join(",")
}

/// kafka-reassign-partitions' `--topics-to-move-json-file`:
/// `{"topics":[{"topic":"a"}],"version":1}`; the topics, each once.
pub fn parse_topics_to_move(text: &str) -> anyhow::Result<Vec<String>> {
    let map = parse_object(text)?;
    check_version(&map)?;
    let topics = array(&map, "topics", false)?
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let at = format!("topics[{i}]");
            string(entry(item, &at)?, "topic", &at)
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let twice = duplicates(topics.iter().cloned());
    if !twice.is_empty() {
        bail!(
            "List of topics to reassign contains duplicate entries: {}",
            twice.join(",")
        );
    }
    if topics.is_empty() {
        bail!("no topics to move: the file lists none");
    }
    Ok(topics)
}

/// A reassignment file (`--reassignment-json-file`), as Kafka checks it:
/// `version` 1, each partition once, its replicas distinct, as many
/// `log_dirs` as replicas (all `any` when absent).
pub fn parse_reassignment(text: &str) -> anyhow::Result<Vec<PlannedPartition>> {
    let map = parse_object(text)?;
    check_version(&map)?;
    let mut planned = Vec::new();
    for (i, item) in array(&map, "partitions", false)?.iter().enumerate() {
        let at = format!("partitions[{i}]");
        let obj = entry(item, &at)?;
        let partition = partition_of(obj, &at)?;
        let replicas = match obj.get("replicas") {
            Some(Value::Array(ids)) => ids
                .iter()
                .map(|id| {
                    id.as_i64()
                        .and_then(|id| i32::try_from(id).ok())
                        .with_context(|| format!("{at}.replicas: {id} is not a broker id"))
                })
                .collect::<anyhow::Result<Vec<i32>>>()?,
            Some(other) => bail!("{at}.replicas: expected an array of broker ids, found {}", kind(other)),
            None => bail!("{at}: missing \"replicas\""),
        };
        let log_dirs = match obj.get("log_dirs") {
            None => vec![ANY_LOG_DIR.to_string(); replicas.len()],
            Some(Value::Array(dirs)) => dirs
                .iter()
                .map(|d| {
                    d.as_str()
                        .map(str::to_string)
                        .with_context(|| format!("{at}.log_dirs: {d} is not a string"))
                })
                .collect::<anyhow::Result<Vec<String>>>()?,
            Some(other) => bail!("{at}.log_dirs: expected an array of strings, found {}", kind(other)),
        };
        if log_dirs.len() != replicas.len() {
            bail!(
                "Size of replicas list {replicas:?} is different from size of log dirs list {log_dirs:?} for partition {partition}"
            );
        }
        planned.push(PlannedPartition {
            partition,
            replicas,
            log_dirs,
        });
    }
    let twice = duplicates(planned.iter().map(|p| p.partition.clone()));
    if !twice.is_empty() {
        bail!(
            "Partition reassignment contains duplicate topic partitions: {}",
            joined(&twice)
        );
    }
    let repeated: Vec<String> = planned
        .iter()
        .filter_map(|p| {
            let twice = duplicates(p.replicas.iter().copied());
            (!twice.is_empty()).then(|| format!("{} contains multiple entries for {}", p.partition, joined(&twice)))
        })
        .collect();
    if !repeated.is_empty() {
        bail!(
            "Partition replica lists may not contain duplicate entries: {}",
            repeated.join(". ")
        );
    }
    Ok(planned)
}

/// A reassignment file as Kafka writes it: compact, partitions in topic
/// then partition order, keys `topic`, `partition`, `replicas`,
/// `log_dirs` (all `any`).
pub fn format_reassignment(assignment: &[(TopicPartition, Vec<i32>)]) -> String {
    let mut sorted: Vec<&(TopicPartition, Vec<i32>)> = assignment.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    // Written by hand: serde_json's maps sort their keys, Kafka's do not.
    let partitions: Vec<String> = sorted
        .iter()
        .map(|(tp, replicas)| {
            format!(
                "{{\"topic\":{},\"partition\":{},\"replicas\":{},\"log_dirs\":{}}}",
                json!(tp.topic),
                tp.partition,
                json!(replicas),
                json!(vec![ANY_LOG_DIR; replicas.len()])
            )
        })
        .collect();
    format!("{{\"version\":1,\"partitions\":[{}]}}", partitions.join(","))
}

/// kafka-leader-election's `--path-to-json-file`:
/// `{"partitions":[{"topic":"a","partition":0}]}`.
pub fn parse_election_partitions(text: &str) -> anyhow::Result<Vec<TopicPartition>> {
    let map = parse_object(text)?;
    if !map.contains_key("partitions") {
        bail!("Replica election data is missing \"partitions\" field");
    }
    let partitions = array(&map, "partitions", true)?
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let at = format!("partitions[{i}]");
            partition_of(entry(item, &at)?, &at)
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let twice = duplicates(partitions.iter().cloned());
    if !twice.is_empty() {
        bail!(
            "Replica election data contains duplicate partitions: {}",
            joined(&twice)
        );
    }
    Ok(partitions)
}

/// kafka-delete-records' `--offset-json-file`:
/// `{"partitions":[{"topic":"a","partition":0,"offset":10}],"version":1}`
/// (offset -1: the high watermark).
pub fn parse_offsets(text: &str) -> anyhow::Result<Vec<(TopicPartition, i64)>> {
    let map = parse_object(text)?;
    check_version(&map)?;
    if !map.contains_key("partitions") {
        bail!("Missing partitions field");
    }
    let offsets = array(&map, "partitions", true)?
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let at = format!("partitions[{i}]");
            let obj = entry(item, &at)?;
            let offset = int(obj, "offset", &at)?;
            if offset < -1 {
                bail!("{at}.offset: {offset} is neither an offset nor -1 (the high watermark)");
            }
            Ok((partition_of(obj, &at)?, offset))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let twice = duplicates(offsets.iter().map(|(tp, _)| tp.clone()));
    if !twice.is_empty() {
        bail!(
            "Offset json file contains duplicate topic partitions: {}",
            joined(&twice)
        );
    }
    Ok(offsets)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn tp(t: &str, p: i32) -> TopicPartition {
        TopicPartition::new(t, p)
    }

    #[test]
    fn writes_reassignments_as_kafka_does() {
        let text = format_reassignment(&[(tp("b", 0), vec![2]), (tp("a", 1), vec![1, 2]), (tp("a", 0), vec![3])]);
        assert_eq!(
            text,
            r#"{"version":1,"partitions":[{"topic":"a","partition":0,"replicas":[3],"log_dirs":["any"]},{"topic":"a","partition":1,"replicas":[1,2],"log_dirs":["any","any"]},{"topic":"b","partition":0,"replicas":[2],"log_dirs":["any"]}]}"#
        );
        assert_eq!(format_reassignment(&[]), r#"{"version":1,"partitions":[]}"#);
    }

    #[test]
    fn reads_kafkas_reassignment_file() {
        let text = r#"{"version":1,"partitions":[{"topic":"t","partition":0,"replicas":[1,2],"log_dirs":["any","/d"]},
                       {"topic":"t","partition":1,"replicas":[2]}]}"#;
        let planned = parse_reassignment(text).unwrap();
        assert_eq!(planned.len(), 2);
        assert_eq!(planned[0].replicas, vec![1, 2]);
        assert_eq!(planned[0].log_dirs, vec!["any", "/d"]);
        assert_eq!(planned[1].log_dirs, vec!["any"]);
        assert!(parse_reassignment(r#"{"version":1}"#).unwrap().is_empty());
    }

    #[test]
    fn bad_reassignment_files_say_what_is_wrong() {
        let cases = [
            ("not json", "not valid JSON"),
            ("[]", "expected a JSON object"),
            (
                r#"{"version":2,"partitions":[]}"#,
                "not supported version field value 2",
            ),
            (r#"{"partitions":{}}"#, "\"partitions\": expected an array"),
            (
                r#"{"partitions":[{"partition":0,"replicas":[1]}]}"#,
                "partitions[0]: missing \"topic\"",
            ),
            (
                r#"{"partitions":[{"topic":"t","partition":"0","replicas":[1]}]}"#,
                "partitions[0].partition",
            ),
            (
                r#"{"partitions":[{"topic":"t","partition":0}]}"#,
                "missing \"replicas\"",
            ),
            (
                r#"{"partitions":[{"topic":"t","partition":0,"replicas":["x"]}]}"#,
                "is not a broker id",
            ),
            (
                r#"{"partitions":[{"topic":"t","partition":0,"replicas":[1],"log_dirs":["a","b"]}]}"#,
                "Size of replicas list",
            ),
            (
                r#"{"partitions":[{"topic":"t","partition":0,"replicas":[1]},{"topic":"t","partition":0,"replicas":[2]}]}"#,
                "duplicate topic partitions: t-0",
            ),
            (
                r#"{"partitions":[{"topic":"t","partition":0,"replicas":[1,1]}]}"#,
                "t-0 contains multiple entries for 1",
            ),
            (
                r#"{"partitions":[{"topic":"t","partition":-1,"replicas":[1]}]}"#,
                "is not a partition number",
            ),
        ];
        for (text, expected) in cases {
            let error = format!("{:#}", parse_reassignment(text).unwrap_err());
            assert!(error.contains(expected), "{text}: {error}");
        }
    }

    #[test]
    fn topics_to_move() {
        assert_eq!(
            parse_topics_to_move(r#"{"topics":[{"topic":"a"},{"topic":"b"}],"version":1}"#).unwrap(),
            vec!["a", "b"]
        );
        let dup = parse_topics_to_move(r#"{"topics":[{"topic":"a"},{"topic":"a"}]}"#).unwrap_err();
        assert!(dup.to_string().contains("duplicate entries: a"), "{dup}");
        assert!(parse_topics_to_move(r#"{"topics":[]}"#).is_err());
        assert!(parse_topics_to_move(r#"{"topics":[{"name":"a"}]}"#)
            .unwrap_err()
            .to_string()
            .contains("missing \"topic\""));
    }

    #[test]
    fn election_partitions() {
        let got =
            parse_election_partitions(r#"{"partitions":[{"topic":"a","partition":1},{"topic":"b","partition":0}]}"#)
                .unwrap();
        assert_eq!(got, vec![tp("a", 1), tp("b", 0)]);
        assert!(parse_election_partitions("{}")
            .unwrap_err()
            .to_string()
            .contains("missing \"partitions\""));
        let dup =
            parse_election_partitions(r#"{"partitions":[{"topic":"a","partition":1},{"topic":"a","partition":1}]}"#)
                .unwrap_err();
        assert!(dup.to_string().contains("duplicate partitions: a-1"), "{dup}");
    }

    #[test]
    fn delete_records_offsets() {
        let got = parse_offsets(r#"{"partitions":[{"topic":"a","partition":0,"offset":5},{"topic":"a","partition":1,"offset":-1}],"version":1}"#)
            .unwrap();
        assert_eq!(got, vec![(tp("a", 0), 5), (tp("a", 1), -1)]);
        assert_eq!(parse_offsets("{}").unwrap_err().to_string(), "Missing partitions field");
        assert!(parse_offsets(r#"{"partitions":[{"topic":"a","partition":0}]}"#)
            .unwrap_err()
            .to_string()
            .contains("missing \"offset\""));
        assert!(parse_offsets(r#"{"partitions":[{"topic":"a","partition":0,"offset":-7}]}"#).is_err());
        let dup = parse_offsets(
            r#"{"partitions":[{"topic":"a","partition":0,"offset":1},{"topic":"a","partition":0,"offset":2}]}"#,
        )
        .unwrap_err();
        assert!(dup.to_string().contains("duplicate topic partitions: a-0"), "{dup}");
    }

    proptest! {
        #[test]
        fn reassignments_round_trip(
            parts in proptest::collection::btree_map(("[a-z\"\\\\é.]{1,8}", 0i32..50), proptest::collection::btree_set(0i32..10, 1..4), 0..8)
        ) {
            let assignment: Vec<(TopicPartition, Vec<i32>)> = parts
                .into_iter()
                .map(|((t, p), replicas)| (tp(&t, p), replicas.into_iter().collect()))
                .collect();
            let parsed = parse_reassignment(&format_reassignment(&assignment)).unwrap();
            let back: Vec<(TopicPartition, Vec<i32>)> = parsed.into_iter().map(|p| (p.partition, p.replicas)).collect();
            let mut expected = assignment.clone();
            expected.sort_by(|a, b| a.0.cmp(&b.0));
            prop_assert_eq!(back, expected);
        }

        #[test]
        fn no_input_panics(text in ".{0,200}") {
            let _ = parse_reassignment(&text);
            let _ = parse_topics_to_move(&text);
            let _ = parse_election_partitions(&text);
            let _ = parse_offsets(&text);
        }

        #[test]
        fn no_json_shape_panics(value in arb_json()) {
            let text = value.to_string();
            let _ = parse_reassignment(&text);
            let _ = parse_topics_to_move(&text);
            let _ = parse_election_partitions(&text);
            let _ = parse_offsets(&text);
        }
    }

    /// JSON values built from the files' own field names, to reach deep
    /// into the parsers.
    fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            (-3i64..5).prop_map(Value::from),
            any::<f64>().prop_map(|f| json!(f)),
            "[a-z]{0,3}".prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            let key = prop_oneof![
                Just("version".to_string()),
                Just("partitions".to_string()),
                Just("topics".to_string()),
                Just("topic".to_string()),
                Just("partition".to_string()),
                Just("replicas".to_string()),
                Just("log_dirs".to_string()),
                Just("offset".to_string()),
            ];
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                proptest::collection::btree_map(key, inner, 0..5).prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }
}
