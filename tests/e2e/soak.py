"""The partition soak: the cluster of test_partitions.py (each node in its
own network namespace), the Jepsen workload running throughout, and a
nemesis that for `--minutes` alternates random network faults with leader
SIGKILLs; then everything heals and the checker runs over the whole
history. Prints the counts and the violations; exits 1 on any violation.

    scripts/soak.sh --minutes 30 [--seed S] [--keep DIR]
"""
import argparse
import json
import os
import random
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from jepsen import Workload, verify  # noqa: E402
from netsplit import NsCluster, wait_until  # noqa: E402

TOPIC = "soak"
PARTITIONS = 3


class Nemesis:
    """Random faults on `cluster`, counted."""

    def __init__(self, cluster, rng):
        self.cluster, self.rng = cluster, rng
        self.counts = {"leader kills": 0, "partitions": 0}
        self.log = []

    def note(self, what):
        self.log.append(f"{time.strftime('%H:%M:%S')} {what}")
        print(self.log[-1], flush=True)

    def leader(self, partition):
        up = [b for b in self.cluster.brokers if b.running()]
        return self.cluster.leader(TOPIC, partition, via=up)

    def others(self, broker_id):
        return [b for b in self.cluster.brokers if b.id != broker_id]

    def kill_leader(self):
        partition = self.rng.randrange(PARTITIONS)
        leader = self.leader(partition)
        if leader < 0:
            return
        victim = self.cluster.brokers[leader]
        victim.kill()
        self.counts["leader kills"] += 1
        self.note(f"SIGKILL broker {leader}, leader of partition {partition}")
        try:
            wait_until(lambda: self.cluster.leader(TOPIC, partition, via=self.others(leader)) not in (-1, leader),
                       30, "a new leader")
        except AssertionError as e:
            self.note(str(e))
        time.sleep(self.rng.uniform(0, 2))
        victim.start()
        self.settle()

    def partition_fault(self):
        """One of the network faults of test_partitions.py, held for a few seconds."""
        net = self.cluster.network
        leader = self.leader(self.rng.randrange(PARTITIONS))
        if leader < 0:
            return
        name = f"b{leader}"
        followers = [b.name for b in self.others(leader)]
        kind = self.rng.choice(["split brain", "followers", "controller", "coordination", "one-way",
                                "flap", "netem"])
        hold = self.rng.uniform(4, 10)
        self.note(f"{kind} on broker {leader} for {hold:.1f} s")
        self.counts["partitions"] += 1
        self.counts[kind] = self.counts.get(kind, 0) + 1
        try:
            if kind == "split brain":
                net.isolate(name)
            elif kind == "followers":
                for f in followers:
                    net.cut(name, f)
            elif kind == "controller":
                _, controller = self.cluster.metadata(TOPIC)
                other = f"b{controller}" if controller not in (-1, leader) else followers[0]
                net.cut(name, other)
            elif kind == "coordination":
                net.cut(name, "coord")
            elif kind == "one-way":
                net.cut(name, self.rng.choice(followers + ["coord"]), one_way=True)
            elif kind == "flap":
                end = time.time() + hold
                while time.time() < end:
                    net.cut(name, self.rng.choice(followers + ["coord"]))
                    time.sleep(self.rng.uniform(0.2, 1))
                    net.heal()
                    time.sleep(self.rng.uniform(0.2, 1))
            elif kind == "netem":
                net.degrade(name, loss=self.rng.choice([5, 20, 40]), delay=self.rng.choice([10, 50, 200]), jitter=10)
            if kind != "flap":
                time.sleep(hold)
        finally:
            net.heal()
        self.settle()

    def settle(self):
        """Until every ISR is whole again (a fault at a time, as Jepsen's nemesis schedules do)."""
        before = self.cluster.restarted_expired
        self.cluster.revive()
        if self.cluster.restarted_expired > before:
            self.note("restarted a broker still left out of the cluster 15 s after its session expired "
                      "(the fallback; it should have registered again by itself — finding 1)")
        try:
            self.cluster.wait_healthy(TOPIC, PARTITIONS, timeout=60)
        except AssertionError as e:
            self.note(str(e))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--keep", help="keep the data directories and logs here")
    parser.add_argument("--kills-per-partition", type=int, default=3,
                        help="leader kills between two network faults")
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    print(f"seed {seed}", flush=True)
    rng = random.Random(seed)
    root = args.keep or tempfile.mkdtemp(prefix="gregor-soak-")
    os.makedirs(root, exist_ok=True)
    cluster = NsCluster(root)
    ok = False
    try:
        cluster.create_topic(TOPIC, PARTITIONS)
        workload = Workload(cluster.bootstrap, TOPIC, PARTITIONS).start()
        nemesis = Nemesis(cluster, rng)
        end = time.time() + args.minutes * 60
        while time.time() < end:
            nemesis.partition_fault()
            for _ in range(args.kills_per_partition):
                if time.time() < end:
                    nemesis.kill_leader()
        history = workload.stop()
        problems, counts = verify(cluster, history, TOPIC, PARTITIONS)
        lost = sum(1 for p in problems if p.startswith("lost:"))
        duplicated = sum(1 for p in problems if p.startswith("duplicated:"))
        report = {"seed": seed, "minutes": args.minutes, **nemesis.counts,
                  "brokers restarted after their session expired": cluster.restarted_expired, **counts,
                  "violations": len(problems), "lost (lines)": lost, "duplicated (lines)": duplicated}
        print(json.dumps(report, indent=2))
        for p in problems[:100]:
            print("VIOLATION", p)
        ok = not problems
    finally:
        cluster.close()
        if not args.keep and ok:
            shutil.rmtree(root, ignore_errors=True)
        elif not ok:
            print(f"data and logs kept in {root}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
