"""A mixed workload against a cluster under faults, and the checker of its history.

The workload (`Workload.start()` … `stop()`):
- producers: confluent-kafka, acks=all, idempotence; each writes unique
  values `"<producer>:<seq>"`, seq counting up, to partition seq % N, and
  records what it was acknowledged (partition, offset) and what failed;
- a reader: assigned every partition from offset 0, no group, records
  every (partition, offset, value) it reads;
- a group member: subscribed, commits the offset after what it read every
  few records, synchronously; a monitor reads the group's committed
  offsets (OffsetFetch) every 200 ms and records every value it sees.

The checker (`check(history, final_logs, replica_logs)`) returns the list
of violations:
- lost: an acknowledged value missing from the final log, or at another
  offset than the one acknowledged;
- duplicated: a value twice in the final log;
- reordered: one producer's values out of order in a partition;
- diverged: replicas with different values at the same offset (or of
  different lengths once caught up);
- phantom read: a value a consumer read that is not at that offset in the
  final log (it was read, then vanished);
- offset moved back: a group's committed offset lower than one seen before.
"""
import collections
import os
import re
import subprocess
import threading
import time

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition

from conftest import GREGOR


class History:
    """What the workload saw, appended to by its threads."""

    def __init__(self):
        self.lock = threading.Lock()
        self.acked = {}  # value -> (partition, offset)
        self.failed = collections.Counter()  # error name -> count (records not acknowledged)
        self.sent = 0
        self.fatal = []  # fatal producer errors (each producer is replaced)
        self.read = []  # (partition, offset, value)
        self.committed = []  # (time, {partition: offset}) as the monitor read them
        self.commits = 0  # successful commits by the group member
        self.commit_errors = collections.Counter()


class Workload:
    """Producers, a reader and a group member on `topic` through `bootstrap`."""

    def __init__(self, bootstrap, topic, partitions, producers=2, rate=400, group="jepsen-group"):
        self.bootstrap, self.topic, self.partitions = bootstrap, topic, partitions
        self.producers, self.rate, self.group = producers, rate, group
        self.history = History()
        self.running = threading.Event()
        self.threads = []

    def start(self):
        self.running.set()
        targets = [lambda i=i: self._produce(i) for i in range(self.producers)]
        targets += [self._read, self._member, self._monitor]
        self.threads = [threading.Thread(target=t, daemon=True) for t in targets]
        for t in self.threads:
            t.start()
        return self

    def stop(self, drain=180):
        """Stops producing; waits (up to `drain` s) for every record in flight to be answered."""
        self.drain = drain
        self.running.clear()
        for t in self.threads:
            t.join(drain + 60)
        return self.history

    # -- producers --------------------------------------------------------

    def _new_producer(self):
        return Producer({
            "bootstrap.servers": self.bootstrap,
            "acks": "all",
            "enable.idempotence": True,
            "linger.ms": 5,
            "message.timeout.ms": 120000,
            "retry.backoff.ms": 100,
            "reconnect.backoff.max.ms": 500,
            "topic.metadata.refresh.interval.ms": 1000,
            "socket.timeout.ms": 10000,
        })

    def _produce(self, index):
        h = self.history
        fatal = threading.Event()

        def delivered(err, msg):
            value = msg.value().decode()
            with h.lock:
                if err is None:
                    h.acked[value] = (msg.partition(), msg.offset())
                else:
                    h.failed[err.name()] += 1
                    if err.fatal():
                        fatal.set()

        producer = self._new_producer()
        seq = 0
        interval = self.producers / self.rate
        while self.running.is_set():
            if fatal.is_set():
                # An idempotent producer that met a fatal error (e.g. a
                # sequence gap) can send no more: record it and start anew.
                with h.lock:
                    h.fatal.append(str(producer.flush(0)))
                producer.flush(5)
                producer = self._new_producer()
                fatal.clear()
            value = f"{index}:{seq}"
            try:
                producer.produce(self.topic, value=value.encode(), partition=seq % self.partitions,
                                 on_delivery=delivered)
                with h.lock:
                    h.sent += 1
                seq += 1
            except BufferError:
                pass
            except KafkaException as e:
                with h.lock:
                    h.fatal.append(str(e))
            producer.poll(interval)
        producer.flush(self.drain)
        left = len(producer)
        if left:
            with h.lock:
                h.failed["unanswered"] += left

    # -- consumers --------------------------------------------------------

    def _read(self):
        consumer = Consumer({"bootstrap.servers": self.bootstrap, "group.id": "jepsen-reader",
                             "enable.auto.commit": False, "topic.metadata.refresh.interval.ms": 1000})
        consumer.assign([TopicPartition(self.topic, p, 0) for p in range(self.partitions)])
        while self.running.is_set():
            for m in consumer.consume(500, 0.5):
                if m.error() is None:
                    with self.history.lock:
                        self.history.read.append((m.partition(), m.offset(), m.value().decode()))
        consumer.close()

    def _member(self):
        h = self.history
        consumer = Consumer({"bootstrap.servers": self.bootstrap, "group.id": self.group,
                             "enable.auto.commit": False, "auto.offset.reset": "earliest",
                             "session.timeout.ms": 10000, "topic.metadata.refresh.interval.ms": 1000})
        consumer.subscribe([self.topic])
        since = 0
        while self.running.is_set():
            m = consumer.poll(0.5)
            if m is None or m.error() is not None:
                continue
            since += 1
            if since >= 50:
                since = 0
                try:
                    consumer.commit(asynchronous=False)
                    with h.lock:
                        h.commits += 1
                except KafkaException as e:
                    with h.lock:
                        h.commit_errors[e.args[0].name()] += 1
        try:
            consumer.close()
        except KafkaException:
            pass

    def _monitor(self):
        reader = Consumer({"bootstrap.servers": self.bootstrap, "group.id": self.group,
                           "enable.auto.commit": False})
        tps = [TopicPartition(self.topic, p) for p in range(self.partitions)]
        while self.running.is_set():
            try:
                got = reader.committed(tps, timeout=5)
                seen = {tp.partition: tp.offset for tp in got if tp.offset >= 0 and tp.error is None}
                with self.history.lock:
                    self.history.committed.append((time.time(), seen))
            except KafkaException:
                pass
            time.sleep(0.2)
        reader.close()


