//! The transaction coordinator's records in `__transaction_state`: a
//! compacted internal topic (`transaction.state.log.*`), each
//! transactional id's records in the partition Kafka would pick, appended
//! as that partition's leader — refused once this broker's leadership has
//! moved past the coordinator epoch the write was decided in — and
//! acknowledged once every in-sync replica has them.

use std::collections::BTreeMap;
use std::sync::Arc;

use gregor_log::{Clock, TopicPartition};
use gregor_transaction::{StoredRecord, TransactionLog, TRANSACTION_STATE_TOPIC};

use crate::internal_topic;
use crate::replicas::ReplicaManager;
use crate::topics::Topics;

/// How long a write waits for the in-sync replicas (Kafka's
/// `transaction.state.log` writes use the request timeout).
const WRITE_TIMEOUT_MS: u64 = 5_000;

/// How `__transaction_state` is created (Kafka's `transaction.state.log.*`).
#[derive(Debug, Clone, Copy)]
pub struct TransactionStateSettings {
    /// `transaction.state.log.num.partitions`.
    pub partitions: u32,
    /// `transaction.state.log.replication.factor` (capped to the live brokers).
    pub replication_factor: u16,
    /// `transaction.state.log.min.isr`.
    pub min_isr: u16,
    /// `transaction.state.log.segment.bytes`.
    pub segment_bytes: u32,
}

impl Default for TransactionStateSettings {
    fn default() -> Self {
        Self {
            partitions: 50,
            replication_factor: 3,
            min_isr: 2,
            segment_bytes: 100 * 1024 * 1024,
        }
    }
}

/// `__transaction_state` as the transaction coordinator's [`TransactionLog`].
pub struct TransactionStateTopic {
    settings: TransactionStateSettings,
    topics: Arc<Topics>,
    replicas: Arc<ReplicaManager>,
    clock: Arc<dyn Clock>,
}

impl TransactionStateTopic {
    /// The state topic among `topics`, written as leader through `replicas`.
    pub fn new(
        settings: TransactionStateSettings,
        topics: Arc<Topics>,
        replicas: Arc<ReplicaManager>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            settings,
            topics,
            replicas,
            clock,
        }
    }

    /// Creates `__transaction_state` unless it exists; its partition count.
    pub fn ensure(&self) -> Result<u32, String> {
        let config = BTreeMap::from([
            ("cleanup.policy".to_string(), "compact".to_string()),
            ("segment.bytes".to_string(), self.settings.segment_bytes.to_string()),
            ("min.insync.replicas".to_string(), self.settings.min_isr.to_string()),
            ("unclean.leader.election.enable".to_string(), "false".to_string()),
        ]);
        internal_topic::ensure(
            &self.topics,
            TRANSACTION_STATE_TOPIC,
            self.settings.partitions,
            self.settings.replication_factor,
            config,
        )
    }

    /// The partition count configured (the coordinator's view before the
    /// topic exists).
    pub fn configured_partitions(&self) -> u32 {
        self.settings.partitions
    }
}

impl TransactionLog for TransactionStateTopic {
    fn append(&self, partition: i32, coordinator_epoch: i32, records: &[StoredRecord]) -> Result<(), String> {
        if records.is_empty() {
            return Ok(());
        }
        let tp = TopicPartition::new(TRANSACTION_STATE_TOPIC, partition.unsigned_abs());
        // A write decided under an older leadership must not land: the
        // partition may have been led elsewhere meanwhile.
        match self.replicas.leader_epoch(&tp) {
            Some(epoch) if epoch == coordinator_epoch => {}
            other => {
                return Err(format!(
                    "{tp}: not the coordinator at epoch {coordinator_epoch} (leader epoch here: {other:?})"
                ))
            }
        }
        let batch = internal_topic::keyed_batch(records, self.clock.now_ms());
        internal_topic::append_acknowledged(&self.replicas, &tp, &batch, WRITE_TIMEOUT_MS)
            .map(|_| ())
            .map_err(|e| format!("{tp}: {e}"))
    }

    fn load_partition(&self, partition: i32) -> Result<Vec<StoredRecord>, String> {
        match self.topics.log(TRANSACTION_STATE_TOPIC, partition) {
            Some(log) => internal_topic::read_keyed(&log),
            None => Ok(Vec::new()),
        }
    }
}
