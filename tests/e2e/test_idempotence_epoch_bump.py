"""librdkafka duplicates a record across a producer-epoch bump, with a broker
that deduplicates correctly (docs/RELIABILITY.md, finding 2).

An idempotent librdkafka producer has one producer id and epoch for all
partitions. When a partition's request is answered
OUT_OF_ORDER_SEQUENCE_NUMBER while an earlier request of that partition
failed with a retriable error (not head of line: "skipped sequence
numbers"), librdkafka drains every partition, bumps the epoch itself and
renumbers every partition's queued records from sequence 0 — including a
batch of another partition that the broker wrote but never acknowledged
(in flight to a leader that died, or timed out: "possibly persisted").
Re-sent at the new epoch, no broker can tell it from a new batch
(confluentinc/librdkafka#4953, against Apache Kafka; the fix proposed in
#4972 retries without bumping).

A Kafka-aware proxy stages it on one gregor broker: the answer to a
written batch of partition 1 is dropped (the client times the request out
and re-queues the batch), and a byte of a batch of partition 0 is flipped
(the broker refuses it, CORRUPT_MESSAGE, a retriable error, before judging
its sequence) while the next batch of partition 0 is in flight (the broker
answers it OUT_OF_ORDER_SEQUENCE_NUMBER, as Kafka does: its predecessor is
missing). Without the second part the retry is recognised and the record is
written once.
"""
import threading
import time

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic
from jepsen import read_final

from conftest import Broker
from frame_proxy import FrameProxy

TOPIC = "bump"


class StagingProxy(FrameProxy):
    """A TCP proxy to a broker that parses Kafka frames: it flips a byte of
    the first Produce request holding `poison` and holds the answer to it
    for `hold` seconds, and drops the broker's answer to the first Produce
    request holding `unanswered`."""

    def __init__(self, target_port, poison, unanswered, hold=1.0):
        self.poison, self.unanswered, self.hold = poison, unanswered, hold
        self.poisoned = self.dropped = False
        self.marking = threading.Lock()
        super().__init__(target_port)

    def request(self, frame, conn):
        if int.from_bytes(frame[4:6], "big") != 0:  # Produce
            return frame
        corr = frame[8:12]
        with self.marking:
            at = frame.find(self.poison) if self.poison else -1
            if at >= 0 and not self.poisoned:
                self.poisoned = True
                conn.setdefault("hold", set()).add(corr)
                frame = frame[:at] + bytes([frame[at] ^ 1]) + frame[at + 1:]
            if frame.find(self.unanswered) >= 0 and not self.dropped:
                self.dropped = True
                conn.setdefault("drop", set()).add(corr)
        return frame

    def response(self, frame, conn):
        corr = frame[4:8]
        if corr in conn.get("drop", ()):
            return None
        if corr in conn.get("hold", ()):
            time.sleep(self.hold)
        return frame


def staged(tmp_path, bump):
    """Runs the staging (with the epoch bump or without): the delivery
    reports and both partitions' values."""
    broker = Broker(str(tmp_path))
    proxy = StagingProxy(broker.port, poison=b"poison" if bump else None, unanswered=b"dup-me")
    broker.env["GREGOR_ADVERTISED_LISTENERS"] = f"PLAINTEXT://127.0.0.1:{proxy.port}"
    broker.start()
    bootstrap = f"127.0.0.1:{proxy.port}"
    try:
        admin = AdminClient({"bootstrap.servers": bootstrap})
        admin.create_topics([NewTopic(TOPIC, num_partitions=2, replication_factor=1)])[TOPIC].result(30)
        producer = Producer({
            "bootstrap.servers": bootstrap,
            "enable.idempotence": True,
            "linger.ms": 0,
            "batch.num.messages": 1,  # a batch, and a request, per record
            "socket.timeout.ms": 3000,  # the unanswered request times out after this
            "message.timeout.ms": 60000,
            "retry.backoff.ms": 100,
        })
        reports = []

        def delivered(err, msg):
            reports.append((msg.partition(), msg.value().decode(), err.name() if err else None))

        for p in (0, 1):
            producer.produce(TOPIC, value=f"warm-{p}".encode(), partition=p, on_delivery=delivered)
        assert producer.flush(30) == 0
        producer.produce(TOPIC, value=b"dup-me", partition=1, on_delivery=delivered)
        producer.poll(0.3)  # written; its answer is dropped
        producer.produce(TOPIC, value=b"poison", partition=0, on_delivery=delivered)
        producer.produce(TOPIC, value=b"next", partition=0, on_delivery=delivered)
        assert producer.flush(60) == 0
        logs = read_final(bootstrap, TOPIC, 2, timeout=30)
        return reports, list(logs[0].values()), list(logs[1].values())
    finally:
        proxy.close()
        broker.stop()


def test_a_retry_of_an_unanswered_batch_is_written_once(tmp_path):
    reports, p0, p1 = staged(tmp_path, bump=False)
    assert all(err is None for _, _, err in reports), reports
    assert p1 == ["warm-1", "dup-me"]
    assert p0 == ["warm-0", "poison", "next"]


def test_librdkafka_writes_an_unanswered_batch_twice_across_an_epoch_bump(tmp_path):
    reports, p0, p1 = staged(tmp_path, bump=True)
    # The application is told once that the record was delivered ...
    assert [r for r in reports if r[1] == "dup-me"] == [(1, "dup-me", None)], reports
    assert all(err is None for _, _, err in reports), reports
    assert p0 == ["warm-0", "poison", "next"]
    # ... and the log holds it twice: the original (epoch 0) and the
    # re-send as a new batch (epoch 1, sequence 0). If this fails with one
    # copy, librdkafka no longer bumps the epoch here (#4972 merged): the
    # soak's checker may then count any duplicate as gregor's.
    assert p1 == ["warm-1", "dup-me", "dup-me"], p1
