"""Transactions (KIP-98) with an unmodified client, confluent-kafka
(librdkafka): what read_committed and read_uncommitted consumers see of
committed, aborted, open and timed-out transactions; a zombie producer
fenced by a newer one with the same transactional.id; and, on a 3-broker
cluster, a consume-transform-produce loop that must write every input
record exactly once while the transaction coordinator is SIGKILLed and a
second instance takes the first one's place."""
import faulthandler
import os
import sys
import threading
import time

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from bench.kafka import kafka
from conftest import Broker
from test_replication import Cluster, java_hash

# The coordinators look for timed-out transactions twice a second here
# (Kafka's transaction.abort.timed.out.transaction.cleanup.interval.ms).
FAST_ABORT = ["--override", "transaction.abort.timed.out.transaction.cleanup.interval.ms=500"]


@pytest.fixture
def txn_broker(tmp_path, request):
    """gregor's broker or, with GREGOR_TXN_REFERENCE=1, a real Kafka 3.9 —
    run so, these tests check that they expect what Kafka does."""
    if os.environ.get("GREGOR_TXN_REFERENCE"):
        zookeeper = request.getfixturevalue("zookeeper")
        b = kafka.KafkaBroker(str(tmp_path / "kafka"), zookeeper.hosts, overrides={
            "transaction.abort.timed.out.transaction.cleanup.interval.ms": 500}).start()
    else:
        b = Broker(str(tmp_path), args=FAST_ABORT).start()
    yield b
    b.stop()


def create(bootstrap, topic, partitions, replication=1, config=None):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, partitions, replication, config=config or {})])[topic].result(30)


def transactional(bootstrap, txn_id, **extra):
    conf = {"bootstrap.servers": bootstrap, "transactional.id": txn_id, "transaction.timeout.ms": 20000}
    conf.update(extra)
    producer = Producer(conf)
    producer.init_transactions(30)
    return producer


def plain(bootstrap, topic, values, partition=0):
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    for v in values:
        producer.produce(topic, value=v.encode(), partition=partition)
    assert producer.flush(30) == 0


def read(bootstrap, topic, partitions, isolation, timeout=30):
    """Every record value of `topic` a consumer at `isolation` reads to the
    end (its end: the last stable offset for read_committed), in order per
    partition."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"reader-{isolation}",
                         "isolation.level": isolation, "enable.auto.commit": False,
                         "enable.partition.eof": True})
    consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    values = {p: [] for p in range(partitions)}
    at_end = set()
    deadline = time.time() + timeout
    while len(at_end) < partitions and time.time() < deadline:
        m = consumer.poll(0.5)
        if m is None:
            continue
        if m.error():
            assert m.error().code() == KafkaError._PARTITION_EOF, m.error()
            at_end.add(m.partition())
            continue
        values[m.partition()].append(m.value().decode())
    consumer.close()
    assert len(at_end) == partitions, f"{topic}: no end of partition reached within {timeout} s"
    return values


def committed_end(bootstrap, topic, partition):
    """The high offset ListOffsets answers a read_committed client: the
    last stable offset."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "watermarks",
                         "isolation.level": "read_committed"})
    try:
        return consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)[1]
    finally:
        consumer.close()


def test_committed_transactions_are_read_and_aborted_ones_skipped(txn_broker):
    bootstrap = txn_broker.bootstrap
    create(bootstrap, "txn", 2)
    producer = transactional(bootstrap, "visibility")
    for name, commit in (("first", True), ("aborted", False), ("second", True)):
        producer.begin_transaction()
        for p in (0, 1):
            for i in range(10):
                producer.produce("txn", value=f"{name}-{p}-{i}".encode(), partition=p)
        if commit:
            producer.commit_transaction(30)
        else:
            producer.flush(30)  # the records are in the log before the abort
            producer.abort_transaction(30)
    committed = read(bootstrap, "txn", 2, "read_committed")
    uncommitted = read(bootstrap, "txn", 2, "read_uncommitted")
    for p in (0, 1):
        assert committed[p] == [f"{n}-{p}-{i}" for n in ("first", "second") for i in range(10)]
        assert uncommitted[p] == [f"{n}-{p}-{i}" for n in ("first", "aborted", "second") for i in range(10)]
        # Three markers took an offset each after the 30 records.
        assert committed_end(bootstrap, "txn", p) == 33


