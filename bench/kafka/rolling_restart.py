"""The rolling-restart measurement of tests/e2e/test_lifecycle.py against a
3-broker Kafka 3.9 (ZooKeeper mode), for docs/PERFORMANCE.md:
`python3 bench/kafka/rolling_restart.py` from the repository root."""
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
sys.path.insert(0, ROOT)
from bench.kafka import kafka  # noqa: E402
import test_lifecycle as tl  # noqa: E402

cl = kafka.KafkaCluster(3, overrides={"offsets.topic.num.partitions": 3, "controlled.shutdown.retry.backoff.ms": 500})
try:
    admin = tl.create_topic(cl.bootstrap); tl.wait_fully_replicated(admin, timeout=120)
    load = tl.Load(cl.bootstrap); load.start(); time.sleep(3)
    windows = []
    for i, b in enumerate(cl.brokers):
        since = time.monotonic(); b.stop(); b.start(); tl.wait_fully_replicated(admin, timeout=120)
        windows.append((i, since, time.monotonic())); time.sleep(1)
    load.stopping.set(); load.join(180)
    print("errors", len(load.errors), "acked", sum(len(a) for a in load.acked.values()))
    print("kafka gaps (ms):", [(i, round(load.longest_gap_ms(s, e))) for i, s, e in windows])
finally:
    cl.stop()
