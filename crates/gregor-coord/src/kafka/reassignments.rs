//! `/admin/reassign_partitions`: reassignments asked the pre-KIP-455 way
//! (tools writing the node); the controller starts them and removes each
//! partition from the node as it completes, deleting the node when empty.
//! Reassignments in progress themselves live in the topics' nodes
//! (`adding_replicas` / `removing_replicas`).

use serde::{Deserialize, Serialize};

use super::{from_json, to_json, KafkaMetadata};
use crate::error::{CoordError, Result};
use crate::types::CreateMode;

/// `/admin/reassign_partitions`
pub const REASSIGN_PARTITIONS: &str = "/admin/reassign_partitions";

/// The node's JSON: `{"version":1,"partitions":[…]}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReassignPartitions {
    /// Format version (1).
    pub version: i32,
    /// The partitions to reassign.
    pub partitions: Vec<PartitionReassignment>,
}

/// One partition's target replicas.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionReassignment {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The target replicas.
    pub replicas: Vec<i32>,
}

impl KafkaMetadata<'_> {
    /// The reassignments asked through the node, with its version (`None`:
    /// no node).
    pub async fn reassign_partitions(&self) -> Result<Option<(ReassignPartitions, i32)>> {
        match self.coord.get(REASSIGN_PARTITIONS).await {
            Ok((bytes, stat)) => Ok(Some((from_json(REASSIGN_PARTITIONS, &bytes)?, stat.version))),
            Err(CoordError::NoNode(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Writes the node (creating it), or deletes it when nothing is left.
    pub async fn set_reassign_partitions(&self, node: &ReassignPartitions) -> Result<()> {
        if node.partitions.is_empty() {
            return match self.coord.delete(REASSIGN_PARTITIONS, None).await {
                Ok(()) | Err(CoordError::NoNode(_)) => Ok(()),
                Err(e) => Err(e),
            };
        }
        match self.coord.set(REASSIGN_PARTITIONS, &to_json(node), None).await {
            Ok(_) => Ok(()),
            Err(CoordError::NoNode(_)) => self
                .coord
                .create(REASSIGN_PARTITIONS, &to_json(node), CreateMode::Persistent)
                .await
                .map(|_| ()),
            Err(e) => Err(e),
        }
    }

    /// Drops `topic`'s `partition` from the node, if it is there.
    pub async fn reassignment_done(&self, topic: &str, partition: i32) -> Result<()> {
        let Some((mut node, _)) = self.reassign_partitions().await? else {
            return Ok(());
        };
        let before = node.partitions.len();
        node.partitions
            .retain(|p| !(p.topic == topic && p.partition == partition));
        if node.partitions.len() == before {
            return Ok(());
        }
        self.set_reassign_partitions(&node).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_node_reads_as_kafka_writes_it() {
        let json = br#"{"version":1,"partitions":[{"topic":"t","partition":0,"replicas":[1,2]}]}"#;
        let node: ReassignPartitions = from_json(REASSIGN_PARTITIONS, json).unwrap();
        assert_eq!(node.partitions[0].replicas, vec![1, 2]);
        assert_eq!(from_json::<ReassignPartitions>("", &to_json(&node)).unwrap(), node);
    }
}
