"""Leader failover with many partitions (issue 21): a 3-broker cluster
(release build, the embedded coordination service) holding TOPICS ×
PARTITIONS partitions with replication factor 3 (default 3 × 1,000), one
broker — not the controller — SIGKILLed while it leads about a third of
them. Times, from the kill:

- gone: Metadata from a survivor no longer lists the killed broker (the
  controller saw its session expire: `zookeeper.session.timeout.ms`,
  SESSION_MS here, default 3,000 as in the e2e cluster tests);
- led: every partition it led has a live leader again in that Metadata;
- writable: a producer (acks=all, or ACKS; connected and warmed up
  before the kill) that sends one record to each of those partitions at
  the kill has every record acknowledged. The same is then done again
  without a failover, for comparison.

The broker's own part is led − gone (the controller's elections and its
LeaderAndIsr/UpdateMetadata); gone is the session timeout, which is
configuration; writable − led is the client finding the new leaders.
Then the broker is restarted and, with --sigterm, stopped cleanly
instead: a controlled shutdown moves its leaderships before it exits.

    cargo build --release -p gregor-server -p gregor-cli
    python3 scripts/failover.py [--rounds 3] [--sigterm] [--kafka]

`--kafka` runs the same on Apache Kafka 3.9 (ZooKeeper mode), for a
comparison in the same session.
"""
import argparse
import os
import statistics
import sys
import tempfile
import shutil
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("GREGOR_SERVER_BIN", os.path.join(ROOT, "target", "release", "gregor-server"))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
from confluent_kafka import KafkaException, Producer  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

from conftest import Broker, Coordination, wait_for  # noqa: E402
from bench.kafka.kafka import KafkaCluster  # noqa: E402

TOPICS = int(os.environ.get("TOPICS", "3"))
PARTITIONS = int(os.environ.get("PARTITIONS", "1000"))
SESSION_MS = int(os.environ.get("SESSION_MS", "3000"))
ACKS = os.environ.get("ACKS", "all")


class Cluster:
    """Three gregor brokers, or with `kafka` three Kafka 3.9 brokers on
    their own ZooKeeper (bench/kafka/kafka.py) with the same settings;
    `overrides`: more broker properties, for either."""

    def __init__(self, root, kafka=False, overrides=None):
        properties = dict({"zookeeper.session.timeout.ms": SESSION_MS, "offsets.topic.num.partitions": 3},
                          **(overrides or {}))
        self.kafka = KafkaCluster(3, data_dir=root, overrides=properties) if kafka else None
        if self.kafka:
            self.brokers = self.kafka.brokers
        else:
            self.coordination = Coordination(os.path.join(root, "coordination"))
            common = ["--coordination", self.coordination.address]
            for name, value in properties.items():
                common += ["--override", f"{name}={value}"]
            self.brokers = []
            for i in range(3):
                data = os.path.join(root, f"broker-{i}")
                os.makedirs(data)
                self.brokers.append(Broker(data, args=["--broker-id", str(i)] + common).start())
        self.admins = [AdminClient({"bootstrap.servers": b.bootstrap, "log_level": 0}) for b in self.brokers]

    @property
    def bootstrap(self):
        return ",".join(b.bootstrap for b in self.brokers)

    def metadata(self, via):
        return self.admins[via].list_topics(timeout=10)

    def settled(self):
        """Every partition led, with three in-sync replicas."""
        try:
            md = self.metadata(0)
        except KafkaException:
            return False
        parts = [p for n, t in md.topics.items() if n.startswith("many-") for p in t.partitions.values()]
        return len(parts) == TOPICS * PARTITIONS and all(p.leader >= 0 and len(p.isrs) == 3 for p in parts)

    def create_topics(self):
        """Creates TOPICS topics `many-<i>` of PARTITIONS partitions, RF 3,
        and waits until every partition has three in-sync replicas."""
        started = time.monotonic()
        futures = self.admins[0].create_topics([NewTopic(f"many-{i}", PARTITIONS, 3) for i in range(TOPICS)],
                                               request_timeout=300)
        for f in futures.values():
            try:
                f.result(300)
            except KafkaException:
                pass  # created, not all led yet: awaited below
        wait_for(self.settled, 600, lambda: "the partitions did not all get three in-sync replicas")
        print(f"{TOPICS} × {PARTITIONS} partitions × RF 3 settled in {time.monotonic() - started:.1f} s", flush=True)

    def stop(self):
        for b in self.brokers:
            b.kill()
        if self.kafka:
            self.kafka.stop()
        else:
            self.coordination.stop()


