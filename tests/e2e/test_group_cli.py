"""`gregor group …` against a broker, with confluent-kafka consumers as the
group's members: describe (exact lags, the members' hosts — and the same
LAG as Kafka's own kafka-consumer-groups), list with a state filter,
reset-offsets (refused while members are active, a dry run by default,
--execute committing what a consumer then resumes from), delete and
delete-offsets. With GREGOR_JVM_REFERENCE=1 they run against a real Kafka
3.9 instead, to check that they expect what Kafka does."""
import json
import os
import re
import socket
import struct
import subprocess
import time

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from bench.kafka import kafka
from conftest import GREGOR

TOPIC = "orders"
BASE_MS = 1_700_000_000_000  # record i of a partition is stamped BASE_MS + 1000 * i
OFFSET_DELETE = 47


@pytest.fixture
def server(request, tmp_path):
    """The broker under test: gregor's or, with GREGOR_JVM_REFERENCE=1, a real
    Kafka 3.9 (ZooKeeper mode)."""
    if not os.environ.get("GREGOR_JVM_REFERENCE"):
        return request.getfixturevalue("broker")
    if kafka.missing():
        pytest.skip(f"no Kafka to compare with: {kafka.missing()}")
    zookeeper = request.getfixturevalue("zookeeper")
    reference = kafka.KafkaBroker(str(tmp_path / "kafka"), zookeeper.hosts).start()
    request.addfinalizer(reference.stop)
    return reference


def gregor(bootstrap, *args, check=True):
    """`gregor group ARGS` against the broker; its CompletedProcess."""
    done = subprocess.run([GREGOR, "group", "--bootstrap-server", bootstrap, *args], capture_output=True,
                          text=True, timeout=120)
    if check:
        assert done.returncode == 0, f"gregor group {' '.join(args)}: {done.stderr}"
    return done


def gregor_json(bootstrap, *args):
    return json.loads(gregor(bootstrap, *args, "--json").stdout)


def setup_topic(bootstrap, per_partition=(10, 10, 10)):
    """TOPIC with one partition per count, each filled with that many
    records stamped BASE_MS + 1000 * i."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(TOPIC, num_partitions=len(per_partition), replication_factor=1)])[TOPIC].result(30)
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for p, count in enumerate(per_partition):
        for i in range(count):
            producer.produce(TOPIC, value=b"%d-%d" % (p, i), partition=p, timestamp=BASE_MS + 1000 * i)
    assert producer.flush(30) == 0


def member(bootstrap, group, client_id="billing-1", seen=None):
    """A confluent-kafka consumer in `group`, subscribed to TOPIC and holding
    its partitions (the group Stable) when returned; records it read
    meanwhile are appended to `seen`."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "client.id": client_id,
                         "enable.auto.commit": False, "auto.offset.reset": "earliest",
                         "session.timeout.ms": 6000})
    consumer.subscribe([TOPIC])
    deadline = time.time() + 60
    while not consumer.assignment() and time.time() < deadline:
        m = consumer.poll(0.2)
        if m is not None and m.error() is None and seen is not None:
            seen.append(m)
    assert consumer.assignment(), "the member got no partitions within 60 s"
    return consumer


def commit(consumer, offsets):
    consumer.commit(offsets=[TopicPartition(TOPIC, p, o) for p, o in offsets.items()], asynchronous=False)


def committed(bootstrap, group):
    """{partition: committed offset} as `gregor group describe --json` reports it."""
    described = gregor_json(bootstrap, "describe", group)
    return {r["partition"]: r["committed_offset"] for r in described["partitions"]}


def first_offsets(consumer, partitions, seen=(), timeout=30):
    """The offset of the first record `consumer` read (`seen`, then polled)
    from each partition."""
    first = {}
    for m in seen:
        first.setdefault(m.partition(), m.offset())
    deadline = time.time() + timeout
    while not set(partitions) <= set(first) and time.time() < deadline:
        m = consumer.poll(0.2)
        if m is not None and m.error() is None:
            first.setdefault(m.partition(), m.offset())
    return first


def api_supported(bootstrap, api_key):
    """Whether the broker's ApiVersions (v0, asked on a raw socket) lists `api_key`."""
    host, port = bootstrap.split(":")
    with socket.create_connection((host, int(port)), timeout=10) as s:
        client_id = b"e2e"
        body = struct.pack(">hhih", 18, 0, 1, len(client_id)) + client_id
        s.sendall(struct.pack(">i", len(body)) + body)
        size = struct.unpack(">i", s.recv(4, socket.MSG_WAITALL))[0]
        data = s.recv(size, socket.MSG_WAITALL)
    _correlation, error, count = struct.unpack(">ihi", data[:10])
    assert error == 0, f"ApiVersions error {error}"
    keys = [struct.unpack(">hhh", data[10 + 6 * i:16 + 6 * i])[0] for i in range(count)]
    return api_key in keys