# -- the final state --------------------------------------------------------

def read_final(bootstrap, topic, partitions, timeout=120):
    """Every partition's records from offset 0 to its end: {partition: {offset: value}}."""
    logs = {}
    for p in range(partitions):
        consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "jepsen-final",
                             "enable.auto.commit": False, "enable.partition.eof": True})
        consumer.assign([TopicPartition(topic, p, 0)])
        records = {}
        deadline = time.time() + timeout
        while time.time() < deadline:
            m = consumer.poll(1)
            if m is None:
                continue
            if m.error():
                if m.error().code() == KafkaError._PARTITION_EOF:
                    break
                continue
            records[m.offset()] = m.value().decode()
        else:
            raise AssertionError(f"partition {p} not read to its end within {timeout} s")
        consumer.close()
        logs[p] = records
    return logs


RECORD = re.compile(r"^\| offset: (\d+) .* payload: (\S+) headers", re.M)
BATCH = re.compile(r"^baseOffset: (\d+) lastOffset: (\d+) count: \d+ baseSequence: (-?\d+) "
                   r"lastSequence: -?\d+ producerId: (-?\d+) producerEpoch: (-?\d+) ", re.M)


def _dump(data_dir, topic, partition, *flags):
    path = os.path.join(data_dir, "logs", f"{topic}-{partition}")
    if not os.path.isdir(path):
        return None
    return subprocess.run([GREGOR, "dump-log", path, *flags], check=True, capture_output=True, text=True).stdout


def replica_log(data_dir, topic, partition):
    """{offset: value} of one replica's log, read from its files with `gregor dump-log`."""
    out = _dump(data_dir, topic, partition, "--print-records")
    return None if out is None else {int(o): v for o, v in RECORD.findall(out)}


def replica_producers(data_dir, topic, partition):
    """{offset: (producer id, producer epoch, sequence)} of one replica's
    log (its batch headers, with `gregor dump-log`)."""
    out = _dump(data_dir, topic, partition)
    if out is None:
        return None
    producers = {}
    for base, last, seq, pid, epoch in BATCH.findall(out):
        for offset in range(int(base), int(last) + 1):
            producers[offset] = (int(pid), int(epoch), int(seq) + offset - int(base))
    return producers


def duplicate_kind(producers, first, second):
    """What the producer fields of a value's two copies (partition,
    offset) say: written again by a producer that bumped its epoch (the
    client re-sent it as new: librdkafka's epoch bump, RELIABILITY.md
    finding 2), or twice within one epoch (the broker did not recognise a
    retry). Empty when unknown."""
    a, b = (producers.get(p, {}).get(o) for p, o in (first, second))
    if a is None or b is None:
        return ""
    fields = f"producer {a[0]} epoch {a[1]} seq {a[2]}, then producer {b[0]} epoch {b[1]} seq {b[2]}"
    if a[0] == b[0] and a[1] != b[1]:
        return f" ({fields}: re-sent as new after a producer-epoch bump — the client's doing, finding 2)"
    return f" ({fields})"


