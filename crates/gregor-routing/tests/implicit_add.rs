//! Transactions v2's implicit add over the wire (KIP-890 part 2) against a
//! broker that leads the data partitions and coordinates the transactional
//! id and the group: a transactional Produce v12 to a partition no
//! AddPartitionsToTxn named adds it to the transaction and is appended
//! (Produce v11 is only verified and refused); TxnOffsetCommit v5 adds the
//! group's partition (v4 is only verified, and gets TRANSACTION_ABORTABLE);
//! while the previous transaction's markers are on their way the
//! coordinator's CONCURRENT_TRANSACTIONS reaches a v12 client, a v11 one
//! gets NOT_ENOUGH_REPLICAS; once they are written the next transaction's
//! first batch (at the bumped epoch) is added and appended.

mod support;

use std::sync::Arc;

use gregor_broker::{Broker, TxnMarker};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use tokio::net::TcpStream;

const TID: &str = "tx2";

fn name(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

/// EndTxn v5 (commit) at `producer`: (error code, producer, epoch).
async fn commit(stream: &mut TcpStream, producer: (i64, i16)) -> (i16, i64, i16) {
    let mut request = EndTxnRequest::default();
    request.transactional_id = TransactionalId(name(TID));
    request.producer_id = ProducerId(producer.0);
    request.producer_epoch = producer.1;
    request.committed = true;
    let ResponseKind::EndTxn(r) = support::call(stream, ApiKey::EndTxn, 5, &RequestKind::EndTxn(request)).await else {
        panic!("not an EndTxn answer");
    };
    (r.error_code, r.producer_id.0, r.producer_epoch)
}

/// Runs `f` on the blocking pool.
async fn blocking<T: Send + 'static>(broker: &Arc<Broker>, f: impl FnOnce(&Broker) -> T + Send + 'static) -> T {
    let broker = broker.clone();
    tokio::task::spawn_blocking(move || f(&broker)).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produce_v12_and_txn_offset_commit_v5_add_their_partitions() {
    let running = support::start(gregor_routing::NetworkConfig::default()).await;
    let broker = running.broker.clone();
    let (added_group, other_group) = blocking(&broker, |b| {
        b.topics().create("u", 1, None, Default::default()).unwrap();
        support::lead(b, "u", 0);
        support::coordinate_transactions(b, TID);
        let added = support::coordinate(b, "g5");
        let other = support::coordinate(b, "g4");
        (added, other)
    })
    .await;
    assert_ne!(added_group, other_group, "two __consumer_offsets partitions");
    let mut markers = broker.transactions().take_marker_requests().unwrap();
    let mut stream = TcpStream::connect(running.addr).await.unwrap();
    let producer = support::init_transactional(&mut stream, TID).await;

    assert_eq!(
        support::produce_transactional(&mut stream, 11, Some(TID), producer, "u", 0).await,
        (ResponseError::TransactionAbortable.code(), -1),
        "v11: verified only, and u was never added"
    );
    assert_eq!(
        support::produce_transactional(&mut stream, 12, Some(TID), producer, "u", 0).await,
        (0, 0),
        "v12: added, then appended"
    );
    assert_eq!(
        support::produce_transactional(&mut stream, 12, Some(TID), producer, "u", 1).await,
        (0, 1)
    );
    assert_eq!(
        support::produce_transactional(&mut stream, 11, Some(TID), producer, "t", 0).await,
        (ResponseError::TransactionAbortable.code(), -1),
        "t is not in the transaction"
    );
    assert_eq!(
        support::commit_txn_offset(&mut stream, 4, TID, "g4", producer).await,
        ResponseError::TransactionAbortable.code(),
        "v4: verified only, TRANSACTION_ABORTABLE passed through"
    );
    assert_eq!(
        support::commit_txn_offset(&mut stream, 3, TID, "g4", producer).await,
        ResponseError::InvalidTxnState.code(),
        "v3 does not know TRANSACTION_ABORTABLE"
    );
    assert_eq!(
        support::commit_txn_offset(&mut stream, 5, TID, "g5", producer).await,
        0,
        "v5: added"
    );

    let next = (producer.0, producer.1 + 1);
    assert_eq!(commit(&mut stream, producer).await, (0, next.0, next.1));
    let request = markers.recv().await.unwrap();
    let mut partitions: Vec<String> = request
        .partitions
        .iter()
        .map(|tp| format!("{}-{}", tp.topic, tp.partition))
        .collect();
    partitions.sort();
    assert_eq!(
        partitions,
        vec![format!("__consumer_offsets-{added_group}"), "u-0".to_string()],
        "the implicit adds put both partitions in the transaction"
    );

    // The markers are not written yet: the next transaction waits.
    assert_eq!(
        support::produce_transactional(&mut stream, 12, Some(TID), next, "u", 0)
            .await
            .0,
        ResponseError::ConcurrentTransactions.code(),
        "passed through to v12 clients"
    );
    assert_eq!(
        support::produce_transactional(&mut stream, 11, Some(TID), next, "u", 0)
            .await
            .0,
        ResponseError::NotEnoughReplicas.code(),
        "v11 clients would not retry it"
    );
    // The next transaction's first batch waits in the leader's add (its
    // guard taken) while the markers land and clear that guard: it is
    // taken again and added again, never INVALID_TXN_STATE.
    let addr = running.addr;
    let waiting = tokio::spawn(async move {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        support::produce_transactional(&mut stream, 12, Some(TID), next, "u", 0).await
    });
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let id = request.id;
    blocking(&broker, move |b| {
        let marker = TxnMarker {
            producer_id: next.0,
            producer_epoch: next.1,
            coordinator_epoch: 0,
            commit: true,
        };
        let written = b.write_txn_markers(marker, &request.partitions, 5_000);
        assert!(written.iter().all(Result::is_ok), "{written:?}");
        b.transactions().coordinator().markers_written(id);
    })
    .await;
    let mut first = waiting.await.unwrap();
    if first.0 == ResponseError::ConcurrentTransactions.code() {
        // The markers took longer than the leader's retries: the client's.
        first = support::produce_transactional(&mut stream, 12, Some(TID), next, "u", 0).await;
    }
    assert_eq!(
        first,
        (0, 3),
        "the next transaction's first batch (two records and a marker before it)"
    );
    assert_eq!(
        support::produce_transactional(&mut stream, 12, Some(TID), producer, "u", 2)
            .await
            .0,
        ResponseError::InvalidProducerEpoch.code(),
        "the old epoch is fenced"
    );
    running.server.shutdown().await;
}