def test_an_open_transaction_holds_read_committed_consumers_at_its_start(txn_broker):
    bootstrap = txn_broker.bootstrap
    create(bootstrap, "open", 1)
    plain(bootstrap, "open", ["before"])
    producer = transactional(bootstrap, "holder")
    producer.begin_transaction()
    producer.produce("open", value=b"inside", partition=0)
    assert producer.flush(30) == 0
    plain(bootstrap, "open", ["after"])
    assert read(bootstrap, "open", 1, "read_committed") == {0: ["before"]}
    assert read(bootstrap, "open", 1, "read_uncommitted") == {0: ["before", "inside", "after"]}
    assert committed_end(bootstrap, "open", 0) == 1
    producer.commit_transaction(30)
    assert read(bootstrap, "open", 1, "read_committed") == {0: ["before", "inside", "after"]}
    assert committed_end(bootstrap, "open", 0) == 4


def test_a_transaction_left_open_past_its_timeout_is_aborted(txn_broker):
    bootstrap = txn_broker.bootstrap
    create(bootstrap, "stale", 1)
    producer = transactional(bootstrap, "forgetful", **{"transaction.timeout.ms": 2000})
    producer.begin_transaction()
    producer.produce("stale", value=b"abandoned", partition=0)
    assert producer.flush(30) == 0
    plain(bootstrap, "stale", ["later"])
    deadline = time.time() + 30
    while time.time() < deadline:
        if read(bootstrap, "stale", 1, "read_committed") == {0: ["later"]}:
            break
        time.sleep(0.5)
    assert read(bootstrap, "stale", 1, "read_committed") == {0: ["later"]}
    assert read(bootstrap, "stale", 1, "read_uncommitted") == {0: ["abandoned", "later"]}
    # The coordinator bumped the producer's epoch when it aborted: the
    # abandoned producer cannot commit.
    with pytest.raises(KafkaException):
        producer.commit_transaction(10)


def test_a_zombie_is_fenced_by_its_successor(txn_broker):
    bootstrap = txn_broker.bootstrap
    create(bootstrap, "zombies", 1)
    zombie = transactional(bootstrap, "shared-id")
    zombie.begin_transaction()
    zombie.produce("zombies", value=b"from-the-zombie", partition=0)
    assert zombie.flush(30) == 0
    successor = transactional(bootstrap, "shared-id")  # fences the zombie, aborts its transaction
    successor.begin_transaction()
    successor.produce("zombies", value=b"from-the-successor", partition=0)
    successor.commit_transaction(30)
    with pytest.raises(KafkaException) as failure:
        zombie.commit_transaction(10)
    error = failure.value.args[0]
    assert error.fatal() and error.code() == KafkaError._FENCED, error
    assert read(bootstrap, "zombies", 1, "read_committed") == {0: ["from-the-successor"]}


def test_commit_without_a_transaction_is_refused_by_the_client_state(txn_broker):
    producer = transactional(txn_broker.bootstrap, "idle")
    with pytest.raises(KafkaException) as failure:
        producer.commit_transaction(10)
    assert failure.value.args[0].code() == KafkaError._STATE


# --- consume-transform-produce on a 3-broker cluster -----------------------

RECORDS = 100_000
# Errors a group's offsets lookup meets while its coordinator moves.
COORDINATOR_MOVING = (KafkaError.NOT_COORDINATOR, KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
                      KafkaError.COORDINATOR_NOT_AVAILABLE)
PARTITIONS = 3
GROUP = "eos"
TXN_ID = "transformer"


