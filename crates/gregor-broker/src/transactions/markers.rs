//! Writing transaction markers (WriteTxnMarkers, from a transaction
//! coordinator): a COMMIT or ABORT control batch appended to each
//! partition this broker leads, acknowledged once every in-sync replica
//! has it; then, for `__consumer_offsets` partitions, the producer's
//! pending transactional offsets are made visible or dropped.

use gregor_group::OFFSETS_TOPIC;
use gregor_log::batch::{ControlRecordType, EndTransactionMarker};
use gregor_log::{AppendOrigin, TopicPartition};
use kafka_protocol::error::ResponseError;

use crate::broker::Broker;
use crate::errors::{log_error, replication_error};
use crate::replicas::ReplicaAppendError;

/// One marker: the end of a producer's transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxnMarker {
    /// The transaction's producer.
    pub producer_id: i64,
    /// Its epoch (an older one than the log knows is fenced).
    pub producer_epoch: i16,
    /// The coordinator's epoch (an older one than the log knows is fenced).
    pub coordinator_epoch: i32,
    /// COMMIT (`true`) or ABORT.
    pub commit: bool,
}

impl Broker {
    /// Writes `marker` to each of `partitions` (they must be led here) and
    /// waits up to `timeout_ms` for their in-sync replicas (blocking:
    /// handler threads and blocking tasks only); each partition's outcome,
    /// in order.
    pub fn write_txn_markers(
        &self,
        marker: TxnMarker,
        partitions: &[TopicPartition],
        timeout_ms: u64,
    ) -> Vec<Result<(), ResponseError>> {
        let end = EndTransactionMarker {
            kind: if marker.commit {
                ControlRecordType::Commit
            } else {
                ControlRecordType::Abort
            },
            coordinator_epoch: marker.coordinator_epoch,
        };
        let mut results = Vec::with_capacity(partitions.len());
        let mut waiting = Vec::new();
        for tp in partitions {
            let index = i32::try_from(tp.partition).unwrap_or(i32::MAX);
            if let Err(e) = self.topics().known_partition(&tp.topic, index) {
                results.push(Err(e));
                continue;
            }
            let batch = end.batch(marker.producer_id, marker.producer_epoch, self.now_ms());
            let appended = self
                .replicas()
                .append_as_leader_from(tp, &batch, true, AppendOrigin::Coordinator);
            results.push(match appended {
                Err(ReplicaAppendError::Replication(r)) => Err(replication_error(r)),
                Err(ReplicaAppendError::Log(l)) => Err(log_error(&l)),
                Ok(done) => match (done.acked, done.waiting_for) {
                    (Some(Err(e)), _) => Err(replication_error(e)),
                    (_, Some(required)) => {
                        waiting.push((tp.clone(), required));
                        Ok(())
                    }
                    _ => Ok(()),
                },
            });
        }
        if !waiting.is_empty() {
            let acked = self
                .replicas()
                .wait_for_acks(waiting.clone(), timeout_ms)
                .blocking_recv();
            for (tp, _) in waiting {
                let outcome = match &acked {
                    Ok(outcomes) => outcomes.iter().find(|(t, _)| *t == tp).map_or(Ok(()), |(_, o)| *o),
                    Err(_) => Err(gregor_replication::ReplicationError::RequestTimedOut),
                };
                if let (Err(e), Some(i)) = (outcome, partitions.iter().position(|p| *p == tp)) {
                    results[i] = Err(replication_error(e));
                }
            }
        }
        for (tp, result) in partitions.iter().zip(&results) {
            if tp.topic == OFFSETS_TOPIC && result.is_ok() {
                self.groups()
                    .complete_transaction(tp.partition, marker.producer_id, marker.commit);
            }
        }
        results
    }
}
