"""Fetch from followers (KIP-392) with an unmodified client: three brokers
in racks r0, r1, r2 (`broker.rack`), a topic with replication factor 3,
and a confluent-kafka (librdkafka) consumer whose `client.rack` is the
rack of a broker that follows the partition.

With `replica.selector.class` = RackAwareReplicaSelector the leader sends
the consumer to that follower (`preferred_read_replica`), which serves
it; when the follower is killed the consumer goes back to the leader and
reads on, nothing lost or read twice. A read_committed consumer the
follower serves gets committed records only, up to the follower's last
stable offset. kafka-python keeps incremental fetch sessions (KIP-227)
with both brokers meanwhile. Without a selector the leader serves
everything. Which broker served each fetch is read from
librdkafka's own `debug=fetch` log: every Fetch it sends is logged with
the broker's name (`host:port/<id>`) and the offset asked for.

The same tests run against Kafka 3.9 (`GREGOR_FFF_REFERENCE=1`, with the
jars of bench/kafka/fetch.sh) to show they test Kafka's behaviour."""
import logging
import os
import re
import time

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from bench.kafka import kafka
from conftest import Broker, Coordination

TOPIC = "racked"
RACK_AWARE = "org.apache.kafka.common.replica.RackAwareReplicaSelector"
BATCH = 3_000  # records per phase


class GregorCluster:
    """Three gregor brokers on a shared embedded coordination service,
    broker i in rack r<i>."""

    def __init__(self, root, selector):
        self.coordination = Coordination(os.path.join(root, "coordination"))
        common = [
            "--coordination", self.coordination.address,
            # Dead brokers found (and out of ISRs) within seconds.
            "--override", "zookeeper.session.timeout.ms=3000",
            "--override", "offsets.topic.num.partitions=3",
        ]
        if selector:
            common += ["--override", f"replica.selector.class={selector}"]
        self.brokers = []
        for i in range(3):
            b = Broker(os.path.join(root, f"broker-{i}"),
                       args=["--broker-id", str(i), "--override", f"broker.rack=r{i}"] + common)
            os.makedirs(b.data_dir, exist_ok=True)
            self.brokers.append(b)
            b.start()

    @property
    def bootstrap(self):
        return ",".join(b.bootstrap for b in self.brokers)

    def stop(self):
        for b in self.brokers:
            b.kill()
        self.coordination.stop()


class KafkaReference:
    """Three Kafka 3.9 brokers, broker i in rack r<i>."""

    def __init__(self, root, selector):
        overrides = {"zookeeper.session.timeout.ms": 6000, "offsets.topic.num.partitions": 3}
        if selector:
            overrides["replica.selector.class"] = selector
        self.cluster = kafka.KafkaCluster(3, os.path.join(root, "kafka"), overrides=overrides,
                                          broker_overrides={i: {"broker.rack": f"r{i}"} for i in range(3)})
        self.brokers = self.cluster.brokers

    @property
    def bootstrap(self):
        return self.cluster.bootstrap

    def stop(self):
        self.cluster.stop()


def start_cluster(root, selector):
    if os.environ.get("GREGOR_FFF_REFERENCE"):
        reason = kafka.missing()
        if reason:
            pytest.skip(reason)
        return KafkaReference(root, selector)
    return GregorCluster(root, selector)


@pytest.fixture
def rack_aware_cluster(tmp_path):
    cluster = start_cluster(str(tmp_path), RACK_AWARE)
    yield cluster
    cluster.stop()


@pytest.fixture
def leader_only_cluster(tmp_path):
    cluster = start_cluster(str(tmp_path), None)
    yield cluster
    cluster.stop()


def wait_for(check, what, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            found = check()
            if found:
                return found
        except Exception:  # metadata not there yet
            pass
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def create_topic(cluster):
    """The topic, fully in sync; returns (leader, a follower)."""
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
    admin.create_topics([NewTopic(TOPIC, 1, 3)])[TOPIC].result(30)

    def settled():
        p = admin.list_topics(TOPIC, timeout=10).topics[TOPIC].partitions[0]
        return p if p.leader >= 0 and len(p.isrs) == 3 else None

    p = wait_for(settled, "a leader and a full ISR")
    return p.leader, next(r for r in p.replicas if r != p.leader)


def produce(cluster, first, count):
    producer = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all", "linger.ms": 5,
                         "batch.size": 4096})  # many small batches: many fetches
    for i in range(first, first + count):
        producer.produce(TOPIC, value=b"%08d" % i + b"." * 92)
    assert producer.flush(60) == 0


