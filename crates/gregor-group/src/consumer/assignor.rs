//! The server-side assignors of KIP-848: given every member's
//! subscription and current target, and the partition counts of the
//! subscribed topics, each decides the group's next target assignment.
//!
//! Both keep Kafka's invariants: every partition of a subscribed topic
//! goes to exactly one member subscribed to it, and to nobody else.
//!
//! - `uniform` (the default): sticky and balanced. Members keep what they
//!   hold where it stays valid; free partitions go to the least loaded
//!   eligible member; then partitions move from the most to the least
//!   loaded member that can take one, until no move narrows the gap. With
//!   one shared subscription every member ends within one partition of
//!   every other.
//! - `range`: per topic, the subscribed members (static ones first, by
//!   instance id, then the others by member id) take
//!   consecutive ranges, the first `partitions % members` one more — so
//!   topics of equal partition counts with the same subscribers are
//!   co-partitioned, as Kafka's range assignor promises.
//!
//! Rack-aware placement (Kafka's uniform assignor prefers a member in the
//! partition's rack) is not done: every member is taken as rackless.

use std::collections::{BTreeMap, BTreeSet};

use uuid::Uuid;

/// Partitions by topic id: a member's assignment, or what it owns.
pub type Assignment = BTreeMap<Uuid, BTreeSet<i32>>;

/// Every (topic, partition) of an assignment, in order (topics listed
/// without partitions name none).
pub fn partitions(assignment: &Assignment) -> impl Iterator<Item = (Uuid, i32)> + '_ {
    assignment
        .iter()
        .flat_map(|(topic, ps)| ps.iter().map(move |p| (*topic, *p)))
}

/// What an assignor knows of one member.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemberSpec {
    /// The ids of the topics it subscribes to (existing ones only).
    pub subscribed: BTreeSet<Uuid>,
    /// Its current target assignment, to stay sticky to.
    pub current: Assignment,
    /// `group.instance.id`, for a static member (`range` orders static
    /// members first, by instance id, so a restart keeps their ranges).
    pub instance_id: Option<String>,
}

/// One assignment's input: members by id, and the partition count of
/// every subscribed topic by topic id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AssignmentSpec {
    /// Member id → subscription and current target.
    pub members: BTreeMap<String, MemberSpec>,
    /// Topic id → number of partitions.
    pub topics: BTreeMap<Uuid, i32>,
}

/// A server-side assignor, chosen by `group.remote.assignor` or the
/// member's `ServerAssignor`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Assignor {
    /// Kafka's `uniform`.
    Uniform,
    /// Kafka's `range`.
    Range,
}

impl Assignor {
    /// The assignor named `name`, as clients name it.
    pub fn named(name: &str) -> Option<Self> {
        match name {
            "uniform" => Some(Self::Uniform),
            "range" => Some(Self::Range),
            _ => None,
        }
    }

    /// Its name on the wire.
    pub fn name(self) -> &'static str {
        match self {
            Self::Uniform => "uniform",
            Self::Range => "range",
        }
    }

    /// The target assignment of every member of `spec` (members without
    /// partitions get an empty one).
    pub fn assign(self, spec: &AssignmentSpec) -> BTreeMap<String, Assignment> {
        match self {
            Self::Uniform => uniform(spec),
            Self::Range => range(spec),
        }
    }
}

/// Whether `member` may hold `partition` of `topic`.
fn eligible(spec: &AssignmentSpec, member: &MemberSpec, topic: &Uuid, partition: i32) -> bool {
    member.subscribed.contains(topic) && spec.topics.get(topic).is_some_and(|&n| (0..n).contains(&partition))
}

