//! Transaction verification over the wire (KIP-890 part 1) against a
//! broker that leads the data partitions and coordinates the transactional
//! id: a transactional Produce to a partition the transaction added is
//! verified and appended; one to a partition it did not add, or after the
//! transaction ended, is refused as Kafka 3.9 refuses it and writes
//! nothing; TxnOffsetCommit for a group not added likewise; and
//! AddPartitionsToTxn v4/v5 `verify_only` answers the coordinator's view.

mod support;

use std::sync::Arc;

use gregor_broker::Broker;
use kafka_protocol::messages::add_partitions_to_txn_request::{AddPartitionsToTxnTopic, AddPartitionsToTxnTransaction};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use tokio::net::TcpStream;

const TID: &str = "tx";
const INVALID_TXN_STATE: i16 = 48;

fn name(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

async fn call(stream: &mut TcpStream, key: ApiKey, version: i16, request: RequestKind) -> ResponseKind {
    support::call(stream, key, version, &request).await
}

/// InitProducerId for [`TID`]: (producer id, epoch).
/// AddPartitionsToTxn v3 of `topic`-0: its code.
async fn add(stream: &mut TcpStream, producer: (i64, i16), topic: &str) -> i16 {
    let mut request = AddPartitionsToTxnRequest::default();
    request.v3_and_below_transactional_id = TransactionalId(name(TID));
    request.v3_and_below_producer_id = ProducerId(producer.0);
    request.v3_and_below_producer_epoch = producer.1;
    let mut t = AddPartitionsToTxnTopic::default();
    t.name = TopicName(name(topic));
    t.partitions = vec![0];
    request.v3_and_below_topics = vec![t];
    let ResponseKind::AddPartitionsToTxn(r) = call(
        stream,
        ApiKey::AddPartitionsToTxn,
        3,
        RequestKind::AddPartitionsToTxn(request),
    )
    .await
    else {
        panic!("not an AddPartitionsToTxn answer");
    };
    r.results_by_topic_v3_and_below[0].results_by_partition[0].partition_error_code
}

/// AddPartitionsToTxn v`version` from a broker: `verify_only` for t-0 and
/// u-0 at `producer`, each partition's code.
async fn verify(stream: &mut TcpStream, version: i16, producer: (i64, i16)) -> Vec<i16> {
    let mut transaction = AddPartitionsToTxnTransaction::default();
    transaction.transactional_id = TransactionalId(name(TID));
    transaction.producer_id = ProducerId(producer.0);
    transaction.producer_epoch = producer.1;
    transaction.verify_only = true;
    transaction.topics = ["t", "u"]
        .iter()
        .map(|topic| {
            let mut t = AddPartitionsToTxnTopic::default();
            t.name = TopicName(name(topic));
            t.partitions = vec![0];
            t
        })
        .collect();
    let mut request = AddPartitionsToTxnRequest::default();
    request.transactions = vec![transaction];
    let ResponseKind::AddPartitionsToTxn(r) = call(
        stream,
        ApiKey::AddPartitionsToTxn,
        version,
        RequestKind::AddPartitionsToTxn(request),
    )
    .await
    else {
        panic!("not an AddPartitionsToTxn answer");
    };
    assert_eq!((r.error_code, r.results_by_transaction.len()), (0, 1));
    assert_eq!(r.results_by_transaction[0].transactional_id.0.as_str(), TID);
    r.results_by_transaction[0]
        .topic_results
        .iter()
        .flat_map(|t| t.results_by_partition.iter().map(|p| p.partition_error_code))
        .collect()
}

/// Runs `f` on the blocking pool.
async fn blocking<T: Send + 'static>(broker: &Arc<Broker>, f: impl FnOnce(&Broker) -> T + Send + 'static) -> T {
    let broker = broker.clone();
    tokio::task::spawn_blocking(move || f(&broker)).await.unwrap()
}

fn end_offset(broker: &Broker, topic: &str) -> u64 {
    broker.readable_log(topic, 0, None).unwrap().0.end_offset()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactional_produce_is_verified_with_the_coordinator() {
    let running = support::start(gregor_routing::NetworkConfig::default()).await;
    let broker = running.broker.clone();
    blocking(&broker, |b| {
        b.topics().create("u", 1, None, Default::default()).unwrap();
        support::lead(b, "u", 0);
        support::coordinate_transactions(b, TID);
        support::coordinate(b, "g-unadded");
    })
    .await;
    let mut stream = TcpStream::connect(running.addr).await.unwrap();
    let producer = support::init_transactional(&mut stream, TID).await;
    assert_eq!(add(&mut stream, producer, "t").await, 0);
    assert_eq!(
        support::produce_transactional(&mut stream, 3, Some(TID), producer, "t", 0).await,
        (0, 0),
        "an added partition: verified, then appended"
    );
    assert_eq!(
        support::produce_transactional(&mut stream, 3, Some(TID), producer, "t", 1).await,
        (0, 1),
        "the transaction is open there"
    );
    assert_eq!(
        support::produce_transactional(&mut stream, 3, Some(TID), producer, "u", 0).await,
        (INVALID_TXN_STATE, -1),
        "a partition the transaction did not add"
    );
    assert_eq!(
        support::produce_transactional(&mut stream, 11, Some(TID), producer, "u", 0).await,
        (ResponseError::TransactionAbortable.code(), -1),
        "v11 clients know TRANSACTION_ABORTABLE"
    );
    assert_eq!(
        support::produce_transactional(&mut stream, 3, None, producer, "u", 0).await,
        (INVALID_TXN_STATE, -1),
        "no transactional id to verify with"
    );
    let newer = (producer.0, producer.1 + 1);
    assert_eq!(
        support::produce_transactional(&mut stream, 3, Some(TID), newer, "u", 0)
            .await
            .0,
        ResponseError::InvalidProducerEpoch.code(),
        "the coordinator knows another epoch"
    );
    assert_eq!(
        blocking(&broker, |b| end_offset(b, "u")).await,
        0,
        "nothing written to u"
    );

    assert_eq!(verify(&mut stream, 4, producer).await, vec![0, 120]);
    assert_eq!(verify(&mut stream, 5, producer).await, vec![0, 120]);
    assert_eq!(
        verify(&mut stream, 4, newer).await,
        vec![90, 90],
        "PRODUCER_FENCED, as Kafka's coordinator"
    );

    assert_eq!(
        support::commit_txn_offset(&mut stream, 3, TID, "g-unadded", producer).await,
        INVALID_TXN_STATE,
        "a group the transaction did not add"
    );
    assert_eq!(
        support::commit_txn_offset(&mut stream, 3, TID, "g-unadded", newer).await,
        ResponseError::InvalidProducerEpoch.code()
    );
    assert_eq!(
        support::commit_txn_offset(&mut stream, 3, TID, "g-unadded", (producer.0 + 1, producer.1)).await,
        ResponseError::InvalidProducerIdMapping.code()
    );
    running.server.shutdown().await;
}

use kafka_protocol::error::ResponseError;
