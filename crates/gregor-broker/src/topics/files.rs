//! What a partition directory records of its topic beside the log: the
//! topic id (`partition.metadata`, Kafka's file) and the config overrides
//! (`topic.config`, `key=value` lines).

use std::collections::BTreeMap;
use std::path::Path;

use uuid::Uuid;

const PARTITION_METADATA: &str = "partition.metadata";
const TOPIC_CONFIG: &str = "topic.config";

/// The topic id a partition directory records.
pub fn read_topic_id(dir: &Path) -> Option<Uuid> {
    let text = std::fs::read_to_string(dir.join(PARTITION_METADATA)).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("topic_id: "))
        .and_then(|id| Uuid::parse_str(id.trim()).ok())
}

/// Records the topic id in a partition directory.
pub fn write_topic_id(dir: &Path, id: Uuid) -> std::io::Result<()> {
    std::fs::write(dir.join(PARTITION_METADATA), format!("version: 0\ntopic_id: {id}\n"))
}

/// The config overrides a partition directory records (none when absent).
pub fn read_overrides(dir: &Path) -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(dir.join(TOPIC_CONFIG)).unwrap_or_default();
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Records the config overrides in a partition directory.
pub fn write_overrides(dir: &Path, overrides: &BTreeMap<String, String>) -> std::io::Result<()> {
    let text: String = overrides.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
    std::fs::write(dir.join(TOPIC_CONFIG), text)
}
