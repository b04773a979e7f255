"""Unmodified third-party clients against a gregor broker."""
import os
import socket
import subprocess
import time

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic as CkNewTopic
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic

from conftest import compacted_view, consume_all

PER_PARTITION = 10_000


def check_partition_order(messages, partitions):
    by_partition = {p: [] for p in range(partitions)}
    for m in messages:
        by_partition[m.partition()].append(m)
    for p, ms in by_partition.items():
        assert [m.offset() for m in ms] == list(range(len(ms))), f"partition {p} offsets"
        assert [int(m.value().split(b"-")[1]) for m in ms] == list(range(len(ms))), f"partition {p} order"
    return by_partition


@pytest.mark.parametrize("compression", ["none", "gzip", "snappy", "lz4", "zstd"])
def test_confluent_kafka_round_trip_with_each_compression(broker, compression):
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    topic = f"ck-{compression}"
    for f in admin.create_topics([CkNewTopic(topic, num_partitions=3, replication_factor=1)]).values():
        f.result(30)
    producer = Producer({"bootstrap.servers": broker.bootstrap, "compression.type": compression, "linger.ms": 5})
    for p in range(3):
        for i in range(PER_PARTITION):
            producer.produce(topic, key=f"key-{p}-{i}".encode(), value=f"p{p}-{i}".encode(),
                             headers=[("n", str(i).encode()), ("empty", None)], partition=p)
            if i % 1000 == 0:
                producer.poll(0)
    assert producer.flush(60) == 0
    got = consume_all(broker.bootstrap, topic, 3, 3 * PER_PARTITION)
    assert len(got) == 3 * PER_PARTITION
    by_partition = check_partition_order(got, 3)
    m = by_partition[1][1234]
    assert m.key() == b"key-1-1234"
    assert m.headers() == [("n", b"1234"), ("empty", None)]


@pytest.mark.parametrize("compression", [None, "gzip", "snappy", "lz4", "zstd"])
def test_kafka_python_round_trip_with_keys_headers_and_list_offsets(broker, compression):
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    admin.create_topics([NewTopic("kp", num_partitions=3, replication_factor=1)])
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, acks=1, linger_ms=5, compression_type=compression)
    before = int(time.time() * 1000) - 1
    for p in range(3):
        for i in range(PER_PARTITION):
            producer.send("kp", key=f"k{i}".encode(), value=f"p{p}-{i}".encode(), headers=[("h", b"v")], partition=p)
    producer.flush(60)
    consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap, enable_auto_commit=False, consumer_timeout_ms=10_000)
    parts = [TopicPartition("kp", p) for p in range(3)]
    consumer.assign(parts)
    consumer.seek_to_beginning()
    got = {p: [] for p in range(3)}
    for m in consumer:
        got[m.partition].append(m)
        if sum(len(v) for v in got.values()) == 3 * PER_PARTITION:
            break
    for p in range(3):
        assert [m.offset for m in got[p]] == list(range(PER_PARTITION))
        assert got[p][42].key == b"k42" and got[p][42].value == f"p{p}-42".encode()
        assert got[p][42].headers == [("h", b"v")]
    assert consumer.beginning_offsets(parts) == {tp: 0 for tp in parts}
    assert consumer.end_offsets(parts) == {tp: PER_PARTITION for tp in parts}
    by_time = consumer.offsets_for_times({parts[0]: before})
    assert by_time[parts[0]].offset == 0
    future = consumer.offsets_for_times({parts[0]: int(time.time() * 1000) + 60_000})
    assert future[parts[0]] is None


def test_kcat_round_trip_and_metadata(broker):
    lines = "".join(f"line-{i}\n" for i in range(100))
    subprocess.run(["kcat", "-b", broker.bootstrap, "-P", "-t", "kc"], input=lines.encode(), check=True, timeout=30)
    out = subprocess.run(["kcat", "-b", broker.bootstrap, "-C", "-t", "kc", "-o", "beginning", "-e"],
                         capture_output=True, check=True, timeout=30).stdout.decode()
    assert out.splitlines() == [f"line-{i}" for i in range(100)]
    meta = subprocess.run(["kcat", "-b", broker.bootstrap, "-L"], capture_output=True, check=True, timeout=30).stdout.decode()
    assert 'topic "kc" with 1 partitions' in meta
    assert f"broker 0 at {broker.bootstrap}" in meta


def test_nothing_acknowledged_is_lost_across_a_restart(broker):
    producer = Producer({"bootstrap.servers": broker.bootstrap, "acks": "all"})
    acked = []
    for i in range(5000):
        producer.produce("durable", value=b"v%d" % i, on_delivery=lambda e, m: acked.append(m.offset()) if e is None else None)
    assert producer.flush(60) == 0
    assert len(acked) == 5000
    broker.stop()
    broker.start()
    got = consume_all(broker.bootstrap, "durable", 1, 5000)
    assert [m.value() for m in got] == [b"v%d" % i for i in range(5000)]


