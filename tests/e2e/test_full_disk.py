"""A log directory on a full filesystem (a small tmpfs per log directory,
mounted by the test: it needs root). As Kafka does, the first failed write
takes the whole directory offline: its partitions answer
KAFKA_STORAGE_ERROR, the broker's other directories keep serving, the
controller moves leadership to other in-sync replicas, and after a restart
with space the directory is back and its replicas catch up — nothing
acknowledged lost, duplicated or reordered. With every log directory
offline the broker stops."""
import os
import re
import subprocess
import tempfile
import threading
import time

import pytest
from confluent_kafka import KafkaError, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from conftest import GREGOR, Broker, Coordination, consume_all, wait_for

STORAGE_ERROR = 56  # KAFKA_STORAGE_ERROR

def can_mount_tmpfs():
    """Whether this machine lets the test mount a tmpfs: root, and a
    container may still refuse the capability."""
    if os.geteuid() != 0:
        return False
    probe = tempfile.mkdtemp()
    try:
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", probe],
                                 capture_output=True).returncode == 0
        if mounted:
            subprocess.run(["umount", probe], check=False)
        return mounted
    finally:
        os.rmdir(probe)


pytestmark = pytest.mark.skipif(not can_mount_tmpfs(), reason="mounting a tmpfs needs root and the capability")


class Tmpfs:
    """A tmpfs of `size` mounted at `path` (unmounted by `unmount`)."""

    def __init__(self, path, size):
        self.path = path
        os.makedirs(path, exist_ok=True)
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", path], check=True)

    def free(self):
        st = os.statvfs(self.path)
        return st.f_bavail * st.f_frsize

    def fill(self, leave):
        """Writes a filler file until only about `leave` bytes are free."""
        with open(os.path.join(self.path, "filler"), "wb") as f:
            f.write(b"\0" * max(self.free() - leave, 0))

    def unfill(self):
        os.remove(os.path.join(self.path, "filler"))

    def unmount(self):
        subprocess.run(["umount", "-l", self.path], check=False)


@pytest.fixture
def mounts():
    made = []
    yield lambda path, size: made.append(Tmpfs(path, size)) or made[-1]
    for m in made:
        m.unmount()


def metadata(bootstrap, topic):
    """The topic's partitions as Metadata v5 answers them (kafka-python's
    raw request: confluent-kafka does not expose offline_replicas)."""
    from kafka.protocol.metadata import MetadataRequest
    from test_differential import call
    answer = call(bootstrap, MetadataRequest[5](topics=[topic], allow_auto_topic_creation=False))
    [t] = answer["topics"]
    return {p["partition_index"]: {"leader": p["leader_id"], "isr": p["isr_nodes"],
                                   "offline_replicas": p["offline_replicas"]} for p in t["partitions"]}


def describe_log_dirs(bootstrap):
    """{log dir: error code} from DescribeLogDirs."""
    from kafka.protocol.admin import DescribeLogDirsRequest
    from test_differential import call
    answer = call(bootstrap, DescribeLogDirsRequest[1](topics=None))
    return {d["log_dir"]: d["error_code"] for d in answer["results"]}


def produce_raw(bootstrap, topic, partition, value):
    """One Produce request straight to `bootstrap` (whatever Metadata says
    of the leader): the partition's error code."""
    from kafka.protocol.producer.produce import ProduceRequest
    from test_differential import batch, call
    answer = call(bootstrap, ProduceRequest[8](transactional_id=None, acks=-1, timeout_ms=10000, topic_data=[
        (topic, [(partition, batch([(None, value, int(time.time() * 1000))]))])]))
    return answer["responses"][0]["partition_responses"][0]["error_code"]


def leader(bootstrap, topic, partition):
    """The partition's leader as Metadata says (None: not known yet)."""
    try:
        return metadata(bootstrap, topic).get(partition, {}).get("leader")
    except Exception:  # the broker is still starting
        return None


def read_partition(bootstrap, topic, partition, expected, timeout=60):
    """The values of one partition from its start (at least `expected`)."""
    from confluent_kafka import Consumer, TopicPartition
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "check", "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, partition, 0)])
    got, deadline = [], time.time() + timeout
    while len(got) < expected and time.time() < deadline:
        for m in consumer.consume(100, 1.0):
            assert m.error() is None, m.error()
            got.append(m.value())
    consumer.close()
    return got


def produce_one(bootstrap, topic, partition, value):
    """One record, no retries: the broker's own answer (None: acknowledged)."""
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "retries": 0,
                         "enable.idempotence": False, "message.timeout.ms": 10000})
    outcome = []
    producer.produce(topic, value=value, partition=partition, on_delivery=lambda err, msg: outcome.append(err))
    producer.flush(15)
    assert outcome, "no delivery report"
    return outcome[0]


