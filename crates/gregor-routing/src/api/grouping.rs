//! Per-partition answers grouped into one entry per topic, in name order,
//! as most responses carry them.

use std::collections::BTreeMap;

use kafka_protocol::messages::TopicName;
use kafka_protocol::protocol::StrBytes;

/// Groups `(topic, partition answer)` pairs by topic (in name order,
/// partitions in the order given) and builds each topic's entry with
/// `topic_entry`.
pub(super) fn by_topic_name<T, R>(
    answers: impl IntoIterator<Item = (String, T)>,
    topic_entry: impl Fn(String, Vec<T>) -> R,
) -> Vec<R> {
    let mut grouped: BTreeMap<String, Vec<T>> = BTreeMap::new();
    for (topic, answer) in answers {
        grouped.entry(topic).or_default().push(answer);
    }
    grouped
        .into_iter()
        .map(|(topic, answers)| topic_entry(topic, answers))
        .collect()
}

/// A topic name for the wire.
pub(super) fn topic_name(name: String) -> TopicName {
    TopicName(StrBytes::from_string(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_grouped_by_topic_in_name_order() {
        let grouped = by_topic_name(
            [("b".to_string(), 1), ("a".to_string(), 2), ("b".to_string(), 3)],
            |t, v| (t, v),
        );
        assert_eq!(grouped, vec![("a".to_string(), vec![2]), ("b".to_string(), vec![1, 3])]);
    }
}
