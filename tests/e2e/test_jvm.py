"""The JVM ecosystem against gregor: Kafka's Java client (3.9.1 and 4.x) and
Kafka 3.9.1's command-line tools, and the on-disk format both ways —
kafka-dump-log reads gregor's segments, gregor dump-log reads a real Kafka
3.9 broker's; and Kafka Streams (4.x) with exactly_once_v2. Jars from
bench/kafka/fetch.sh; tests/jvm/*.java is compiled with javac at test time
(again only when a source or the jars changed), against both clients, and
tests/jvm/streams/*.java against lib/4 only (Streams 4.x is there)."""
import glob
import json
import os
import re
import shutil
import subprocess
import threading
import time

import pytest

from bench.kafka import kafka
from conftest import GREGOR, ROOT

SOURCES = os.path.join(ROOT, "tests", "jvm")
REASON = kafka.missing(("3.9", "4")) or (None if shutil.which("javac") else "no javac on PATH")
pytestmark = pytest.mark.skipif(REASON is not None, reason=f"JVM tests need Java and the Kafka jars: {REASON}")


def compiled(version, package=""):
    """tests/jvm/<package>/*.java compiled against lib/<version>'s jars; the
    classes' dir."""
    out = os.path.join(SOURCES, "target", version, package)
    stamp = os.path.join(out, ".compiled")
    sources = glob.glob(os.path.join(SOURCES, package, "*.java"))
    inputs = sources + [os.path.join(kafka.LIB[version], ".fetched")]
    if not os.path.exists(stamp) or os.path.getmtime(stamp) < max(map(os.path.getmtime, inputs)):
        shutil.rmtree(out, ignore_errors=True)
        subprocess.run(["javac", "-d", out, "-cp", os.path.join(kafka.LIB[version], "*"), *sources],
                       check=True, capture_output=True, text=True)
        open(stamp, "w").close()
    return out


@pytest.fixture
def kafka_broker(zookeeper, tmp_path):
    """A real Kafka 3.9 broker (ZooKeeper mode) on the conftest's ZooKeeper."""
    b = kafka.KafkaBroker(str(tmp_path / "kafka"), zookeeper.hosts).start()
    yield b
    b.stop()


@pytest.fixture
def server(request):
    """The broker under test: gregor's or, with GREGOR_JVM_REFERENCE=1, a real
    Kafka 3.9 — run so (with --runxfail), these tests check that they expect
    what Kafka does."""
    return request.getfixturevalue("kafka_broker" if os.environ.get("GREGOR_JVM_REFERENCE") else "broker")


def batches(dump):
    """The batch lines of a kafka-dump-log or gregor dump-log output, as dicts."""
    return [dict(re.findall(r"(\w+): (\S+)", line)) for line in dump.splitlines() if line.startswith("baseOffset:")]


def records(dump):
    """(offset, key, payload) of each `| offset:` line of either dump."""
    return [(int(m[1]), m[2], m[3]) for m in re.finditer(r"^\| offset: (\d+) .*?key: (\S+) payload: (\S+)", dump, re.M)]


# The batch fields both dumps print, which must agree.
BATCH_FIELDS = ("baseOffset", "lastOffset", "count", "baseSequence", "lastSequence", "producerId", "producerEpoch",
                "partitionLeaderEpoch", "isTransactional", "isControl", "position", "size", "magic",
                "compresscodec", "crc", "isvalid")


def kafka_dump(path, *flags):
    return kafka.tool("kafka-dump-log", "--files", path, *flags).stdout


def gregor_dump(path):
    return subprocess.run([GREGOR, "dump-log", "--print-records", "--verify", path],
                          check=True, capture_output=True, text=True).stdout


def assert_same_batches(segment):
    """kafka-dump-log and gregor dump-log agree on every batch of `segment`,
    each valid, offsets contiguous; returns the batches and Kafka's dump."""
    dump = kafka_dump(segment, "--deep-iteration", "--print-data-log")
    theirs, ours = batches(dump), batches(gregor_dump(segment))
    assert theirs and all(b["isvalid"] == "true" for b in theirs), theirs[:3]
    assert [{f: b[f] for f in BATCH_FIELDS} for b in ours] == [{f: b[f] for f in BATCH_FIELDS} for b in theirs]
    assert [int(b["baseOffset"]) for b in theirs[1:]] == [int(b["lastOffset"]) + 1 for b in theirs[:-1]]
    return theirs, dump


