//! Properties of the server-side assignors (KIP-848), over random groups:
//! random members, subscriptions, topics and current assignments (valid
//! or not: partitions of gone topics, partitions past a topic's end, the
//! same partition held twice).
//!
//! - both: every partition of a topic someone subscribes to goes to
//!   exactly one member subscribed to it, and nothing else is assigned;
//! - uniform, one shared subscription: members' loads differ by at most
//!   one; any subscriptions: no partition could move from a member to one
//!   holding two fewer that subscribes to its topic;
//! - uniform is sticky: a valid, balanced current assignment stays as it
//!   is, and a member joining takes partitions only from others' surplus
//!   (members keep a subset of what they held);
//! - range: per topic, subscribers' shares differ by at most one, and
//!   members subscribed to the same topics of equal size get the same
//!   partition numbers of each (co-partitioning).

use std::collections::{BTreeMap, BTreeSet};

use gregor_group::consumer::{Assignment, AssignmentSpec, Assignor, MemberSpec};
use proptest::prelude::*;
use uuid::Uuid;

fn topic(n: u8) -> Uuid {
    Uuid::from_u128(u128::from(n) + 1)
}

/// A random group: up to 8 members over up to 4 topics of up to 12
/// partitions, each member with a subscription and a (maybe invalid)
/// current assignment.
fn group(shared: bool) -> impl Strategy<Value = AssignmentSpec> {
    let topics = prop::collection::btree_map(0u8..4, 1i32..12, 1..4);
    topics.prop_flat_map(move |topics| {
        let names: Vec<u8> = topics.keys().copied().collect();
        let subscription = prop::sample::subsequence(names.clone(), 1..=names.len());
        let current = prop::collection::btree_map(0u8..5, prop::collection::btree_set(0i32..14, 0..6), 0..3);
        let member = (subscription, current);
        let members = prop::collection::vec(member, 1..8);
        let topics = topics.clone();
        members.prop_map(move |members| {
            let first: BTreeSet<Uuid> = members[0].0.iter().map(|t| topic(*t)).collect();
            AssignmentSpec {
                members: members
                    .into_iter()
                    .enumerate()
                    .map(|(i, (subs, current))| {
                        let subscribed = if shared {
                            first.clone()
                        } else {
                            subs.iter().map(|t| topic(*t)).collect()
                        };
                        let current = current.into_iter().map(|(t, ps)| (topic(t), ps)).collect();
                        (
                            format!("m{i}"),
                            MemberSpec {
                                subscribed,
                                current,
                                instance_id: None,
                            },
                        )
                    })
                    .collect(),
                topics: topics.iter().map(|(t, n)| (topic(*t), *n)).collect(),
            }
        })
    })
}

fn load(a: &Assignment) -> usize {
    a.values().map(BTreeSet::len).sum()
}

/// Every partition of a subscribed topic to exactly one subscriber,
/// nothing else.
fn check_complete(spec: &AssignmentSpec, result: &BTreeMap<String, Assignment>) -> Result<(), TestCaseError> {
    prop_assert_eq!(
        result.keys().collect::<Vec<_>>(),
        spec.members.keys().collect::<Vec<_>>()
    );
    let mut holder: BTreeMap<(Uuid, i32), &str> = BTreeMap::new();
    for (member, assignment) in result {
        for (t, ps) in assignment {
            prop_assert!(
                spec.members[member].subscribed.contains(t),
                "{member} holds {t} unsubscribed"
            );
            for p in ps {
                prop_assert!(
                    (0..spec.topics[t]).contains(p),
                    "{member} holds {t}-{p}, past the topic's end"
                );
                prop_assert!(holder.insert((*t, *p), member).is_none(), "{t}-{p} held twice");
            }
        }
    }
    for (t, n) in &spec.topics {
        if spec.members.values().any(|m| m.subscribed.contains(t)) {
            for p in 0..*n {
                prop_assert!(holder.contains_key(&(*t, p)), "{t}-{p} unassigned");
            }
        }
    }
    Ok(())
}

proptest! {
    #[test]
    fn uniform_with_one_subscription_is_complete_and_balanced(spec in group(true)) {
        let result = Assignor::Uniform.assign(&spec);
        check_complete(&spec, &result)?;
        let loads: Vec<usize> = result.values().map(load).collect();
        prop_assert!(loads.iter().max().unwrap() - loads.iter().min().unwrap() <= 1, "{loads:?}");
    }

    #[test]
    fn uniform_with_any_subscriptions_leaves_no_move_that_narrows_a_gap(spec in group(false)) {
        let result = Assignor::Uniform.assign(&spec);
        check_complete(&spec, &result)?;
        for (from, held) in &result {
            for (to, other) in &result {
                if load(held) >= load(other) + 2 {
                    let movable = held.keys().any(|t| spec.members[to].subscribed.contains(t));
                    prop_assert!(!movable, "{from} ({}) could give {to} ({}) a partition", load(held), load(other));
                }
            }
        }
    }

    #[test]
    fn uniform_keeps_a_valid_balanced_assignment_and_a_joiner_only_takes_surplus(spec in group(true)) {
        let first = Assignor::Uniform.assign(&spec);
        let mut again = spec.clone();
        for (member, m) in again.members.iter_mut() {
            m.current = first[member].clone();
        }
        prop_assert_eq!(&Assignor::Uniform.assign(&again), &first);
        let subscribed = again.members.values().next().unwrap().subscribed.clone();
        again.members.insert("joiner".into(), MemberSpec { subscribed, current: Assignment::new(), instance_id: None });
        let after = Assignor::Uniform.assign(&again);
        check_complete(&again, &after)?;
        for (member, held) in &first {
            for (t, ps) in &after[member] {
                prop_assert!(ps.is_subset(&held[t]), "{member} was given {t} {ps:?}, held {:?}", held.get(t));
            }
        }
    }

    #[test]
    fn range_is_complete_balanced_per_topic_and_co_partitioned(spec in group(false)) {
        let result = Assignor::Range.assign(&spec);
        check_complete(&spec, &result)?;
        for t in spec.topics.keys() {
            let shares: Vec<usize> = spec
                .members
                .iter()
                .filter(|(_, m)| m.subscribed.contains(t))
                .map(|(id, _)| result[id].get(t).map_or(0, BTreeSet::len))
                .collect();
            if let (Some(max), Some(min)) = (shares.iter().max(), shares.iter().min()) {
                prop_assert!(max - min <= 1, "{t}: {shares:?}");
            }
        }
        for (a, b) in spec.topics.keys().flat_map(|a| spec.topics.keys().map(move |b| (a, b))) {
            let same_subscribers = spec.members.values().all(|m| m.subscribed.contains(a) == m.subscribed.contains(b));
            if a < b && same_subscribers && spec.topics[a] == spec.topics[b] {
                for held in result.values() {
                    prop_assert_eq!(held.get(a), held.get(b));
                }
            }
        }
    }
}
