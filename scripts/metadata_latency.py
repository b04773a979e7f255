"""Metadata for every partition of a broker with many (issue 21): starts
one `gregor-server` per binary given (each on a free port over a temp log
dir), creates TOPICS topics of PARTITIONS partitions on each (default
10 × 1,000), then times, in alternating rounds so that every binary sees
the same machine state:

- raw: one Metadata v12 request for all topics on a plain socket, from
  sending it to the last byte of the answer (the broker alone);
- librdkafka C: `rd_kafka_metadata()` of the librdkafka confluent-kafka
  bundles, called through ctypes (the client's request and parsing, no
  Python objects);
- confluent-kafka: `AdminClient.list_topics()`, which also builds a
  Python object for every partition.

Prints the median, the 10th and 90th percentile of each, in ms. With
PERF_DIR set, `perf record` samples each broker during the rounds (into
PERF_DIR/broker-<i>.data; its timings are then not representative).

    python3 scripts/metadata_latency.py target/release/gregor-server [other-gregor-server …]
"""
import ctypes
import glob
import os
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
from bench.kafka.kafka import free_port  # noqa: E402
from controller_requests import read_frame  # noqa: E402

TOPICS = int(os.environ.get("TOPICS", "10"))
PARTITIONS = int(os.environ.get("PARTITIONS", "1000"))
ROUNDS = int(os.environ.get("ROUNDS", "10"))
RAW_PER_ROUND = int(os.environ.get("RAW_PER_ROUND", "20"))
RDKAFKA_PER_ROUND = int(os.environ.get("RDKAFKA_PER_ROUND", "5"))


class _Topic(ctypes.Structure):
    _fields_ = [("topic", ctypes.c_char_p), ("partition_cnt", ctypes.c_int),
                ("partitions", ctypes.c_void_p), ("err", ctypes.c_int)]


class _Metadata(ctypes.Structure):
    _fields_ = [("broker_cnt", ctypes.c_int), ("brokers", ctypes.c_void_p), ("topic_cnt", ctypes.c_int),
                ("topics", ctypes.POINTER(_Topic)), ("orig_broker_id", ctypes.c_int32),
                ("orig_broker_name", ctypes.c_char_p)]


def _librdkafka():
    import confluent_kafka
    here = os.path.dirname(os.path.dirname(confluent_kafka.__file__))
    lib = ctypes.CDLL(glob.glob(os.path.join(here, "confluent_kafka.libs", "librdkafka*.so*"))[0])
    lib.rd_kafka_conf_new.restype = ctypes.c_void_p
    lib.rd_kafka_conf_set.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_size_t]
    lib.rd_kafka_new.restype = ctypes.c_void_p
    lib.rd_kafka_new.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t]
    lib.rd_kafka_metadata.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p,
                                      ctypes.POINTER(ctypes.POINTER(_Metadata)), ctypes.c_int]
    lib.rd_kafka_metadata_destroy.argtypes = [ctypes.POINTER(_Metadata)]
    lib.rd_kafka_destroy.argtypes = [ctypes.c_void_p]
    return lib


class RdKafkaC:
    """A librdkafka producer handle asking Metadata in C."""

    def __init__(self, bootstrap):
        self.lib = _librdkafka()
        conf = self.lib.rd_kafka_conf_new()
        err = ctypes.create_string_buffer(512)
        if self.lib.rd_kafka_conf_set(conf, b"bootstrap.servers", bootstrap.encode(), err, 512) != 0:
            raise RuntimeError(err.value.decode())
        self.rk = self.lib.rd_kafka_new(0, conf, err, 512)
        if not self.rk:
            raise RuntimeError(err.value.decode())

    def metadata_ms(self):
        md = ctypes.POINTER(_Metadata)()
        started = time.perf_counter()
        code = self.lib.rd_kafka_metadata(self.rk, 1, None, ctypes.byref(md), 30000)
        elapsed = (time.perf_counter() - started) * 1000
        if code != 0:
            raise RuntimeError(f"rd_kafka_metadata: error {code}")
        m = md.contents
        partitions = sum(m.topics[i].partition_cnt for i in range(m.topic_cnt)
                         if not m.topics[i].topic.startswith(b"__"))
        self.lib.rd_kafka_metadata_destroy(md)
        if partitions != TOPICS * PARTITIONS:
            raise RuntimeError(f"an answer with {partitions} partitions")
        return elapsed

    def close(self):
        self.lib.rd_kafka_destroy(self.rk)


def metadata_v12_all(correlation_id):
    """Metadata v12 (header v2) asking for every topic (a null list)."""
    client = b"metadata-latency"
    header = struct.pack(">hhih", 3, 12, correlation_id, len(client)) + client + b"\x00"
    body = b"\x00" + b"\x01" + b"\x00" + b"\x00"  # topics null, auto-create, no topic ops, no tags
    frame = header + body
    return struct.pack(">i", len(frame)) + frame