def java_check(main, *args, version="4", package="", timeout=180):
    """Runs a class of tests/jvm(/<package>) on the Kafka client of
    `version`; its output."""
    return kafka.run(main, *args, version=version, classpath=[compiled(version, package)], timeout=timeout).stdout


def topics(bootstrap, *args):
    return kafka.tool("kafka-topics", "--bootstrap-server", bootstrap, *args).stdout


def produce(bootstrap, topic, lines, *props):
    kafka.tool("kafka-console-producer", "--bootstrap-server", bootstrap, "--topic", topic,
               "--property", "parse.key=true", "--property", "key.separator=:", *props,
               input="".join(f"{line}\n" for line in lines))


# --- Kafka's Java client ---------------------------------------------------

@pytest.mark.parametrize("version", ["3.9", "4"])
def test_java_client_produces_consumes_in_a_classic_group_and_administers(server, version):
    records = 2000
    out = java_check("ClientCheck", server.bootstrap, "orders", records, version=version)
    got = dict(line.split(" ", 1) for line in out.splitlines())
    assert got == {
        "partitions": "3", "replicas": "3",
        "config.retention.ms": "3600000 DYNAMIC_TOPIC_CONFIG",
        "config.max.message.bytes": "2000000 DYNAMIC_TOPIC_CONFIG",
        "config.cleanup.policy": "delete DEFAULT_CONFIG",
        "produced": str(records), "consumed": str(records), "distinct": str(records), "mismatched": "0",
        "assigned": "3", "start-offsets": "0", "end-offsets": str(records),
        "committed-partitions": "3", "committed": str(records),
    }
    # The producer's defaults reached the log: idempotent batches (a
    # producer id and sequences) from the id InitProducerId gave.
    for p in range(3):
        written = batches(gregor_dump(os.path.join(server.data_dir, "logs", f"orders-{p}")))
        assert written and all(b["producerId"] != "-1" and b["baseSequence"] != "-1" for b in written)


@pytest.mark.parametrize("version", ["3.9", "4"])
def test_java_client_transactions(server, version):
    """Commit, abort, read_committed vs read_uncommitted, a consume-
    transform-produce step with sendOffsetsToTransaction, and a zombie
    fenced by its successor (tests/jvm/TransactionCheck.java)."""
    out = java_check("TransactionCheck", server.bootstrap, "payments", version=version)
    got = dict(line.split(" ", 1) for line in out.splitlines())
    committed = [f"{name}-{i}" for name in ("first", "second") for i in range(5)]
    assert got == {
        "read_committed": ",".join(committed),
        "read_uncommitted": "15",
        # 15 records and three markers.
        "committed-end": "18",
        "copied": "10",
        # After the last record copied (second-4 at offset 16).
        "group-committed": "17",
        "output": ",".join(v.upper() for v in committed),
        "zombie": "fenced",
        "output-last": "successor",
        "output-zombies": "0",
    }


@pytest.mark.parametrize("assignor", ["uniform", "range"])
def test_java_consumer_protocol_group(fast_heartbeat_broker, assignor):
    """KIP-848 with Kafka 4's Java consumer (group.protocol=consumer): the
    server-side assignor splits 6 partitions 3/3 when a second member
    joins, never handing one partition to both; both read every record and
    commit with their member epochs; Admin describes a Stable consumer
    group; the second leaves and the first gets everything back
    (tests/jvm/ConsumerProtocolCheck.java)."""
    records = 600
    out = java_check("ConsumerProtocolCheck", fast_heartbeat_broker.bootstrap, f"kip848-{assignor}", records,
                     assignor)
    got = dict(line.split(" ", 1) for line in out.splitlines())
    assert got == {
        "first": "0,1,2,3,4,5", "split": "3 3", "overlaps": "0", "distinct": str(records),
        "type": "Consumer", "state": "Stable", "members": "2", "member-partitions": "3,3",
        "committed": str(records), "after-leave": "0,1,2,3,4,5",
    }, out


STREAMS_OUTPUT = {"upper-wrong": "0", "repartition-purged": "true", "counts-above": "0",
                  "counts-after-restart-above": "0",
                  "internal-topics": "KSTREAM-AGGREGATE-STATE-STORE-0000000002-changelog,by-word-repartition"}


