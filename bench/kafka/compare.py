"""gregor beside Apache Kafka 3.9, in one run, alternating (issue 18):
`python3 bench/kafka/compare.py [--rounds 3] [--records 2000000]` from the
repository root, on an otherwise idle machine, with a release build of
gregor (`cargo build --release -p gregor-server -p gregor-cli`; or
GREGOR_SERVER_BIN / GREGOR_BIN) and Kafka's jars (bench/kafka/fetch.sh).

Every round starts each broker afresh on the same disk (a temp dir under
--dir, default /var/tmp) and drives both with the same load generators:
librdkafka's `rdkafka_performance` (built once from the librdkafka that
the `rdkafka` crate vendors, into ~/.cache/gregor) and Kafka's own
`kafka-producer-perf-test` / `kafka-consumer-perf-test` (the Java client).
The client's ceiling — the same rdkafka_performance against librdkafka's
in-process mock broker — is measured in each round too. Which broker goes
first alternates between rounds. Prints a Markdown table of medians (and
ranges) with the ratio gregor / Kafka for docs/PERFORMANCE.md.

Scenarios: one broker, one partition, acks=1 — produce 100 B and 1 KiB
records, consume; the broker's CPU-seconds per GB produced and consumed
(/proc/<pid>/stat around each phase) and its RSS idle and after the
writes and after 2 GB written; 1,000 partitions — produce spread over
all, consume all (also the same data for both, and with client and
broker on one core each: `taskset`); cold
start to serving with 10,000 segments (100 partitions × 100 segments,
stopped cleanly, started again: spawn → Metadata naming every leader);
three brokers, RF 3, min.insync.replicas 2, acks=all at 50 MB/s (1 KiB
records: the Java producer's p50/p99/p99.9 latency, which includes its
JVM's first seconds, and librdkafka's with a 5 s warm-up left out;
`--acks-all-mbps`)."""
import argparse
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)
from bench.kafka import kafka  # noqa: E402

RDKAFKA_VERSION = "2.12.1"
CACHE = os.path.expanduser("~/.cache/gregor")
PERF = os.path.join(CACHE, f"librdkafka-{RDKAFKA_VERSION}", "examples", "rdkafka_performance")
SERVER = os.environ.get("GREGOR_SERVER_BIN", os.path.join(ROOT, "target", "release", "gregor-server"))
GREGOR = os.environ.get("GREGOR_BIN", os.path.join(os.path.dirname(SERVER), "gregor"))
TICK = os.sysconf("SC_CLK_TCK")
# What both brokers get, as Kafka 3.9 ships it (kafka.SHIPPED) — gregor's
# defaults are Kafka's; only the timing of rebalances is set for tests.
GREGOR_OVERRIDES = ["--override", "group.initial.rebalance.delay.ms=0"]
JAVA_TOOL_JVM = ["-XX:+UseG1GC"]


