//! A fetcher's side of a fetch session (KIP-227): the first request opens
//! a session (epoch 0, every partition); later ones carry the session's id
//! and next epoch and name only partitions whose fetch position moved,
//! listing those no longer fetched as forgotten. A refused session (or a
//! broker that keeps none) starts over with a full request.

use std::collections::{BTreeMap, HashSet};

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::fetch_request::ForgottenTopic;
use kafka_protocol::messages::FetchRequest;

use crate::cluster::topic_name;
use crate::consumer::{fetch_request, ConsumerConfig};

/// Where each partition's fetch stands, by topic and partition: (fetch
/// offset, leader epoch). Looked up by `&str` without allocating: a
/// follower's session holds thousands of partitions.
type Positions = BTreeMap<String, BTreeMap<i32, (i64, i32)>>;

/// The session a fetcher keeps with one broker.
#[derive(Debug, Default)]
pub struct FetchSession {
    id: i32,
    epoch: i32,
    /// What the broker's session holds, as last sent.
    sent: Positions,
}

impl FetchSession {
    /// No session yet: the first request opens one.
    pub fn new() -> Self {
        Self::default()
    }

    /// The session's id (0: none).
    pub fn id(&self) -> i32 {
        self.id
    }

    /// The Fetch for `partitions` — (topic, partition, fetch offset,
    /// current leader epoch or -1) — as `replica_id`: all of them when
    /// opening, otherwise only those that moved, with the ones dropped
    /// since listed as forgotten.
    pub fn request(
        &self,
        replica_id: i32,
        config: &ConsumerConfig,
        partitions: &[(&str, i32, i64, i32)],
    ) -> FetchRequest {
        let opening = self.epoch == 0;
        let named: Vec<(&str, i32, i64, i32)> = partitions
            .iter()
            .copied()
            .filter(|(t, p, offset, epoch)| opening || self.sent_position(t, *p) != Some((*offset, *epoch)))
            .collect();
        let mut request = fetch_request(replica_id, config, &named);
        request.session_id = self.id;
        request.session_epoch = self.epoch;
        if !opening {
            let fetched = fetched_set(partitions);
            let mut forgotten: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
            for (topic, sent) in &self.sent {
                for partition in sent.keys() {
                    if !fetched.contains(&(topic.as_str(), *partition)) {
                        forgotten.entry(topic).or_default().push(*partition);
                    }
                }
            }
            request.forgotten_topics_data = forgotten
                .into_iter()
                .map(|(topic, partitions)| {
                    let mut f = ForgottenTopic::default();
                    f.topic = topic_name(topic);
                    f.partitions = partitions;
                    f
                })
                .collect();
        }
        request
    }

    /// The broker answered the request made for `partitions` with
    /// top-level `error_code` and `session_id`.
    pub fn answered(&mut self, error_code: i16, session_id: i32, partitions: &[(&str, i32, i64, i32)]) {
        let refused = [
            ResponseError::FetchSessionIdNotFound.code(),
            ResponseError::InvalidFetchSessionEpoch.code(),
        ];
        if refused.contains(&error_code) || session_id == 0 {
            // Start over: a full request at epoch 0 (closing a refused id).
            self.epoch = 0;
            self.id = if error_code == 0 { 0 } else { self.id };
            self.sent.clear();
            return;
        }
        self.id = session_id;
        self.epoch = if self.epoch == i32::MAX { 1 } else { self.epoch + 1 };
        // Updated in place: no new map (and no name copies) per request.
        let fetched = fetched_set(partitions);
        self.sent.retain(|topic, sent| {
            sent.retain(|p, _| fetched.contains(&(topic.as_str(), *p)));
            !sent.is_empty()
        });
        for (topic, partition, offset, epoch) in partitions {
            match self.sent.get_mut(*topic) {
                Some(sent) => {
                    sent.insert(*partition, (*offset, *epoch));
                }
                None => {
                    self.sent
                        .insert(topic.to_string(), BTreeMap::from([(*partition, (*offset, *epoch))]));
                }
            }
        }
    }

    /// What the session holds for `topic`'s `partition`, as last sent.
    fn sent_position(&self, topic: &str, partition: i32) -> Option<(i64, i32)> {
        self.sent.get(topic)?.get(&partition).copied()
    }

    /// The connection was lost: the next request opens a new session
    /// (closing this one on the broker).
    pub fn reset(&mut self) {
        self.epoch = 0;
        self.sent.clear();
    }
}

/// The (topic, partition) pairs of a fetch's partitions.
fn fetched_set<'a>(partitions: &[(&'a str, i32, i64, i32)]) -> HashSet<(&'a str, i32)> {
    partitions.iter().map(|(t, p, _, _)| (*t, *p)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> ConsumerConfig {
        ConsumerConfig {
            min_bytes: 1,
            max_bytes: 1 << 20,
            partition_max_bytes: 1 << 20,
            max_wait_ms: 100,
        }
    }

    fn named(request: &FetchRequest) -> Vec<(String, i32, i64)> {
        request
            .topics
            .iter()
            .flat_map(|t| {
                t.partitions
                    .iter()
                    .map(move |p| (t.topic.0.to_string(), p.partition, p.fetch_offset))
            })
            .collect()
    }

    #[test]
    fn opens_then_names_only_what_moved() {
        let mut session = FetchSession::new();
        let all = [("a", 0, 10, 1), ("a", 1, 20, 1)];
        let first = session.request(1, &config(), &all);
        assert_eq!((first.session_id, first.session_epoch), (0, 0));
        assert_eq!(named(&first).len(), 2);
        session.answered(0, 7, &all);
        let moved = [("a", 0, 15, 1), ("a", 1, 20, 1)];
        let next = session.request(1, &config(), &moved);
        assert_eq!((next.session_id, next.session_epoch), (7, 1));
        assert_eq!(named(&next), vec![("a".to_string(), 0, 15)]);
        session.answered(0, 7, &moved);
        // a-1 is no longer followed: forgotten.
        let fewer = [("a", 0, 15, 1)];
        let last = session.request(1, &config(), &fewer);
        assert_eq!(last.session_epoch, 2);
        assert!(named(&last).is_empty());
        assert_eq!(last.forgotten_topics_data[0].partitions, vec![1]);
        // A refused epoch starts over with a full request closing the id.
        session.answered(ResponseError::InvalidFetchSessionEpoch.code(), 0, &fewer);
        let again = session.request(1, &config(), &fewer);
        assert_eq!((again.session_id, again.session_epoch), (7, 0));
        assert_eq!(named(&again).len(), 1);
    }
}
