//! What OffsetCommit and TxnOffsetCommit share: screening the partitions
//! of a commit before the group coordinator sees it, as Kafka does —
//! partitions that do not exist are UNKNOWN_TOPIC_OR_PARTITION (checked
//! first, by KafkaApis), metadata longer than `offset.metadata.max.bytes`
//! is OFFSET_METADATA_TOO_LARGE (checked when storing, so a refusal of the
//! whole commit by the group wins) — and each partition's error code
//! once the group has answered.

use std::collections::HashMap;

use gregor_broker::errors::group_code;
use gregor_broker::Broker;
use gregor_group::{CommittedOffset, GroupError};
use kafka_protocol::error::ResponseError;

/// Kafka's `offset.metadata.max.bytes` default (its length is counted as
/// Java's `String.length`, in UTF-16 units).
pub(crate) const OFFSET_METADATA_MAX_BYTES: usize = 4096;

/// One partition of a commit request.
pub(crate) struct RequestedOffset<'a> {
    /// Topic.
    pub(crate) topic: &'a str,
    /// Partition.
    pub(crate) partition: i32,
    /// The offset to commit.
    pub(crate) offset: i64,
    /// Its leader epoch (-1: unknown).
    pub(crate) leader_epoch: i32,
    /// The client's metadata (null is empty).
    pub(crate) metadata: Option<&'a str>,
}

/// A commit request's partitions sorted out: those to store, and those
/// refused before storing.
pub(crate) struct ScreenedCommit {
    /// (topic, partition, offset) to hand to the coordinator.
    pub(crate) offsets: Vec<(String, i32, CommittedOffset)>,
    refused: HashMap<(String, i32), ResponseError>,
}

impl ScreenedCommit {
    /// Sorts out `requested`, stamping the stored offsets `now_ms`.
    pub(crate) fn new<'a>(
        broker: &Broker,
        requested: impl IntoIterator<Item = RequestedOffset<'a>>,
        now_ms: i64,
    ) -> Self {
        let mut offsets = Vec::new();
        let mut refused = HashMap::new();
        for r in requested {
            let metadata = r.metadata.unwrap_or("");
            let refusal = if broker.topics().known_partition(r.topic, r.partition).is_err() {
                Some(ResponseError::UnknownTopicOrPartition)
            } else if metadata.encode_utf16().count() > OFFSET_METADATA_MAX_BYTES {
                Some(ResponseError::OffsetMetadataTooLarge)
            } else {
                None
            };
            match refusal {
                Some(error) => {
                    refused.insert((r.topic.to_string(), r.partition), error);
                }
                None => {
                    let value = CommittedOffset {
                        offset: r.offset,
                        leader_epoch: r.leader_epoch,
                        metadata: metadata.to_string(),
                        commit_timestamp: now_ms,
                    };
                    offsets.push((r.topic.to_string(), r.partition, value));
                }
            }
        }
        Self { offsets, refused }
    }

    /// The error code of `topic`'s `partition` once the group answered
    /// the commit of the others with `result`.
    pub(crate) fn code(&self, topic: &str, partition: i32, result: Result<(), GroupError>) -> i16 {
        self.code_of(topic, partition, result.map_err(group_code))
    }

    /// [`Self::code`] once the commit of the others was answered with an
    /// error code (`Err`) or not refused.
    pub(crate) fn code_of(&self, topic: &str, partition: i32, result: Result<(), i16>) -> i16 {
        match (self.refused.get(&(topic.to_string(), partition)), result) {
            (Some(ResponseError::UnknownTopicOrPartition), _) => ResponseError::UnknownTopicOrPartition.code(),
            (_, Err(code)) => code,
            (Some(refusal), Ok(())) => refusal.code(),
            (None, Ok(())) => 0,
        }
    }

    /// Whether any partition exists, so the group coordinator sees the
    /// commit (Kafka answers one naming none without asking it).
    pub(crate) fn reaches_group(&self) -> bool {
        !self.offsets.is_empty()
            || self
                .refused
                .values()
                .any(|e| *e != ResponseError::UnknownTopicOrPartition)
    }
}