def build_rdkafka_performance(tree=os.path.dirname(os.path.dirname(PERF)),
                              configure=("--disable-ssl", "--disable-sasl")):
    """rdkafka_performance from the vendored librdkafka, built once into
    `tree` with the extra `configure` flags; its path."""
    perf = os.path.join(tree, "examples", "rdkafka_performance")
    if os.path.exists(perf):
        return perf
    registry = os.path.expanduser("~/.cargo/registry/src")
    source = next((os.path.join(registry, index, name, "librdkafka") for index in os.listdir(registry)
                   for name in os.listdir(os.path.join(registry, index))
                   if name.startswith("rdkafka-sys-") and name.endswith("+" + RDKAFKA_VERSION)), None)
    if source is None:
        sys.exit(f"no rdkafka-sys +{RDKAFKA_VERSION} in {registry}: run `cargo fetch` first")
    shutil.rmtree(tree, ignore_errors=True)
    shutil.copytree(source, tree)
    for step in (["./configure", "--disable-gssapi", "--disable-zstd", "--disable-lz4-ext", "--disable-curl",
                  *configure], ["make", "-j2", "libs"], ["make", "-C", "examples", "rdkafka_performance"]):
        done = subprocess.run(step, cwd=tree, capture_output=True, text=True)
        if done.returncode != 0:
            sys.exit(f"{' '.join(step)} failed in {tree}:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return perf


# --- the brokers ------------------------------------------------------------

def stat_cpu_seconds(stat):
    """User + system CPU seconds in a `/proc/<pid>/stat` (or a thread's
    `/proc/<pid>/task/<tid>/stat`) line."""
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def cpu_seconds(pids):
    """User + system CPU seconds of the processes so far."""
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as f:
            total += stat_cpu_seconds(f.read())
    return total


def rss_mb(pids):
    """Resident memory of the processes, MB."""
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/status") as f:
            total += next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
    return total / 1024


def free_port():
    return kafka.free_port()


class Gregor:
    """`size` gregor brokers (a shared embedded coordination service when
    more than one) in `root`, with `overrides` (`key=value` server
    properties) beside the benchmark's own."""
    name = "gregor"

    def __init__(self, root, size=1, overrides=()):
        self.root, self.size, self.overrides = root, size, list(overrides)
        self.ports = [free_port() for _ in range(size)]
        self.processes = []
        self.coordination = None
        if size > 1:
            self.coordination_port = free_port()
            store = os.path.join(root, "coordination")
            os.makedirs(store, exist_ok=True)
            self.coordination = subprocess.Popen(
                [GREGOR, "coordination", "--listen", f"127.0.0.1:{self.coordination_port}", "--dir", store],
                stdout=open(os.path.join(root, "coordination.log"), "ab"), stderr=subprocess.STDOUT)
            kafka.wait_for(lambda: kafka.accepts(self.coordination_port), 30, lambda: "no coordination service")

    @property
    def bootstrap(self):
        return ",".join(f"127.0.0.1:{p}" for p in self.ports)

    @property
    def pids(self):
        return [p.pid for p in self.processes]

    def launch(self):
        for i, port in enumerate(self.ports):
            args = [SERVER, "--listeners", f"PLAINTEXT://127.0.0.1:{port}", "--log-dirs",
                    os.path.join(self.root, f"broker-{i}", "logs"), "--broker-id", str(i), *GREGOR_OVERRIDES]
            for override in self.overrides:
                args += ["--override", override]
            if self.coordination:
                args += ["--coordination", f"127.0.0.1:{self.coordination_port}"]
            env = dict(os.environ, GREGOR_METRICS_LISTEN=f"127.0.0.1:{free_port()}")
            os.makedirs(os.path.join(self.root, f"broker-{i}"), exist_ok=True)
            self.processes.append(subprocess.Popen(
                args, env=env, stdout=open(os.path.join(self.root, f"broker-{i}", "server.log"), "ab"),
                stderr=subprocess.STDOUT))
        return self

    def start(self):
        self.launch()
        wait_serving(self.bootstrap, self.size)
        return self

    def stop(self):
        for p in self.processes:
            p.send_signal(signal.SIGTERM)
        for p in self.processes:
            try:
                p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self.processes = []

    def close(self):
        self.stop()
        if self.coordination:
            self.coordination.kill()
            self.coordination.wait()


class Kafka:
    """`size` Kafka 3.9 brokers (-Xmx1g, Kafka's shipped settings) on a
    ZooKeeper of their own, in `root`."""
    name = "kafka"

    def __init__(self, root, size=1):
        self.size = size
        self.zookeeper = kafka.ZooKeeper(os.path.join(root, "zookeeper"))
        self.brokers = [kafka.KafkaBroker(os.path.join(root, f"broker-{i}"), self.zookeeper.hosts, i, size)
                        for i in range(size)]

    @property
    def bootstrap(self):
        return ",".join(b.bootstrap for b in self.brokers)

    @property
    def pids(self):
        return [b.process.pid for b in self.brokers]

    def launch(self):
        for b in self.brokers:
            b.launch()
        return self

    def start(self):
        self.launch()
        for b in self.brokers:
            b.wait_started()
        wait_serving(self.bootstrap, self.size)
        return self

    def stop(self):
        for b in reversed(self.brokers):
            b.stop()

    def close(self):
        self.stop()
        self.zookeeper.stop()


def admin(bootstrap):
    from confluent_kafka.admin import AdminClient
    return AdminClient({"bootstrap.servers": bootstrap})


def wait_serving(bootstrap, brokers, topic=None, partitions=0, timeout=180):
    """Until Metadata names `brokers` brokers and a controller (and every
    partition of `topic` has a leader)."""
    client = admin(bootstrap)

    def ready():
        try:
            md = client.list_topics(topic, timeout=2)
        except Exception:
            return False
        if len(md.brokers) < brokers or md.controller_id < 0:
            return False
        if topic is None:
            return True
        t = md.topics.get(topic)
        return t is not None and t.error is None and len(t.partitions) == partitions \
            and all(p.leader >= 0 for p in t.partitions.values())

    kafka.wait_for(ready, timeout, lambda: f"{bootstrap} not serving within {timeout} s", 0.02)


def create_topic(bootstrap, name, partitions, replication=1, brokers=1, **config):
    from confluent_kafka.admin import NewTopic
    client = admin(bootstrap)  # kept until the answer: a dropped client ends its requests
    futures = client.create_topics(
        [NewTopic(name, partitions, replication, config={k.replace("_", "."): str(v) for k, v in config.items()})])
    futures[name].result(120)
    wait_serving(bootstrap, brokers, name, partitions)


# --- the load generators -----------------------------------------------------

def rdkafka_produce(bootstrap, topic, records, size, partition=0, extra=()):
    """rdkafka_performance producing `records` of `size` bytes (acks=1,
    linger.ms=5); records/s."""
    args = [PERF, "-P", "-t", topic, "-s", str(size), "-c", str(records), "-a", "1", "-X", "linger.ms=5",
            *extra]
    args += ["-p", str(partition)] if partition is not None else []
    args += ["-b", bootstrap] if bootstrap else ["-X", "test.mock.num.brokers=1"]
    return produced_rate(subprocess.run(args, capture_output=True, text=True, timeout=600), records)


def produced_rate(done, records):
    """Records/s of a finished rdkafka_performance producer (a
    CompletedProcess) that had to deliver `records`. Exit code 1 with
    every record delivered passes: its count of records produced can come
    out one short of the count delivered after retried enqueues ("produce
    failures"); what counts is delivery."""
    out = done.stdout
    summaries = re.findall(r"(\d+) delivered .* in (\d+)ms: (\d+) msgs/s", out)
    delivered = bool(summaries) and int(summaries[-1][0]) == records
    if done.returncode not in ((0, 1) if delivered else (0,)):
        raise RuntimeError(f"rdkafka_performance exited with {done.returncode}:\n{out[-2000:]}\n{done.stderr[-2000:]}")
    if not delivered:
        raise RuntimeError(f"rdkafka_performance produced short:\n{out[-2000:]}")
    return int(summaries[-1][2])


def rdkafka_consume(bootstrap, topic, records, partition=0, cpus=None, extra=()):
    """rdkafka_performance reading `records` from the beginning of one
    partition (or, partition None, of all as a group), on the CPUs `cpus`
    (a taskset list) if given; records/s."""
    args = [PERF, "-C", "-t", topic, "-c", str(records), "-b", bootstrap, "-o", "beginning", *extra]
    if cpus is not None:
        args = ["taskset", "-c", cpus, *args]
    if partition is None:
        args += ["-G", f"bench-{time.time_ns()}", "-X", "auto.offset.reset=earliest"]
    else:
        args += ["-p", str(partition)]
    done = subprocess.run(args, capture_output=True, text=True, timeout=600)
    out = done.stdout
    if done.returncode != 0:
        raise RuntimeError(f"rdkafka_performance exited with {done.returncode}:\n{out[-2000:]}\n{done.stderr[-2000:]}")
    summaries = re.findall(r"(\d+) messages \(\d+ bytes\) consumed in (\d+)ms: (\d+) msgs/s", out)
    if not summaries or int(summaries[-1][0]) < records:
        raise RuntimeError(f"rdkafka_performance consumed short:\n{out[-2000:]}")
    return int(summaries[-1][2])


def rdkafka_latency(bootstrap, topic, rate, seconds, size, warmup=5):
    """rdkafka_performance producing `size`-byte records at `rate`/s, acks=all,
    linger.ms=5, for `warmup` + `seconds` s, each record's send-to-delivery
    latency written to a file (`-l -A`); the p50/p99/p99.9 of the records
    after the warm-up, ms."""
    with tempfile.NamedTemporaryFile("r", suffix=".latency") as out:
        args = [PERF, "-P", "-t", topic, "-p", "0", "-s", str(size), "-c", str(rate * (seconds + warmup)),
                "-r", str(rate), "-a", "-1", "-X", "linger.ms=5", "-l", "-A", out.name, "-b", bootstrap]
        done = subprocess.run(args, capture_output=True, text=True, timeout=seconds + warmup + 120)
        if done.returncode != 0:
            raise RuntimeError(f"rdkafka_performance exited with {done.returncode}:\n{done.stdout[-2000:]}")
        micros = [int(line) for line in out.read().split()]
    measured = sorted(micros[rate * warmup:])
    if len(measured) < rate * seconds * 0.9:
        raise RuntimeError(f"rdkafka_performance: {len(micros)} latencies for {rate * (seconds + warmup)} records")
    return tuple(measured[min(len(measured) - 1, int(q * len(measured)))] / 1000 for q in (0.5, 0.99, 0.999))


def fill_evenly(bootstrap, topic, partitions, records, size=100):
    """`records` of `size` bytes spread evenly, partition after partition
    (so each partition holds the same few large batches, whatever the
    broker's speed): the same data for both brokers, unlike the sticky
    partitioner's, which depends on timing."""
    from confluent_kafka import Producer
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "acks": 1})
    value = b"x" * size
    for partition in range(partitions):
        for _ in range(records // partitions):
            while True:
                try:
                    producer.produce(topic, value, partition=partition)
                    break
                except BufferError:
                    producer.poll(0.01)
        producer.poll(0)
    if producer.flush(120) != 0:
        raise RuntimeError(f"{topic}: records left unsent")


class OneCoreEach:
    """Broker processes (every thread) on CPU 1 while the block runs, so a
    client run under `taskset -c 0` has CPU 0 to itself: client and broker
    on one core each, as if on separate machines."""

    def __init__(self, pids):
        self.pids = pids

    def __enter__(self):
        self._set("1")
        return self

    def __exit__(self, *exc):
        self._set(",".join(map(str, sorted(os.sched_getaffinity(0)))))

    def _set(self, cpus):
        for pid in self.pids:
            subprocess.run(["taskset", "-a", "-p", "-c", cpus, str(pid)], check=True, capture_output=True)


def java_tool(name, *args, timeout=600):
    command = kafka.java(kafka.TOOLS[name], *args, heap="1g", jvm=JAVA_TOOL_JVM)
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"{name} exited with {done.returncode}:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return done.stdout


def java_produce(bootstrap, topic, records, size, acks="1", throughput=-1):
    """kafka-producer-perf-test: (records/s, p50, p99, p99.9 ms)."""
    out = java_tool("kafka-producer-perf-test", "--topic", topic, "--num-records", records, "--record-size", size,
                    "--throughput", throughput, "--producer-props", f"bootstrap.servers={bootstrap}",
                    f"acks={acks}", "linger.ms=5")
    m = re.search(r"(\d+) records sent, ([\d.]+) records/sec .* ([\d.]+) ms 50th, [\d.]+ ms 95th, ([\d.]+) ms 99th, "
                  r"([\d.]+) ms 99.9th", out)
    if not m or int(m.group(1)) != records:
        raise RuntimeError(f"kafka-producer-perf-test:\n{out[-2000:]}")
    return float(m.group(2)), float(m.group(3)), float(m.group(4)), float(m.group(5))


def java_consume(bootstrap, topic, records):
    """kafka-consumer-perf-test (a group, every partition): records/s while
    fetching (its fetch.nMsg.sec, the group join left out)."""
    out = java_tool("kafka-consumer-perf-test", "--bootstrap-server", bootstrap, "--topic", topic,
                    "--messages", records, "--group", f"bench-{time.time_ns()}", "--timeout", 60000)
    values = out.strip().splitlines()[-1].split(", ")
    return float(values[9])


# --- the scenarios -----------------------------------------------------------

class Results:
    """Every measurement by (scenario, system)."""

    def __init__(self):
        self.values = {}
        self.order = []

    def add(self, scenario, system, value, unit, better="higher"):
        if scenario not in self.order:
            self.order.append(scenario)
        self.values.setdefault(scenario, {"unit": unit, "better": better}).setdefault(system, []).append(value)
        print(f"  {scenario} [{system}]: {value:,.2f} {unit}", flush=True)

    def table(self):
        lines = ["| measurement | gregor | Kafka 3.9 | gregor / Kafka | client ceiling |", "|---|---|---|---|---|"]

        def show(vs):
            if not vs:
                return "—"
            med = statistics.median(vs)
            return f"{med:,.1f} ({min(vs):,.1f}–{max(vs):,.1f})" if len(vs) > 1 else f"{med:,.1f}"

        for scenario in self.order:
            v = self.values[scenario]
            g, k, c = v.get("gregor", []), v.get("kafka", []), v.get("ceiling", [])
            ratio = f"{statistics.median(g) / statistics.median(k):.2f}×" if g and k and statistics.median(k) else "—"
            ceiling = show(c)
            if c and g:
                ceiling += f"; gregor at {100 * statistics.median(g) / statistics.median(c):.0f}%"
            lines.append(f"| {scenario} ({v['unit']}, {v['better']} is better) | {show(g)} | {show(k)} | {ratio} | "
                         f"{ceiling} |")
        return "\n".join(lines)


def one_partition(system, results, records):
    """One broker, one partition, acks=1: produce 100 B and 1 KiB, consume;
    CPU per GB, RSS."""
    broker = system.start()
    b, pids = broker.bootstrap, broker.pids
    try:
        time.sleep(2)
        results.add("RSS idle", system.name, rss_mb(pids), "MB", "lower")
        for size, label in ((100, "100 B"), (1024, "1 KiB")):
            topic = f"p{size}"
            count = records if size == 100 else records // 4
            create_topic(b, topic, 1)
            cpu = cpu_seconds(pids)
            rate = rdkafka_produce(b, topic, count, size)
            gb = count * size / 1e9
            results.add(f"produce {label}, acks=1, librdkafka", system.name, rate, "records/s")
            results.add(f"CPU per GB produced ({label})", system.name, (cpu_seconds(pids) - cpu) / gb, "CPU-s",
                        "lower")
            cpu = cpu_seconds(pids)
            rate = rdkafka_consume(b, topic, count)
            results.add(f"consume {label}, librdkafka", system.name, rate, "records/s")
            results.add(f"CPU per GB consumed ({label})", system.name, (cpu_seconds(pids) - cpu) / gb, "CPU-s",
                        "lower")
        create_topic(b, "java", 1)
        rate, *_ = java_produce(b, "java", records, 100)
        results.add("produce 100 B, acks=1, Java client", system.name, rate, "records/s")
        results.add("consume 100 B, Java client", system.name, java_consume(b, "java", records), "records/s")
        results.add("RSS after the writes", system.name, rss_mb(pids), "MB", "lower")
        # Up to 2 GB written in all: 1 KiB records into one more partition.
        written = records * 100 + records // 4 * 1024 + records * 100
        if written < 2e9:
            create_topic(b, "fill", 1)
            rdkafka_produce(b, "fill", int((2e9 - written) / 1024), 1024)
        results.add("RSS after 2 GB written", system.name, rss_mb(pids), "MB", "lower")
    finally:
        broker.stop()


def many_partitions(system, results, records):
    """One broker, 1,000 partitions: produce spread over all (no key: the
    sticky partitioner), consume all as a group; then the same data for
    both brokers (`fill_evenly`) consumed as a group, sharing both cores
    with the broker and on one core each; the broker's CPU per GB of that."""
    broker = system.start()
    b, pids = broker.bootstrap, broker.pids
    try:
        create_topic(b, "wide", 1000)
        results.add("produce 100 B over 1,000 partitions", system.name,
                    rdkafka_produce(b, "wide", records, 100, partition=None), "records/s")
        results.add("consume 1,000 partitions (group)", system.name,
                    rdkafka_consume(b, "wide", records, partition=None), "records/s")
        create_topic(b, "even", 1000)
        fill_evenly(b, "even", 1000, records)
        cpu = cpu_seconds(pids)
        results.add("consume 1,000 partitions (group), same data for both", system.name,
                    rdkafka_consume(b, "even", records, partition=None), "records/s")
        results.add("CPU per GB consumed (1,000 partitions)", system.name,
                    (cpu_seconds(pids) - cpu) / (records * 100 / 1e9), "CPU-s", "lower")
        # librdkafka stops fetching for fetch.queue.backoff.ms (1 s) when
        # a response overfills its prefetch queue (queued.max.messages.kbytes).
        results.add("same, the client's fetch.queue.backoff.ms=10", system.name,
                    rdkafka_consume(b, "even", records, partition=None, extra=["-X", "fetch.queue.backoff.ms=10"]),
                    "records/s")
        with OneCoreEach(pids):
            results.add("same, client and broker on one core each", system.name,
                        rdkafka_consume(b, "even", records, partition=None, cpus="0"), "records/s")
    finally:
        broker.stop()


def cold_start(system, results):
    """100 partitions × ~100 one-batch segments, stopped cleanly; the time
    from spawning the broker to Metadata naming every leader."""
    broker = system.start()
    try:
        create_topic(broker.bootstrap, "cold", 100, segment_bytes=2048)  # one 1 KiB batch each
        rdkafka_produce(broker.bootstrap, "cold", 10_000, 1024, partition=None,
                        extra=["-X", "batch.num.messages=1", "-X", "linger.ms=0"])
    finally:
        broker.stop()
    started = time.monotonic()
    broker.launch()
    try:
        wait_serving(broker.bootstrap, 1, "cold", 100)
        results.add("cold start, 10,000 segments", system.name, time.monotonic() - started, "s", "lower")
    finally:
        broker.stop()


def acks_all(system, results, seconds, mbps):
    """3 brokers, RF 3, min.insync.replicas 2, acks=all at `mbps` MB/s
    (1 KiB records, the Java producer's latencies)."""
    cluster = system.start()
    try:
        create_topic(cluster.bootstrap, "rf3", 1, 3, 3, min_insync_replicas=2)
        rate = mbps * 1024
        _, p50, p99, p999 = java_produce(cluster.bootstrap, "rf3", rate * seconds, 1024, acks="all", throughput=rate)
        results.add(f"acks=all {mbps} MB/s p50 (3 brokers)", system.name, p50, "ms", "lower")
        results.add(f"acks=all {mbps} MB/s p99 (3 brokers)", system.name, p99, "ms", "lower")
        results.add(f"acks=all {mbps} MB/s p99.9 (3 brokers)", system.name, p999, "ms", "lower")
        p50, p99, p999 = rdkafka_latency(cluster.bootstrap, "rf3", rate, seconds, 1024)
        for label, value in (("p50", p50), ("p99", p99), ("p99.9", p999)):
            results.add(f"acks=all {mbps} MB/s {label}, librdkafka after a 5 s warm-up", system.name, value, "ms",
                        "lower")
    finally:
        cluster.stop()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--records", type=int, default=2_000_000, help="100 B records per produce phase")
    parser.add_argument("--acks-all-seconds", type=int, default=20)
    parser.add_argument("--acks-all-mbps", type=int, default=50,
                        help="the acks=all load (MB/s of 1 KiB records); 3 brokers and the Java producer on 2 "
                             "cores saturate below 50, where the percentiles measure queueing")
    parser.add_argument("--dir", default="/var/tmp", help="where the brokers' data goes (same disk for both)")
    parser.add_argument("--only", default="", help="comma-separated: one,many,cold,acks_all")
    args = parser.parse_args()
    reason = kafka.missing()
    if reason:
        sys.exit(reason)
    for binary in (SERVER, GREGOR):
        if not os.path.exists(binary):
            sys.exit(f"no {binary}: cargo build --release -p gregor-server -p gregor-cli")
    build_rdkafka_performance()
    only = set(filter(None, args.only.split(",")))
    results = Results()
    for round_ in range(args.rounds):
        print(f"round {round_ + 1}", flush=True)
        for size, label in ((100, "100 B"), (1024, "1 KiB")):
            results.add(f"produce {label}, acks=1, librdkafka", "ceiling",
                        rdkafka_produce(None, "ceiling", args.records if size == 100 else args.records // 4, size),
                        "records/s")
        systems = (Gregor, Kafka) if round_ % 2 == 0 else (Kafka, Gregor)
        for system in systems:
            for scenario, size, run in (
                    ("one", 1, lambda s: one_partition(s, results, args.records)),
                    ("many", 1, lambda s: many_partitions(s, results, args.records)),
                    ("cold", 1, lambda s: cold_start(s, results)),
                    ("acks_all", 3, lambda s: acks_all(s, results, args.acks_all_seconds, args.acks_all_mbps))):
                if only and scenario not in only:
                    continue
                root = tempfile.mkdtemp(prefix=f"compare-{system.name}-", dir=args.dir)
                instance = system(root, size)
                try:
                    run(instance)
                finally:
                    instance.close()
                    shutil.rmtree(root, ignore_errors=True)
    print()
    print(results.table())


if __name__ == "__main__":
    main()