/// The uniform assignor: sticky, then filled least-loaded first, then
/// balanced by moves from the most loaded member.
fn uniform(spec: &AssignmentSpec) -> BTreeMap<String, Assignment> {
    let mut result: BTreeMap<String, Assignment> =
        spec.members.keys().map(|m| (m.clone(), Assignment::new())).collect();
    let mut load: BTreeMap<&str, usize> = spec.members.keys().map(|m| (m.as_str(), 0)).collect();
    let mut taken: BTreeSet<(Uuid, i32)> = BTreeSet::new();
    // 1. Stickiness: what each member holds and may still hold, each
    //    partition once (the first holder in member id order keeps it).
    for (id, member) in &spec.members {
        for (topic, partitions) in &member.current {
            for &p in partitions {
                if eligible(spec, member, topic, p) && taken.insert((*topic, p)) {
                    result
                        .get_mut(id)
                        .expect("every member")
                        .entry(*topic)
                        .or_default()
                        .insert(p);
                    *load.get_mut(id.as_str()).expect("every member") += 1;
                }
            }
        }
    }
    // 2. Free partitions to the least loaded member subscribed to them.
    for (topic, &count) in &spec.topics {
        let subscribers: Vec<&str> = spec
            .members
            .iter()
            .filter(|(_, m)| m.subscribed.contains(topic))
            .map(|(id, _)| id.as_str())
            .collect();
        if subscribers.is_empty() {
            continue;
        }
        for p in 0..count {
            if taken.contains(&(*topic, p)) {
                continue;
            }
            let least = *subscribers.iter().min_by_key(|m| (load[**m], **m)).expect("not empty");
            result
                .get_mut(least)
                .expect("every member")
                .entry(*topic)
                .or_default()
                .insert(p);
            *load.get_mut(least).expect("every member") += 1;
        }
    }
    // 3. Balance: move one partition from the most loaded member to the
    //    least loaded one able to take it while they differ by two or
    //    more. Each move lowers the sum of squared loads, so this ends.
    loop {
        let mut by_load: Vec<(&str, usize)> = load.iter().map(|(m, l)| (*m, *l)).collect();
        by_load.sort_by_key(|(m, l)| (std::cmp::Reverse(*l), *m));
        let Some(step) = best_move(spec, &result, &by_load) else {
            break;
        };
        let (from, to, topic, p) = step;
        let from_topics = result.get_mut(from).expect("every member");
        if let Some(set) = from_topics.get_mut(&topic) {
            set.remove(&p);
            if set.is_empty() {
                from_topics.remove(&topic);
            }
        }
        result
            .get_mut(to)
            .expect("every member")
            .entry(topic)
            .or_default()
            .insert(p);
        *load.get_mut(from).expect("every member") -= 1;
        *load.get_mut(to).expect("every member") += 1;
    }
    result
}

