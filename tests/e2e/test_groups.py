"""Consumer groups with real clients: shares of a topic, rebalances when a
member leaves, committed offsets across broker restarts, cooperative-sticky
and static membership with confluent-kafka, and __consumer_offsets kept
small by the compactor."""
import multiprocessing
import queue
import time


from confluent_kafka import Consumer, Producer, TopicPartition as CkTopicPartition
from confluent_kafka.admin import AdminClient, NewTopic as CkNewTopic
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic

from conftest import Broker, compacted_view

PARTITIONS = 6


def fill(bootstrap, topic, count, start=0):
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    for i in range(start, start + count):
        producer.send(topic, key=b"%d" % i, value=b"%d" % i, partition=i % PARTITIONS)
    producer.flush()
    producer.close()


def create(bootstrap, topic):
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic(topic, num_partitions=PARTITIONS, replication_factor=1)])
    admin.close()


def kp_consumer(bootstrap, topic, group, **extra):
    return KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group, auto_offset_reset="earliest",
                         enable_auto_commit=False, session_timeout_ms=6000, heartbeat_interval_ms=500,
                         max_poll_interval_ms=60000, **extra)


def member_main(bootstrap, topic, group, reports, stopping):
    consumer = kp_consumer(bootstrap, topic, group)
    try:
        while not stopping.is_set():
            got = consumer.poll(timeout_ms=200)
            values = [int(r.value) for records in got.values() for r in records]
            if got:
                consumer.commit()
            reports.put((values, {tp.partition for tp in consumer.assignment()}))
    finally:
        consumer.close()
        reports.put(None)


class Member:
    """A kafka-python group member in a process of its own (as applications
    run them): polls, commits after each poll, reports what it got and
    which partitions it holds."""

    def __init__(self, bootstrap, topic, group):
        context = multiprocessing.get_context("fork")
        self.reports = context.Queue()
        self.stopping = context.Event()
        self.process = context.Process(target=member_main, args=(bootstrap, topic, group, self.reports, self.stopping),
                                       daemon=True)
        self.values = []
        self.assigned = set()

    def start(self):
        self.process.start()

    def update(self):
        while True:
            try:
                report = self.reports.get_nowait()
            except queue.Empty:
                return
            if report is not None:
                values, self.assigned = report
                self.values.extend(values)

    def leave(self):
        self.stopping.set()
        self.process.join(30)
        self.update()


def wait_for(condition, timeout=90, members=()):
    deadline = time.time() + timeout
    while time.time() < deadline:
        for m in members:
            m.update()
        if condition():
            return True
        time.sleep(0.1)
    return False


def test_kafka_python_group_shares_rebalances_and_resumes_after_a_restart(broker):
    create(broker.bootstrap, "shared")
    members = [Member(broker.bootstrap, "shared", "g3") for _ in range(3)]
    for m in members:
        m.start()

    def split_among(group):
        parts = [m.assigned for m in group]
        return all(parts) and sum(map(len, parts)) == PARTITIONS and set().union(*parts) == set(range(PARTITIONS))

    assert wait_for(lambda: split_among(members), members=members), f"no stable split: {[m.assigned for m in members]}"
    fill(broker.bootstrap, "shared", 3000)
    assert wait_for(lambda: sum(len(m.values) for m in members) >= 3000, members=members)
    assert sorted(v for m in members for v in m.values) == list(range(3000)), "each record once across the group"
    assert all(m.values for m in members), "every member got a share"
    # One leaves: the two others take over its partitions and carry on.
    members[2].leave()
    assert wait_for(lambda: split_among(members[:2]), members=members[:2]), \
        f"no rebalance: {[m.assigned for m in members[:2]]}"
    before = [len(m.values) for m in members[:2]]
    fill(broker.bootstrap, "shared", 600, start=3000)
    assert wait_for(lambda: sum(len(m.values) - b for m, b in zip(members[:2], before)) >= 600, members=members[:2])
    later = sorted(v for m, b in zip(members[:2], before) for v in m.values[b:])
    assert later == list(range(3000, 3600)), f"{len(later)} records after the rebalance"
    for m in members[:2]:
        m.leave()
    # Committed offsets survive a restart; a new member resumes after them.
    broker.stop()
    broker.start()
    fill(broker.bootstrap, "shared", 60, start=3600)
    fresh = kp_consumer(broker.bootstrap, "shared", "g3")
    resumed = []
    deadline = time.time() + 60
    while len(resumed) < 60 and time.time() < deadline:
        for records in fresh.poll(timeout_ms=200).values():
            resumed.extend(int(r.value) for r in records)
    committed = {p: fresh.committed(TopicPartition("shared", p)) for p in range(PARTITIONS)}
    fresh.close()
    assert sorted(resumed) == list(range(3600, 3660)), f"resumed with {sorted(resumed)[:5]}…"
    assert sum(committed.values()) == 3600


