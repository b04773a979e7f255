"""Fixtures: a gregor broker process per test, on a free port with its own data dir."""
import collections
import os
import signal
import subprocess
import sys
import time

import pytest
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)
from frame_proxy import FrameProxy  # noqa: E402
from bench.kafka.kafka import ZooKeeper, accepts, free_port, wait_for  # noqa: E402  (shared with the benches)
from bench.kafka import kraft  # noqa: E402

BINARY = os.environ.get("GREGOR_SERVER_BIN", os.path.join(ROOT, "target", "debug", "gregor-server"))
# The `gregor` command (coordination service, dump-log).
GREGOR = os.environ.get("GREGOR_BIN", os.path.join(os.path.dirname(BINARY), "gregor"))


def consume_all(bootstrap, topic, partitions, expected, timeout=60):
    """Every record of `topic` from the start, with confluent-kafka."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "e2e", "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    got = []
    deadline = time.time() + timeout
    while len(got) < expected and time.time() < deadline:
        for m in consumer.consume(1000, 1.0):
            assert m.error() is None, m.error()
            got.append(m)
    consumer.close()
    return got


def produce_and_consume(conf, topic, n=20):
    """Produces `n` records and reads them back through `conf`."""
    p = Producer(dict(conf, **{"message.timeout.ms": 20000}))
    for i in range(n):
        p.produce(topic, f"v{i}".encode())
    assert p.flush(30) == 0
    c = Consumer(dict(conf, **{"group.id": f"g-{topic}", "auto.offset.reset": "earliest"}))
    c.assign([TopicPartition(topic, 0, 0)])
    got = []
    deadline = time.time() + 30
    while len(got) < n and time.time() < deadline:
        for m in c.consume(100, 1.0):
            assert m.error() is None, m.error()
            got.append(m.value())
    c.close()
    assert got == [f"v{i}".encode() for i in range(n)]


def compacted_view(bootstrap, topic, partition, below, timeout=60):
    """Reads the partition from its start until it holds fewer than `below`
    records (the log cleaner has run) or `timeout` passes; returns the
    last read."""
    deadline = time.time() + timeout
    while True:
        reader = Consumer({"bootstrap.servers": bootstrap, "group.id": "compaction-reader",
                           "enable.auto.commit": False, "enable.partition.eof": True})
        reader.assign([TopicPartition(topic, partition, 0)])
        records = []
        while True:
            m = reader.poll(5)
            if m is None or (m.error() and m.error().code() == KafkaError._PARTITION_EOF):
                break
            records.append(m)
        reader.close()
        if len(records) < below or time.time() > deadline:
            return records
        time.sleep(0.2)


class Broker:
    """A gregor-server process; start() and stop() may be called repeatedly."""

    def __init__(self, data_dir, env=None, args=(), log_dirs=None):
        self.data_dir = data_dir
        # `log.dirs`: <data_dir>/logs unless given.
        self.log_dirs = list(log_dirs or [os.path.join(data_dir, "logs")])
        self.env = dict(os.environ, **(env or {}))
        self.metrics_port = free_port()
        self.env.setdefault("GREGOR_METRICS_LISTEN", f"127.0.0.1:{self.metrics_port}")
        if "GREGOR_TEST_RUST_LOG" in os.environ:
            self.env["RUST_LOG"] = os.environ["GREGOR_TEST_RUST_LOG"]
        self.args = list(args)
        self.port = free_port()
        # `--listeners` (default: one PLAINTEXT listener on `port`).
        self.listeners = None
        self.process = None
        self.log_path = os.path.join(data_dir, "server.log")

    @property
    def bootstrap(self):
        return f"127.0.0.1:{self.port}"

    def start(self):
        log = open(self.log_path, "ab")
        since = log.tell()  # this start's lines, not a previous run's
        self.process = subprocess.Popen(
            [BINARY, "--listeners", self.listeners or f"PLAINTEXT://{self.bootstrap}",
             "--log-dirs", ",".join(self.log_dirs)]
            + self.args,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=self.env,
        )

        def ready():
            if self.process.poll() is not None:
                raise RuntimeError(f"broker exited: {open(self.log_path).read()}")
            # Ready once it says so: registered, topics reconciled, serving.
            with open(self.log_path, "rb") as f:
                f.seek(since)
                return b"gregor broker listening on" in f.read()

        wait_for(ready, 30, lambda: "broker did not start listening within 30 s")
        return self

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                code = self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                raise RuntimeError("broker did not stop on SIGTERM within 30 s")
            assert code == 0, f"broker exited with {code}: {open(self.log_path).read()[-2000:]}"
        self.process = None

    def kill(self):
        """SIGKILL: a crash, with no clean shutdown."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.process = None


