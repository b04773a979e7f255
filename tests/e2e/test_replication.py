"""A 3-broker cluster (sharing the embedded coordination service, then a
real ZooKeeper): a topic with replication factor 3 and
min.insync.replicas=2, confluent-kafka producing with acks=all and
idempotence while the partition leader is SIGKILLed (and restarted)
several times — each time just after its followers were frozen for a
moment (SIGSTOP), so the leader holds records no follower has: acks=all
must not have acknowledged them. Every acknowledged record must then be
on every in-sync replica exactly once, in the same order, and readable by
a consumer."""
import os
import re
import signal
import subprocess
import threading
import time

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from conftest import GREGOR, Broker, Coordination, ZooKeeper, consume_all
from test_metrics import samples, scrape

RECORDS = 30_000
KILLS = 3
TOPIC = "replicated"


class Cluster:
    def __init__(self, root, coordination_args):
        common = coordination_args + [
            # Brokers found dead within seconds, not the default 18 s.
            "--override", "zookeeper.session.timeout.ms=3000",
            "--override", "offsets.topic.num.partitions=3",
        ]
        self.brokers = [
            Broker(os.path.join(root, f"broker-{i}"), args=["--broker-id", str(i)] + common) for i in range(3)
        ]
        for b in self.brokers:
            os.makedirs(b.data_dir, exist_ok=True)
            b.start()

    @property
    def bootstrap(self):
        return ",".join(b.bootstrap for b in self.brokers)

    def partition(self, admin):
        return admin.list_topics(TOPIC, timeout=10).topics[TOPIC].partitions[0]

    def wait_for(self, admin, check, what, timeout=60):
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                p = self.partition(admin)
                if p.leader >= 0 and check(p):
                    return p
            except Exception:  # metadata not there yet
                pass
            time.sleep(0.2)
        raise AssertionError(f"timed out waiting for {what}")

    def stop(self):
        for b in self.brokers:
            b.kill()


def replica_values(broker):
    """The record values of the partition in one broker's log, read offline."""
    out = subprocess.run(
        [GREGOR, "dump-log", os.path.join(broker.data_dir, "logs", f"{TOPIC}-0"), "--print-records"],
        check=True, capture_output=True, text=True,
    ).stdout
    return [int(m.group(1)) for m in re.finditer(r"^\| offset: \d+ .* payload: (\d+) headers", out, re.M)]


def run_scenario(cluster):
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
    futures = admin.create_topics([NewTopic(TOPIC, 1, 3, config={"min.insync.replicas": "2"})])
    futures[TOPIC].result(30)
    cluster.wait_for(admin, lambda p: len(p.isrs) == 3, "a leader and a full ISR")

    producer = Producer({
        "bootstrap.servers": cluster.bootstrap,
        "acks": "all",
        "enable.idempotence": True,
        "linger.ms": 5,
        "message.timeout.ms": 300000,
        "retry.backoff.ms": 100,
        "reconnect.backoff.max.ms": 500,
        "topic.metadata.refresh.interval.ms": 1000,
    })
    acked, failures = [], []

    def delivered(err, msg):
        if err is None:
            acked.append(int(msg.value()))
        else:
            failures.append(err)

    killed = []

    def kill_leaders():
        for _ in range(KILLS):
            time.sleep(1.5)
            p = cluster.wait_for(admin, lambda p: len(p.isrs) == 3, "the ISR to be whole again", timeout=120)
            leader = p.leader
            followers = [cluster.brokers[b].process for b in p.isrs if b != leader]
            for f in followers:
                f.send_signal(signal.SIGSTOP)
            time.sleep(0.7)  # the leader takes records its followers lack
            cluster.brokers[leader].kill()
            for f in followers:
                f.send_signal(signal.SIGCONT)
            killed.append(leader)
            # A new leader from the ISR takes over…
            cluster.wait_for(admin, lambda p: p.leader not in (-1, leader), "a new leader", timeout=60)
            time.sleep(1)
            # …and the old one comes back and catches up.
            cluster.brokers[leader].start()

    killer = threading.Thread(target=kill_leaders)
    killer.start()
    for i in range(RECORDS):
        while True:
            try:
                producer.produce(TOPIC, value=b"%d" % i, on_delivery=delivered)
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
        if i % 100 == 0:
            time.sleep(0.01)  # spread the records over the kills
        if i == RECORDS - 1000:
            killer.join()  # the last records after every kill
    killer.join()
    assert producer.flush(300) == 0, "records left undelivered"
    assert not failures, failures[:5]
    assert len(killed) == KILLS
    assert sorted(acked) == list(range(RECORDS))

    final = cluster.wait_for(admin, lambda p: len(p.isrs) == 3, "every replica back in sync", timeout=120)
    # Every acknowledged record exactly once, in produce order, on every
    # in-sync replica (idempotence keeps the order through retries).
    time.sleep(2)  # followers fetch what the leader has
    for broker_id in final.isrs:
        values = replica_values(cluster.brokers[broker_id])
        assert values == list(range(RECORDS)), (
            f"broker {broker_id}: {len(values)} records, {len(values) - len(set(values))} duplicates"
        )
    # And a consumer reads them all from the leader.
    consumed = [int(m.value()) for m in consume_all(cluster.bootstrap, TOPIC, 1, RECORDS, timeout=120)]
    assert consumed == list(range(RECORDS))
    # The leaders' metrics saw followers drop out and come back.
    families = [scrape(b) for b in cluster.brokers]
    shrinks = sum(samples(f["gregor_isr_shrinks"], "gregor_isr_shrinks_total")[0] for f in families)
    expands = sum(samples(f["gregor_isr_expands"], "gregor_isr_expands_total")[0] for f in families)
    assert shrinks >= 1 and expands >= 1, (shrinks, expands)
    under = sum(samples(f["gregor_under_replicated_partitions"], "gregor_under_replicated_partitions")[0]
                for f in families)
    assert under == 0
    # The followers fetch through sessions (KIP-227) with their leaders.
    sessions = sum(samples(f["gregor_fetch_sessions"], "gregor_fetch_sessions")[0] for f in families)
    assert sessions >= 2, sessions