def ck_consumer(bootstrap, group, **extra):
    config = {"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest",
              "enable.auto.commit": False, "session.timeout.ms": 6000, "heartbeat.interval.ms": 500}
    config.update(extra)
    return Consumer(config)


def drain(consumers, want, timeout=90):
    got = {id(c): [] for c in consumers}
    deadline = time.time() + timeout
    while sum(map(len, got.values())) < want and time.time() < deadline:
        for c in consumers:
            for m in c.consume(500, 0.2):
                assert m.error() is None, m.error()
                got[id(c)].append(int(m.value()))
    return got


def test_confluent_cooperative_sticky_and_static_membership_resume_after_commit(broker):
    bootstrap = broker.bootstrap
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([CkNewTopic("coop", num_partitions=PARTITIONS, replication_factor=1)])["coop"].result(30)
    a = ck_consumer(bootstrap, "ck", **{"partition.assignment.strategy": "cooperative-sticky",
                                        "group.instance.id": "a"})
    b = ck_consumer(bootstrap, "ck", **{"partition.assignment.strategy": "cooperative-sticky",
                                        "group.instance.id": "b"})
    a.subscribe(["coop"])
    b.subscribe(["coop"])
    # Both members in and holding partitions before any record exists.
    deadline = time.time() + 60
    while time.time() < deadline and not (a.assignment() and b.assignment()):
        for c in (a, b):
            assert not c.consume(10, 0.2)
    assert a.assignment() and b.assignment(), "both members hold partitions"
    fill(bootstrap, "coop", 1200)
    got = drain([a, b], 1200)
    values = sorted(v for vs in got.values() for v in vs)
    assert values == list(range(1200)), f"{len(values)} records"
    assert all(got.values()), "both members got a share"
    # DescribeGroups shows each member with its client id and host, as Kafka does.
    described = admin.describe_consumer_groups(["ck"])["ck"].result(30)
    assert sorted(m.group_instance_id for m in described.members) == ["a", "b"]
    assert {m.host for m in described.members} == {"/127.0.0.1"}
    a.commit(asynchronous=False)
    b.commit(asynchronous=False)
    a.close()
    b.close()
    broker.stop()
    broker.start()
    fill(bootstrap, "coop", 120, start=1200)
    # The same application comes back as instance "a" (static members do not
    # leave on close: the group outlives the restart, b times out).
    again = ck_consumer(bootstrap, "ck", **{"partition.assignment.strategy": "cooperative-sticky",
                                            "group.instance.id": "a"})
    again.subscribe(["coop"])
    resumed = drain([again], 120)
    again.close()
    assert sorted(v for vs in resumed.values() for v in vs) == list(range(1200, 1320))


def test_consumer_offsets_are_compacted(tmp_path):
    broker = Broker(str(tmp_path), env={"GREGOR_LOG_CLEANER_BACKOFF_MS": "100",
                                        "GREGOR_OFFSETS_TOPIC_SEGMENT_BYTES": "2048",
                                        "GREGOR_OFFSETS_TOPIC_NUM_PARTITIONS": "1"}).start()
    try:
        producer = Producer({"bootstrap.servers": broker.bootstrap})
        producer.produce("commits", value=b"x")
        producer.flush(30)
        consumer = ck_consumer(broker.bootstrap, "committer")
        consumer.assign([CkTopicPartition("commits", 0, 0)])
        for offset in range(1, 501):
            consumer.commit(offsets=[CkTopicPartition("commits", 0, offset)], asynchronous=False)
        consumer.close()
        records = compacted_view(broker.bootstrap, "__consumer_offsets", 0, below=60)
        assert len(records) < 60, f"{len(records)} commit records left of 500: not compacted"
        # The newest commit is still the one a fetch returns.
        check = ck_consumer(broker.bootstrap, "committer")
        assert check.committed([CkTopicPartition("commits", 0)], timeout=30)[0].offset == 500
        check.close()
    finally:
        broker.stop()
