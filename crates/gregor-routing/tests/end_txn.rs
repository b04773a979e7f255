//! EndTxn and AddPartitionsToTxn under transactions v2 (KIP-890 part 2),
//! through their handlers: a batched add that is not verify-only (a
//! partition leader adding implicitly) opens a version 2 transaction;
//! EndTxn v5 bumps the epoch and answers the producer id and epoch to
//! continue with, a retry at the old epoch is answered the same; v3
//! answers (−1, −1) and does not bump.

mod support;

use gregor_broker::Broker;
use gregor_routing::api::{add_partitions_to_txn, end_txn};
use kafka_protocol::messages::add_partitions_to_txn_request::{AddPartitionsToTxnTopic, AddPartitionsToTxnTransaction};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

const TID: &str = "tx";

fn name(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

fn init(broker: &Broker) -> (i64, i16) {
    let coordinator = broker.transactions().coordinator();
    let p = coordinator
        .init_producer_id(Some(TID), 60_000, None)
        .blocking_recv()
        .unwrap()
        .unwrap();
    (p.producer_id, p.producer_epoch)
}

/// AddPartitionsToTxn v5 of `t`-0 as a partition leader adds it (not
/// verify-only): its code.
fn add_implicitly(broker: &Broker, producer: (i64, i16)) -> i16 {
    let mut t = AddPartitionsToTxnTopic::default();
    t.name = TopicName(name("t"));
    t.partitions = vec![0];
    let mut transaction = AddPartitionsToTxnTransaction::default();
    transaction.transactional_id = TransactionalId(name(TID));
    transaction.producer_id = ProducerId(producer.0);
    transaction.producer_epoch = producer.1;
    transaction.verify_only = false;
    transaction.topics = vec![t];
    let mut request = AddPartitionsToTxnRequest::default();
    request.transactions = vec![transaction];
    let response = add_partitions_to_txn::handle(broker, request, 5);
    response.results_by_transaction[0].topic_results[0].results_by_partition[0].partition_error_code
}

/// EndTxn(commit) at `version`: (error code, producer id, epoch).
fn commit(broker: &Broker, producer: (i64, i16), version: i16) -> (i16, i64, i16) {
    let mut request = EndTxnRequest::default();
    request.transactional_id = TransactionalId(name(TID));
    request.producer_id = ProducerId(producer.0);
    request.producer_epoch = producer.1;
    request.committed = true;
    let r = end_txn::handle(broker, request, version);
    (r.error_code, r.producer_id.0, r.producer_epoch)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn end_txn_v5_bumps_the_epoch_and_answers_the_producer() {
    let dir = tempfile::tempdir().unwrap();
    let broker = support::single_broker(dir.path()).await;
    tokio::task::spawn_blocking(move || {
        support::coordinate_transactions(&broker, TID);
        let mut markers = broker.transactions().take_marker_requests().unwrap();
        let producer = init(&broker);
        assert_eq!(add_implicitly(&broker, producer), 0);
        let next = (producer.0, producer.1 + 1);
        assert_eq!(commit(&broker, producer, 5), (0, next.0, next.1));
        // The markers carry the bumped epoch; once written, a retry at
        // the old epoch is answered with the same producer.
        let request = markers.blocking_recv().unwrap();
        assert_eq!((request.producer_id, request.producer_epoch), next);
        broker.transactions().coordinator().markers_written(request.id);
        assert_eq!(commit(&broker, producer, 5), (0, next.0, next.1));
        // Version 3 (transactions v1): no bump, no producer answered.
        assert_eq!(add_implicitly(&broker, next), 0);
        assert_eq!(commit(&broker, next, 3), (0, -1, -1));
        let described = broker.transactions().coordinator().describe(&[TID.to_string()]);
        let state = described[0].1.as_ref().unwrap();
        assert_eq!(state.producer_epoch, next.1, "version 3 did not bump");
    })
    .await
    .unwrap();
}
