"""Slow and abusive clients (issue 20): raw sockets misbehave while a real
client (confluent-kafka) keeps producing and consuming through the same
broker, and the broker's memory (VmRSS) stays bounded.

- a client pipelining requests with large responses and never reading them;
- a client sending one byte at a time (slowloris), one announcing a
  request over socket.request.max.bytes;
- 10,000 idle connections, closed by connections.max.idle.ms;
- a connection storm;
- max.connections.per.ip with an override, and max.connections (the
  acceptor waits; the inter-broker listener is exempt);
- socket.listen.backlog.size: what the kernel queues past a full acceptor.
"""
import resource
import select
import socket
import struct
import threading
import time
import urllib.request
import uuid

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from conftest import Broker, free_port, wait_for
from controller_requests import read_frame

MB = 1024 * 1024


# -- raw Kafka requests -------------------------------------------------------

def frame(api_key, version, correlation_id, body=b""):
    """A size-prefixed request with a v1 header (client id "abuse")."""
    header = struct.pack(">hhih", api_key, version, correlation_id, 5) + b"abuse"
    payload = header + body
    return struct.pack(">i", len(payload)) + payload


def api_versions(correlation_id):
    return frame(18, 0, correlation_id)


def describe_broker_configs(correlation_id):
    """DescribeConfigs v3 of broker 0, every property with its
    documentation: a ~60-byte request, a response of kilobytes."""
    resource_ = struct.pack(">bh", 4, 1) + b"0" + struct.pack(">i", -1)
    body = struct.pack(">i", 1) + resource_ + b"\x01\x01"
    return frame(32, 3, correlation_id, body)


def read_response(sock, timeout=10):
    """One response's correlation id and length (raises on EOF or timeout)."""
    sock.settimeout(timeout)
    body = read_frame(sock)
    return struct.unpack(">i", body[:4])[0], len(body)


def answers(sock, correlation_id=7, timeout=10):
    """Whether the connection answers an ApiVersions request."""
    try:
        sock.sendall(api_versions(correlation_id))
        return read_response(sock, timeout)[0] == correlation_id
    except (OSError, ConnectionError):
        return False


def closed_by_broker(sock, timeout):
    """Whether the broker closes `sock` within `timeout` (EOF or reset;
    any bytes it still had to send are skipped)."""
    deadline = time.time() + timeout
    sock.setblocking(False)
    poller = select.poll()  # not select(): descriptors above 1024
    poller.register(sock, select.POLLIN)
    while True:
        left = deadline - time.time()
        if left <= 0:
            return False
        if poller.poll(min(left, 0.2) * 1000):
            try:
                if not sock.recv(1 << 20):
                    return True
            except ConnectionResetError:
                return True
            except BlockingIOError:
                pass


def connect(port, source="127.0.0.1", timeout=None):
    s = socket.socket()
    # IP_BIND_ADDRESS_NO_PORT: the port is chosen at connect time (binding
    # port 0 first is slow with thousands of sockets).
    s.setsockopt(socket.IPPROTO_IP, 24, 1)
    s.bind((source, 0))
    s.settimeout(timeout)
    try:
        s.connect(("127.0.0.1", port))
    except OSError:
        s.close()
        raise
    return s


# -- the broker ----------------------------------------------------------------