def led_by(md, broker_id):
    return [(n, p.id) for n, t in md.topics.items() if n.startswith("many-")
            for p in t.partitions.values() if p.leader == broker_id]


def quantiles(seconds):
    s = sorted(seconds)
    return " ".join(f"p{q}={s[int(q / 100 * (len(s) - 1))]:.2f}" for q in (0, 50, 90, 100))


def fail_over(cluster, sigterm):
    md = cluster.metadata(0)
    controller = md.controller_id
    victim = max((i for i in range(3) if i != controller), key=lambda i: len(led_by(md, i)))
    partitions = led_by(md, victim)
    survivor = next(i for i in range(3) if i != victim)
    producer = Producer({"bootstrap.servers": cluster.bootstrap, "acks": ACKS, "linger.ms": 0,
                         "retry.backoff.ms": 20, "retry.backoff.max.ms": 100,
                         "message.timeout.ms": 120_000, "log_level": 0})
    # Warm up: metadata and a connection to every broker.
    for topic, partition in partitions:
        producer.produce(topic, b"warm", partition=partition)
    if producer.flush(60) != 0:
        raise RuntimeError("the warm-up records were not delivered")
    acked = {}

    def delivered(err, msg):
        if err is None:
            acked[(msg.topic(), msg.partition())] = time.monotonic()

    started = time.monotonic()
    if sigterm:
        cluster.brokers[victim].process.terminate()
    else:
        cluster.brokers[victim].kill()
    for topic, partition in partitions:
        producer.produce(topic, b"after", partition=partition, on_delivery=delivered)
    gone = led = None
    while gone is None or led is None:
        producer.poll(0)
        try:
            md = cluster.metadata(survivor)
        except KafkaException:
            continue
        now = time.monotonic()
        if gone is None and victim not in md.brokers:
            gone = now - started
        if led is None and not led_by(md, victim) and all(
                p.leader >= 0 for n, t in md.topics.items() if n.startswith("many-") for p in t.partitions.values()):
            led = now - started
        if now - started > 300:
            raise RuntimeError("no failover within 300 s")
    producer.flush(120)
    if len(acked) != len(partitions):
        raise RuntimeError(f"{len(partitions) - len(acked)} records not acknowledged")
    writable = max(acked.values()) - started
    spread = quantiles(t - started for t in acked.values())
    # The same again, the leaders settled: one record per partition
    # without a failover.
    again = time.monotonic()
    acked.clear()
    for topic, partition in partitions:
        producer.produce(topic, b"again", partition=partition, on_delivery=delivered)
    producer.flush(120)
    if len(acked) != len(partitions):
        raise RuntimeError(f"{len(partitions) - len(acked)} records not acknowledged")
    print(f"  acknowledged after the kill (s): {spread}\n  the same again, no failover (s): "
          f"{quantiles(t - again for t in acked.values())}", flush=True)
    if sigterm:
        cluster.brokers[victim].process.wait(60)
        cluster.brokers[victim].process = None
    cluster.brokers[victim].start()
    wait_for(cluster.settled, 300, lambda: "the restarted broker did not rejoin every ISR")
    return len(partitions), gone, led, writable


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sigterm", action="store_true", help="a controlled shutdown instead of SIGKILL")
    parser.add_argument("--kafka", action="store_true", help="Apache Kafka 3.9 instead of gregor (bench/kafka/fetch.sh)")
    args = parser.parse_args()
    root = tempfile.mkdtemp(prefix="failover-")
    cluster = Cluster(root, args.kafka)
    try:
        cluster.create_topics()
        rows = []
        for r in range(args.rounds):
            rows.append(fail_over(cluster, args.sigterm))
            n, gone, led, writable = rows[-1]
            moved = "" if args.sigterm else f" (controller {led - gone:.2f} s)"
            print(f"round {r + 1}: {n} leaderships; gone {gone:.2f} s, led {led:.2f} s{moved}, "
                  f"writable {writable:.2f} s", flush=True)
        if args.rounds > 1:
            med = lambda i: statistics.median(row[i] for row in rows)
            print(f"median: gone {med(1):.2f} s, led {med(2):.2f} s, writable {med(3):.2f} s")
    finally:
        cluster.stop()
        if os.environ.get("KEEP"):
            print(f"kept: {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
