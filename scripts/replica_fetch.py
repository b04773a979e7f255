"""Replication with many partitions (issue 21): on the 3-broker cluster of
scripts/failover.py (TOPICS × PARTITIONS partitions, RF 3, default
3 × 1,000), what the follower fetchers cost and what an acks=all write
waits for them.

- idle: CPU-seconds each broker spends over IDLE_S seconds with no load
  (the followers' fetch sessions held open by long polls);
- acks=all, one record to every partition at once (a librdkafka
  producer, linger 0): the time until all are acknowledged, and the
  CPU-seconds the brokers spent on it;
- acks=all, one record at a time to SAMPLES partitions in turn: the
  latency of a single acknowledged write (p50/p99), which is two
  follower fetch cycles.

`--no-sessions` starts the brokers with
`max.incremental.fetch.session.cache.slots=0`: no fetch session is ever
opened, so every follower fetch is a full one naming every partition —
the comparison the fetch-session item of issue 21 asks for.

    cargo build --release -p gregor-server -p gregor-cli
    python3 scripts/replica_fetch.py [--no-sessions] [--kafka]
"""
import argparse
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from failover import Cluster, quantiles, Producer  # noqa: E402
from bench.kafka.compare import cpu_seconds  # noqa: E402

IDLE_S = float(os.environ.get("IDLE_S", "20"))
SAMPLES = int(os.environ.get("SAMPLES", "300"))


def cpu_of(cluster):
    """CPU seconds of each broker process so far."""
    return [cpu_seconds([b.process.pid]) for b in cluster.brokers]


def spent(before, after):
    return " ".join(f"{b - a:.2f}" for a, b in zip(before, after))


def partitions_of(cluster):
    md = cluster.metadata(0)
    return sorted((n, p) for n, t in md.topics.items() if n.startswith("many-") for p in t.partitions)


def measure(cluster):
    partitions = partitions_of(cluster)
    producer = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all", "linger.ms": 0,
                         "message.timeout.ms": 120_000, "log_level": 0})
    for topic, partition in partitions:  # warm up: metadata, connections
        producer.produce(topic, b"warm", partition=partition)
    if producer.flush(120) != 0:
        raise RuntimeError("the warm-up records were not delivered")
    time.sleep(2)

    before = cpu_of(cluster)
    time.sleep(IDLE_S)
    print(f"idle {IDLE_S:.0f} s: CPU-s per broker {spent(before, cpu_of(cluster))}", flush=True)

    acked = []
    before = cpu_of(cluster)
    started = time.monotonic()
    for topic, partition in partitions:
        producer.produce(topic, b"x" * 100, partition=partition,
                         on_delivery=lambda err, msg: acked.append(time.monotonic()) if err is None else None)
    producer.flush(120)
    if len(acked) != len(partitions):
        raise RuntimeError(f"{len(partitions) - len(acked)} records not acknowledged")
    print(f"one record to each of {len(partitions)} partitions: all acknowledged in "
          f"{max(acked) - started:.2f} s ({quantiles(t - started for t in acked)}); "
          f"CPU-s per broker {spent(before, cpu_of(cluster))}", flush=True)

    latencies = []
    before = cpu_of(cluster)
    step = max(1, len(partitions) // SAMPLES)
    for topic, partition in partitions[::step][:SAMPLES]:
        sent = time.monotonic()
        producer.produce(topic, b"x" * 100, partition=partition)
        if producer.flush(30) != 0:
            raise RuntimeError("a record was not acknowledged")
        latencies.append((time.monotonic() - sent) * 1000)
    latencies.sort()
    pick = lambda q: latencies[int(q / 100 * (len(latencies) - 1))]
    print(f"one record at a time ({len(latencies)}): p50 {pick(50):.1f} ms, p99 {pick(99):.1f} ms, "
          f"max {latencies[-1]:.1f} ms; CPU-s per broker {spent(before, cpu_of(cluster))}", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-sessions", action="store_true", help="no fetch sessions (full fetches only)")
    parser.add_argument("--kafka", action="store_true", help="Apache Kafka 3.9 instead of gregor")
    args = parser.parse_args()
    overrides = {"max.incremental.fetch.session.cache.slots": 0} if args.no_sessions else {}
    root = tempfile.mkdtemp(prefix="replica-fetch-")
    cluster = Cluster(root, args.kafka, overrides)
    try:
        cluster.create_topics()
        measure(cluster)
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