# -- the checker --------------------------------------------------------------

def check(history, final, replicas, producers=None):
    """The violations of the history against the final logs.

    `final`: {partition: {offset: value}} read from the leaders after healing;
    `replicas`: {partition: {broker: {offset: value}}} from every replica's files;
    `producers`: {partition: {offset: (producer id, epoch, sequence)}}, if
    known, to say how a duplicate came about.
    """
    problems = []
    where = {}
    for p, records in final.items():
        for offset, value in records.items():
            if value in where:
                kind = duplicate_kind(producers or {}, where[value], (p, offset))
                problems.append(f"duplicated: {value} at {where[value]} and {(p, offset)}{kind}")
            where[value] = (p, offset)
    # An acknowledgement without an offset (librdkafka's answer to a
    # retried batch the broker already had) is checked for presence only.
    lost = [(v, at, where.get(v)) for v, at in history.acked.items()
            if where.get(v) is None or (at[1] is not None and where.get(v) != at)]
    for v, at, found in lost[:20]:
        problems.append(f"lost: {v} acknowledged at {at}, in the final log at {found}")
    if len(lost) > 20:
        problems.append(f"lost: … {len(lost)} acknowledged records in all")
    for p, records in final.items():
        last = {}
        for offset in sorted(records):
            producer, seq = records[offset].split(":")
            if int(seq) <= last.get(producer, -1):
                problems.append(f"reordered: partition {p} offset {offset}: {records[offset]} after seq {last[producer]}")
            last[producer] = int(seq)
    for p, by_broker in replicas.items():
        for broker, records in by_broker.items():
            if records != final[p]:
                differ = sorted(o for o in set(records) | set(final[p]) if records.get(o) != final[p].get(o))
                problems.append(f"diverged: partition {p} broker {broker}: {len(differ)} offsets differ from "
                                f"the leader's, first {differ[:3]} "
                                f"({[records.get(o) for o in differ[:3]]} vs {[final[p].get(o) for o in differ[:3]]})")
    phantoms = [(p, o, v) for p, o, v in history.read if final.get(p, {}).get(o) != v]
    for p, o, v in phantoms[:20]:
        problems.append(f"phantom read: {v} read at partition {p} offset {o}, final log has {final.get(p, {}).get(o)}")
    highest = {}
    for t, seen in history.committed:
        for p, offset in seen.items():
            if offset < highest.get(p, -1):
                problems.append(f"offset moved back: partition {p} committed {offset} after {highest[p]}")
            highest[p] = max(offset, highest.get(p, -1))
    return problems


def summary(history, final):
    """Counts for a report."""
    return {
        "sent": history.sent,
        "acknowledged": len(history.acked),
        "acknowledged without an offset": sum(1 for p, o in history.acked.values() if o is None),
        "not acknowledged": dict(history.failed),
        "fatal producer errors": len(history.fatal),
        "in final logs": sum(len(r) for r in final.values()),
        "read": len(history.read),
        "group commits": history.commits,
        "commit errors": dict(history.commit_errors),
    }


def verify(cluster, history, topic, partitions, timeout=120, restart_expired=True):
    """Heals everything, waits for every ISR to be whole, reads the final
    logs (from the leaders and from every replica's files) and checks the
    history against them: (violations, counts)."""
    cluster.revive(restart_expired)
    cluster.wait_healthy(topic, partitions, timeout)
    final = read_final(cluster.bootstrap, topic, partitions, timeout)

    def replica_logs():
        return {p: {b.id: replica_log(b.data_dir, topic, p) for b in cluster.brokers} for p in range(partitions)}

    # The followers fetch what the leaders have: poll until they agree (or
    # the deadline passes, and the checker reports the divergence).
    deadline = time.time() + 30
    replicas = replica_logs()
    while time.time() < deadline and any(r != final[p] for p, by in replicas.items() for r in by.values()):
        time.sleep(0.5)
        replicas = replica_logs()
    producers = {}
    for p in range(partitions):
        for b in cluster.brokers:
            found = replica_producers(b.data_dir, topic, p)
            if found is not None and replicas[p].get(b.id) == final[p]:
                producers[p] = found
                break
    return check(history, final, replicas, producers), summary(history, final)