class Transformer(threading.Thread):
    """Kafka's exactly-once loop: read a batch (read_committed), write its
    transform and the consumed positions in one transaction; on an
    abortable error abort and rewind to the committed positions; stop on a
    fatal one (fenced)."""

    def __init__(self, bootstrap, name, pace=0.0):
        super().__init__(name=name, daemon=True)
        self.bootstrap = bootstrap
        # Seconds to rest after each transaction (the first instance is
        # slowed so that work is left when its successor arrives).
        self.pace = pace
        # Cleared: hold the next transaction (with its batch in hand) until set.
        self.gate = threading.Event()
        self.gate.set()
        self.stopping = threading.Event()
        self.fenced = None
        self.failure = None
        self.commits = 0
        self.aborts = 0
        self.ready = threading.Event()

    def run(self):
        try:
            self.loop()
        except Exception as e:  # reported to the test
            self.failure = e

    def rewind(self, consumer):
        assignment = consumer.assignment()
        if assignment:
            for tp in consumer.committed(assignment, timeout=30):
                consumer.seek(TopicPartition(tp.topic, tp.partition, tp.offset if tp.offset >= 0 else 0))

    def loop(self):
        consumer = Consumer({"bootstrap.servers": self.bootstrap, "group.id": GROUP,
                             "isolation.level": "read_committed", "enable.auto.commit": False,
                             "auto.offset.reset": "earliest", "session.timeout.ms": 10000})
        # A frequent metadata refresh works around a librdkafka bug (open in
        # 2.16, confluentinc/librdkafka#5511 and #5456): when the group
        # coordinator's broker dies and drops out of the metadata,
        # send_offsets_to_transaction waits on that decommissioned broker
        # past its own timeout, until some other broker's state changes —
        # here until the metadata brings the restarted broker back.
        producer = Producer({"bootstrap.servers": self.bootstrap, "transactional.id": TXN_ID,
                             "transaction.timeout.ms": 30000, "linger.ms": 5,
                             "topic.metadata.refresh.interval.ms": 1000})
        producer.init_transactions(60)
        consumer.subscribe(["in"])
        self.ready.set()
        try:
            while not self.stopping.is_set():
                batch = [m for m in consumer.consume(500, 0.5) if m.error() is None]
                if not batch:
                    continue
                self.gate.wait()
                producer.begin_transaction()
                for m in batch:
                    while True:
                        try:
                            producer.produce("out", value=m.value(), partition=m.partition())
                            break
                        except BufferError:
                            producer.poll(0.05)
                try:
                    positions = consumer.position(consumer.assignment())
                    producer.send_offsets_to_transaction(positions, consumer.consumer_group_metadata(), 60)
                    producer.commit_transaction(60)
                    self.commits += 1
                    time.sleep(self.pace)
                except KafkaException as e:
                    error = e.args[0]
                    if error.fatal():
                        self.fenced = error
                        return
                    if not error.txn_requires_abort() and not error.retriable():
                        raise
                    producer.abort_transaction(60)
                    self.aborts += 1
                    self.rewind(consumer)
        finally:
            consumer.close()