class FetchLog(logging.Handler):
    """librdkafka's log lines; `fetches()` lists each Fetch it sent for the
    topic as (broker id, offset)."""

    FETCH = re.compile(r"/(\d+): Fetch topic " + TOPIC + r" \[0\] at offset (\d+)")

    def __init__(self):
        super().__init__()
        self.lines = []

    def emit(self, record):
        self.lines.append(record.getMessage())

    def fetches(self, since=0):
        found = map(self.FETCH.search, self.lines[since:])
        return [(int(m.group(1)), int(m.group(2))) for m in found if m]


def rack_consumer(cluster, rack, log, **extra):
    logger = logging.getLogger(f"rdkafka-{id(log)}")
    logger.setLevel(logging.DEBUG)
    logger.addHandler(log)
    consumer = Consumer({
        "bootstrap.servers": cluster.bootstrap,
        "group.id": "fff",
        "enable.auto.commit": False,
        "client.rack": rack,
        "debug": "fetch",
        "logger": logger,
        # Small fetches, little read ahead: the consumer keeps fetching
        # while the test runs, not once for everything.
        "message.max.bytes": 16384,
        "fetch.max.bytes": 16384,
        "max.partition.fetch.bytes": 16384,
        "queued.max.messages.kbytes": 64,
        "fetch.wait.max.ms": 100,
        **extra,
    })
    consumer.assign([TopicPartition(TOPIC, 0, OFFSET_BEGINNING)])
    return consumer


def consume(consumer, values, until, timeout=90):
    """Polls into `values` (the record numbers read, in order) until
    `until` records were read."""
    deadline = time.time() + timeout
    while len(values) < until and time.time() < deadline:
        m = consumer.poll(0.2)
        if m is None:
            continue
        assert m.error() is None, m.error()
        values.append(int(m.value()[:8]))
    assert len(values) >= until, f"read {len(values)} of {until} records"


def test_a_consumer_reads_from_the_follower_in_its_rack_then_from_the_leader_when_it_dies(rack_aware_cluster):
    cluster = rack_aware_cluster
    leader, follower = create_topic(cluster)
    produce(cluster, 0, BATCH)
    log = FetchLog()
    consumer = rack_consumer(cluster, f"r{follower}", log)
    try:
        values = []
        consume(consumer, values, BATCH)
        served = log.fetches()
        # The first fetch goes to the leader, which answers with the
        # preferred read replica; from then on the follower serves.
        at_leader = [offset for broker, offset in served if broker == leader]
        at_follower = [offset for broker, offset in served if broker == follower]
        assert at_leader and max(at_leader) == 0, served
        assert len(at_follower) > 10 and max(at_follower) > BATCH // 2, served
        assert all(broker in (leader, follower) for broker, _ in served), served

        # The follower dies mid-consumption: the consumer goes back to the
        # leader for what is produced next.
        cluster.brokers[follower].kill()
        mark = len(log.lines)
        produce(cluster, BATCH, BATCH)
        consume(consumer, values, 2 * BATCH)
        after = log.fetches(since=mark)
        assert any(b == leader and o > BATCH for b, o in after), after
        # Nothing lost, nothing read twice, in order.
        assert values == list(range(2 * BATCH))
    finally:
        consumer.close()


