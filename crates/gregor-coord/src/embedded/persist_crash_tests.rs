//! Power loss at every file operation of the embedded store's persistence
//! (`snapshot.bin` and `changes.log`), with gregor-log's power-loss model:
//! every change whose append returned is recovered (the store syncs each
//! one), and what is recovered is exactly the state after some zxid.

use std::collections::BTreeMap;
use std::path::Path;

use gregor_log::disk_io::power_loss::PowerLoss;
use proptest::prelude::*;

use super::super::tree::{Change, StoredNode};
use super::Durable;
use crate::types::Stat;

fn node(value: usize) -> StoredNode {
    StoredNode {
        data: value.to_string().into_bytes(),
        stat: Stat::default(),
    }
}

/// Runs the changes (key index, snapshot after it?) and returns the state
/// after each zxid and the last zxid acknowledged before the crash.
fn run(dir: &Path, steps: &[(u8, bool)], sim: &PowerLoss) -> (Vec<BTreeMap<String, StoredNode>>, i64) {
    let (mut durable, _) = Durable::open(dir, true).unwrap();
    let mut states = vec![BTreeMap::new()];
    let mut acked = 0;
    for (i, (key, snapshot)) in steps.iter().enumerate() {
        let zxid = i as i64 + 1;
        let mut nodes = states.last().cloned().unwrap_or_default();
        let path = format!("/k{key}");
        let change = if i % 5 == 4 {
            nodes.remove(&path);
            Change::Remove(path)
        } else {
            nodes.insert(path.clone(), node(i));
            Change::Put(path, node(i))
        };
        durable.append(zxid, vec![change]).unwrap();
        if !sim.crashed() {
            acked = zxid;
        }
        if *snapshot {
            durable.snapshot(zxid, nodes.clone()).unwrap();
        }
        states.push(nodes);
    }
    (states, acked)
}

fn cases() -> ProptestConfig {
    let cases = std::env::var("GREGOR_PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64);
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(cases())]

    #[test]
    fn a_crash_anywhere_keeps_every_acknowledged_change(
        steps in proptest::collection::vec((0u8..4, prop::bool::weighted(0.15)), 1..30),
        point in any::<prop::sample::Index>(),
        seed in any::<u64>(),
    ) {
        let operations = {
            let dir = tempfile::tempdir().unwrap();
            let sim = PowerLoss::start(dir.path(), None, seed);
            run(dir.path(), &steps, &sim);
            sim.operations()
        };
        let crash_at = 1 + point.index(operations.max(1) as usize) as u64;
        let dir = tempfile::tempdir().unwrap();
        let after = tempfile::tempdir().unwrap();
        let (states, acked) = {
            let sim = PowerLoss::start(dir.path(), Some(crash_at), seed);
            let outcome = run(dir.path(), &steps, &sim);
            sim.restore_into(after.path()).unwrap();
            outcome
        };
        let (_, recovered) = Durable::open(after.path(), true).unwrap();
        prop_assert!(recovered.zxid >= acked, "zxid {} < acknowledged {}", recovered.zxid, acked);
        let state = &states[recovered.zxid as usize];
        prop_assert_eq!(recovered.nodes.keys().collect::<Vec<_>>(), state.keys().collect::<Vec<_>>());
        for (path, node) in &recovered.nodes {
            prop_assert_eq!(&node.data, &state[path].data);
        }
    }
}