@pytest.fixture
def embedded_cluster(tmp_path):
    coordination = Coordination(str(tmp_path / "coordination"))
    cluster = Cluster(str(tmp_path), ["--coordination", coordination.address])
    yield cluster
    cluster.stop()
    coordination.stop()


@pytest.fixture
def zookeeper_cluster(tmp_path):
    zookeeper = ZooKeeper(str(tmp_path / "zookeeper"))
    cluster = Cluster(str(tmp_path), ["--zookeeper", zookeeper.hosts])
    yield cluster
    cluster.stop()
    zookeeper.stop()


def test_leader_kills_lose_nothing_embedded(embedded_cluster):
    run_scenario(embedded_cluster)


def test_leader_kills_lose_nothing_zookeeper(zookeeper_cluster):
    run_scenario(zookeeper_cluster)


def test_a_topic_deleted_while_a_replica_is_down_stays_deleted(embedded_cluster):
    cluster = embedded_cluster
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
    admin.create_topics([NewTopic(TOPIC, 1, 3)])[TOPIC].result(30)
    cluster.wait_for(admin, lambda p: len(p.isrs) == 3, "a full ISR")
    down = cluster.brokers[2]
    down.stop()
    admin = AdminClient({"bootstrap.servers": cluster.brokers[0].bootstrap})
    admin.delete_topics([TOPIC])[TOPIC].result(30)
    live_dirs = [os.path.join(b.data_dir, "logs", f"{TOPIC}-0") for b in cluster.brokers[:2]]
    deadline = time.time() + 30
    while any(os.path.exists(d) for d in live_dirs) and time.time() < deadline:
        time.sleep(0.1)
    assert not any(os.path.exists(d) for d in live_dirs), "live replicas kept their logs"
    assert TOPIC not in admin.list_topics(timeout=10).topics
    # Kafka's /admin/delete_topics marker stays until the replica that was
    # down deletes too: the name is not free yet.
    again = admin.create_topics([NewTopic(TOPIC, 1, 2)])[TOPIC]
    with pytest.raises(Exception, match="TOPIC_ALREADY_EXISTS"):
        again.result(30)
    down.start()
    down_dir = os.path.join(down.data_dir, "logs", f"{TOPIC}-0")
    deadline = time.time() + 30
    while os.path.exists(down_dir) and time.time() < deadline:
        time.sleep(0.1)
    assert not os.path.exists(down_dir), "the returning replica kept its log"
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
    assert TOPIC not in admin.list_topics(timeout=10).topics, "the deleted topic came back"
    # Deleted everywhere: the name is free again, for a new, empty topic.
    deadline = time.time() + 30
    while True:
        try:
            admin.create_topics([NewTopic(TOPIC, 1, 3)])[TOPIC].result(30)
            break
        except Exception:
            assert time.time() < deadline, "the topic's nodes were not removed"
            time.sleep(0.2)


