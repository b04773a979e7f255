//! Pattern subscriptions (KIP-848's SubscribedTopicRegex): each distinct
//! pattern of a group's members, compiled once, with the topics it
//! matches as of the last heartbeat. A pattern must match a topic's whole
//! name (as Kafka's RE2/J `matches()`); internal topics are never matched.

use std::collections::{BTreeMap, BTreeSet};

use regex::Regex;

use crate::protocol::GroupError;

/// The group's patterns and what each matches.
#[derive(Debug, Clone, Default)]
pub(crate) struct Patterns {
    by_pattern: BTreeMap<String, (Regex, BTreeSet<String>)>,
}

impl PartialEq for Patterns {
    fn eq(&self, other: &Self) -> bool {
        self.by_pattern.len() == other.by_pattern.len()
            && self
                .by_pattern
                .iter()
                .zip(&other.by_pattern)
                .all(|((a, (_, x)), (b, (_, y)))| a == b && x == y)
    }
}

impl Eq for Patterns {}

/// Compiles `pattern` as Kafka reads it: the whole topic name must match.
pub(crate) fn compile(pattern: &str) -> Result<Regex, GroupError> {
    Regex::new(&format!("^(?:{pattern})$")).map_err(|_| GroupError::InvalidRegularExpression)
}

impl Patterns {
    /// Keeps `wanted` patterns (compiling new ones; one that does not
    /// compile matches nothing) and matches each against `names`.
    pub(crate) fn refresh<'a>(&mut self, wanted: impl IntoIterator<Item = &'a str>, names: &[String]) {
        let mut next = BTreeMap::new();
        for pattern in wanted {
            let regex = match self.by_pattern.remove(pattern) {
                Some((regex, _)) => regex,
                None => match compile(pattern) {
                    Ok(regex) => regex,
                    Err(_) => continue,
                },
            };
            let matched = names.iter().filter(|n| regex.is_match(n)).cloned().collect();
            next.insert(pattern.to_string(), (regex, matched));
        }
        self.by_pattern = next;
    }

    /// The topics `pattern` matched at the last refresh.
    pub(crate) fn matched(&self, pattern: &str) -> impl Iterator<Item = &String> {
        self.by_pattern.get(pattern).into_iter().flat_map(|(_, m)| m.iter())
    }

    /// Whether the group has no pattern.
    pub(crate) fn is_empty(&self) -> bool {
        self.by_pattern.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pattern_matches_whole_names_only() {
        let mut p = Patterns::default();
        let names = ["orders".to_string(), "orders-eu".to_string(), "my-orders".to_string()];
        p.refresh(["orders.*"], &names);
        assert_eq!(p.matched("orders.*").collect::<Vec<_>>(), ["orders", "orders-eu"]);
        assert!(compile("orders(").is_err());
    }
}