def test_a_full_log_dir_goes_offline_and_the_other_keeps_serving(tmp_path, mounts):
    data = str(tmp_path)
    small = mounts(os.path.join(data, "small"), "4m")
    # The broker's own coordination store lives in the first directory.
    broker = Broker(data, log_dirs=[os.path.join(data, "logs"), small.path])
    broker.start()
    try:
        admin = AdminClient({"bootstrap.servers": broker.bootstrap})
        admin.create_topics([NewTopic("t", 2, 1)])["t"].result(30)
        wait_for(lambda: all(os.path.isdir(os.path.join(d, f"t-{p}")) for p, d in
                             [(0, broker.log_dirs[0]), (1, broker.log_dirs[1])]) or
                 all(os.path.isdir(os.path.join(d, f"t-{p}")) for p, d in
                     [(1, broker.log_dirs[0]), (0, broker.log_dirs[1])]), 30, lambda: "partitions not placed")
        full_p = 1 if os.path.isdir(os.path.join(small.path, "t-1")) else 0
        good_p = 1 - full_p

        # Fill the small filesystem to a few hundred KiB, then produce 10 KiB
        # records until the disk is full.
        small.fill(300 * 1024)
        producer = Producer({"bootstrap.servers": broker.bootstrap, "acks": "all", "retries": 0,
                             "enable.idempotence": False, "linger.ms": 0, "batch.num.messages": 1})
        acked, refused = [], []

        def delivered(err, msg):
            (refused if err else acked).append(err or int(msg.value().split(b":")[0]))

        i = 0
        while not refused and i < 200:
            producer.produce("t", value=b"%d:" % i + b"x" * 10_000, partition=full_p, on_delivery=delivered)
            producer.flush(10)
            i += 1
        assert refused, "the small disk never filled"
        assert refused[0].code() == KafkaError.KAFKA_STORAGE_ERROR, refused[0]
        assert acked == list(range(len(acked))) and len(acked) > 5

        # The whole directory is offline: more produce is refused at once
        # (asked directly: clients soon find no leader to ask)…
        assert produce_raw(broker.bootstrap, "t", full_p, b"late") == STORAGE_ERROR
        # …the other directory serves, and the broker answers.
        assert produce_one(broker.bootstrap, "t", good_p, b"fine") is None
        assert read_partition(broker.bootstrap, "t", good_p, 1) == [b"fine"]
        dirs = describe_log_dirs(broker.bootstrap)
        assert dirs[os.path.abspath(small.path)] == STORAGE_ERROR, dirs
        assert dirs[os.path.abspath(broker.log_dirs[0])] == 0, dirs
        # The controller took the replica offline: no leader, and Metadata
        # lists it among the offline replicas.
        wait_for(lambda: leader(broker.bootstrap, "t", full_p) == -1, 30,
                 lambda: f"partition still led: {metadata(broker.bootstrap, 't')}")
        assert metadata(broker.bootstrap, "t")[full_p]["offline_replicas"] == [0]
        assert metadata(broker.bootstrap, "t")[good_p]["offline_replicas"] == []
        assert broker.process.poll() is None

        # A restart with space: online again, every acknowledged record there.
        broker.stop()
        small.unfill()
        broker.start()
        wait_for(lambda: leader(broker.bootstrap, "t", full_p) == 0, 30, lambda: "no leader after restart")
        assert produce_one(broker.bootstrap, "t", full_p, b"%d:again" % len(acked)) is None
        got = [int(v.split(b":")[0]) for v in read_partition(broker.bootstrap, "t", full_p, len(acked) + 1)]
        assert got == list(range(len(acked) + 1))
        assert all(e == 0 for e in describe_log_dirs(broker.bootstrap).values())
    finally:
        broker.kill()


def test_with_every_log_dir_offline_the_broker_stops(tmp_path, mounts):
    coordination = Coordination(str(tmp_path / "coordination"))
    small = mounts(str(tmp_path / "small"), "2m")
    broker = Broker(str(tmp_path), args=["--coordination", coordination.address], log_dirs=[small.path])
    try:
        broker.start()
        admin = AdminClient({"bootstrap.servers": broker.bootstrap})
        admin.create_topics([NewTopic("t", 1, 1)])["t"].result(30)
        wait_for(lambda: os.path.isdir(os.path.join(small.path, "t-0")), 30, lambda: "no log")
        small.fill(100 * 1024)
        producer = Producer({"bootstrap.servers": broker.bootstrap, "retries": 0, "message.timeout.ms": 5000})
        for i in range(100):
            if broker.process.poll() is not None:
                break
            producer.produce("t", value=b"x" * 10_000)
            producer.flush(5)
        wait_for(lambda: broker.process.poll() is not None, 30, lambda: "the broker kept running")
        assert broker.process.returncode == 1
        assert "Shutdown broker because all log dirs in" in open(broker.log_path).read()
    finally:
        broker.kill()
        coordination.stop()