def test_describe_reports_exact_lag_hosts_and_members(server):
    setup_topic(server.bootstrap)
    consumer = member(server.bootstrap, "billing")
    try:
        commit(consumer, {0: 4, 1: 10, 2: 7})
        described = gregor_json(server.bootstrap, "describe", "billing")
        assert described["state"] == "Stable" and described["protocol_type"] == "consumer"
        [m] = described["members"]
        assert m["host"] == "/127.0.0.1" and m["client_id"] == "billing-1"
        assert sorted(a["partition"] for a in m["assignment"]) == [0, 1, 2]
        rows = [(r["partition"], r["committed_offset"], r["log_end_offset"], r["lag"], r["host"])
                for r in described["partitions"]]
        assert rows == [(0, 4, 10, 6, "/127.0.0.1"), (1, 10, 10, 0, "/127.0.0.1"), (2, 7, 10, 3, "/127.0.0.1")]
        assert described["total_lag"] == 9
        # The table: Kafka's columns, the same numbers.
        table = gregor(server.bootstrap, "describe", "billing").stdout
        assert "total lag 9" in table
        assert re.search(r"^billing\s+orders\s+0\s+4\s+10\s+6\s+\S+\s+/127\.0\.0\.1\s+billing-1$", table, re.M), table
    finally:
        consumer.close()
    # Unknown groups are an error, as in Kafka's tool.
    missing = gregor(server.bootstrap, "describe", "nobody", check=False)
    assert missing.returncode == 1 and "consumer group nobody does not exist" in missing.stderr


def test_describe_a_consumer_protocol_group(broker):
    """A KIP-848 group (librdkafka, group.protocol=consumer) is described
    through ConsumerGroupDescribe: members, their partitions, the lag."""
    setup_topic(broker.bootstrap)
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "billing-848",
                         "client.id": "billing-848-1", "group.protocol": "consumer",
                         "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    consumer.subscribe([TOPIC])
    try:
        deadline = time.time() + 60
        while len(consumer.assignment()) < 3 and time.time() < deadline:
            consumer.poll(0.2)
        commit(consumer, {0: 4, 1: 10, 2: 7})
        described = gregor_json(broker.bootstrap, "describe", "billing-848")
        assert described["state"] == "Stable" and described["protocol_type"] == "consumer"
        [m] = described["members"]
        assert m["host"] == "/127.0.0.1" and m["client_id"] == "billing-848-1"
        assert sorted(a["partition"] for a in m["assignment"]) == [0, 1, 2]
        assert described["total_lag"] == 9
    finally:
        consumer.close()


@pytest.mark.skipif(kafka.missing() is not None, reason=f"needs Kafka's tools: {kafka.missing()}")
def test_lag_matches_kafka_consumer_groups(server):
    setup_topic(server.bootstrap, (12, 5))
    consumer = member(server.bootstrap, "billing")
    try:
        commit(consumer, {0: 3, 1: 5})
        ours = {r["partition"]: r["lag"] for r in gregor_json(server.bootstrap, "describe", "billing")["partitions"]}
        out = kafka.tool("kafka-consumer-groups", "--bootstrap-server", server.bootstrap, "--describe",
                         "--group", "billing").stdout
        theirs = {int(p): int(lag) for p, lag in
                  re.findall(rf"^billing\s+{TOPIC}\s+(\d+)\s+\d+\s+\d+\s+(\d+)\s+\S+\s+/127\.0\.0\.1", out, re.M)}
        assert ours == theirs == {0: 9, 1: 0}, out
    finally:
        consumer.close()


def test_list_shows_states_and_filters_by_state(server):
    setup_topic(server.bootstrap)
    active = member(server.bootstrap, "active")
    try:
        # A group that only commits (a standalone consumer): Empty.
        standalone = Consumer({"bootstrap.servers": server.bootstrap, "group.id": "parked"})
        standalone.commit(offsets=[TopicPartition(TOPIC, 0, 1)], asynchronous=False)
        standalone.close()
        listed = {g["group"]: (g["state"], g["protocol_type"]) for g in gregor_json(server.bootstrap, "list")}
        assert listed == {"active": ("Stable", "consumer"), "parked": ("Empty", "")}
        empty = gregor_json(server.bootstrap, "list", "--state", "empty")
        assert [g["group"] for g in empty] == ["parked"]
        table = gregor(server.bootstrap, "list").stdout
        assert re.search(r"^active\s+Stable\s+consumer$", table, re.M), table
    finally:
        active.close()
    bad = gregor(server.bootstrap, "list", "--state", "running", check=False)
    assert bad.returncode == 1 and "--state \"running\": expected one of" in bad.stderr