def rss_mb(broker):
    with open(f"/proc/{broker.process.pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def metric(broker, name):
    """The sum of a metric's samples named `name` (any labels)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{broker.metrics_port}/metrics", timeout=10) as r:
        text = r.read().decode()
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + (" " if "{" in name else "{")) or line.startswith(name + " "):
            total += float(line.rsplit(" ", 1)[1])
    return total


def fill_max_connections(broker, limit):
    """Connections (each answered) that bring a broker with
    `max.connections=limit` to its limit — the broker's own connections to
    itself count too."""
    wait_for(lambda: metric(broker, "gregor_connection_count") >= 0, 5, lambda: "no metrics")
    held = []
    for _ in range(int(limit - metric(broker, "gregor_connection_count"))):
        s = connect(broker.port, "127.0.0.2")
        assert answers(s)
        held.append(s)
    return held


def start_broker(tmp_path, **properties):
    args = []
    for name, value in properties.items():
        args += ["--override", f"{name.replace('_', '.')}={value}"]
    return Broker(str(tmp_path), args=args).start()


class RealClient:
    """A confluent-kafka producer and consumer on their own topic, checking
    in rounds that what was produced is consumed."""

    def __init__(self, bootstrap):
        self.topic = f"probe-{uuid.uuid4().hex[:8]}"
        self.producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
        self.consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "probe",
                                  "fetch.wait.max.ms": 100})
        self.consumer.assign([TopicPartition(self.topic, 0, 0)])
        self.sent = 0
        self.received = 0

    def round(self, n=20, timeout=45):
        """Produces `n` records and consumes them back within `timeout`."""
        for _ in range(n):
            self.producer.produce(self.topic, value=b"v%d" % self.sent)
            self.sent += 1
        assert self.producer.flush(timeout) == 0, "the producer could not deliver"
        deadline = time.time() + timeout
        while self.received < self.sent and time.time() < deadline:
            for m in self.consumer.consume(100, 0.5):
                if m.error() is None:
                    self.received += 1
        assert self.received == self.sent, f"consumed {self.received} of {self.sent}"

    def close(self):
        self.consumer.close()
        self.producer.flush(5)
        self.producer = None  # librdkafka's threads end with it


@pytest.fixture
def nofile():
    """RLIMIT_NOFILE raised to its hard limit (the broker inherits it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    yield hard
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


# -- the tests -------------------------------------------------------------------

def test_clients_that_never_read_their_responses(tmp_path):
    broker = start_broker(tmp_path, connections_max_idle_ms=4000)
    client = RealClient(broker.bootstrap)
    try:
        client.round()
        before = rss_mb(broker)
        request = describe_broker_configs(1)
        sock = connect(broker.port)
        sock.sendall(request)
        response_size = read_response(sock)[1]
        sock.close()
        # A small receive buffer (no autotuning to 32 MB): what the kernels
        # hold of the unread responses is the broker's send buffer.
        abusers = []
        for _ in range(4):
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.connect(("127.0.0.1", broker.port))
            s.setblocking(False)
            abusers.append(s)
        sent = [0] * len(abusers)
        peak = before
        done = threading.Event()

        def abuse():
            # Whole requests only: a partial send is finished first.
            burst = request * 1000
            pending = [memoryview(burst) for _ in abusers]
            while not done.is_set():
                for i, s in enumerate(abusers):
                    try:
                        n = s.send(pending[i])
                    except (BlockingIOError, OSError):
                        continue
                    sent[i] += n
                    pending[i] = pending[i][n:] if n < len(pending[i]) else memoryview(burst)
                time.sleep(0.01)

        def answered():
            return metric(broker, 'gregor_requests_total{api="DescribeConfigs"}')

        thread = threading.Thread(target=abuse, daemon=True)
        thread.start()
        samples = []
        started = time.time()
        while time.time() - started < 10:
            client.round(timeout=30)
            peak = max(peak, rss_mb(broker))
            samples.append((time.time() - started, answered()))
            time.sleep(0.2)
        done.set()
        thread.join()
        requests = sum(sent) // len(request)
        early = max(n for t, n in samples if t < 4)
        late = samples[-1][1]
        print(f"{requests} requests of {response_size} B responses pipelined unread; answered "
              f"{early:.0f} in the first 4 s, {late:.0f} in 10 s; RSS {before:.0f} MB -> peak {peak:.0f} MB")
        # Once the socket buffers are full the broker reads no more of
        # them: the responses it makes stop at what the kernels hold.
        assert late - early < 100, f"the broker kept answering unread requests: {early:.0f} -> {late:.0f}"
        assert requests > 10 * late
        assert peak - before < 200, f"RSS grew {peak - before:.0f} MB"
        # Making no progress, each is closed after connections.max.idle.ms
        # (watched on the metric: reading here would be progress).
        wait_for(lambda: metric(broker, "gregor_connections_idle_closed_total") >= len(abusers), 15,
                 lambda: f"{metric(broker, 'gregor_connections_idle_closed_total')} closed as idle")
        for s in abusers:
            assert closed_by_broker(s, 15), "a client that never reads stayed connected"
        client.round()
    finally:
        client.close()
        broker.stop()


def test_slowloris_and_oversized_requests(tmp_path):
    broker = start_broker(tmp_path, connections_max_idle_ms=1500, socket_request_max_bytes=1 * MB)
    client = RealClient(broker.bootstrap)
    try:
        client.round()
        # Announces a 1 MB request (allowed) and sends it a byte every
        # 200 ms; as in Kafka, bytes arriving are progress: not idle.
        slow = [connect(broker.port) for _ in range(50)]
        for s in slow:
            s.sendall(struct.pack(">i", 1 * MB))
        oversized = connect(broker.port)
        oversized.sendall(struct.pack(">i", 1 * MB + 1))
        assert closed_by_broker(oversized, 5), "a request over socket.request.max.bytes was not refused"
        dripping = threading.Event()

        def drip():
            while not dripping.wait(0.2):
                for s in slow:
                    s.sendall(b"x")

        thread = threading.Thread(target=drip, daemon=True)
        thread.start()
        started = time.time()
        while time.time() - started < 4:  # > 2 idle times
            client.round(n=5)
        # Checked while they still drip.
        for s in slow:
            assert not closed_by_broker(s, 0.01), "a client making progress was closed"
        dripping.set()
        thread.join()
        # Once it stops, it is idle: closed.
        for s in slow:
            assert closed_by_broker(s, 10), "a silent slowloris stayed connected"
        client.round()
    finally:
        client.close()
        broker.stop()


def test_ten_thousand_idle_connections(tmp_path, nofile):
    wanted = 10_000
    if nofile < wanted + 1000:
        pytest.skip(f"RLIMIT_NOFILE's hard limit is {nofile}: cannot open {wanted} connections")
    idle = 40
    broker = start_broker(tmp_path, connections_max_idle_ms=idle * 1000)
    client = RealClient(broker.bootstrap)
    conns = []
    try:
        client.round()
        before = rss_mb(broker)
        # Spread over a few loopback addresses (each has its own ports).
        started = time.time()
        for i in range(wanted):
            conns.append(connect(broker.port, f"127.0.0.{2 + i % 4}"))
            if i % 500 == 499:
                # In batches the listen backlog (1,024) holds: an overflow
                # costs a connect a 1 s SYN retransmit.
                wait_for(lambda: metric(broker, "gregor_connection_creation_total") >= i - 10, 30,
                         lambda: "the broker does not accept")
        took = time.time() - started
        print(f"{wanted} connections in {took:.1f} s")
        assert took < idle - 3, f"connecting took {took:.0f} s: the first ones may be idle already"
        wait_for(lambda: metric(broker, "gregor_connection_count") >= wanted, 10,
                 lambda: f"only {metric(broker, 'gregor_connection_count')} connections served")
        client.round()
        held = rss_mb(broker)
        print(f"{wanted} idle connections: RSS {before:.0f} MB -> {held:.0f} MB")
        assert held - before < 200, f"RSS grew {held - before:.0f} MB"
        # connections.max.idle.ms closes them: the first thousand are
        # waited for (the rest would follow at the pace they came).
        assert all(closed_by_broker(s, max(started + idle + 10 - time.time(), 1)) for s in conns[:1000])
        assert metric(broker, "gregor_connections_idle_closed_total") >= 1000
        client.round()
        for s in conns:
            s.close()
        wait_for(lambda: metric(broker, "gregor_connection_count") < 10, 30,
                 lambda: f"{metric(broker, 'gregor_connection_count')} connections still counted")
        conns = []
    finally:
        for s in conns:
            s.close()
        client.close()
        broker.stop()


def test_connection_storm(tmp_path):
    broker = start_broker(tmp_path)
    client = RealClient(broker.bootstrap)
    try:
        client.round()
        before = rss_mb(broker)
        done = threading.Event()
        storms = [0]

        def storm():
            i = 0
            while not done.is_set() and i < 4000:
                try:
                    s = connect(broker.port, f"127.0.0.{2 + i % 8}")
                    if i % 4 == 0:
                        s.sendall(api_versions(i))
                    s.close()
                    storms[0] += 1
                except OSError:
                    pass
                i += 1

        thread = threading.Thread(target=storm, daemon=True)
        thread.start()
        while thread.is_alive():
            client.round(timeout=30)
        done.set()
        thread.join()
        print(f"{storms[0]} connections opened and closed; RSS {before:.0f} MB -> {rss_mb(broker):.0f} MB")
        assert storms[0] >= 3000
        # Every one of them is given back.
        wait_for(lambda: metric(broker, "gregor_connection_count") < 10, 30,
                 lambda: f"{metric(broker, 'gregor_connection_count')} connections still counted")
        assert rss_mb(broker) - before < 200
        client.round()
    finally:
        client.close()
        broker.stop()


def test_max_connections_per_ip_with_an_override(tmp_path):
    broker = start_broker(tmp_path, max_connections_per_ip=5,
                          max_connections_per_ip_overrides="127.0.0.2:10")
    client = RealClient(broker.bootstrap)
    try:
        client.round()
        limited = [connect(broker.port, "127.0.0.3") for _ in range(5)]
        assert all(answers(s) for s in limited)
        over = connect(broker.port, "127.0.0.3")
        assert closed_by_broker(over, 5), "a sixth connection from one address stayed open"
        overridden = [connect(broker.port, "127.0.0.2") for _ in range(10)]
        assert all(answers(s) for s in overridden)
        assert closed_by_broker(connect(broker.port, "127.0.0.2"), 5)
        assert metric(broker, "gregor_connections_refused_total") == 2
        # The others keep working, and a closed connection makes room.
        client.round()
        assert all(answers(s) for s in limited)
        limited.pop().close()

        def room():
            s = connect(broker.port, "127.0.0.3")
            if answers(s, timeout=2):
                limited.append(s)
                return True
            s.close()
            return False

        wait_for(room, 10, lambda: "no room after a connection closed")
        for s in limited + overridden:
            s.close()
    finally:
        client.close()
        broker.stop()


def test_max_connections_waits_and_exempts_the_inter_broker_listener(tmp_path):
    internal = free_port()
    broker = Broker(str(tmp_path), args=[
        "--override", "max.connections=12",
        "--override", "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,INTERNAL:PLAINTEXT",
        "--override", "inter.broker.listener.name=INTERNAL",
    ])
    broker.listeners = f"PLAINTEXT://{broker.bootstrap},INTERNAL://127.0.0.1:{internal}"
    broker.start()
    try:
        # Whatever the broker itself holds, fill the rest from outside.
        held = fill_max_connections(broker, 12)
        # Full: the next connection is not served until one closes.
        waiting = connect(broker.port, "127.0.0.3")
        waiting.sendall(api_versions(42))
        with pytest.raises(OSError):
            read_response(waiting, timeout=2)
        # The inter-broker listener still takes connections.
        inter = connect(internal, "127.0.0.4")
        assert answers(inter), "the inter-broker listener is not exempt from max.connections"
        inter.close()
        held.pop().close()
        assert read_response(waiting, timeout=10)[0] == 42
        waiting.close()
        for s in held:
            s.close()
    finally:
        broker.stop()


def queued_connections(broker, at_most):
    """How many connections the kernel completes for a listener whose
    acceptor takes none (max.connections reached): its listen backlog."""
    held = fill_max_connections(broker, 8)
    queued = []
    try:
        for i in range(at_most):
            try:
                queued.append(connect(broker.port, f"127.0.0.{3 + i % 4}", timeout=0.5))
            except OSError:  # the SYN was dropped: the queue is full
                break
        return len(queued)
    finally:
        for s in held + queued:
            s.close()


def test_socket_listen_backlog_size(tmp_path):
    # The acceptor stops at max.connections; what the kernel queues beyond
    # it is the backlog (Linux completes backlog + 1; the acceptor holds one
    # more while it waits for a slot).
    (tmp_path / "small").mkdir()
    (tmp_path / "default").mkdir()
    broker = start_broker(tmp_path / "small", max_connections=8, socket_listen_backlog_size=4)
    try:
        assert 5 <= queued_connections(broker, 50) <= 7
    finally:
        broker.stop()
    # gregor's default queues far more than Kafka's 50.
    broker = start_broker(tmp_path / "default", max_connections=8)
    try:
        assert queued_connections(broker, 300) == 300
    finally:
        broker.stop()
