"""The consumer group protocol of KIP-848 (ConsumerGroupHeartbeat) with
librdkafka (confluent-kafka, group.protocol=consumer): the coordinator's
assignor shares a topic between members, moves partitions when one joins
or leaves without handing one to two members at once, and keeps the group
— members, epochs, assignments — across a coordinator restart (its records
in __consumer_offsets); Kafka's Admin API lists and describes it as a
consumer group. Kafka's Java consumer: tests/e2e/test_jvm.py."""
import time

from confluent_kafka import Consumer, ConsumerGroupType, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from conftest import Broker

PARTITIONS = 4
# Members heartbeat every 500 ms (Kafka's default of 5 s makes every
# reassignment step take seconds).
FAST = {"GREGOR_GROUP_CONSUMER_HEARTBEAT_INTERVAL_MS": "500"}


def consumer(bootstrap, group):
    return Consumer({"bootstrap.servers": bootstrap, "group.id": group, "group.protocol": "consumer",
                     "auto.offset.reset": "earliest", "enable.auto.commit": False})


def fill(bootstrap, topic, start, count):
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for i in range(start, start + count):
        producer.produce(topic, key=b"%d" % i, value=b"%d" % i, partition=i % PARTITIONS)
    assert producer.flush(30) == 0


def partitions(c):
    return {tp.partition for tp in c.assignment()}


def caught_up(c):
    """Whether `c` has read to the end of every partition it holds."""
    held = c.assignment()
    positions = c.position(held)
    return all(p.offset >= c.get_watermark_offsets(p, cached=False)[1] for p in positions)


def poll_until(consumers, done, seen, timeout=60):
    """Polls every consumer until `done()`; records read go to `seen`;
    returns how often two members held one partition at once."""
    overlaps = 0
    deadline = time.time() + timeout
    while not done() and time.time() < deadline:
        for c in consumers:
            for m in c.consume(100, 0.1):
                assert m.error() is None, m.error()
                seen.append(int(m.value()))
        held = [partitions(c) for c in consumers]
        overlaps += sum(len(a & b) for i, a in enumerate(held) for b in held[i + 1:])
    assert done(), f"timed out: {[partitions(c) for c in consumers]}, {len(set(seen))} records"
    return overlaps


def describe(admin, group):
    return admin.describe_consumer_groups([group])[group].result(30)


def test_librdkafka_consumer_protocol_shares_moves_and_survives_a_coordinator_restart(tmp_path):
    broker = Broker(str(tmp_path), env=FAST).start()
    try:
        bootstrap = broker.bootstrap
        admin = AdminClient({"bootstrap.servers": bootstrap})
        admin.create_topics([NewTopic("kip848", num_partitions=PARTITIONS, replication_factor=1)])["kip848"].result(30)
        fill(bootstrap, "kip848", 0, 400)
        a, b = consumer(bootstrap, "g848"), consumer(bootstrap, "g848")
        a.subscribe(["kip848"])
        seen = []
        poll_until([a], lambda: len(partitions(a)) == PARTITIONS, seen)
        b.subscribe(["kip848"])
        overlaps = poll_until([a, b], lambda: len(partitions(a)) == len(partitions(b)) == 2
                              and len(set(seen)) == 400 and caught_up(a) and caught_up(b), seen)
        assert overlaps == 0, "a partition was held by both members at once"
        assert set(seen) == set(range(400))
        a.commit(asynchronous=False)
        b.commit(asynchronous=False)

        listed = admin.list_consumer_groups(types={ConsumerGroupType.CONSUMER}).result(30)
        assert [g.group_id for g in listed.valid] == ["g848"]
        group = describe(admin, "g848")
        assert group.type == ConsumerGroupType.CONSUMER
        assert sorted(len(m.assignment.topic_partitions) for m in group.members) == [2, 2]
        held = {m.member_id: sorted(tp.partition for tp in m.assignment.topic_partitions) for m in group.members}

        # The coordinator restarts: it reloads the group from its records,
        # the members carry on with what they hold (no new assignment).
        before = (partitions(a), partitions(b))
        broker.stop()
        broker.start()
        fill(bootstrap, "kip848", 400, 200)
        seen = []
        poll_until([a, b], lambda: len(set(seen)) == 200, seen)
        assert sorted(set(seen)) == list(range(400, 600)), "read from the committed offsets on"
        assert (partitions(a), partitions(b)) == before
        again = describe(admin, "g848")
        assert {m.member_id: sorted(tp.partition for tp in m.assignment.topic_partitions)
                for m in again.members} == held

        # b leaves: a gets every partition back.
        b.close()
        poll_until([a], lambda: len(partitions(a)) == PARTITIONS, seen)
        a.close()
    finally:
        broker.stop()
