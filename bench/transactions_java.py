"""Transactional beside idempotent produce with Kafka's Java producer 4.4
(issue 17), in one run, alternating:

    python3 bench/transactions_java.py [--rounds 3] [--records 1000000] [--kafka]

from the repository root, with a release build of gregor
(`cargo build --release -p gregor-server -p gregor-cli`, or
GREGOR_SERVER_BIN) and Kafka's jars (`bench/kafka/fetch.sh 4`, and
`bench/kafka/fetch.sh 4-broker` for `--kafka`).

Each round starts every system afresh — gregor at each level of
`--transaction-versions` (its `transaction.version`: 0 is transactions
v1, where the Java client sends AddPartitionsToTxn and AddOffsetsToTxn
itself; 2 is KIP-890's v2, where the partition leader adds the partition
and every EndTxn bumps the epoch), and with `--kafka` Apache Kafka 4.4 in
KRaft mode (transactions v2 on by default) — in an order that rotates
between rounds, creates a one-partition topic and runs
bench/jvm/TransactionBench.java twice, in alternating order: idempotent
(acks=all, linger.ms=5) and transactional (a commit every
`--per-transaction` records), `--records` records of 100 bytes each
after a warm-up. Prints each run and a Markdown table of medians with the
ratio transactional / idempotent (issue 17's goal: ≥ 90%).
"""
import argparse
import glob
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from bench.kafka import compare, kafka, kraft  # noqa: E402

CLASSES = os.path.join(tempfile.gettempdir(), "gregor-bench-jvm")


def compile_bench():
    """bench/jvm/*.java against the Java client 4.x; the class directory."""
    sources = glob.glob(os.path.join(ROOT, "bench", "jvm", "*.java"))
    subprocess.run(["javac", "-d", CLASSES, "-cp", os.path.join(kafka.LIB["4"], "*"), *sources], check=True)
    return CLASSES


def java_produce(bootstrap, topic, records, mode, per_transaction):
    """records/s of one TransactionBench run."""
    done = kafka.run("TransactionBench", bootstrap, topic, records, 100, mode, per_transaction, version="4",
                     classpath=[CLASSES], timeout=900)
    return int(next(line.split()[1] for line in done.stdout.splitlines() if line.startswith("records_per_s")))


class Kafka4:
    """Apache Kafka 4.4, one KRaft node."""

    def __init__(self, root):
        self.broker = kraft.KraftBroker(root)

    @property
    def bootstrap(self):
        return self.broker.bootstrap

    def start(self):
        self.broker.start()
        return self

    def close(self):
        self.broker.stop()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--per-transaction", type=int, default=1000)
    parser.add_argument("--transaction-versions", default="0,2", help="gregor's transaction.version levels to run (empty: its default, no override)")
    parser.add_argument("--kafka", action="store_true", help="also Apache Kafka 4.4 (KRaft)")
    parser.add_argument("--dir", default="/var/tmp")
    args = parser.parse_args()
    reason = kafka.missing(("4",)) or (args.kafka and kraft.missing())
    if reason:
        sys.exit(reason)
    compile_bench()
    levels = list(filter(None, args.transaction_versions.split(",")))
    systems = [(f"gregor, transaction.version={level}",
                lambda root, level=level: compare.Gregor(root, overrides=[f"transaction.version={level}"]))
               for level in levels] or [("gregor", compare.Gregor)]
    if args.kafka:
        systems.append(("Kafka 4.4", Kafka4))
    results = {}
    for round_ in range(args.rounds):
        shift = round_ % len(systems)
        for name, make in systems[shift:] + systems[:shift]:
            root = tempfile.mkdtemp(prefix="txn-bench-", dir=args.dir)
            broker = make(root)
            try:
                broker.start()
                compare.create_topic(broker.bootstrap, "txn", 1)
                modes = ("idempotent", "transactional") if round_ % 2 == 0 else ("transactional", "idempotent")
                for mode in modes:
                    rate = java_produce(broker.bootstrap, "txn", args.records, mode, args.per_transaction)
                    results.setdefault((name, mode), []).append(rate)
                    print(f"round {round_ + 1} {name} {mode}: {rate:,} records/s", flush=True)
            finally:
                broker.close()
                shutil.rmtree(root, ignore_errors=True)
    print()
    print("| broker | idempotent | transactional | transactional / idempotent |")
    print("|---|---|---|---|")
    for name, _ in systems:
        idem, txn = results[(name, "idempotent")], results[(name, "transactional")]
        ratios = [t / i for t, i in zip(txn, idem)]
        print(f"| {name} | {statistics.median(idem):,.0f} ({min(idem):,}–{max(idem):,}) | "
              f"{statistics.median(txn):,.0f} ({min(txn):,}–{max(txn):,}) | "
              f"{statistics.median(ratios):.0%} ({min(ratios):.0%}–{max(ratios):.0%}) |")


if __name__ == "__main__":
    main()
