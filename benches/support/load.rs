//! librdkafka load generators shared by the benches: a producer (plain,
//! idempotent or transactional, per the config given) recording delivery
//! latencies, and a consumer reading one partition through librdkafka's
//! batch queue.

use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use rdkafka::bindings;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

use crate::latency::Latency;

/// Produces `records` records of `size` bytes to `topic` with `config`
/// over librdkafka's defaults (acks, linger, …); with `per_transaction`,
/// the producer is transactional (`config` names its `transactional.id`)
/// and commits every that many records. Records/s and delivery latencies.
pub fn produce(
    bootstrap: &str,
    topic: &str,
    records: usize,
    size: usize,
    config: &[(&str, &str)],
    per_transaction: Option<usize>,
) -> (f64, Histogram<u64>) {
    let mut client = ClientConfig::new();
    client
        .set("bootstrap.servers", bootstrap)
        .set("linger.ms", "5")
        .set("queue.buffering.max.messages", "1000000");
    for (k, v) in config {
        client.set(*k, *v);
    }
    let producer: BaseProducer<Latency> = client.create_with_context(Latency::new()).unwrap();
    if per_transaction.is_some() {
        producer.init_transactions(Duration::from_secs(30)).unwrap();
    }
    let value = vec![b'x'; size];
    let start = Instant::now();
    for i in 0..records {
        if let Some(n) = per_transaction {
            if i % n == 0 {
                if i > 0 {
                    commit(&producer);
                }
                producer.begin_transaction().unwrap();
            }
        }
        let mut record: BaseRecord<(), [u8], Box<Instant>> =
            BaseRecord::with_opaque_to(topic, Box::new(Instant::now())).payload(&value[..]);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((_, back)) => {
                    producer.poll(Duration::from_millis(1));
                    record = back;
                }
            }
        }
        producer.poll(Duration::ZERO);
    }
    if per_transaction.is_some() {
        commit(&producer);
    }
    producer.flush(Duration::from_secs(120)).unwrap();
    let rate = records as f64 / start.elapsed().as_secs_f64();
    let histogram = producer.context().histogram.lock().unwrap().clone();
    (rate, histogram)
}

/// Commits the producer's transaction once its records are delivered.
/// rust-rdkafka's `commit_transaction` flushes first by polling in 100 ms
/// slices, and its `poll` always waits out its whole timeout, so each
/// commit would cost at least 100 ms of client sleep; flushing here with
/// zero-timeout polls and 20 µs naps (`rd_kafka_flush` sends what lingers
/// at once, as librdkafka's own flush does for confluent-kafka) keeps that
/// client artifact out of the measurement.
fn commit(producer: &BaseProducer<Latency>) {
    // SAFETY: a valid producer handle; a zero timeout only starts the flush.
    while unsafe { bindings::rd_kafka_flush(producer.client().native_ptr(), 0) }
        != bindings::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR
    {
        producer.poll(Duration::ZERO);
        std::thread::sleep(Duration::from_micros(20));
    }
    producer.commit_transaction(Duration::from_secs(60)).unwrap();
}

/// Reads `records` records of partition 0 of `topic` from its start with
/// `config` over the bench's consumer settings; bytes/s (the clock starts
/// at the first record) and bytes read.
pub fn consume(bootstrap: &str, topic: &str, records: usize, config: &[(&str, &str)]) -> (f64, u64) {
    let mut client = ClientConfig::new();
    client
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "bench")
        .set("enable.auto.commit", "false")
        .set("fetch.max.bytes", "52428800")
        .set("max.partition.fetch.bytes", "10485760");
    for (k, v) in config {
        client.set(*k, *v);
    }
    let consumer: BaseConsumer = client.create().unwrap();
    let mut assignment = TopicPartitionList::new();
    assignment.add_partition_offset(topic, 0, Offset::Beginning).unwrap();
    consumer.assign(&assignment).unwrap();
    let deadline = Instant::now() + Duration::from_secs(300);
    // The clock starts at the first record: connecting, metadata and the
    // offset lookup take the same time on any broker and are not throughput.
    let mut start = None;
    let (mut n, mut bytes) = (0usize, 0u64);
    // Messages in batches of up to 10 000 from librdkafka's consumer queue
    // (`rd_kafka_consume_batch_queue`, what confluent-kafka's consume(n)
    // calls): one poll per message costs this client more than the broker.
    let queue = unsafe { bindings::rd_kafka_queue_get_consumer(consumer.client().native_ptr()) };
    assert!(!queue.is_null(), "no consumer queue");
    let mut batch = vec![std::ptr::null_mut(); 10_000];
    while n < records && Instant::now() < deadline {
        let got = unsafe { bindings::rd_kafka_consume_batch_queue(queue, 100, batch.as_mut_ptr(), batch.len()) };
        for &message in &batch[..usize::try_from(got).unwrap_or(0)] {
            start.get_or_insert_with(Instant::now);
            // SAFETY: librdkafka handed us these messages; each is destroyed once.
            unsafe {
                assert_eq!(
                    (*message).err,
                    bindings::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR
                );
                n += 1;
                bytes += (*message).len as u64;
                bindings::rd_kafka_message_destroy(message);
            }
        }
    }
    unsafe { bindings::rd_kafka_queue_destroy(queue) };
    assert_eq!(n, records, "consumed everything");
    let elapsed = start.map_or(f64::INFINITY, |s| s.elapsed().as_secs_f64());
    (bytes as f64 / elapsed, bytes)
}