/// A move that narrows an imbalance of two or more: from the most loaded
/// member that has a partition a member two or more below it may take
/// (that member's highest partition, to the least loaded taker).
fn best_move<'a>(
    spec: &AssignmentSpec,
    result: &BTreeMap<String, Assignment>,
    by_load: &[(&'a str, usize)],
) -> Option<(&'a str, &'a str, Uuid, i32)> {
    for &(from, from_load) in by_load {
        for &(to, to_load) in by_load.iter().rev() {
            if to_load + 2 > from_load {
                continue;
            }
            let taker = &spec.members[to];
            let movable = result[from]
                .iter()
                .rev()
                .filter(|(topic, _)| taker.subscribed.contains(*topic))
                .find_map(|(topic, ps)| ps.iter().next_back().map(|p| (*topic, *p)));
            if let Some((topic, p)) = movable {
                return Some((from, to, topic, p));
            }
        }
    }
    None
}

/// The range assignor: per topic, consecutive ranges in member id order.
fn range(spec: &AssignmentSpec) -> BTreeMap<String, Assignment> {
    let mut result: BTreeMap<String, Assignment> =
        spec.members.keys().map(|m| (m.clone(), Assignment::new())).collect();
    for (topic, &count) in &spec.topics {
        let mut subscribers: Vec<(&String, &MemberSpec)> = spec
            .members
            .iter()
            .filter(|(_, m)| m.subscribed.contains(topic))
            .collect();
        // Kafka's order: static members by instance id, then the others by
        // member id.
        subscribers.sort_by_key(|(id, m)| (m.instance_id.is_none(), m.instance_id.as_deref(), *id));
        let subscribers: Vec<&String> = subscribers.into_iter().map(|(id, _)| id).collect();
        if subscribers.is_empty() || count <= 0 {
            continue;
        }
        let n = subscribers.len() as i32;
        let (each, extra) = (count / n, count % n);
        let mut next = 0;
        for (i, member) in subscribers.into_iter().enumerate() {
            let size = each + i32::from((i as i32) < extra);
            if size > 0 {
                result
                    .get_mut(member)
                    .expect("every member")
                    .insert(*topic, (next..next + size).collect());
            }
            next += size;
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topic(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    fn spec(members: &[(&str, &[u128])], topics: &[(u128, i32)]) -> AssignmentSpec {
        AssignmentSpec {
            members: members
                .iter()
                .map(|(id, subs)| {
                    (
                        id.to_string(),
                        MemberSpec {
                            subscribed: subs.iter().map(|t| topic(*t)).collect(),
                            current: Assignment::new(),
                            instance_id: None,
                        },
                    )
                })
                .collect(),
            topics: topics.iter().map(|(t, n)| (topic(*t), *n)).collect(),
        }
    }

    #[test]
    fn range_gives_consecutive_ranges_in_member_order() {
        let s = spec(&[("a", &[1, 2]), ("b", &[1, 2])], &[(1, 3), (2, 3)]);
        let r = Assignor::Range.assign(&s);
        assert_eq!(r["a"][&topic(1)], BTreeSet::from([0, 1]));
        assert_eq!(r["b"][&topic(1)], BTreeSet::from([2]));
        // Co-partitioned: the same ranges of the second topic.
        assert_eq!(r["a"][&topic(2)], BTreeSet::from([0, 1]));
    }

    #[test]
    fn uniform_keeps_what_members_hold() {
        let mut s = spec(&[("a", &[1]), ("b", &[1])], &[(1, 4)]);
        s.members.get_mut("a").unwrap().current = Assignment::from([(topic(1), BTreeSet::from([2, 3]))]);
        s.members.get_mut("b").unwrap().current = Assignment::from([(topic(1), BTreeSet::from([0, 1]))]);
        let r = Assignor::Uniform.assign(&s);
        assert_eq!(r["a"][&topic(1)], BTreeSet::from([2, 3]));
        assert_eq!(r["b"][&topic(1)], BTreeSet::from([0, 1]));
    }

    #[test]
    fn uniform_moves_only_what_balance_needs_when_a_member_joins() {
        let mut s = spec(&[("a", &[1]), ("b", &[1]), ("c", &[1])], &[(1, 6)]);
        s.members.get_mut("a").unwrap().current = Assignment::from([(topic(1), BTreeSet::from([0, 1, 2]))]);
        s.members.get_mut("b").unwrap().current = Assignment::from([(topic(1), BTreeSet::from([3, 4, 5]))]);
        let r = Assignor::Uniform.assign(&s);
        for m in ["a", "b", "c"] {
            assert_eq!(r[m][&topic(1)].len(), 2, "{m}: {r:?}");
        }
        assert!(r["a"][&topic(1)].is_subset(&BTreeSet::from([0, 1, 2])));
        assert!(r["b"][&topic(1)].is_subset(&BTreeSet::from([3, 4, 5])));
    }

    #[test]
    fn partitions_of_topics_nobody_subscribes_to_stay_unassigned() {
        let s = spec(&[("a", &[1])], &[(1, 2), (2, 2)]);
        for assignor in [Assignor::Uniform, Assignor::Range] {
            let r = assignor.assign(&s);
            assert_eq!(r["a"].len(), 1);
            assert!(!r["a"].contains_key(&topic(2)));
        }
    }
}