@pytest.fixture
def broker(tmp_path):
    b = Broker(str(tmp_path)).start()
    yield b
    b.stop()


@pytest.fixture
def eager_cleaner_broker(tmp_path):
    """A broker whose log cleaner looks for work every 100 ms."""
    b = Broker(str(tmp_path), env={"GREGOR_LOG_CLEANER_BACKOFF_MS": "100"}).start()
    yield b
    b.stop()


@pytest.fixture
def fast_heartbeat_broker(tmp_path):
    """A broker whose consumer-protocol (KIP-848) members heartbeat every
    500 ms (the default 5 s makes every reassignment step take seconds):
    gregor's, or with GREGOR_JVM_REFERENCE=1 Kafka 4.4 in KRaft mode
    (bench/kafka/kraft.py; Kafka 3.9 has no KIP-848)."""
    if os.environ.get("GREGOR_JVM_REFERENCE"):
        reason = kraft.missing()
        if reason:
            pytest.skip(reason)
        b = kraft.KraftBroker(str(tmp_path / "kafka4")).start()
    else:
        b = Broker(str(tmp_path), env={"GREGOR_GROUP_CONSUMER_HEARTBEAT_INTERVAL_MS": "500"}).start()
    yield b
    b.stop()


class Coordination:
    """`gregor coordination`: the embedded store served to several brokers
    (`args`: extra flags, e.g. `--auth-secret-file`); start() again after
    stop() serves the same store on the same port."""

    def __init__(self, data_dir, args=()):
        self.port = free_port()
        self.data_dir = data_dir
        self.args = list(args)
        self.log_path = os.path.join(data_dir, "coordination.log")
        os.makedirs(data_dir, exist_ok=True)
        self.start()

    def start(self):
        self.process = subprocess.Popen(
            [GREGOR, "coordination", "--listen", self.address, "--dir", os.path.join(self.data_dir, "store")]
            + self.args,
            stdout=open(self.log_path, "ab"),
            stderr=subprocess.STDOUT,
        )
        try:
            wait_for(lambda: accepts(self.port), 30, lambda: "the coordination service did not start within 30 s")
        except RuntimeError:
            self.stop()
            raise

    @property
    def address(self):
        return f"127.0.0.1:{self.port}"

    def stop(self):
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def zookeeper(tmp_path):
    zk = ZooKeeper(str(tmp_path / "zookeeper"))
    yield zk
    zk.stop()


class CuttingProxy(FrameProxy):
    """A Kafka-aware TCP proxy to a broker that can lose produce responses:
    `cut()` lets requests through but drops the broker's answers to
    Produce requests until some are lost, then cuts every connection — the
    client retries batches the broker has already written, exactly what
    idempotence must absorb. Only whole Produce responses are dropped
    (responses come back in request order)."""

    PRODUCE = 0

    def __init__(self, target_port):
        self.swallowing = False
        self.swallowed = 0
        super().__init__(target_port)

    def request(self, frame, conn):
        conn.setdefault("pending", collections.deque()).append(int.from_bytes(frame[4:6], "big"))
        return frame

    def response(self, frame, conn):
        pending = conn.get("pending")
        key = pending.popleft() if pending else None
        if key == self.PRODUCE and self.swallowing:
            self.swallowed += 1
            return None
        return frame

    def cut(self, meanwhile=None, produce_responses=1, timeout=5):
        """Drops Produce responses until `produce_responses` were lost (or
        `timeout` passed), runs `meanwhile` (e.g. a broker crash), then cuts
        every connection."""
        self.swallowed = 0
        self.swallowing = True
        deadline = time.time() + timeout
        while self.swallowed < produce_responses and time.time() < deadline:
            time.sleep(0.005)
        if meanwhile:
            meanwhile()
        self.cut_connections()
        self.swallowing = False
        return self.swallowed