def raw_connection(broker, payload, half_close=False):
    s = socket.create_connection(("127.0.0.1", broker.port), timeout=10)
    s.sendall(payload)
    if half_close:
        s.shutdown(socket.SHUT_WR)
    try:
        closed = s.recv(1) == b""
    except ConnectionResetError:
        closed = True
    s.close()
    return closed


def test_bad_input_closes_only_that_connection(broker):
    assert raw_connection(broker, b"\x00\x00\x00\x10garbage-garbage!")
    assert raw_connection(broker, b"\x7f\xff\xff\xff" + b"x" * 100)  # a 2 GiB length prefix
    # A truncated request: the broker waits for the rest, then sees the end of the stream.
    assert raw_connection(broker, b"\x00\x00\x00\x08\x00\x03\x00", half_close=True)
    # An unknown API key.
    assert raw_connection(broker, b"\x00\x00\x00\x0a\x03\xe7\x00\x00\x00\x00\x00\x01\xff\xff")
    # A Metadata request claiming 1.8 billion topics in 22 bytes: the codec
    # would pre-allocate for all of them; the broker must survive it.
    body = b"\x00\x03\x00\x04\x00\x00\x00\x02\x00\x00" + b"\x6b\x63\x61\x74" + b"\x00" * 8
    assert raw_connection(broker, len(body).to_bytes(4, "big") + body)
    assert broker.process.poll() is None, "the broker died"
    # A client on another connection keeps working.
    producer = Producer({"bootstrap.servers": broker.bootstrap})
    producer.produce("after-garbage", value=b"still here")
    assert producer.flush(30) == 0
    got = consume_all(broker.bootstrap, "after-garbage", 1, 1)
    assert got[0].value() == b"still here"


def test_admin_configs_and_partitions_survive_a_restart(broker):
    from confluent_kafka.admin import ConfigResource, NewPartitions

    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    topic = CkNewTopic("admin-t", num_partitions=2, replication_factor=1,
                       config={"cleanup.policy": "compact", "retention.ms": "3600000"})
    admin.create_topics([topic])["admin-t"].result(30)
    bad = CkNewTopic("bad-config", num_partitions=1, replication_factor=1, config={"retention.ms": "soon"})
    with pytest.raises(Exception):
        admin.create_topics([bad])["bad-config"].result(30)
    admin.create_partitions([NewPartitions("admin-t", 4)])["admin-t"].result(30)

    def described():
        resource = ConfigResource(ConfigResource.Type.TOPIC, "admin-t")
        return admin.describe_configs([resource])[resource].result(30)

    configs = described()
    assert configs["cleanup.policy"].value == "compact"
    assert configs["retention.ms"].value == "3600000"
    assert configs["segment.bytes"].value == str(1 << 30)
    broker.stop()
    broker.start()
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    configs = described()
    assert configs["cleanup.policy"].value == "compact"
    assert configs["retention.ms"].value == "3600000"
    assert len(admin.list_topics(timeout=30).topics["admin-t"].partitions) == 4
    # A compacted topic refuses a record without a key.
    producer = Producer({"bootstrap.servers": broker.bootstrap})
    errors = []
    producer.produce("admin-t", value=b"no key", partition=0, on_delivery=lambda e, m: errors.append(e))
    producer.flush(30)
    assert errors and errors[0] is not None


def test_list_offsets_by_max_timestamp_and_the_flexible_fetch(broker):
    """ListOffsets v7+ (KIP-734) through confluent-kafka's admin client,
    and the records read back with librdkafka's newest Fetch version."""
    from confluent_kafka import TopicPartition as CkTopicPartition
    from confluent_kafka.admin import OffsetSpec

    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.create_topics([CkNewTopic("maxts", 1, 1)])["maxts"].result(30)
    producer = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 0})
    now = int(time.time() * 1000)
    stamps = [now - 4000, now - 1000, now - 3000, now - 2000]
    for i, ts in enumerate(stamps):
        producer.produce("maxts", value=b"%d" % i, partition=0, timestamp=ts)
        producer.flush(30)  # one batch each
    tp = CkTopicPartition("maxts", 0)
    found = admin.list_offsets({tp: OffsetSpec.max_timestamp()})[tp].result(30)
    assert (found.offset, found.timestamp) == (1, now - 1000)
    assert admin.list_offsets({tp: OffsetSpec.earliest()})[tp].result(30).offset == 0
    assert admin.list_offsets({tp: OffsetSpec.latest()})[tp].result(30).offset == 4
    got = consume_all(broker.bootstrap, "maxts", 1, 4)
    assert [m.value() for m in got] == [b"0", b"1", b"2", b"3"]
    assert [m.timestamp()[1] for m in got] == stamps


