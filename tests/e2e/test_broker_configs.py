"""Dynamic broker configs (issue 19) through Kafka 3.9.1's own kafka-configs,
against gregor or — with GREGOR_JVM_REFERENCE=1 — a real Kafka 3.9 broker
(test_jvm.py's `server` fixture): per broker (`--entity-name 0`) and
cluster-wide (`--entity-default`), described with their sources and
synonyms, applied to an existing topic without a restart; a static
property refused with Kafka's error."""
import glob
import os
import re

import pytest

from bench.kafka import kafka
from test_jvm import REASON, kafka_broker, produce, server, topics  # noqa: F401  (fixtures)

pytestmark = pytest.mark.skipif(REASON is not None, reason=f"JVM tests need Java and the Kafka jars: {REASON}")


def configs(bootstrap, *args, check=True):
    return kafka.tool("kafka-configs", "--bootstrap-server", bootstrap, *args, check=check)


def brokers(bootstrap, *args, check=True):
    return configs(bootstrap, "--entity-type", "brokers", *args, check=check)


def described(out):
    """{name: (value, synonyms)} of a kafka-configs --describe output,
    without STATIC_BROKER_CONFIG synonyms (the reference broker's
    server.properties sets what gregor's test broker leaves at defaults)."""
    def dynamic(synonyms):
        return ", ".join(s for s in synonyms.split(", ") if not s.startswith("STATIC_BROKER_CONFIG:"))
    return {m[1]: (m[2], dynamic(m[3])) for m in re.finditer(
        r"^  ([\w.]+)=(\S*) sensitive=false synonyms=\{(.*)\}$", out, re.M)}


def partition_dir(server, topic, partition):
    if hasattr(server, "partition_dir"):
        return server.partition_dir(topic, partition)
    return os.path.join(server.data_dir, "logs", f"{topic}-{partition}")


def test_kafka_configs_alters_and_describes_per_broker_and_cluster_wide_configs(server):
    b = server.bootstrap
    out = brokers(b, "--entity-name", "0", "--alter", "--add-config",
                  "log.retention.ms=3600000,follower.replication.throttled.rate=1048576").stdout
    assert "Completed updating config for broker 0." in out, out
    out = brokers(b, "--entity-default", "--alter", "--add-config",
                  "log.retention.ms=7200000,log.cleanup.policy=compact,message.max.bytes=2000000").stdout
    assert "Completed updating default config for brokers in the cluster." in out, out

    mine = brokers(b, "--entity-name", "0", "--describe").stdout
    assert mine.startswith("Dynamic configs for broker 0 are:\n"), mine
    assert described(mine) == {
        "log.retention.ms": ("3600000", "DYNAMIC_BROKER_CONFIG:log.retention.ms=3600000, "
                                        "DYNAMIC_DEFAULT_BROKER_CONFIG:log.retention.ms=7200000, "
                                        "DEFAULT_CONFIG:log.retention.hours=168"),
        "follower.replication.throttled.rate": (
            "1048576", "DYNAMIC_BROKER_CONFIG:follower.replication.throttled.rate=1048576")}, mine
    default = brokers(b, "--entity-default", "--describe").stdout
    assert default.startswith("Default configs for brokers in the cluster are:\n"), default
    assert described(default) == {
        "log.retention.ms": ("7200000", "DYNAMIC_DEFAULT_BROKER_CONFIG:log.retention.ms=7200000"),
        "log.cleanup.policy": ("compact", "DYNAMIC_DEFAULT_BROKER_CONFIG:log.cleanup.policy=compact"),
        "message.max.bytes": ("2000000", "DYNAMIC_DEFAULT_BROKER_CONFIG:message.max.bytes=2000000"),
    }, default
    every = described(brokers(b, "--entity-name", "0", "--describe", "--all").stdout)
    assert every["message.max.bytes"] == ("2000000", "DYNAMIC_DEFAULT_BROKER_CONFIG:message.max.bytes=2000000, "
                                                     "DEFAULT_CONFIG:message.max.bytes=1048588")
    assert every["log.cleanup.policy"] == ("compact", "DYNAMIC_DEFAULT_BROKER_CONFIG:log.cleanup.policy=compact, "
                                                      "DEFAULT_CONFIG:log.cleanup.policy=delete")
    assert every["num.partitions"][1].endswith("DEFAULT_CONFIG:num.partitions=1"), every["num.partitions"]

    # A topic without overrides follows them; its own override wins.
    topics(b, "--create", "--topic", "follows", "--partitions", "1", "--replication-factor", "1",
           "--config", "cleanup.policy=delete")
    topic = described(configs(b, "--entity-type", "topics", "--entity-name", "follows", "--describe",
                              "--all").stdout)
    assert topic["retention.ms"] == ("3600000", "DYNAMIC_BROKER_CONFIG:log.retention.ms=3600000, "
                                                "DYNAMIC_DEFAULT_BROKER_CONFIG:log.retention.ms=7200000, "
                                                "DEFAULT_CONFIG:log.retention.hours=168"), topic["retention.ms"]
    assert topic["max.message.bytes"][0] == "2000000"
    assert topic["cleanup.policy"] == ("delete", "DYNAMIC_TOPIC_CONFIG:cleanup.policy=delete, "
                                                 "DYNAMIC_DEFAULT_BROKER_CONFIG:log.cleanup.policy=compact, "
                                                 "DEFAULT_CONFIG:log.cleanup.policy=delete"), topic["cleanup.policy"]

    # Deleting the per-broker value uncovers the cluster-wide one.
    brokers(b, "--entity-name", "0", "--alter", "--delete-config",
            "log.retention.ms,follower.replication.throttled.rate")
    assert described(brokers(b, "--entity-name", "0", "--describe").stdout) == {}
    topic = described(configs(b, "--entity-type", "topics", "--entity-name", "follows", "--describe",
                              "--all").stdout)
    assert topic["retention.ms"][0] == "7200000", topic["retention.ms"]
    brokers(b, "--entity-default", "--alter", "--delete-config",
            "log.retention.ms,log.cleanup.policy,message.max.bytes")
    assert described(brokers(b, "--entity-default", "--describe").stdout) == {}
    topic = described(configs(b, "--entity-type", "topics", "--entity-name", "follows", "--describe",
                              "--all").stdout)
    assert topic["retention.ms"] == ("604800000", ""), topic["retention.ms"]


