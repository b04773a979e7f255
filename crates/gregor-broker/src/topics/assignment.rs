//! Replica assignments an administrator gives (CreateTopics' and
//! CreatePartitions' `assignments`), checked as Kafka checks them, with
//! its errors and messages.

use std::collections::{BTreeMap, BTreeSet};

use kafka_protocol::error::ResponseError;

use super::Refusal;
pub use crate::catalog::Placement;

fn invalid(message: String) -> Refusal {
    (ResponseError::InvalidReplicaAssignment, Some(message))
}

/// A new topic's assignment from (partition index, replicas) pairs:
/// partitions 0..n, each with as many distinct replicas.
pub fn new_topic_assignment(given: Vec<(i32, Vec<i32>)>) -> Result<Vec<Vec<i32>>, Refusal> {
    let sizes: BTreeSet<usize> = given.iter().map(|(_, r)| r.len()).collect();
    if sizes.len() != 1 {
        return Err(invalid("All partitions should have the same number of replicas".into()));
    }
    let by_index: BTreeMap<i32, Vec<i32>> = given.iter().cloned().collect();
    if given
        .iter()
        .any(|(_, r)| r.iter().collect::<BTreeSet<_>>().len() != r.len())
    {
        return Err(invalid(format!("Duplicate replica assignment found: {by_index:?}")));
    }
    let consecutive = by_index.len() == given.len() && by_index.keys().copied().eq(0..given.len() as i32);
    if !consecutive {
        return Err(invalid(
            "partitions should be a consecutive 0-based integer sequence".into(),
        ));
    }
    Ok(by_index.into_values().collect())
}

/// Checks the assignment of `added` new partitions after `existing` ones
/// of `replication_factor` replicas, on the registered `brokers`.
pub fn check_added_partitions(
    given: &[Vec<i32>],
    existing: u32,
    added: u32,
    replication_factor: usize,
    brokers: &BTreeSet<i32>,
) -> Result<(), Refusal> {
    let unknown: BTreeSet<i32> = given
        .iter()
        .flatten()
        .copied()
        .filter(|b| !brokers.contains(b))
        .collect();
    if !unknown.is_empty() {
        let list: Vec<String> = unknown.iter().map(|b| b.to_string()).collect();
        return Err(invalid(format!(
            "Unknown broker(s) in replica assignment: {}.",
            list.join(", ")
        )));
    }
    if given.len() != added as usize {
        return Err(invalid(format!(
            "Increasing the number of partitions by {added} but {} assignments provided.",
            given.len()
        )));
    }
    for (i, replicas) in given.iter().enumerate() {
        let id = existing as usize + i;
        let shown: Vec<String> = replicas.iter().map(|b| b.to_string()).collect();
        if replicas.is_empty() {
            return Err(invalid(format!(
                "Cannot have replication factor of 0 for partition id {id}."
            )));
        }
        if replicas.iter().collect::<BTreeSet<_>>().len() != replicas.len() {
            return Err(invalid(format!(
                "Duplicate brokers not allowed in replica assignment: {} for partition id {id}.",
                shown.join(", ")
            )));
        }
        if replicas.len() != replication_factor {
            return Err(invalid(format!(
                "Inconsistent replication factor between partitions, partition 0 has {replication_factor} while \
                 partition {id} has replication factor {}.",
                replicas.len()
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_topics_need_equal_distinct_consecutive_assignments() {
        assert_eq!(
            new_topic_assignment(vec![(1, vec![2]), (0, vec![1])]),
            Ok(vec![vec![1], vec![2]])
        );
        let refused = |given| new_topic_assignment(given).unwrap_err().0;
        assert_eq!(refused(vec![(0, vec![1, 1])]), ResponseError::InvalidReplicaAssignment);
        assert_eq!(
            refused(vec![(0, vec![1]), (1, vec![1, 2])]),
            ResponseError::InvalidReplicaAssignment
        );
        assert_eq!(
            refused(vec![(0, vec![1]), (2, vec![2])]),
            ResponseError::InvalidReplicaAssignment
        );
        assert_eq!(
            refused(vec![(0, vec![1]), (0, vec![2])]),
            ResponseError::InvalidReplicaAssignment
        );
    }

    #[test]
    fn added_partitions_need_known_brokers_and_one_list_each() {
        let brokers: BTreeSet<i32> = [0, 1].into();
        assert!(check_added_partitions(&[vec![1]], 1, 1, 1, &brokers).is_ok());
        let message = |given: &[Vec<i32>], added| check_added_partitions(given, 1, added, 1, &brokers).unwrap_err().1;
        assert_eq!(
            message(&[vec![77]], 1).as_deref(),
            Some("Unknown broker(s) in replica assignment: 77.")
        );
        assert_eq!(
            message(&[vec![0]], 2).as_deref(),
            Some("Increasing the number of partitions by 2 but 1 assignments provided.")
        );
        assert!(message(&[vec![0, 1]], 1)
            .unwrap()
            .starts_with("Inconsistent replication factor"));
    }
}