def raw_metadata_ms(sock, correlation_id):
    started = time.perf_counter()
    sock.sendall(metadata_v12_all(correlation_id))
    answer = read_frame(sock)
    size = len(answer)
    elapsed = (time.perf_counter() - started) * 1000
    if struct.unpack(">i", answer[:4])[0] != correlation_id:
        raise RuntimeError("an answer to another request")
    return elapsed, size


class Broker:
    def __init__(self, binary):
        self.binary = binary
        self.root = tempfile.mkdtemp(prefix="metadata-latency-")
        self.port = free_port()
        self.process = subprocess.Popen(
            [binary, "--listeners", f"PLAINTEXT://127.0.0.1:{self.port}", "--log-dirs",
             os.path.join(self.root, "logs"), "--metrics-listen", ""],
            stdout=open(os.path.join(self.root, "server.log"), "ab"), stderr=subprocess.STDOUT)
        self.bootstrap = f"127.0.0.1:{self.port}"
        self.admin = AdminClient({"bootstrap.servers": self.bootstrap})
        self.sock = None
        self.c = None
        self.correlation_id = 0

    def led(self):
        try:
            md = self.admin.list_topics(timeout=5)
        except Exception:
            return 0
        return sum(1 for n, t in md.topics.items() if not n.startswith("__")
                   for q in t.partitions.values() if q.leader >= 0 and q.error is None)

    def create_topics(self):
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                self.admin.list_topics(timeout=2)
                break
            except Exception:
                time.sleep(0.05)
        futures = self.admin.create_topics(
            [NewTopic(f"many-{i}", PARTITIONS, 1) for i in range(TOPICS)], request_timeout=300)
        for f in futures.values():
            try:
                f.result(300)
            except KafkaException as e:
                # Created, its leaders not all elected yet: awaited below.
                if e.args[0].code() != KafkaError.REQUEST_TIMED_OUT:
                    raise
        deadline = time.monotonic() + 600
        while self.led() < TOPICS * PARTITIONS:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.binary}: not every partition led within 600 s")
            time.sleep(0.1)
        self.sock = socket.create_connection(("127.0.0.1", self.port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.c = RdKafkaC(self.bootstrap)

    def raw(self):
        self.correlation_id += 1
        return raw_metadata_ms(self.sock, self.correlation_id)

    def rdkafka(self):
        started = time.perf_counter()
        md = self.admin.list_topics(timeout=30)
        elapsed = (time.perf_counter() - started) * 1000
        if sum(len(t.partitions) for n, t in md.topics.items() if not n.startswith("__")) != TOPICS * PARTITIONS:
            raise RuntimeError("an answer without every partition")
        return elapsed

    def close(self):
        if self.sock:
            self.sock.close()
        if self.c:
            self.c.close()
        self.process.terminate()
        self.process.wait()
        shutil.rmtree(self.root, ignore_errors=True)


def summary(samples):
    s = sorted(samples)
    pick = lambda q: s[min(len(s) - 1, int(q * len(s)))]
    return f"median {statistics.median(s):6.2f}  p10 {pick(0.1):6.2f}  p90 {pick(0.9):6.2f}  (n={len(s)})"


def main():
    brokers = [Broker(b) for b in sys.argv[1:]]
    try:
        for b in brokers:
            started = time.monotonic()
            b.create_topics()
            print(f"{b.binary}: {TOPICS} × {PARTITIONS} partitions led in {time.monotonic() - started:.1f} s", flush=True)
        raw = {b: [] for b in brokers}
        rdkafka = {b: [] for b in brokers}
        c = {b: [] for b in brokers}
        size = {}
        for _ in range(2):  # warm up both paths
            for b in brokers:
                b.raw()
                b.c.metadata_ms()
                b.rdkafka()
        perf = []
        if os.environ.get("PERF_DIR"):
            for i, b in enumerate(brokers):
                perf.append(subprocess.Popen(
                    ["perf", "record", "-F", "999", "--call-graph", "dwarf,32768", "-p", str(b.process.pid),
                     "-o", os.path.join(os.environ["PERF_DIR"], f"broker-{i}.data")],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            time.sleep(1)
        for r in range(ROUNDS):
            order = brokers if r % 2 == 0 else list(reversed(brokers))
            for b in order:
                for _ in range(RAW_PER_ROUND):
                    ms, size[b] = b.raw()
                    raw[b].append(ms)
                for _ in range(RDKAFKA_PER_ROUND):
                    c[b].append(b.c.metadata_ms())
                for _ in range(RDKAFKA_PER_ROUND):
                    rdkafka[b].append(b.rdkafka())
        for p in perf:
            p.send_signal(2)
            p.wait()
        for b in brokers:
            print(f"{b.binary} (answer {size[b]} bytes)")
            print(f"  raw Metadata v12:          {summary(raw[b])} ms")
            print(f"  librdkafka C metadata():   {summary(c[b])} ms")
            print(f"  confluent-kafka list_topics(): {summary(rdkafka[b])} ms")
    finally:
        for b in brokers:
            b.close()


if __name__ == "__main__":
    main()