def java_hash(s):
    h = 0
    for c in s.encode("utf-16-be").decode("utf-16-be"):
        h = (31 * h + ord(c)) & 0xFFFFFFFF
    return h - (1 << 32) if h >= 1 << 31 else h


def test_committed_offsets_survive_the_group_coordinators_death(embedded_cluster):
    """A group commits, its coordinator (the leader of its __consumer_offsets
    partition) is SIGKILLed, and the next member of the group resumes
    exactly after the commit, from the new coordinator."""
    from confluent_kafka import Consumer

    cluster = embedded_cluster
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
    admin.create_topics([NewTopic("grouped", 1, 3)])["grouped"].result(30)
    producer = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all"})
    for i in range(100):
        producer.produce("grouped", value=b"%d" % i)
    assert producer.flush(60) == 0

    def member():
        return Consumer({"bootstrap.servers": cluster.bootstrap, "group.id": "failover",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})

    first = member()
    first.subscribe(["grouped"])
    seen = []
    deadline = time.time() + 60
    while len(seen) < 60 and time.time() < deadline:
        m = first.poll(1)
        if m is not None and m.error() is None:
            seen.append(int(m.value()))
    assert seen[:60] == list(range(60))
    first.commit(offsets=[__import__("confluent_kafka").TopicPartition("grouped", 0, 60)], asynchronous=False)
    first.close()

    offsets_partition = abs(java_hash("failover")) % 3  # offsets.topic.num.partitions=3
    partitions = admin.list_topics("__consumer_offsets", timeout=10).topics["__consumer_offsets"].partitions
    coordinator = partitions[offsets_partition].leader
    cluster.brokers[coordinator].kill()

    second = member()
    second.subscribe(["grouped"])
    first_seen = None
    deadline = time.time() + 90
    while first_seen is None and time.time() < deadline:
        m = second.poll(1)
        if m is not None and m.error() is None:
            first_seen = int(m.value())
    second.close()
    assert first_seen == 60, f"resumed at {first_seen}, not after the commit"


def test_a_config_change_reaches_every_replica(embedded_cluster):
    """confluent-kafka's incremental_alter_configs on one broker: every
    replica's log takes the new setting (via /config/changes)."""
    from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource

    cluster = embedded_cluster
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
    admin.create_topics([NewTopic("configured", 1, 3)])["configured"].result(30)
    deadline = time.time() + 30
    dirs = [os.path.join(b.data_dir, "logs", "configured-0") for b in cluster.brokers]
    while not all(os.path.exists(d) for d in dirs) and time.time() < deadline:
        time.sleep(0.1)
    change = ConfigResource("topic", "configured", incremental_configs=[
        ConfigEntry("retention.ms", "12345", incremental_operation=AlterConfigOpType.SET)])
    admin.incremental_alter_configs([change])[change].result(30)

    def applied(d):
        with open(os.path.join(d, "topic.config")) as f:
            return "retention.ms=12345" in f.read()

    while not all(applied(d) for d in dirs) and time.time() < deadline:
        time.sleep(0.1)
    assert all(applied(d) for d in dirs), [open(os.path.join(d, "topic.config")).read() for d in dirs]


def test_delete_records_reaches_every_replica(embedded_cluster):
    """DeleteRecords on the leader (what Kafka Streams does to its
    repartition topics): the followers move their log start too (from the
    leader's fetch answers), so the next leader starts there as well."""
    from confluent_kafka import TopicPartition
    from confluent_kafka.admin import OffsetSpec

    cluster = embedded_cluster
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
    admin.create_topics([NewTopic("purged", 1, 3)])["purged"].result(30)
    producer = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all"})
    for i in range(100):
        producer.produce("purged", value=b"%d" % i)
    assert producer.flush(60) == 0
    tp = TopicPartition("purged", 0, 40)
    deleted = admin.delete_records([tp])[tp].result(30)
    assert deleted.low_watermark == 40
    # acks=all: the followers fetch past this record, and so get the leader's
    # log start offset (40) with it.
    producer.produce("purged", value=b"100")
    assert producer.flush(60) == 0
    leader = admin.list_topics("purged", timeout=10).topics["purged"].partitions[0].leader
    cluster.brokers[leader].kill()
    deadline = time.time() + 60
    earliest = None
    while time.time() < deadline:
        p = admin.list_topics("purged", timeout=10).topics["purged"].partitions[0]
        if p.leader not in (-1, leader):
            try:
                earliest = admin.list_offsets({tp: OffsetSpec.earliest()})[tp].result(10).offset
                break
            except Exception:  # the new leader not known everywhere yet
                pass
        time.sleep(0.2)
    assert earliest == 40, f"the new leader starts at {earliest}"