def streams_check(bootstrap, replication, state_dir, records=1000, guarantee="exactly_once_v2"):
    """StreamsCheck's output, checked (see the tests below)."""
    out = java_check("StreamsCheck", bootstrap, "words", records, replication, state_dir, guarantee,
                     package="streams", timeout=420)
    got = dict(line.split(" ", 1) for line in out.splitlines())

    def counts(each):
        return "{" + ", ".join(f"w{i}={each}" for i in range(10)) + "}"

    assert got == dict(STREAMS_OUTPUT, **{
        "words-upper-app-state": "RUNNING", "words-count-app-state": "RUNNING",
        "upper-records": str(records), "upper-distinct": str(records),
        "counts": counts(records // 10), "counts-after-restart": counts(2 * records // 10),
    }), out


def test_kafka_streams_exactly_once_v2(server, tmp_path):
    """Kafka Streams 4.x, processing.guarantee=exactly_once_v2
    (tests/jvm/streams/StreamsCheck.java): a stateless map, then a count by
    value (a repartition topic and a changelog topic created by Streams,
    replication factor 1), stopped, given as much input again and started on
    an empty state dir (its store restored from the changelog). A
    read_committed consumer sees every input mapped once and every count
    exact, never above; Streams purges its repartition topic (DeleteRecords)."""
    streams_check(server.bootstrap, 1, str(tmp_path / "state"))


def test_kafka_streams_at_least_once_word_count(server, tmp_path):
    """The same word count with processing.guarantee=at_least_once (plain
    idempotent producers, offsets committed by the group, no
    transactions): with clean stops nothing is processed twice, so the
    counts are exact here too, and the store is restored from its
    changelog after the restart."""
    streams_check(server.bootstrap, 1, str(tmp_path / "state"), guarantee="at_least_once")


def test_kafka_streams_exactly_once_v2_on_a_cluster(tmp_path):
    """The same on a 3-broker gregor cluster (a real Kafka 3.9 one with
    GREGOR_JVM_REFERENCE=1), every topic with replication factor 3: the
    transaction and group coordinators and the partitions' leaders spread
    over the brokers, markers sent between them."""
    if os.environ.get("GREGOR_JVM_REFERENCE"):
        cluster = kafka.KafkaCluster(3, data_dir=str(tmp_path / "kafka"))
    else:
        from conftest import Coordination
        from test_replication import Cluster
        coordination = Coordination(str(tmp_path / "coordination"))
        cluster = Cluster(str(tmp_path / "gregor"), ["--coordination", coordination.address])
    try:
        streams_check(cluster.bootstrap, 3, str(tmp_path / "state"))
    finally:
        cluster.stop()
        if not os.environ.get("GREGOR_JVM_REFERENCE"):
            coordination.stop()


def test_java_admin_sees_leaders_as_soon_as_create_topics_answers(server):
    assert java_check("TopicsReady", server.bootstrap, 10).split() == ["leaderless", "0"]


# --- Kafka 3.9's command-line tools -----------------------------------------

def test_kafka_topics_create_list_describe(server):
    assert "Created topic cli." in topics(server.bootstrap, "--create", "--topic", "cli", "--partitions", "3",
                                          "--replication-factor", "1", "--config", "retention.ms=3600000")
    assert "cli" in topics(server.bootstrap, "--list").split()
    described = topics(server.bootstrap, "--describe", "--topic", "cli")
    assert re.search(r"Topic: cli\tTopicId: \S+\tPartitionCount: 3\tReplicationFactor: 1\tConfigs: .*"
                     r"retention.ms=3600000", described), described
    partitions = re.findall(r"Partition: (\d+)\tLeader: 0\tReplicas: 0\tIsr: 0", described)
    assert partitions == ["0", "1", "2"], described


def consume(bootstrap, topic, group, *args, **popen):
    """The console consumer reading `topic` from its start in `group`, printing `key:value` lines."""
    command = [kafka.TOOLS["kafka-console-consumer"], "--bootstrap-server", bootstrap, "--topic", topic,
               "--group", group, "--from-beginning", "--property", "print.key=true", "--property",
               "key.separator=:", *args]
    if popen:
        return subprocess.Popen(kafka.java(*command, jvm=kafka.TOOL_JVM), text=True, **popen)
    return kafka.run(*command).stdout.splitlines()


def lag(bootstrap, group):
    """kafka-consumer-groups --describe: the summed CURRENT-OFFSET, LOG-END-OFFSET
    and LAG of the group's partitions, their CONSUMER-IDs, and the output."""
    out = kafka.tool("kafka-consumer-groups", "--bootstrap-server", bootstrap, "--describe", "--group", group).stdout
    rows = re.findall(rf"^{group}\s+\S+\s+\d+\s+(\d+)\s+(\d+)\s+(\d+)\s+(\S+)", out, re.M)
    return [sum(int(r[i]) for r in rows) for i in range(3)], [r[3] for r in rows], out


def test_console_producer_consumer_round_trip_and_group_lag(server):
    topics(server.bootstrap, "--create", "--topic", "lines", "--partitions", "2", "--replication-factor", "1")
    sent = [f"k{i}:line {i}" for i in range(10)]
    produce(server.bootstrap, "lines", sent)
    # The consumer reads them all, commits, and dies without leaving its
    # group, which keeps it as a member until its session times out.
    consumer = consume(server.bootstrap, "lines", "readers", "--consumer-property", "auto.commit.interval.ms=100",
                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    timer = threading.Timer(60, consumer.kill)
    timer.start()
    try:
        assert sorted(consumer.stdout.readline().rstrip("\n") for _ in sent) == sorted(sent)
        deadline = time.time() + 30
        while lag(server.bootstrap, "readers")[0][0] < 10 and time.time() < deadline:
            time.sleep(0.2)
    finally:
        timer.cancel()
        consumer.kill()
        consumer.wait()
    produce(server.bootstrap, "lines", [f"k{i}:later {i}" for i in range(5)])
    offsets, members, out = lag(server.bootstrap, "readers")
    assert offsets == [10, 15, 5] and len(members) == 2 and "-" not in members, out  # current, end, lag


def test_console_producer_reports_each_refused_record(server):
    """KIP-467: a keyless record refused by a compacted topic reaches the
    Java producer's application with the broker's message naming it."""
    topics(server.bootstrap, "--create", "--topic", "keyed", "--partitions", "1", "--replication-factor", "1",
           "--config", "cleanup.policy=compact")
    done = kafka.tool("kafka-console-producer", "--bootstrap-server", server.bootstrap, "--topic", "keyed",
                      input="no key\n", check=False)
    assert ("InvalidRecordException: Compacted topic cannot accept message without key in topic partition "
            "keyed-0\n") in done.stderr, done.stderr[-3000:]


def test_kafka_consumer_groups_describes_the_lag_of_a_group_with_no_members(server):
    topics(server.bootstrap, "--create", "--topic", "lines", "--partitions", "2", "--replication-factor", "1")
    produce(server.bootstrap, "lines", [f"k{i}:line {i}" for i in range(10)])
    assert len(consume(server.bootstrap, "lines", "readers", "--max-messages", "10")) == 10  # then leaves
    produce(server.bootstrap, "lines", [f"k{i}:later {i}" for i in range(5)])
    offsets, members, out = lag(server.bootstrap, "readers")
    assert offsets == [10, 15, 5] and members == ["-", "-"], out


def test_kafka_consumer_groups_describes_a_consumer_protocol_group(fast_heartbeat_broker):
    """kafka-consumer-groups (3.9) on a KIP-848 group of librdkafka
    consumers: lag, members with their partitions, and its type."""
    from confluent_kafka import Consumer

    bootstrap = fast_heartbeat_broker.bootstrap
    topics(bootstrap, "--create", "--topic", "kip848-lines", "--partitions", "2", "--replication-factor", "1")
    produce(bootstrap, "kip848-lines", [f"k{i}:line {i}" for i in range(10)])
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "kip848-readers", "group.protocol": "consumer",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe(["kip848-lines"])
    read, deadline = 0, time.time() + 60
    while read < 10 and time.time() < deadline:
        read += len(consumer.consume(10, 0.2))
    consumer.commit(asynchronous=False)
    try:
        produce(bootstrap, "kip848-lines", [f"k{i}:later {i}" for i in range(3)])
        offsets, members, out = lag(bootstrap, "kip848-readers")
        assert offsets == [10, 13, 3] and len(set(members)) == 1 and "-" not in members, out
        described = kafka.tool("kafka-consumer-groups", "--bootstrap-server", bootstrap, "--describe",
                               "--group", "kip848-readers", "--members").stdout
        assert re.search(r"^kip848-readers\s+\S+\s+/127\.0\.0\.1\s+\S+\s+2\s*$", described, re.M), described
        listed = kafka.tool("kafka-consumer-groups", "--bootstrap-server", bootstrap, "--list", "--type").stdout
        assert re.search(r"^kip848-readers\s+Consumer\s*$", listed, re.M), listed
    finally:
        consumer.close()


def configs(bootstrap, topic, *args):
    return kafka.tool("kafka-configs", "--bootstrap-server", bootstrap, "--entity-type", "topics",
                      "--entity-name", topic, *args).stdout


def test_kafka_configs_describe_and_alter_a_topic(server):
    topics(server.bootstrap, "--create", "--topic", "conf", "--partitions", "1", "--replication-factor", "1",
           "--config", "retention.ms=3600000")
    assert "\n  retention.ms=3600000 sensitive=false " in configs(server.bootstrap, "conf", "--describe")
    assert "Completed updating config for topic conf." in configs(
        server.bootstrap, "conf", "--alter", "--add-config", "cleanup.policy=compact,max.message.bytes=123456")
    described = configs(server.bootstrap, "conf", "--describe")
    assert "cleanup.policy=compact" in described and "max.message.bytes=123456" in described, described
    configs(server.bootstrap, "conf", "--alter", "--delete-config", "cleanup.policy")
    described = configs(server.bootstrap, "conf", "--describe")
    assert "cleanup.policy" not in described and "retention.ms=3600000" in described, described
    every = dict(re.findall(r"^  ([\w.]+)=(\S*) sensitive=false", configs(server.bootstrap, "conf", "--describe",
                                                                       "--all"), re.M))
    assert len(every) == 36  # Kafka 3.9's topic configs, with its defaults
    assert {k: every[k] for k in ("cleanup.policy", "max.message.bytes", "retention.ms", "segment.bytes",
                                  "message.timestamp.type", "min.insync.replicas", "message.format.version")} == {
        "cleanup.policy": "delete", "max.message.bytes": "123456", "retention.ms": "3600000",
        "segment.bytes": "1073741824", "message.timestamp.type": "CreateTime", "min.insync.replicas": "1",
        "message.format.version": "3.0-IV1"}


def test_kafka_configs_shows_synonyms(server):
    topics(server.bootstrap, "--create", "--topic", "conf", "--partitions", "1", "--replication-factor", "1",
           "--config", "retention.ms=3600000")
    described = configs(server.bootstrap, "conf", "--describe", "--all")
    assert "  retention.ms=3600000 sensitive=false synonyms={DYNAMIC_TOPIC_CONFIG:retention.ms=3600000}" in described
    assert "  cleanup.policy=delete sensitive=false synonyms={DEFAULT_CONFIG:log.cleanup.policy=delete}" in described


def test_kafka_get_offsets(server):
    topics(server.bootstrap, "--create", "--topic", "offs", "--partitions", "2", "--replication-factor", "1")
    produce(server.bootstrap, "offs", [f"k{i}:v{i}" for i in range(20)])

    def offsets(*args):
        out = kafka.tool("kafka-get-offsets", "--bootstrap-server", server.bootstrap, "--topic", "offs", *args).stdout
        return {int(p): int(o) for p, o in re.findall(r"^offs:(\d+):(\d+)$", out, re.M)}

    latest = offsets()
    assert sorted(latest) == [0, 1] and sum(latest.values()) == 20
    assert offsets("--time", "earliest") == {0: 0, 1: 0}
    assert offsets("--time", "latest") == latest


def test_kafka_dump_log_reads_gregor_segments(server):
    topics(server.bootstrap, "--create", "--topic", "perf", "--partitions", "1", "--replication-factor", "1")
    for codec in ("none", "lz4"):
        out = kafka.tool("kafka-producer-perf-test", "--topic", "perf", "--num-records", "20000",
                         "--record-size", "100", "--throughput", "-1", "--producer-props",
                         f"bootstrap.servers={server.bootstrap}", f"compression.type={codec}").stdout
        assert "20000 records sent" in out, out
    produce(server.bootstrap, "perf", [f"key{i}:value{i}" for i in range(5)])
    server.stop()  # the segment and its indexes as a clean shutdown leaves them
    segment = os.path.join(server.data_dir, "logs", "perf-0", "00000000000000000000.log")
    written, dump = assert_same_batches(segment)
    assert sum(int(b["count"]) for b in written) == 40005 and written[-1]["lastOffset"] == "40004"
    assert {b["compresscodec"] for b in written} == {"none", "lz4"}
    assert records(dump)[-5:] == [(40000 + i, f"key{i}", f"value{i}") for i in range(5)]
    # The offset and time indexes hold entries, pass the check a Kafka broker
    # makes at startup, and each points at the batch it names.
    indexes = ",".join(segment.replace(".log", suffix) for suffix in (".index", ".timeindex"))
    entries = kafka_dump(indexes)
    assert len(re.findall(r"^offset: \d+ position: \d+$", entries, re.M)) > 100, entries
    assert len(re.findall(r"^timestamp: \d+ offset: \d+$", entries, re.M)) > 100, entries
    assert kafka_dump(indexes, "--index-sanity-check").count("passed sanity check") == 2
    mismatches = [line for line in kafka_dump(indexes, "--verify-index-only").splitlines()
                  if not line.startswith("Dumping ")]
    assert mismatches == []


# --- a real Kafka 3.9 broker's segments, read by gregor ---------------------

def test_gregor_dump_log_reads_kafka_segments(kafka_broker):
    bootstrap = kafka_broker.bootstrap
    topics(bootstrap, "--create", "--topic", "native", "--partitions", "1", "--replication-factor", "1")
    kafka.tool("kafka-producer-perf-test", "--topic", "native", "--num-records", "20000", "--record-size", "100",
               "--throughput", "-1", "--producer-props", f"bootstrap.servers={bootstrap}", "compression.type=zstd")
    produce(bootstrap, "native", [f"key{i}:value{i}" for i in range(5)], "--compression-codec", "gzip")
    kafka_broker.stop()
    partition = kafka_broker.partition_dir("native", 0)
    written, _ = assert_same_batches(os.path.join(partition, "00000000000000000000.log"))
    assert sum(int(b["count"]) for b in written) == 20005
    assert {b["compresscodec"] for b in written} == {"zstd", "gzip"}
    assert records(gregor_dump(partition))[-5:] == [(20000 + i, f"key{i}", f"value{i}") for i in range(5)]


def test_kafka_admin_tools_describe_the_cluster_broker_and_log_dirs(server):
    """kafka-cluster (DescribeCluster), kafka-configs on brokers and broker
    loggers (DescribeConfigs), kafka-log-dirs (DescribeLogDirs)."""
    cluster = kafka.tool("kafka-cluster", "cluster-id", "--bootstrap-server", server.bootstrap).stdout
    assert re.fullmatch(r"Cluster ID: \S+\n", cluster), cluster
    if not os.environ.get("GREGOR_JVM_REFERENCE"):
        assert cluster == "Cluster ID: gregor-cluster\n"
    topics(server.bootstrap, "--create", "--topic", "dirs", "--partitions", "2", "--replication-factor", "1")
    produce(server.bootstrap, "dirs", [f"k{i}:value {i}" for i in range(20)])
    broker_id = "0"
    described = kafka.tool("kafka-configs", "--bootstrap-server", server.bootstrap, "--entity-type", "brokers",
                           "--entity-name", broker_id, "--describe", "--all").stdout
    every = dict(re.findall(r"^  ([\w.]+)=(\S*) sensitive=false synonyms=", described, re.M))
    assert every.get("num.partitions") == "1" and every.get("min.insync.replicas") == "1", described
    assert every.get("log.segment.bytes") == "1073741824", described
    assert re.search(r"^  log\.dirs=\S+ sensitive=false synonyms=\{STATIC_BROKER_CONFIG:log\.dirs=", described, re.M), \
        described
    loggers = kafka.tool("kafka-configs", "--bootstrap-server", server.bootstrap, "--entity-type", "broker-loggers",
                         "--entity-name", broker_id, "--describe").stdout
    assert re.search(r"^  root=(ERROR|WARN|INFO|DEBUG|TRACE|OFF) ", loggers, re.M), loggers
    out = kafka.tool("kafka-log-dirs", "--bootstrap-server", server.bootstrap, "--describe",
                     "--topic-list", "dirs").stdout
    report = json.loads(next(line for line in out.splitlines() if line.startswith("{")))
    [entry] = report["brokers"]
    assert entry["broker"] == 0
    [log_dir] = entry["logDirs"]
    assert log_dir["error"] is None and os.path.isabs(log_dir["logDir"]), log_dir
    sizes = {p["partition"]: p["size"] for p in log_dir["partitions"]}
    assert set(sizes) == {"dirs-0", "dirs-1"} and sum(sizes.values()) > 20 * 10, log_dir
    assert all(p["offsetLag"] == 0 and not p["isFuture"] for p in log_dir["partitions"]), log_dir


def test_kafka_consumer_groups_deletes_offsets(server):
    """kafka-consumer-groups --delete-offsets (OffsetDelete): the group's
    offsets of a topic go; an unknown group is an error."""
    topics(server.bootstrap, "--create", "--topic", "kept", "--partitions", "1", "--replication-factor", "1")
    topics(server.bootstrap, "--create", "--topic", "dropped", "--partitions", "2", "--replication-factor", "1")
    for topic in ("kept", "dropped"):
        produce(server.bootstrap, topic, [f"k{i}:v{i}" for i in range(4)])
        assert len(consume(server.bootstrap, topic, "cleaner", "--max-messages", "4")) == 4
    out = kafka.tool("kafka-consumer-groups", "--bootstrap-server", server.bootstrap, "--delete-offsets",
                     "--group", "cleaner", "--topic", "dropped").stdout
    # (Kafka 3.9 prints the rows without line breaks between them.)
    assert sorted(re.findall(r"dropped\s+(\d+)\s+Successful", out)) == ["0", "1"], out
    described = kafka.tool("kafka-consumer-groups", "--bootstrap-server", server.bootstrap, "--describe",
                           "--group", "cleaner").stdout
    assert re.search(r"^cleaner\s+kept\s+0\s+4\s+4\s+0", described, re.M) and "dropped" not in described, described
    failed = kafka.tool("kafka-consumer-groups", "--bootstrap-server", server.bootstrap, "--delete-offsets",
                        "--group", "nobody", "--topic", "kept", check=False)
    assert "GroupIdNotFoundException" in failed.stdout + failed.stderr, failed


def client_quotas(bootstrap, *args):
    return kafka.tool("kafka-configs", "--bootstrap-server", bootstrap, *args).stdout


def test_kafka_configs_alters_and_describes_client_quotas(server):
    """kafka-configs' quota commands (AlterClientQuotas/DescribeClientQuotas);
    with GREGOR_JVM_REFERENCE=1 the same lines from Kafka 3.9."""
    b = server.bootstrap
    assert "Completed updating config for client app." in client_quotas(
        b, "--alter", "--entity-type", "clients", "--entity-name", "app",
        "--add-config", "producer_byte_rate=1024,consumer_byte_rate=2048")
    client_quotas(b, "--alter", "--entity-type", "users", "--entity-name", "alice", "--entity-type", "clients",
                  "--entity-default", "--add-config", "request_percentage=50.5")
    client_quotas(b, "--alter", "--entity-type", "users", "--entity-default", "--add-config",
                  "producer_byte_rate=4096")
    assert client_quotas(b, "--describe", "--entity-type", "clients", "--entity-name", "app").strip() == \
        "Quota configs for client-id 'app' are consumer_byte_rate=2048.0, producer_byte_rate=1024.0"
    assert client_quotas(b, "--describe", "--entity-type", "users", "--entity-name", "alice", "--entity-type",
                         "clients", "--entity-default").strip() == \
        "Quota configs for user-principal 'alice', the default client-id are request_percentage=50.5"
    assert client_quotas(b, "--describe", "--entity-type", "users", "--entity-default").strip() == \
        "Quota configs for the default user-principal are producer_byte_rate=4096.0"
    every = client_quotas(b, "--describe", "--entity-type", "clients").strip().splitlines()
    assert every == ["Quota configs for client-id 'app' are consumer_byte_rate=2048.0, producer_byte_rate=1024.0"]
    client_quotas(b, "--alter", "--entity-type", "clients", "--entity-name", "app", "--delete-config",
                  "producer_byte_rate,consumer_byte_rate")
    assert client_quotas(b, "--describe", "--entity-type", "clients", "--entity-name", "app").strip() == ""
    refused = kafka.tool("kafka-configs", "--bootstrap-server", b, "--alter", "--entity-type", "clients",
                         "--entity-name", "app", "--add-config", "producer_byte_rate=1.5", check=False)
    assert refused.returncode != 0 and "producer_byte_rate must be a LONG value" in refused.stdout + refused.stderr