# --- a 3-broker cluster: the leader's directory fills under acks=all ---

TOPIC = "replicated"
RECORDS = 20_000


def replica_values(path):
    """The record values of a partition directory, read offline."""
    out = subprocess.run([GREGOR, "dump-log", path, "--print-records"], check=True, capture_output=True,
                         text=True).stdout
    return [int(m.group(1)) for m in re.finditer(r"^\| offset: \d+ .* payload: (\d+)", out, re.M)]


def test_a_full_leader_dir_moves_leadership_and_loses_nothing(tmp_path, mounts):
    coordination = Coordination(str(tmp_path / "coordination"))
    common = ["--coordination", coordination.address, "--override", "zookeeper.session.timeout.ms=3000"]
    brokers, smalls = [], []
    for i in range(3):
        root = str(tmp_path / f"broker-{i}")
        smalls.append(mounts(os.path.join(root, "small"), "64m"))
        # The topic lands in the first directory (the emptiest, first on ties).
        brokers.append(Broker(root, args=["--broker-id", str(i)] + common,
                              log_dirs=[smalls[-1].path, os.path.join(root, "logs")]))
    try:
        for b in brokers:
            b.start()
        bootstrap = ",".join(b.bootstrap for b in brokers)
        admin = AdminClient({"bootstrap.servers": bootstrap})
        admin.create_topics([NewTopic(TOPIC, 1, 3, config={"min.insync.replicas": "2"})])[TOPIC].result(30)

        def partition():
            return metadata(brokers[0].bootstrap, TOPIC)[0]

        def settled(check, what, timeout=60):
            def ok():
                try:
                    return check(partition())
                except Exception:
                    return False
            wait_for(ok, timeout, lambda: f"timed out waiting for {what}: {partition()}")
            return partition()

        first = settled(lambda p: p["leader"] >= 0 and len(p["isr"]) == 3, "a leader and a full ISR")
        old = first["leader"]
        producer = Producer({
            "bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True, "linger.ms": 5,
            "message.timeout.ms": 120000, "retry.backoff.ms": 100, "topic.metadata.refresh.interval.ms": 1000,
        })
        acked, failures = [], []

        def delivered(err, msg):
            (failures.append(err) if err else acked.append(int(msg.value().split(b":")[0])))

        acked_when_filled = []

        def fill_the_leader():
            wait_for(lambda: len(acked) >= RECORDS // 4, 120, lambda: "records not acknowledged")
            smalls[old].fill(512 * 1024)
            acked_when_filled.append(len(acked))

        filler = threading.Thread(target=fill_the_leader)
        filler.start()
        for i in range(RECORDS):
            while True:
                try:
                    producer.produce(TOPIC, value=b"%d:" % i + b"y" * 200, on_delivery=delivered)
                    break
                except BufferError:
                    producer.poll(0.05)
            producer.poll(0)
            if i % 50 == 0:
                time.sleep(0.01)
        filler.join()
        assert producer.flush(180) == 0, "records left undelivered"
        assert not failures, failures[:5]
        assert sorted(acked) == list(range(RECORDS))
        assert acked_when_filled[0] < RECORDS // 2, "most records are produced after the disk filled"

        # Leadership moved; the old leader's replica is offline, the broker alive.
        moved = settled(lambda p: p["leader"] not in (-1, old) and old not in p["isr"], "a new leader")
        assert old in moved["offline_replicas"], moved
        assert brokers[old].process.poll() is None, "the broker has another log dir: it keeps running"
        log = open(brokers[old].log_path).read()
        assert "log directory offline" in log

        # Restarted with space: the replica catches up and rejoins the ISR.
        brokers[old].stop()
        smalls[old].unfill()
        brokers[old].start()
        settled(lambda p: len(p["isr"]) == 3 and not p["offline_replicas"], "the replica back in sync", 120)
        for b in brokers:
            path = os.path.join(b.log_dirs[0], f"{TOPIC}-0")
            wait_for(lambda: len(replica_values(path)) >= RECORDS, 60, lambda: f"broker {b.log_dirs[0]} behind")
            values = replica_values(path)
            assert values == list(range(RECORDS)), (
                f"{path}: {len(values)} records, {len(values) - len(set(values))} duplicates")
        consumed = [int(m.value().split(b":")[0]) for m in consume_all(bootstrap, TOPIC, 1, RECORDS, timeout=120)]
        assert consumed == list(range(RECORDS))
    finally:
        for b in brokers:
            b.kill()
        coordination.stop()
