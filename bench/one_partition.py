"""One partition measured from outside (issue 21): gregor beside the
client's ceiling, the disk's page-cache write speed and a Kafka-compatible
peer that keeps records in RAM, alternating in one run.

    python3 bench/one_partition.py [--rounds 3] [--records 2000000]

from the repository root, on an otherwise idle machine, with a release
build of gregor (`cargo build --release -p gregor-server -p gregor-cli`, or
GREGOR_SERVER_BIN / GREGOR_BIN). The RAM peer is Nisshi (formerly Tansu)
with its memory storage engine, given by NISSHI_BIN (its release build:
`cargo build --release -p nisshi --no-default-features --features
dynostore` in a checkout of github.com/tansu-io/tansu); without it the
peer's rows stay empty.

Every round measures, in turn (the systems' order alternating between
rounds): librdkafka's `rdkafka_performance` (1 partition, acks=1,
linger.ms=5; compare.py builds it) producing 100 B and 1 KiB records
against librdkafka's in-process mock broker (the client's ceiling), a
`dd` of 1 GB into a new file on --dir (the page cache's write speed, what
bounds 1 KiB produce to a broker that writes), and each broker started
afresh: produce 100 B, consume them from the beginning, produce 1 KiB,
consume them; consume the 100 B records again asking for 8 MiB per
partition fetch (the peer answers ~6 MB where the client asks for 1 MiB;
gregor, as Kafka, keeps to what is asked). Prints every round's numbers and its ratios — gregor / the
ceiling, gregor / the RAM peer, gregor's 1 KiB MB/s / dd's — then their
medians, for docs/PERFORMANCE.md.

    python3 bench/one_partition.py --pairs 10 [--records 4000000]

measures produce 100 B alone: gregor and the ceiling in alternating
pairs, and the ceiling against itself as often — the noise floor a
"≥ 95% of the ceiling in every round" goal meets.
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from bench.kafka import compare, kafka  # noqa: E402

NISSHI = os.environ.get("NISSHI_BIN", "")


class Nisshi:
    """One Nisshi broker with the memory storage engine."""
    name = "ram peer"

    def __init__(self, root):
        self.root = root
        self.port = compare.free_port()
        self.process = None

    @property
    def bootstrap(self):
        return f"127.0.0.1:{self.port}"

    @property
    def pids(self):
        return [self.process.pid]

    def start(self):
        url = f"tcp://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [NISSHI, "broker", "--listener-url", url, "--advertised-listener-url", url,
             "--storage-engine", "memory://nisshi/"],
            stdout=open(os.path.join(self.root, "nisshi.log"), "ab"), stderr=subprocess.STDOUT)
        kafka.wait_for(lambda: kafka.accepts(self.port), 30, lambda: "nisshi not listening")
        return self

    def close(self):
        if self.process:
            self.process.kill()
            self.process.wait()


def dd_mb_per_s(directory, megabytes=1024):
    """MB/s of `dd` writing `megabytes` MiB of zeros into a new file (no
    fsync: the page cache's speed, as the brokers write)."""
    path = os.path.join(directory, "dd.out")
    started = time.monotonic()
    subprocess.run(["dd", "if=/dev/zero", f"of={path}", "bs=1M", f"count={megabytes}"], check=True,
                   capture_output=True)
    elapsed = time.monotonic() - started
    os.unlink(path)
    return megabytes * 1024 * 1024 / 1e6 / elapsed


def measure_broker(broker, records):
    """Produce and consume 100 B and 1 KiB records on one partition; a dict
    of records/s by phase."""
    found = {}
    for size in (100, 1024):
        count = records if size == 100 else records // 4
        topic = f"p{size}"
        compare.create_topic(broker.bootstrap, topic, 1)
        found[f"produce {size}"] = compare.rdkafka_produce(broker.bootstrap, topic, count, size)
        found[f"consume {size}"] = compare.rdkafka_consume(broker.bootstrap, topic, count)
    # The RAM peer answers a fetch with ~6 MB of one partition where the
    # client asks for at most max.partition.fetch.bytes (1 MiB), as Kafka
    # and gregor answer: the same consume with the client asking for 8 MiB.
    found["consume 100, 8 MiB fetches"] = compare.rdkafka_consume(
        broker.bootstrap, "p100", records, extra=["-X", f"max.partition.fetch.bytes={8 << 20}"])
    return found


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--records", type=int, default=2_000_000, help="100 B records per produce phase")
    parser.add_argument("--dir", default="/var/tmp", help="where the broker's data and dd's file go")
    parser.add_argument("--pairs", type=int, default=0,
                        help="instead: produce 100 B only, this many alternating pairs (ceiling, gregor) "
                             "and as many (ceiling, ceiling) — the ratio and the noise floor under it")
    args = parser.parse_args()
    if not os.path.exists(compare.SERVER):
        sys.exit(f"no {compare.SERVER}: cargo build --release -p gregor-server")
    if args.pairs:
        compare.build_rdkafka_performance()
        return pairs(args.pairs, args.records, args.dir)
    if NISSHI and not os.path.exists(NISSHI):
        sys.exit(f"no {NISSHI}")
    compare.build_rdkafka_performance()
    rounds = []
    for round_ in range(args.rounds):
        found = {"ceiling": {
            "produce 100": compare.rdkafka_produce(None, "ceiling", args.records, 100),
            "produce 1024": compare.rdkafka_produce(None, "ceiling", args.records // 4, 1024)},
            "dd": dd_mb_per_s(args.dir)}
        systems = [("gregor", lambda root: compare.Gregor(root))]
        if NISSHI:
            systems.append(("ram peer", Nisshi))
        if round_ % 2:
            systems.reverse()
        for name, system in systems:
            root = tempfile.mkdtemp(prefix=f"one-partition-{name.replace(' ', '-')}-", dir=args.dir)
            broker = system(root)
            try:
                broker.start()
                found[name] = measure_broker(broker, args.records)
            finally:
                broker.close()
                shutil.rmtree(root, ignore_errors=True)
        rounds.append(found)
        print(f"round {round_ + 1}: {report(found)}", flush=True)
    print()
    print(table(rounds))


def pairs(count, records, directory):
    """Produce 100 B: `count` pairs of the ceiling and gregor (one broker,
    a new topic each time, the order alternating), then `count` pairs of
    the ceiling against itself. Prints each pair's ratio: how often gregor
    reaches 95% of the ceiling beside how often the ceiling reaches 95% of
    itself."""
    root = tempfile.mkdtemp(prefix="one-partition-pairs-", dir=directory)
    broker = compare.Gregor(root)
    found = {"gregor / ceiling": [], "ceiling / ceiling": []}
    try:
        broker.start()
        for i in range(count):
            compare.create_topic(broker.bootstrap, f"pair-{i}", 1)
            runs = [("ceiling", None, "ceiling"), ("gregor", broker.bootstrap, f"pair-{i}")]
            rate = {name: compare.rdkafka_produce(bootstrap, topic, records, 100)
                    for name, bootstrap, topic in (runs if i % 2 == 0 else runs[::-1])}
            found["gregor / ceiling"].append(rate["gregor"] / rate["ceiling"])
            print(f"pair {i + 1}: ceiling {rate['ceiling']:,}/s, gregor {rate['gregor']:,}/s, "
                  f"{found['gregor / ceiling'][-1]:.2f}", flush=True)
    finally:
        broker.close()
        shutil.rmtree(root, ignore_errors=True)
    for i in range(count):
        first, second = (compare.rdkafka_produce(None, "ceiling", records, 100) for _ in range(2))
        found["ceiling / ceiling"].append(second / first)
        print(f"ceiling pair {i + 1}: {first:,}/s, {second:,}/s, {second / first:.2f}", flush=True)
    print()
    print("| produce 100 B | pairs | median | pairs ≥ 0.95 |")
    print("|---|---|---|---|")
    for label, values in found.items():
        shown = " / ".join(f"{v:.2f}" for v in values)
        print(f"| {label} | {shown} | {statistics.median(values):.2f} | "
              f"{sum(v >= 0.95 for v in values)} of {len(values)} |")


def ratios(found):
    """The round's ratios by name."""
    gregor, ceiling, peer = found["gregor"], found["ceiling"], found.get("ram peer")
    out = {
        "produce 100 B / client ceiling": gregor["produce 100"] / ceiling["produce 100"],
        "produce 1 KiB / client ceiling": gregor["produce 1024"] / ceiling["produce 1024"],
        "produce 1 KiB MB/s / dd MB/s": gregor["produce 1024"] * 1024 / 1e6 / found["dd"],
    }
    if peer:
        for phase, label in (("produce 100", "produce 100 B"), ("consume 100", "consume 100 B"),
                             ("consume 100, 8 MiB fetches", "consume 100 B, 8 MiB fetches"),
                             ("produce 1024", "produce 1 KiB"), ("consume 1024", "consume 1 KiB")):
            out[f"{label} / RAM peer"] = gregor[phase] / peer[phase]
    return out


def report(found):
    """One round in one line."""
    parts = [f"ceiling 100 B {found['ceiling']['produce 100']:,}/s, 1 KiB {found['ceiling']['produce 1024']:,}/s",
             f"dd {found['dd']:.0f} MB/s"]
    for name in ("gregor", "ram peer"):
        if name in found:
            parts.append(f"{name} " + ", ".join(f"{k} {v:,}/s" for k, v in found[name].items()))
    parts.append(", ".join(f"{k} {v:.2f}" for k, v in ratios(found).items()))
    return "; ".join(parts)


def table(rounds):
    """Markdown: every measurement's rounds and median."""
    lines = ["| measurement | rounds | median |", "|---|---|---|"]
    rows = {}
    for found in rounds:
        rows.setdefault("client ceiling, produce 100 B (records/s)", []).append(found["ceiling"]["produce 100"])
        rows.setdefault("client ceiling, produce 1 KiB (records/s)", []).append(found["ceiling"]["produce 1024"])
        rows.setdefault("dd 1 GB (MB/s)", []).append(found["dd"])
        for name in ("gregor", "ram peer"):
            for phase, value in found.get(name, {}).items():
                rows.setdefault(f"{name}, {phase.replace('1024', '1 KiB').replace('100', '100 B')} (records/s)",
                                []).append(value)
        for label, value in ratios(found).items():
            rows.setdefault(label, []).append(value)
    for label, values in rows.items():
        shown = " / ".join(f"{v:,.2f}" if v < 100 else f"{v:,.0f}" for v in values)
        median = statistics.median(values)
        lines.append(f"| {label} | {shown} | {median:,.2f} |" if median < 100 else
                     f"| {label} | {shown} | {median:,.0f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
