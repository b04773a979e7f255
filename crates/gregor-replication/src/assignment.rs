//! Where a new topic's replicas go: Kafka's placement.

use std::collections::{BTreeMap, BTreeSet};

use crate::types::BrokerId;

/// A live broker as placement sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerInfo {
    /// `broker.id`.
    pub id: BrokerId,
    /// `broker.rack`, if set.
    pub rack: Option<String>,
}

/// Why replicas could not be placed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AssignmentError {
    /// Zero replicas, or more than there are brokers.
    #[error("replication factor {factor} is not between 1 and the {brokers} live broker(s)")]
    InvalidReplicationFactor {
        /// The factor asked for.
        factor: u16,
        /// Live brokers.
        brokers: usize,
    },
    /// Zero partitions.
    #[error("a topic needs at least one partition")]
    InvalidPartitions,
    /// Some brokers have a rack and some do not.
    #[error("either every broker or none must have broker.rack set")]
    MixedRacks,
}

/// Places `replication_factor` replicas of each of `partitions` partitions
/// on `brokers` as Kafka does: the first replica round-robin from
/// `start_index`, the others shifted by a per-round `replica_shift`, all on
/// distinct brokers; with racks, brokers are taken alternating racks and a
/// partition's replicas spread over as many racks as there are. The two
/// random numbers are the caller's (Kafka draws them at random).
pub fn assign_replicas(
    brokers: &[BrokerInfo],
    partitions: u32,
    replication_factor: u16,
    start_index: usize,
    replica_shift: usize,
) -> Result<Vec<Vec<BrokerId>>, AssignmentError> {
    let rf = replication_factor as usize;
    if rf == 0 || rf > brokers.len() {
        return Err(AssignmentError::InvalidReplicationFactor {
            factor: replication_factor,
            brokers: brokers.len(),
        });
    }
    if partitions == 0 {
        return Err(AssignmentError::InvalidPartitions);
    }
    let with_rack = brokers.iter().filter(|b| b.rack.is_some()).count();
    if with_rack != 0 && with_rack != brokers.len() {
        return Err(AssignmentError::MixedRacks);
    }
    let (ordered, rack_of) = if with_rack == 0 {
        let mut ids: Vec<BrokerId> = brokers.iter().map(|b| b.id).collect();
        ids.sort_unstable();
        (ids, None)
    } else {
        let racks: BTreeMap<BrokerId, &str> = brokers
            .iter()
            .map(|b| (b.id, b.rack.as_deref().unwrap_or("")))
            .collect();
        (rack_alternated(&racks), Some(racks))
    };
    let n = ordered.len();
    let num_racks = rack_of
        .as_ref()
        .map_or(1, |r| r.values().collect::<BTreeSet<_>>().len());
    let start = start_index % n;
    let mut shift = replica_shift % n;
    let mut out = Vec::with_capacity(partitions as usize);
    for p in 0..partitions as usize {
        if p > 0 && p % n == 0 {
            shift += 1;
        }
        let first = (p + start) % n;
        let mut replicas = vec![ordered[first]];
        match &rack_of {
            None => {
                for j in 0..rf - 1 {
                    replicas.push(ordered[replica_index(first, shift, j, n)]);
                }
            }
            Some(racks) => {
                let mut used_racks: BTreeSet<&str> = BTreeSet::from([racks[&ordered[first]]]);
                let mut k = 0;
                while replicas.len() < rf {
                    let broker = ordered[replica_index(first, shift * num_racks, k, n)];
                    let rack = racks[&broker];
                    let rack_ok = !used_racks.contains(rack) || used_racks.len() == num_racks;
                    if rack_ok && !replicas.contains(&broker) {
                        replicas.push(broker);
                        used_racks.insert(rack);
                    }
                    k += 1;
                }
            }
        }
        out.push(replicas);
    }
    Ok(out)
}

fn replica_index(first: usize, shift: usize, j: usize, n: usize) -> usize {
    if n == 1 {
        return first;
    }
    (first + 1 + (shift + j) % (n - 1)) % n
}

/// Brokers ordered so consecutive ones sit on different racks: the first
/// of each rack (racks in name order), then the second of each, ….
fn rack_alternated(racks: &BTreeMap<BrokerId, &str>) -> Vec<BrokerId> {
    let mut by_rack: BTreeMap<&str, Vec<BrokerId>> = BTreeMap::new();
    for (&id, &rack) in racks {
        by_rack.entry(rack).or_default().push(id);
    }
    let longest = by_rack.values().map(Vec::len).max().unwrap_or(0);
    (0..longest)
        .flat_map(|i| by_rack.values().filter_map(move |ids| ids.get(i).copied()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn brokers(n: i32, racks: Option<usize>) -> Vec<BrokerInfo> {
        (0..n)
            .map(|id| BrokerInfo {
                id,
                rack: racks.map(|r| format!("rack-{}", id as usize % r)),
            })
            .collect()
    }

    #[test]
    fn matches_kafkas_placement() {
        // Kafka's AdminUtilsTest: 5 brokers, 10 partitions, rf 3, fixed
        // start index 0 and shift 0.
        let got = assign_replicas(&brokers(5, None), 10, 3, 0, 0).unwrap();
        let expected = vec![
            vec![0, 1, 2],
            vec![1, 2, 3],
            vec![2, 3, 4],
            vec![3, 4, 0],
            vec![4, 0, 1],
            vec![0, 2, 3],
            vec![1, 3, 4],
            vec![2, 4, 0],
            vec![3, 0, 1],
            vec![4, 1, 2],
        ];
        assert_eq!(got, expected);
    }

    #[test]
    fn refuses_what_cannot_be_placed() {
        assert!(matches!(
            assign_replicas(&brokers(2, None), 1, 3, 0, 0),
            Err(AssignmentError::InvalidReplicationFactor { .. })
        ));
        assert_eq!(
            assign_replicas(&brokers(2, None), 0, 1, 0, 0),
            Err(AssignmentError::InvalidPartitions)
        );
        let mut mixed = brokers(2, Some(2));
        mixed[0].rack = None;
        assert_eq!(assign_replicas(&mixed, 1, 1, 0, 0), Err(AssignmentError::MixedRacks));
    }

    proptest! {
        #[test]
        fn replicas_are_distinct_and_spread_over_racks(
            n in 1i32..9, racks in proptest::option::of(1usize..4), partitions in 1u32..40,
            rf_pick in 0u16..8, start in 0usize..20, shift in 0usize..20,
        ) {
            let rf = 1 + rf_pick % n as u16;
            let list = brokers(n, racks);
            let got = assign_replicas(&list, partitions, rf, start, shift).unwrap();
            prop_assert_eq!(got.len(), partitions as usize);
            let num_racks = racks.map_or(1, |r| r.min(n as usize));
            let mut leaders = BTreeMap::<BrokerId, usize>::new();
            for replicas in &got {
                prop_assert_eq!(replicas.len(), rf as usize);
                prop_assert_eq!(replicas.iter().collect::<BTreeSet<_>>().len(), rf as usize);
                if racks.is_some() {
                    let used: BTreeSet<_> = replicas.iter().map(|&b| b as usize % racks.unwrap_or(1)).collect();
                    prop_assert_eq!(used.len(), (rf as usize).min(num_racks));
                }
                *leaders.entry(replicas[0]).or_default() += 1;
            }
            // Leaders round-robin: no broker leads more than its share, rounded up.
            let share = (partitions as usize).div_ceil(n as usize);
            prop_assert!(leaders.values().all(|&c| c <= share));
        }
    }
}