def test_read_committed_from_the_follower_skips_aborted_and_open_transactions(rack_aware_cluster):
    """The follower keeps the transactions it replicates: a read_committed
    consumer it serves gets committed records only, and none of a
    transaction still open (its last stable offset bounds the read)."""
    cluster = rack_aware_cluster
    leader, follower = create_topic(cluster)
    producer = Producer({"bootstrap.servers": cluster.bootstrap, "transactional.id": "fff-txn"})
    producer.init_transactions(60)
    number = 0
    for outcome in ("commit", "abort", "commit", "open"):
        producer.begin_transaction()
        for _ in range(100):
            producer.produce(TOPIC, value=b"%08d" % number + outcome.encode())
            number += 1
        if outcome == "commit":
            producer.commit_transaction(60)
        elif outcome == "abort":
            producer.abort_transaction(60)
        else:
            assert producer.flush(60) == 0
    log = FetchLog()
    consumer = rack_consumer(cluster, f"r{follower}", log, **{"isolation.level": "read_committed"})
    try:
        values = []
        consume(consumer, values, 200)
        # Nothing past the open transaction's start arrives.
        deadline = time.time() + 3
        while time.time() < deadline:
            m = consumer.poll(0.2)
            assert m is None or m.error() is not None, m.value()
        assert values == list(range(100)) + list(range(200, 300))
        served = log.fetches()
        assert [b for b, _ in served if b == follower] and max(o for b, o in served if b == leader) == 0, served
        producer.commit_transaction(60)
        consume(consumer, values, 300)
        assert values == list(range(100)) + list(range(200, 400))
    finally:
        consumer.close()


def test_without_a_selector_the_leader_serves_everything(leader_only_cluster):
    cluster = leader_only_cluster
    leader, follower = create_topic(cluster)
    produce(cluster, 0, BATCH)
    log = FetchLog()
    consumer = rack_consumer(cluster, f"r{follower}", log)
    try:
        values = []
        consume(consumer, values, BATCH)
        assert values == list(range(BATCH))
        served = log.fetches()
        assert served and {b for b, _ in served} == {leader}, served
    finally:
        consumer.close()


class Lines(logging.Handler):
    def __init__(self):
        super().__init__()
        self.lines = []

    def emit(self, record):
        self.lines.append(record.getMessage())


def test_kafka_python_reads_from_the_follower_in_an_incremental_fetch_session(rack_aware_cluster):
    """kafka-python keeps a fetch session (KIP-227) with each broker it
    fetches from: with the follower it reads from, the session continues
    incrementally while the records arrive."""
    from kafka import KafkaConsumer
    from kafka import TopicPartition as KTopicPartition

    cluster = rack_aware_cluster
    leader, follower = create_topic(cluster)
    produce(cluster, 0, BATCH)
    lines = Lines()
    fetcher_log = logging.getLogger("kafka.consumer.fetcher")
    fetcher_log.setLevel(logging.DEBUG)
    fetcher_log.addHandler(lines)
    consumer = KafkaConsumer(bootstrap_servers=cluster.bootstrap, client_rack=f"r{follower}",
                             enable_auto_commit=False, max_partition_fetch_bytes=16384, fetch_max_bytes=16384)
    try:
        tp = KTopicPartition(TOPIC, 0)
        consumer.assign([tp])
        consumer.seek_to_beginning(tp)
        values = []
        deadline = time.time() + 90
        while len(values) < BATCH and time.time() < deadline:
            for records in consumer.poll(timeout_ms=200).values():
                values += [int(r.value[:8]) for r in records]
        assert values == list(range(BATCH))
        assert f"Updating preferred read replica for partition {tp} to {follower}" in lines.lines
        sent = [int(m.group(1)) for m in map(re.compile(r"^Sending FetchRequest to node (\d+)$").match, lines.lines) if m]
        # kafka-python forgets the preferred replica on every answer that
        # names none — the follower's own answers (-1, as Kafka's) — so
        # it asks the leader again in between, with Kafka 3.9 as here.
        assert sent.count(follower) > 10 and set(sent) == {leader, follower}, sent

        def incremental(node):
            return sum(line.startswith(f"Node {node} sent an incremental fetch response for session")
                       for line in lines.lines)

        # Both sessions continue incrementally: the follower's with the
        # records, the leader's carrying the preferred replica each time
        # (a partition an incremental answer must not leave out).
        assert incremental(follower) > 5 and incremental(leader) > 5, lines.lines[-20:]
    finally:
        consumer.close()
        fetcher_log.removeHandler(lines)


def test_an_unknown_replica_selector_is_refused_at_start(tmp_path):
    if os.environ.get("GREGOR_FFF_REFERENCE"):
        pytest.skip("gregor's own start-up check")
    b = Broker(str(tmp_path), args=["--override", "replica.selector.class=com.example.NearestReplicaSelector"])
    with pytest.raises(RuntimeError) as refused:
        b.start()
    assert "replica.selector.class" in str(refused.value) and "com.example.NearestReplicaSelector" in str(refused.value)
    assert b.process.returncode != 0
