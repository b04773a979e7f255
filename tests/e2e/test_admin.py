"""Admin APIs (issue 19) from the Python clients: DescribeCluster,
DescribeConfigs of a BROKER, the legacy AlterConfigs, OffsetDelete and
DescribeLogDirs, through confluent-kafka's AdminClient and kafka-python's
KafkaAdminClient (which uses the legacy AlterConfigs, OffsetDelete and
DescribeLogDirs that confluent-kafka's Python binding does not expose)."""
import os
import time

import pytest
from confluent_kafka import Consumer, KafkaException, Producer
from confluent_kafka import TopicPartition as CkTopicPartition
from confluent_kafka.admin import AclOperation, AdminClient, ConfigResource, ConfigSource, NewTopic
from kafka import KafkaAdminClient, TopicPartition
from kafka.admin import ConfigResource as KpConfigResource, ConfigResourceType

from conftest import Broker

TIMEOUT = 30


def admin(bootstrap):
    return AdminClient({"bootstrap.servers": bootstrap})


def create(bootstrap, topic, partitions=1, config=None):
    client = admin(bootstrap)  # kept alive until the answer
    client.create_topics([NewTopic(topic, partitions, 1, config=config or {})])[topic].result(TIMEOUT)


def error_name(future):
    try:
        future.result(TIMEOUT)
        return "OK"
    except KafkaException as e:
        return e.args[0].name()


def topic_configs(bootstrap, topic):
    resource = ConfigResource("TOPIC", topic)
    client = admin(bootstrap)
    return client.describe_configs([resource])[resource].result(TIMEOUT)


def test_describe_cluster_names_the_cluster_its_controller_and_brokers(broker):
    client = admin(broker.bootstrap)
    described = client.describe_cluster(include_authorized_operations=True).result(TIMEOUT)
    assert described.cluster_id == "gregor-cluster"
    assert described.controller.id == 0
    assert [(n.id, n.host, n.port) for n in described.nodes] == [(0, "127.0.0.1", broker.port)]
    # No authorizer: every cluster operation Kafka knows is allowed.
    assert set(described.authorized_operations) == {
        AclOperation.CREATE, AclOperation.ALTER, AclOperation.DESCRIBE, AclOperation.CLUSTER_ACTION,
        AclOperation.DESCRIBE_CONFIGS, AclOperation.ALTER_CONFIGS, AclOperation.IDEMPOTENT_WRITE}
    plain = client.describe_cluster().result(TIMEOUT)
    assert plain.authorized_operations is None
    kp = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    try:
        cluster = kp.describe_cluster()
    finally:
        kp.close()
    assert cluster["cluster_id"] == "gregor-cluster" and cluster["controller_id"] == 0, cluster
    assert [(b["broker_id"], b["port"]) for b in cluster["brokers"]] == [(0, broker.port)], cluster


@pytest.fixture
def tuned_broker(tmp_path):
    b = Broker(str(tmp_path), args=["--override", "num.partitions=3", "--override", "broker.rack=r7"]).start()
    yield b
    b.stop()


def test_describe_configs_of_the_broker_lists_its_properties_with_their_source(tuned_broker):
    client = admin(tuned_broker.bootstrap)
    resource = ConfigResource("BROKER", "0")
    entries = client.describe_configs([resource])[resource].result(TIMEOUT)
    assert len(entries) > 60, sorted(entries)
    shown = {k: (e.value, ConfigSource(e.source).name, e.is_read_only) for k, e in entries.items()}
    assert shown["num.partitions"] == ("3", "STATIC_BROKER_CONFIG", True)
    assert shown["broker.rack"] == ("r7", "STATIC_BROKER_CONFIG", True)
    assert shown["log.dirs"][1] == "STATIC_BROKER_CONFIG"  # the test passes --log-dirs
    assert shown["log.segment.bytes"] == ("1073741824", "DEFAULT_CONFIG", True)
    assert shown["min.insync.replicas"] == ("1", "DEFAULT_CONFIG", True)
    assert shown["log.cleanup.policy"] == ("delete", "DEFAULT_CONFIG", True)  # a topic property's broker default
    assert shown["advertised.listeners"][0] is None
    assert list(entries["num.partitions"].synonyms) == ["num.partitions"]


