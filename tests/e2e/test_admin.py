"""Admin APIs (issue 19) from the Python clients: DescribeCluster,
DescribeConfigs of a BROKER, dynamic broker configs through
IncrementalAlterConfigs, the legacy AlterConfigs, OffsetDelete and
DescribeLogDirs, through confluent-kafka's AdminClient and kafka-python's
KafkaAdminClient (which uses the legacy AlterConfigs, OffsetDelete and
DescribeLogDirs that confluent-kafka's Python binding does not expose)."""
import json
import os
import re
import subprocess
import time

import pytest
from confluent_kafka import Consumer, KafkaException, Producer
from confluent_kafka import TopicPartition as CkTopicPartition
from confluent_kafka.admin import (AclOperation, AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource,
                                  ConfigSource, NewTopic)
from kafka import KafkaAdminClient, TopicPartition
from kafka.admin import ConfigResource as KpConfigResource, ConfigResourceType

from conftest import GREGOR, Broker

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
    # Dynamic broker configs (the broker-level topic defaults) are not read-only.
    assert shown["log.segment.bytes"] == ("1073741824", "DEFAULT_CONFIG", False)
    assert shown["min.insync.replicas"] == ("1", "DEFAULT_CONFIG", False)
    assert shown["log.cleanup.policy"] == ("delete", "DEFAULT_CONFIG", False)  # a topic property's broker default
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


def alter_broker(client, name, validate_only=False, **ops):
    """IncrementalAlterConfigs of BROKER resource `name`: each keyword
    (dots as double underscores) SET to its value, or DELETEd when None."""
    entries = [ConfigEntry(k.replace("__", "."), v or "",
                           incremental_operation=AlterConfigOpType.DELETE if v is None else AlterConfigOpType.SET)
               for k, v in ops.items()]
    resource = ConfigResource("BROKER", name, incremental_configs=entries)
    return error_name(client.incremental_alter_configs([resource], validate_only=validate_only)[resource])


def alter_by_hand(bootstrap, name, **configs):
    """IncrementalAlterConfigs SET of BROKER resource `name` sent by hand to
    `bootstrap` (neither Python client lets one name the cluster-wide
    defaults, the empty name); the answer's (error code, message)."""
    from kafka.protocol.admin import IncrementalAlterConfigsRequest
    from test_differential import call
    message = IncrementalAlterConfigsRequest[0]
    resource = message.AlterConfigsResource
    request = message(resources=[resource(resource_type=4, resource_name=name, configs=[
        resource.AlterableConfig(name=k.replace("__", "."), config_operation=0, value=v) for k, v in configs.items()])],
        validate_only=False)
    [answer] = call(bootstrap, request)["responses"]
    return answer["error_code"], answer["error_message"] or None


def broker_configs(client, name):
    resource = ConfigResource("BROKER", name)
    entries = client.describe_configs([resource])[resource].result(TIMEOUT)
    return {k: (e.value, ConfigSource(e.source).name, e.is_read_only) for k, e in entries.items()}


def test_incremental_alter_configs_sets_dynamic_broker_configs_that_survive_a_restart(broker):
    client = admin(broker.bootstrap)
    assert alter_broker(client, "0", log__retention__ms="5000", leader__replication__throttled__rate="1000000") == "OK"
    assert alter_by_hand(broker.bootstrap, "", log__segment__bytes="2048", log__retention__ms="9000") == (0, None)
    # Refused as Kafka 3.9 refuses them; nothing changes.
    assert alter_broker(client, "0", num__partitions="4") == "INVALID_REQUEST"
    assert alter_by_hand(broker.bootstrap, "", log__segment__bytes="10") == (
        42, "Invalid value 10 for configuration log.segment.bytes: Value must be at least 14")  # INVALID_REQUEST
    assert alter_broker(client, "0", validate_only=True, log__retention__ms="1") == "OK"
    mine = broker_configs(client, "0")
    assert mine["log.retention.ms"] == ("5000", "DYNAMIC_BROKER_CONFIG", False)
    assert mine["log.segment.bytes"] == ("2048", "DYNAMIC_DEFAULT_BROKER_CONFIG", False)
    assert mine["leader.replication.throttled.rate"] == ("1000000", "DYNAMIC_BROKER_CONFIG", False)
    assert mine["num.partitions"] == ("1", "DEFAULT_CONFIG", True)
    assert "follower.replication.throttled.rate" not in mine
    create(broker.bootstrap, "dyn")
    assert topic_configs(broker.bootstrap, "dyn")["retention.ms"].value == "5000"
    # DELETE uncovers the cluster-wide value.
    assert alter_broker(client, "0", log__retention__ms=None) == "OK"
    assert broker_configs(client, "0")["log.retention.ms"] == ("9000", "DYNAMIC_DEFAULT_BROKER_CONFIG", False)
    assert topic_configs(broker.bootstrap, "dyn")["retention.ms"].value == "9000"
    del client
    broker.stop()
    broker.start()
    client = admin(broker.bootstrap)
    mine = broker_configs(client, "0")
    assert mine["log.segment.bytes"] == ("2048", "DYNAMIC_DEFAULT_BROKER_CONFIG", False)
    assert mine["leader.replication.throttled.rate"] == ("1000000", "DYNAMIC_BROKER_CONFIG", False)
    assert topic_configs(broker.bootstrap, "dyn")["segment.bytes"].value == "2048"


