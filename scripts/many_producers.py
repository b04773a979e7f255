"""Broker memory under load (issue 21): one broker (release build) with a
topic of PARTITIONS partitions (default 1,000) and PRODUCERS producers
(default 50; confluent-kafka, idempotent, acks=all, `linger.ms`
LINGER_MS, default 5) writing SIZE-byte records (default 1 KiB) to
random partitions for DURATION_S seconds (default 60), spread over
WORKERS processes. The broker's RSS is sampled
every 0.2 s: idle with the partitions, the peak under load, and 10 s
after the load stops; the records acknowledged give the load's size.

    cargo build --release -p gregor-server
    python3 scripts/many_producers.py [--kafka]
"""
import argparse
import multiprocessing
import os
import shutil
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("GREGOR_SERVER_BIN", os.path.join(ROOT, "target", "release", "gregor-server"))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
sys.path.insert(0, ROOT)
from confluent_kafka import Producer  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

from conftest import Broker, wait_for  # noqa: E402
from bench.kafka.compare import rss_mb  # noqa: E402
from bench.kafka.kafka import KafkaCluster  # noqa: E402

PARTITIONS = int(os.environ.get("PARTITIONS", "1000"))
PRODUCERS = int(os.environ.get("PRODUCERS", "50"))
SIZE = int(os.environ.get("SIZE", "1024"))
DURATION_S = float(os.environ.get("DURATION_S", "60"))
WORKERS = int(os.environ.get("WORKERS", "2"))
LINGER_MS = int(os.environ.get("LINGER_MS", "5"))


def produce(bootstrap, producers, acked):
    """One worker: `producers` producers, round robin, until DURATION_S."""
    clients = [Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "linger.ms": LINGER_MS,
                         "client.id": f"load-{os.getpid()}-{i}", "log_level": 0}) for i in range(producers)]
    count = [0]

    def delivered(err, _msg):
        if err is None:
            count[0] += 1

    value = b"x" * SIZE
    deadline = time.monotonic() + DURATION_S
    while time.monotonic() < deadline:
        for c in clients:
            for _ in range(10):
                try:
                    c.produce("load", value, on_delivery=delivered)
                except BufferError:
                    break
            c.poll(0)
    for c in clients:
        c.flush(60)
    acked.value += count[0]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kafka", action="store_true", help="Apache Kafka 3.9 instead of gregor")
    args = parser.parse_args()
    root = tempfile.mkdtemp(prefix="many-producers-")
    kafka = KafkaCluster(1, data_dir=root) if args.kafka else None
    broker = kafka.brokers[0] if kafka else Broker(root).start()
    pid = broker.process.pid
    try:
        admin = AdminClient({"bootstrap.servers": broker.bootstrap})
        for f in admin.create_topics([NewTopic("load", PARTITIONS, 1)], request_timeout=120).values():
            f.result(120)
        wait_for(lambda: all(p.leader >= 0 for p in admin.list_topics("load", timeout=10).topics["load"]
                             .partitions.values()), 120, lambda: "the partitions did not all get a leader")
        time.sleep(5)
        idle = rss_mb([pid])
        samples = []
        done = threading.Event()

        def sample():
            while not done.is_set():
                samples.append(rss_mb([pid]))
                time.sleep(0.2)

        sampler = threading.Thread(target=sample)
        sampler.start()
        acked = multiprocessing.Value("q", 0)
        share = [PRODUCERS // WORKERS + (i < PRODUCERS % WORKERS) for i in range(WORKERS)]
        started = time.monotonic()
        workers = [multiprocessing.Process(target=produce, args=(broker.bootstrap, n, acked)) for n in share]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        elapsed = time.monotonic() - started
        done.set()
        sampler.join()
        time.sleep(10)
        after = rss_mb([pid])
        with open(f"/proc/{pid}/status") as f:
            parts = {k: int(v.split()[0]) // 1024 for k, v in (line.split(":", 1) for line in f)
                     if k in ("RssAnon", "RssFile", "RssShmem")}
        print(f"{'Kafka 3.9' if kafka else 'gregor'}: {PARTITIONS} partitions, {PRODUCERS} producers, "
              f"{SIZE} B records: {acked.value:,} acknowledged in {elapsed:.0f} s "
              f"({acked.value / elapsed / 1000:.0f} k rec/s)")
        print(f"RSS: idle {idle:.0f} MB, peak under load {max(samples):.0f} MB, "
              f"10 s after {after:.0f} MB ({', '.join(f'{k} {v} MB' for k, v in parts.items())})", flush=True)
    finally:
        if kafka:
            kafka.stop()
        else:
            broker.kill()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
