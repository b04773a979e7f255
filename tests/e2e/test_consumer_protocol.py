"""The consumer group protocol of KIP-848 (ConsumerGroupHeartbeat) with
librdkafka (confluent-kafka, group.protocol=consumer): the coordinator's
assignor shares a topic between members, moves partitions when one joins
or leaves without handing one to two members at once, and keeps the group
— members, epochs, assignments — across a coordinator restart (its records
in __consumer_offsets); Kafka's Admin API lists and describes it as a
consumer group. Kafka's Java consumer: tests/e2e/test_jvm.py."""
import os
import socket
import time

from confluent_kafka import Consumer, ConsumerGroupType, KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from conftest import Broker
from consumer_heartbeats import exchange, heartbeat

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


# Kafka's error codes.
INVALID_REQUEST, UNKNOWN_MEMBER_ID, GROUP_ID_NOT_FOUND = 42, 25, 69
FENCED_MEMBER_EPOCH, UNSUPPORTED_ASSIGNOR, INVALID_REGULAR_EXPRESSION = 110, 112, 128
COORDINATOR_ERRORS = (14, 15, 16)


def test_heartbeat_errors_are_kafkas(fast_heartbeat_broker):
    """Refused heartbeats get Kafka 4's error codes (checked against Kafka
    4.4 with GREGOR_JVM_REFERENCE=1)."""
    host, port = fast_heartbeat_broker.bootstrap.split(":")
    admin = AdminClient({"bootstrap.servers": fast_heartbeat_broker.bootstrap})
    admin.create_topics([NewTopic("t848", num_partitions=2, replication_factor=1)])["t848"].result(30)
    # FindCoordinator (through Admin) makes the offsets topic; the group
    # itself is not there yet.
    try:
        describe(admin, "g-errors")
    except KafkaException:
        pass
    with socket.create_connection((host, int(port)), timeout=30) as s:
        join = dict(rebalance_timeout=30000, topics=["t848"], owned=[])
        # The group exists once a member joined (the offsets topic may
        # still be being made: retry).
        deadline = time.time() + 60
        while True:
            error, epoch = exchange(s, heartbeat(1, "g-errors", "m1", 0, **join))
            if error not in COORDINATOR_ERRORS or time.time() > deadline:
                break
            time.sleep(0.2)
        # gregor's first epoch is 1 (Kafka's of 2024); Kafka 4.4 starts at 2.
        assert error == 0 and epoch >= 1
        cases = {
            "empty group id": (heartbeat(2, "", "m2", 0, **join), INVALID_REQUEST),
            "join without a rebalance timeout": (heartbeat(3, "g-errors", "m2", 0, topics=["t848"], owned=[]),
                                                 INVALID_REQUEST),
            "unknown assignor": (heartbeat(4, "g-errors", "m2", 0, assignor="nope", **join), UNSUPPORTED_ASSIGNOR),
            "pattern that does not compile": (heartbeat(5, "g-errors", "m2", 0, regex="(", **join),
                                              INVALID_REGULAR_EXPRESSION),
            "unknown member": (heartbeat(6, "g-errors", "ghost", 1), UNKNOWN_MEMBER_ID),
            "epoch from the future": (heartbeat(7, "g-errors", "m1", 99), FENCED_MEMBER_EPOCH),
            "epoch below -2": (heartbeat(8, "g-errors", "m1", -3), INVALID_REQUEST),
            "v1 without a member id": (heartbeat(9, "g-errors", "", 1), INVALID_REQUEST),
            "static leave without an instance id": (heartbeat(10, "g-errors", "m1", -2), INVALID_REQUEST),
        }
        got = {name: exchange(s, request)[0] for name, (request, _) in cases.items()}
        assert got == {name: code for name, (_, code) in cases.items()}
        # The one intended difference: a heartbeat (epoch > 0) for a group
        # the coordinator does not know is UNKNOWN_MEMBER_ID, so the client
        # rejoins; Kafka answers GROUP_ID_NOT_FOUND, fatal to its client.
        unknown_group = exchange(s, heartbeat(11, "g-none", "m1", 1))[0]
        reference = os.environ.get("GREGOR_JVM_REFERENCE")
        assert unknown_group == (GROUP_ID_NOT_FOUND if reference else UNKNOWN_MEMBER_ID)


def test_librdkafka_pattern_subscription_is_resolved_by_the_coordinator(tmp_path):
    """subscribe(["^orders-.*"]) with the consumer protocol: the pattern goes
    to the coordinator (SubscribedTopicRegex), which assigns the matching
    topics only, and a matching topic created later joins the assignment."""
    broker = Broker(str(tmp_path), env=FAST).start()
    try:
        bootstrap = broker.bootstrap
        admin = AdminClient({"bootstrap.servers": bootstrap})
        for topic in ("orders-eu", "orders-us", "other"):
            admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])[topic].result(30)
        c = consumer(bootstrap, "by-pattern")
        c.subscribe(["^orders-.*"])
        held = lambda: sorted((tp.topic, tp.partition) for tp in c.assignment())  # noqa: E731
        poll_until([c], lambda: len(held()) == 4, [])
        assert held() == [("orders-eu", 0), ("orders-eu", 1), ("orders-us", 0), ("orders-us", 1)]
        admin.create_topics([NewTopic("orders-jp", num_partitions=1, replication_factor=1)])["orders-jp"].result(30)
        poll_until([c], lambda: ("orders-jp", 0) in held(), [])
        assert len(held()) == 5
        c.close()
    finally:
        broker.stop()