@pytest.mark.parametrize("backend", ["embedded", "zookeeper"])
def test_dynamic_broker_configs_reach_the_brokers_they_are_for(tmp_path, backend):
    """On a 3-broker cluster (embedded coordination or ZooKeeper): the
    cluster-wide default set through broker 0 reaches brokers 1 and 2 (a
    /config/changes notification); broker 1's own config stays its own."""
    from conftest import Coordination, ZooKeeper
    from test_replication import Cluster
    if backend == "embedded":
        coordination = Coordination(str(tmp_path / "coordination"))
        args = ["--coordination", coordination.address]
    else:
        coordination = ZooKeeper(str(tmp_path / "zookeeper"))
        args = ["--zookeeper", coordination.hosts]
    cluster = Cluster(str(tmp_path / "cluster"), args)
    try:
        assert alter_by_hand(cluster.brokers[0].bootstrap, "", log__retention__ms="12345") == (0, None)
        assert alter_by_hand(cluster.brokers[1].bootstrap, "1", log__retention__ms="777") == (0, None)
        # A broker's own configs are altered through that broker.
        assert alter_by_hand(cluster.brokers[0].bootstrap, "1", log__retention__ms="1") == (
            42, "Unexpected broker id, expected 0, but received 1")

        def seen(broker_id):
            return broker_configs(admin(cluster.brokers[broker_id].bootstrap), str(broker_id))["log.retention.ms"]

        deadline = time.time() + 30
        while time.time() < deadline and seen(2)[0] != "12345":
            time.sleep(0.2)
        assert seen(2) == ("12345", "DYNAMIC_DEFAULT_BROKER_CONFIG", False)
        assert seen(1) == ("777", "DYNAMIC_BROKER_CONFIG", False)
        assert seen(0) == ("12345", "DYNAMIC_DEFAULT_BROKER_CONFIG", False)
    finally:
        cluster.stop()
        coordination.stop()


def test_gregor_broker_config_describes_and_alters(broker):
    """`gregor broker config describe|alter` (--json), per broker and
    cluster-wide."""
    def gregor(*args, check=True):
        done = subprocess.run([GREGOR, "broker", "config", *args, "--bootstrap-server", broker.bootstrap],
                              capture_output=True, text=True, timeout=60)
        assert not check or done.returncode == 0, done.stderr
        return done

    gregor("alter", "--broker", "0", "--set", "log.retention.ms=5000", "--set", "log.cleaner.backoff.ms=200")
    gregor("alter", "--default", "--set", "message.max.bytes=2000000")
    mine = {e["name"]: e for e in json.loads(gregor("describe", "--broker", "0", "--json").stdout)}
    assert mine["log.retention.ms"]["value"] == "5000" and mine["log.retention.ms"]["source"] == "DYNAMIC_BROKER_CONFIG"
    assert mine["log.cleaner.backoff.ms"]["synonyms"] == [
        {"source": "DYNAMIC_BROKER_CONFIG", "name": "log.cleaner.backoff.ms", "value": "200"},
        {"source": "DEFAULT_CONFIG", "name": "log.cleaner.backoff.ms", "value": "15000"}]
    assert mine["message.max.bytes"]["source"] == "DYNAMIC_DEFAULT_BROKER_CONFIG"
    assert mine["num.partitions"]["read_only"] and not mine["message.max.bytes"]["read_only"]
    dynamic = json.loads(gregor("describe", "--broker", "0", "--dynamic", "--json").stdout)
    assert sorted(e["name"] for e in dynamic) == ["log.cleaner.backoff.ms", "log.retention.ms", "message.max.bytes"]
    default = json.loads(gregor("describe", "--default", "--json").stdout)
    assert [(e["name"], e["value"], e["source"]) for e in default] == [
        ("message.max.bytes", "2000000", "DYNAMIC_DEFAULT_BROKER_CONFIG")]
    table = gregor("describe", "--default").stdout
    assert re.search(r"^message\.max\.bytes\s+2000000\s+DYNAMIC_DEFAULT_BROKER_CONFIG\s+dynamic", table, re.M), table
    refused = gregor("alter", "--broker", "0", "--set", "num.partitions=3", check=False)
    assert refused.returncode == 1 and "Cannot update these configs dynamically: Set(num.partitions)" in refused.stderr
    gregor("alter", "--default", "--delete", "message.max.bytes")
    assert json.loads(gregor("describe", "--default", "--json").stdout) == []
