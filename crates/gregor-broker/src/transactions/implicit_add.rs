//! Transactions v2's implicit add (KIP-890 part 2), the partition
//! leader's side: a transactional batch of Produce v12+ (or the offsets of
//! TxnOffsetCommit v5+) that opens its producer's transaction here makes
//! the leader add the partition to the transaction at the coordinator —
//! in process (the coordinator's add under [`TransactionVersion::V2`], a
//! write of `__transaction_state`, run on the blocking pool) or through
//! the server's verifier (AddPartitionsToTxn v5, not `verify_only`) —
//! instead of only verifying it. While the coordinator answers
//! CONCURRENT_TRANSACTIONS (the previous transaction's markers are still
//! being written) the add is tried again — as soon as this broker's
//! coordinator has stored a write (the completion, most likely), or
//! after [`RETRY_BACKOFF`] — for up to [`RETRY_MAX`], Kafka's
//! `add.partitions.to.txn.max.timeout.ms`. Not Kafka's 20 ms
//! `add.partitions.to.txn.retry.backoff.ms`: the markers usually land
//! within a millisecond, and the first batch of every transaction that
//! follows another at once meets them in flight (a 20 ms pause there
//! halved the Java producer's transactional throughput).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use gregor_log::TopicPartition;
use gregor_transaction::TransactionVersion;
use kafka_protocol::error::ResponseError;
use tokio::time::Instant;

use super::verification::{all, remote_answer, verdicts_of, Verdicts};
use crate::broker::Broker;

/// The longest pause between two adds answered CONCURRENT_TRANSACTIONS
/// (the runtime's timer granularity).
pub const RETRY_BACKOFF: Duration = Duration::from_millis(1);
/// How long an add answered CONCURRENT_TRANSACTIONS is tried again.
pub const RETRY_MAX: Duration = Duration::from_millis(100);
/// How often a request that adds implicitly (Produce v12+,
/// TxnOffsetCommit v5+) adds and appends when the previous transaction's
/// marker cleared its guard while the add waited for that transaction to
/// complete (the guard must predate the add that confirms the
/// transaction; the second add writes nothing).
pub const ADD_ATTEMPTS: usize = 3;

impl Broker {
    /// Adds `partitions` to the transaction of `producer_id` at
    /// `producer_epoch` at `transactional_id`'s coordinator (transactions
    /// v2); each partition's verdict, with the coordinator's codes
    /// (CONCURRENT_TRANSACTIONS once [`RETRY_MAX`] has passed; the
    /// request's handler maps them for its client).
    pub fn add_to_transaction(
        self: &Arc<Self>,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        partitions: Vec<TopicPartition>,
    ) -> impl Future<Output = Verdicts> + Send + 'static {
        let broker = self.clone();
        let transactional_id = transactional_id.to_string();
        async move {
            let deadline = Instant::now() + RETRY_MAX;
            let coordinator = broker.transactions().coordinator().clone();
            loop {
                // Registered before the add: a completion stored while it
                // is answered is not missed.
                let stored = coordinator.stored().notified();
                tokio::pin!(stored);
                stored.as_mut().enable();
                let verdicts = broker
                    .add_once(&transactional_id, producer_id, producer_epoch, &partitions)
                    .await;
                let concurrent = !verdicts.is_empty()
                    && verdicts
                        .iter()
                        .all(|(_, r)| *r == Err(ResponseError::ConcurrentTransactions));
                if !concurrent || Instant::now() + RETRY_BACKOFF > deadline {
                    return verdicts;
                }
                // A coordinator here says when it stored something (the
                // previous transaction's completion, most likely); one on
                // another broker is asked again after the pause.
                let _ = tokio::time::timeout(RETRY_BACKOFF, stored).await;
            }
        }
    }

    /// One add, in process or through the verifier.
    async fn add_once(
        self: &Arc<Self>,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        partitions: &[TopicPartition],
    ) -> Verdicts {
        match self.transaction_coordinator_of(transactional_id) {
            None => all(partitions, ResponseError::CoordinatorNotAvailable),
            Some(local) if local == self.config().node_id => {
                let coordinator = self.transactions().coordinator().clone();
                let (tid, asked) = (transactional_id.to_string(), partitions.to_vec());
                // The add writes `__transaction_state`: not on the runtime.
                let answer = tokio::task::spawn_blocking(move || {
                    coordinator.add_partitions(&tid, producer_id, producer_epoch, asked, TransactionVersion::V2)
                })
                .await;
                let answered = match answer {
                    Ok(receiver) => receiver.await.ok(),
                    Err(_) => None,
                };
                match answered {
                    Some(results) => verdicts_of(results),
                    None => all(partitions, ResponseError::CoordinatorNotAvailable),
                }
            }
            Some(_) => {
                let pending = self.ask_remotely(transactional_id, producer_id, producer_epoch, partitions, true);
                remote_answer(pending, partitions.to_vec()).await
            }
        }
    }
}