def test_legacy_alter_configs_replaces_a_topics_whole_config(broker):
    create(broker.bootstrap, "legacy", config={"retention.ms": "3600000", "cleanup.policy": "compact"})
    client = admin(broker.bootstrap)
    resource = ConfigResource("TOPIC", "legacy", set_config={"max.message.bytes": "123456"})
    assert error_name(client.alter_configs([resource])[resource]) == "OK"
    entries = topic_configs(broker.bootstrap, "legacy")
    overridden = {k: e.value for k, e in entries.items() if e.source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value}
    assert overridden == {"max.message.bytes": "123456"}, "the settings not named are gone (replace-all)"
    assert entries["cleanup.policy"].value == "delete" and entries["retention.ms"].value == "604800000"
    # Checked as IncrementalAlterConfigs checks: a bad value changes nothing,
    # validate_only neither.
    bad = ConfigResource("TOPIC", "legacy", set_config={"retention.ms": "soon"})
    assert error_name(client.alter_configs([bad])[bad]) == "INVALID_CONFIG"
    dry = ConfigResource("TOPIC", "legacy", set_config={"retention.ms": "5000"})
    assert error_name(client.alter_configs([dry], validate_only=True)[dry]) == "OK"
    dry_bad = ConfigResource("TOPIC", "legacy", set_config={"segment.bytes": "10"})
    assert error_name(client.alter_configs([dry_bad], validate_only=True)[dry_bad]) == "INVALID_CONFIG"
    assert topic_configs(broker.bootstrap, "legacy")["max.message.bytes"].value == "123456"
    assert topic_configs(broker.bootstrap, "legacy")["retention.ms"].value == "604800000"
    missing = ConfigResource("TOPIC", "no-such-topic", set_config={"retention.ms": "5000"})
    assert error_name(client.alter_configs([missing])[missing]) == "UNKNOWN_TOPIC_OR_PART"
    # A static broker property: refused as Kafka 3.9 refuses it.
    static = ConfigResource("BROKER", "0", set_config={"num.partitions": "4"})
    assert error_name(client.alter_configs([static])[static]) == "INVALID_REQUEST"

    # kafka-python's admin, forced to the legacy API (it describes the
    # topic first and sends the other overrides along, knowing they would
    # otherwise be reset).
    kp = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    try:
        result = kp.alter_configs(
            [KpConfigResource(ConfigResourceType.TOPIC, "legacy", configs={"retention.ms": "7000"})],
            incremental=False)
    finally:
        kp.close()
    assert "Error" not in repr(result) or "NoError" in repr(result), result
    entries = topic_configs(broker.bootstrap, "legacy")
    overridden = {k: e.value for k, e in entries.items() if e.source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value}
    assert overridden == {"max.message.bytes": "123456", "retention.ms": "7000"}


def commit(bootstrap, group, offsets):
    """Commits `offsets` ({(topic, partition): offset}) for `group` as a
    consumer that then leaves (the group keeps no members)."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    c.commit(offsets=[CkTopicPartition(t, p, o) for (t, p), o in offsets.items()], asynchronous=False)
    c.close()


def committed(bootstrap, group, partitions):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        got = c.committed([CkTopicPartition(t, p) for t, p in partitions], timeout=TIMEOUT)
    finally:
        c.close()
    return {(tp.topic, tp.partition): tp.offset for tp in got}


def test_offset_delete_removes_offsets_for_good_and_spares_subscribed_topics(broker):
    create(broker.bootstrap, "a", 2)
    create(broker.bootstrap, "b", 1)
    commit(broker.bootstrap, "g", {("a", 0): 5, ("a", 1): 6, ("b", 0): 7})
    kp = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    try:
        result = kp.delete_group_offsets("g", [TopicPartition("a", 0), TopicPartition("b", 0)])
        errors = {(tp.topic, tp.partition): e.__name__ for tp, e in result.items()}
        assert errors == {("a", 0): "NoError", ("b", 0): "NoError"}, result
        everything = [("a", 0), ("a", 1), ("b", 0)]
        assert committed(broker.bootstrap, "g", everything) == {("a", 0): -1001, ("a", 1): 6, ("b", 0): -1001}
        with pytest.raises(Exception, match="GroupIdNotFound|GROUP_ID_NOT_FOUND"):
            kp.delete_group_offsets("nobody", [TopicPartition("a", 1)])

        # A live consumer subscribed to "a": its offsets stay, b's may go.
        commit(broker.bootstrap, "g", {("b", 0): 9})
        live = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "g", "enable.auto.commit": False,
                         "session.timeout.ms": 30000})
        live.subscribe(["a"])
        deadline = time.time() + TIMEOUT
        while not live.assignment() and time.time() < deadline:
            live.poll(0.2)
        try:
            result = kp.delete_group_offsets("g", [TopicPartition("a", 1), TopicPartition("b", 0)])
            errors = {(tp.topic, tp.partition): e.__name__ for tp, e in result.items()}
            assert errors == {("a", 1): "GroupSubscribedToTopicError", ("b", 0): "NoError"}, result
        finally:
            live.close()
    finally:
        kp.close()
    # The deletions are tombstones in __consumer_offsets: a restarted
    # broker (a new coordinator reading the log) agrees.
    broker.stop()
    broker.start()
    assert committed(broker.bootstrap, "g", everything) == {("a", 0): -1001, ("a", 1): 6, ("b", 0): -1001}


def test_describe_log_dirs_lists_each_partition_with_its_size(broker):
    create(broker.bootstrap, "sized", 2)
    producer = Producer({"bootstrap.servers": broker.bootstrap})
    for i in range(100):
        producer.produce("sized", value=b"x" * 100, partition=0)
    producer.flush(TIMEOUT)
    kp = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    try:
        described = kp.describe_log_dirs()
        only_one = kp.describe_log_dirs(topic_partitions={"sized": [1]})
    finally:
        kp.close()
    text = repr(described)
    assert os.path.join(broker.data_dir, "logs") in text, text
    by_broker = described if isinstance(described, list) else [described]
    dirs = [d for entry in by_broker for d in entry.get("log_dirs", entry.get("results", []))]
    assert len(dirs) == 1, described
    log_dir = dirs[0]
    sizes = {(t["name"], p["partition_index"]): p["partition_size"]
             for t in log_dir["topics"] for p in t["partitions"]}
    assert sizes[("sized", 0)] > 100 * 100 and sizes[("sized", 1)] == 0, sizes
    assert all(p["offset_lag"] == 0 and not p["is_future_key"]
               for t in log_dir["topics"] for p in t["partitions"])
    assert log_dir["total_bytes"] >= log_dir["usable_bytes"] > 0, log_dir
    one = [d for entry in (only_one if isinstance(only_one, list) else [only_one])
           for d in entry.get("log_dirs", entry.get("results", []))][0]
    assert [(t["name"], [p["partition_index"] for p in t["partitions"]]) for t in one["topics"]] == [("sized", [1])]