def test_a_static_broker_property_is_refused_with_kafkas_error(server):
    b = server.bootstrap
    for flags in (["--entity-name", "0"], ["--entity-default"]):
        failed = brokers(b, *flags, "--alter", "--add-config", "num.partitions=3", check=False)
        out = failed.stdout + failed.stderr
        # INVALID_REQUEST (Kafka 3.9's ConfigAdminManager; KAFKA-13609).
        assert failed.returncode != 0 and ("org.apache.kafka.common.errors.InvalidRequestException: "
                                           "Cannot update these configs dynamically: Set(num.partitions)") in out, out
    # Kafka's dynamic retention is log.retention.ms; the hours form is static.
    failed = brokers(b, "--entity-name", "0", "--alter", "--add-config", "log.retention.hours=1", check=False)
    assert "Cannot update these configs dynamically: Set(log.retention.hours)" in failed.stdout + failed.stderr
    failed = brokers(b, "--entity-name", "0", "--alter", "--add-config", "log.segment.bytes=10", check=False)
    assert ("Invalid value 10 for configuration log.segment.bytes: Value must be at least 14"
            in failed.stdout + failed.stderr), failed.stdout + failed.stderr
    assert described(brokers(b, "--entity-name", "0", "--describe").stdout) == {}


def test_a_dynamic_segment_size_rolls_an_existing_topic_without_a_restart(server):
    b = server.bootstrap
    topics(b, "--create", "--topic", "rolls", "--partitions", "1", "--replication-factor", "1")
    produce(b, "rolls", [f"k{i}:{'x' * 200}" for i in range(5)])
    segments = lambda: glob.glob(os.path.join(partition_dir(server, "rolls", 0), "*.log"))  # noqa: E731
    assert len(segments()) == 1
    brokers(b, "--entity-default", "--alter", "--add-config", "log.segment.bytes=1024")
    for _ in range(4):
        produce(b, "rolls", [f"k{i}:{'y' * 100}" for i in range(5)])  # a batch under 1024 bytes
    topic = described(configs(b, "--entity-type", "topics", "--entity-name", "rolls", "--describe",
                              "--all").stdout)
    assert topic["segment.bytes"] == ("1024", "DYNAMIC_DEFAULT_BROKER_CONFIG:log.segment.bytes=1024, "
                                              "DEFAULT_CONFIG:log.segment.bytes=1073741824"), topic["segment.bytes"]
    assert len(segments()) >= 4, segments()