def wait_until(predicate, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    # Where every thread waits (a client call stuck past its timeout shows).
    faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
    raise AssertionError(f"timed out waiting for {what() if callable(what) else what}")


@pytest.fixture
def txn_cluster(tmp_path):
    """Three gregor brokers on the embedded coordination service or, with
    GREGOR_TXN_REFERENCE=1, three Kafka 3.9 brokers."""
    if os.environ.get("GREGOR_TXN_REFERENCE"):
        cluster = kafka.KafkaCluster(3, str(tmp_path / "kafka"), overrides={
            "transaction.state.log.num.partitions": 3, "offsets.topic.num.partitions": 3,
            "transaction.abort.timed.out.transaction.cleanup.interval.ms": 500})
        yield cluster
        cluster.stop()
        return
    from conftest import Coordination

    coordination = Coordination(str(tmp_path / "coordination"))
    cluster = Cluster(str(tmp_path), ["--coordination", coordination.address,
                                      "--override", "transaction.state.log.num.partitions=3"] + FAST_ABORT)
    yield cluster
    cluster.stop()
    coordination.stop()


def restart_after_crash(broker):
    """Starts a SIGKILLed broker again. Kafka 3.9 refuses to register (and
    exits) while the previous session lives on in ZooKeeper, until
    zookeeper.session.timeout.ms, so retry until it is gone (gregor waits
    for that by itself and starts at the first try)."""
    deadline = time.time() + 60
    while True:
        try:
            return broker.start()
        except RuntimeError:
            if time.time() > deadline:
                raise
            time.sleep(0.5)


def committed_offsets(bootstrap):
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": GROUP})
    try:
        return [tp.offset for tp in consumer.committed([TopicPartition("in", p) for p in range(PARTITIONS)], timeout=30)]
    finally:
        consumer.close()


def test_consume_transform_produce_is_exactly_once_through_a_coordinator_kill_and_a_zombie(txn_cluster):
    cluster = txn_cluster
    bootstrap = cluster.bootstrap
    for topic in ("in", "out"):
        create(bootstrap, topic, PARTITIONS, 3, {"min.insync.replicas": "2"})
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 20})
    for i in range(RECORDS):
        while True:
            try:
                producer.produce("in", value=b"%d" % i, partition=i % PARTITIONS)
                break
            except BufferError:
                producer.poll(0.05)
    assert producer.flush(60) == 0

    def progress():
        try:
            return sum(max(o, 0) for o in committed_offsets(bootstrap))
        except KafkaException as e:
            # The group's coordinator moving (NOT_COORDINATOR, loading):
            # no answer this time, ask again.
            if e.args[0].retriable() or e.args[0].code() in COORDINATOR_MOVING:
                return -1
            raise

    first = Transformer(bootstrap, "first", pace=0.02)
    first.start()
    def state():
        return (f"progress {progress()}, commits {first.commits}, aborts {first.aborts}, "
                f"fenced {first.fenced}, failure {first.failure}")

    wait_until(lambda: progress() >= RECORDS // 4 or first.failure or first.fenced, 120,
               lambda: f"a quarter of the input ({state()})")
    assert first.failure is None and first.fenced is None, state()

    # SIGKILL the transaction coordinator (the leader of the transactional
    # id's __transaction_state partition) and bring it back.
    admin = AdminClient({"bootstrap.servers": bootstrap})
    txn_state = admin.list_topics("__transaction_state", timeout=10).topics["__transaction_state"]
    coordinator = txn_state.partitions[abs(java_hash(TXN_ID)) % 3].leader
    cluster.brokers[coordinator].kill()
    time.sleep(1)
    restart_after_crash(cluster.brokers[coordinator])
    wait_until(lambda: progress() >= RECORDS // 2 or first.failure or first.fenced, 180,
               lambda: f"half of the input after the kill ({state()})")
    assert first.failure is None and first.fenced is None, state()

    # A second instance with the same transactional.id fences the first:
    # the first holds its next transaction, batch in hand, until the second
    # has initialised (then it is a zombie), and tries it then.
    first.gate.clear()
    second = Transformer(bootstrap, "second")
    second.start()
    assert second.ready.wait(60), "the second instance did not initialise"
    first.gate.set()
    first.join(120)
    assert not first.is_alive(), "the zombie kept running"
    assert first.failure is None, first.failure
    assert first.fenced is not None and first.fenced.code() == KafkaError._FENCED, first.fenced
    wait_until(lambda: progress() >= RECORDS or second.failure, 240, "the whole input")
    second.stopping.set()
    second.join(60)
    assert second.failure is None, second.failure

    outputs = read(bootstrap, "out", PARTITIONS, "read_committed", timeout=120)
    values = sorted(int(v) for vs in outputs.values() for v in vs)
    assert len(values) == RECORDS and values == list(range(RECORDS)), (
        f"{len(values)} outputs, {len(set(values))} distinct, for {RECORDS} inputs")
    for p in range(PARTITIONS):
        assert [int(v) % PARTITIONS for v in outputs[p]] == [p] * len(outputs[p])
    assert committed_offsets(bootstrap) == [len([i for i in range(RECORDS) if i % PARTITIONS == p])
                                            for p in range(PARTITIONS)]
    assert first.commits > 0 and second.commits > 0


def test_a_transaction_spans_partitions_whose_brokers_do_not_host_each_other(txn_cluster):
    """Partitions of replication factor 1 on different brokers: the
    transaction coordinator and the group coordinator need not host a
    partition to take it into a transaction or commit its offset — they know
    the cluster's topics (Kafka's metadata cache) — and the markers reach
    every partition's own broker."""
    bootstrap = txn_cluster.bootstrap
    create(bootstrap, "solo", 3, 1)
    create(bootstrap, "solo-out", 3, 1)
    plain(bootstrap, "solo", [f"in-{i}" for i in range(3)], partition=0)
    producer = transactional(bootstrap, "solo-txn")
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "solo-group",
                         "isolation.level": "read_committed", "enable.auto.commit": False})
    consumer.assign([TopicPartition("solo", 0, 0)])
    for round_ in range(3):
        producer.begin_transaction()
        for p in range(3):
            producer.produce("solo-out", value=f"r{round_}-p{p}".encode(), partition=p)
        offsets = [TopicPartition("solo", 0, round_ + 1)]
        producer.send_offsets_to_transaction(offsets, consumer.consumer_group_metadata(), 30)
        producer.commit_transaction(30)
    consumer.close()
    out = read(bootstrap, "solo-out", 3, "read_committed")
    assert out == {p: [f"r{r}-p{p}" for r in range(3)] for p in range(3)}
    checker = Consumer({"bootstrap.servers": bootstrap, "group.id": "solo-group",
                        "isolation.level": "read_committed"})
    try:
        assert [tp.offset for tp in checker.committed([TopicPartition("solo", 0)], timeout=30)] == [3]
    finally:
        checker.close()