def test_reset_offsets_refused_while_active_dry_run_then_execute(server):
    setup_topic(server.bootstrap)
    consumer = member(server.bootstrap, "billing")
    try:
        commit(consumer, {0: 4, 1: 10, 2: 7})
        refused = gregor(server.bootstrap, "reset-offsets", "billing", "--all-topics", "--to-earliest", "--execute",
                         check=False)
        assert refused.returncode == 1
        assert "can only be reset if the group 'billing' is inactive, but the current state is Stable" in refused.stderr
    finally:
        consumer.close()
    assert committed(server.bootstrap, "billing") == {0: 4, 1: 10, 2: 7}
    # A dry run prints the plan and commits nothing.
    plan = gregor_json(server.bootstrap, "reset-offsets", "billing", "--topic", f"{TOPIC}:0,2", "--shift-by", "-3")
    assert plan["executed"] is False
    assert [(o["partition"], o["previous_offset"], o["new_offset"]) for o in plan["offsets"]] == [(0, 4, 1), (2, 7, 4)]
    assert committed(server.bootstrap, "billing") == {0: 4, 1: 10, 2: 7}
    table = gregor(server.bootstrap, "reset-offsets", "billing", "--topic", f"{TOPIC}:0", "--to-offset", "2")
    assert re.search(r"^billing\s+orders\s+0\s+2$", table.stdout, re.M) and "dry run" in table.stderr
    # --execute commits it; a consumer of the group resumes there.
    gregor(server.bootstrap, "reset-offsets", "billing", "--topic", f"{TOPIC}:0", "--to-offset", "2", "--execute")
    gregor(server.bootstrap, "reset-offsets", "billing", "--topic", f"{TOPIC}:2", "--shift-by", "-5", "--execute")
    assert committed(server.bootstrap, "billing") == {0: 2, 1: 10, 2: 2}
    seen = []
    resumed = member(server.bootstrap, "billing", seen=seen)
    try:
        assert first_offsets(resumed, [0, 2], seen) == {0: 2, 2: 2}
    finally:
        resumed.close()


def test_reset_targets_are_clamped_to_the_log(server):
    setup_topic(server.bootstrap, (10, 6))
    consumer = member(server.bootstrap, "billing")
    commit(consumer, {0: 5, 1: 5})
    consumer.close()

    def plan(*target):
        out = gregor_json(server.bootstrap, "reset-offsets", "billing", "--all-topics", *target)
        return [o["new_offset"] for o in out["offsets"]]

    assert plan("--to-earliest") == [0, 0]
    assert plan("--to-latest") == [10, 6]
    assert plan("--to-offset", "8") == [8, 6]  # past partition 1's end
    assert plan("--shift-by", "-100") == [0, 0]
    assert plan("--shift-by", "3") == [8, 6]
    # The first record at or after the time; none that recent: the log end.
    assert plan("--to-datetime", "2023-11-14T22:13:27.000Z") == [7, 6]  # BASE_MS + 7000 ms
    assert plan("--to-datetime", "2023-11-14T23:13:24+01:00") == [4, 4]  # BASE_MS + 4000 ms
    bad = gregor(server.bootstrap, "reset-offsets", "billing", "--all-topics", "--to-datetime", "yesterday",
                 check=False)
    assert bad.returncode == 1 and "--to-datetime \"yesterday\": expected" in bad.stderr
    unknown = gregor(server.bootstrap, "reset-offsets", "billing", "--topic", "nope", "--to-earliest", check=False)
    assert unknown.returncode == 1 and "topic nope" in unknown.stderr
    assert committed(server.bootstrap, "billing") == {0: 5, 1: 5}, "dry runs commit nothing"


def test_delete_refused_while_active_then_deletes(server):
    setup_topic(server.bootstrap)
    consumer = member(server.bootstrap, "billing")
    try:
        commit(consumer, {0: 1})
        refused = gregor(server.bootstrap, "delete", "billing", check=False)
        assert refused.returncode == 1 and "NonEmptyGroup" in refused.stderr
    finally:
        consumer.close()
    assert gregor_json(server.bootstrap, "delete", "billing") == {"deleted": "billing"}
    assert "billing" not in [g["group"] for g in gregor_json(server.bootstrap, "list")]
    gone = gregor(server.bootstrap, "describe", "billing", check=False)
    assert gone.returncode == 1 and "does not exist" in gone.stderr


def test_delete_offsets(server):
    if not api_supported(server.bootstrap, OFFSET_DELETE):
        pytest.skip("the broker's ApiVersions lacks OffsetDelete (API key 47): served once that branch is merged")
    setup_topic(server.bootstrap)
    consumer = member(server.bootstrap, "billing")
    commit(consumer, {0: 4, 1: 10, 2: 7})
    consumer.close()
    out = gregor_json(server.bootstrap, "delete-offsets", "billing", "--topic", f"{TOPIC}:0,2")
    assert out["partitions"] == [{"topic": TOPIC, "partition": 0, "error": None},
                                 {"topic": TOPIC, "partition": 2, "error": None}]
    assert committed(server.bootstrap, "billing") == {1: 10}


def test_delete_offsets_says_when_the_broker_lacks_offset_delete(server):
    if api_supported(server.bootstrap, OFFSET_DELETE):
        pytest.skip("the broker serves OffsetDelete (test_delete_offsets covers it)")
    setup_topic(server.bootstrap)
    consumer = member(server.bootstrap, "billing")
    commit(consumer, {0: 4})
    consumer.close()
    done = gregor(server.bootstrap, "delete-offsets", "billing", "--topic", TOPIC, check=False)
    assert done.returncode == 1
    assert "does not support OffsetDelete (API key 47)" in done.stderr