# Kafka 3.9's topic-level configs (TopicConfig / LogConfig.configNames()).
KAFKA_39_TOPIC_CONFIGS = {
    "cleanup.policy", "compression.gzip.level", "compression.lz4.level", "compression.type",
    "compression.zstd.level", "delete.retention.ms", "file.delete.delay.ms", "flush.messages", "flush.ms",
    "follower.replication.throttled.replicas", "index.interval.bytes", "leader.replication.throttled.replicas",
    "local.retention.bytes", "local.retention.ms", "max.compaction.lag.ms", "max.message.bytes",
    "message.downconversion.enable", "message.format.version", "message.timestamp.after.max.ms",
    "message.timestamp.before.max.ms", "message.timestamp.difference.max.ms", "message.timestamp.type",
    "min.cleanable.dirty.ratio", "min.compaction.lag.ms", "min.insync.replicas", "preallocate",
    "remote.log.copy.disable", "remote.log.delete.on.disable", "remote.storage.enable", "retention.bytes",
    "retention.ms", "segment.bytes", "segment.index.bytes", "segment.jitter.ms", "segment.ms",
    "unclean.leader.election.enable",
}


def test_every_kafka_topic_config_is_accepted_described_and_checked(broker):
    from confluent_kafka import KafkaError
    from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource

    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    config = {"compression.type": "zstd", "preallocate": "true", "message.timestamp.difference.max.ms": "60000"}
    admin.create_topics([CkNewTopic("configs-t", 1, 1, config=config)])["configs-t"].result(30)
    resource = ConfigResource(ConfigResource.Type.TOPIC, "configs-t")
    described = admin.describe_configs([resource])[resource].result(30)
    assert set(described) == KAFKA_39_TOPIC_CONFIGS
    assert described["compression.type"].value == "zstd"
    assert described["preallocate"].value == "true"
    assert described["compression.zstd.level"].value == "3"
    assert described["min.cleanable.dirty.ratio"].value == "0.5"

    # Unknown names and bad values are refused with INVALID_CONFIG, naming the property.
    for bad in ({"no.such.config": "1"}, {"compression.type": "brotli"}, {"min.insync.replicas": "0"}):
        with pytest.raises(Exception) as refused:
            admin.create_topics([CkNewTopic("configs-bad", 1, 1, config=bad)])["configs-bad"].result(30)
        error = refused.value.args[0]
        assert error.code() == KafkaError.INVALID_CONFIG, error
        assert next(iter(bad)) in error.str(), error

    change = ConfigResource(ConfigResource.Type.TOPIC, "configs-t", incremental_configs=[
        ConfigEntry("compression.type", "lz4", incremental_operation=AlterConfigOpType.SET)])
    admin.incremental_alter_configs([change])[change].result(30)
    assert admin.describe_configs([resource])[resource].result(30)["compression.type"].value == "lz4"


@pytest.mark.parametrize("compression", ["none", "gzip", "snappy", "lz4", "zstd"])
def test_the_broker_compacts_compacted_topics(eager_cleaner_broker, compression):
    broker = eager_cleaner_broker
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    config = {"cleanup.policy": "compact", "segment.bytes": "4096", "min.cleanable.dirty.ratio": "0.01"}
    admin.create_topics([CkNewTopic("compacted", num_partitions=1, replication_factor=1, config=config)])["compacted"].result(30)
    producer = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 5, "compression.type": compression})
    # A record without a key is refused, compressed or not.
    errors = []
    producer.produce("compacted", value=b"no key", on_delivery=lambda e, m: errors.append(e))
    producer.flush(30)
    assert errors and errors[0] is not None, "a keyless record was accepted"
    # Incompressible values keep the active segment small; batches of ~20.
    for i in range(2000):
        producer.produce("compacted", key=b"key-%d" % (i % 5), value=b"value-%06d|" % i + os.urandom(100))
        if i % 20 == 0:
            producer.flush(10)
    producer.produce("compacted", key=b"key-0", value=None)  # a tombstone
    assert producer.flush(30) == 0
    seen = compacted_view(broker.bootstrap, "compacted", 0, below=200)
    assert len(seen) < 200, f"still {len(seen)} records: not compacted"
    latest = {}
    for m in seen:
        latest[m.key()] = m.value() and m.value()[:13]
    assert latest[b"key-0"] is None
    assert {k: v for k, v in latest.items() if k != b"key-0"} == {b"key-%d" % k: b"value-%06d|" % (1995 + k) for k in range(1, 5)}
    offsets = [m.offset() for m in seen]
    assert offsets == sorted(offsets)
