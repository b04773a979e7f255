"""The broker's coordination: registration, controller, topics recorded in
Kafka's ZooKeeper layout (read back with kazoo), and topics restored from
coordination when a broker's disk lost them — with ZooKeeper and with the
embedded store."""
import json
import shutil
import time

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewPartitions, NewTopic
from kazoo.client import KazooClient

from conftest import Broker


def wait_for(condition, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def partitions_of(admin, topic):
    metadata = admin.list_topics(timeout=30).topics.get(topic)
    return None if metadata is None or metadata.error else len(metadata.partitions)


def test_zookeeper_holds_the_broker_and_its_topics(tmp_path, zookeeper):
    broker = Broker(str(tmp_path / "broker"), env={"GREGOR_ZOOKEEPER_CONNECT": zookeeper.hosts})
    (tmp_path / "broker").mkdir()
    broker.start()
    zk = KazooClient(hosts=zookeeper.hosts)
    zk.start(timeout=30)
    try:
        registration = json.loads(zk.get("/brokers/ids/0")[0])
        assert registration["endpoints"] == [f"PLAINTEXT://{broker.bootstrap}"]
        assert json.loads(zk.get("/controller")[0])["brokerid"] == 0

        admin = AdminClient({"bootstrap.servers": broker.bootstrap})
        admin.create_topics([NewTopic("zk-t", num_partitions=3, replication_factor=1,
                                      config={"retention.ms": "3600000"})])["zk-t"].result(30)
        assignment = json.loads(zk.get("/brokers/topics/zk-t")[0])
        assert assignment["partitions"] == {"0": [0], "1": [0], "2": [0]}
        assert len(assignment["topic_id"]) == 22  # Kafka's base64 UUID
        assert json.loads(zk.get("/config/topics/zk-t")[0])["config"] == {"retention.ms": "3600000"}
        # An idempotent producer's id comes from a block claimed in ZooKeeper.
        producer = Producer({"bootstrap.servers": broker.bootstrap, "enable.idempotence": True})
        producer.produce("zk-t", key=b"k", value=b"v")
        assert producer.flush(30) == 0
        block = json.loads(zk.get("/latest_producer_id_block")[0])
        assert block == {"version": 1, "broker": 0, "block_start": "0", "block_end": "999"}
        admin.create_partitions([NewPartitions("zk-t", 5)])["zk-t"].result(30)
        assert len(json.loads(zk.get("/brokers/topics/zk-t")[0])["partitions"]) == 5

        # The disk loses everything; coordination brings the topic back.
        broker.stop()
        assert zk.exists("/brokers/ids/0") is None, "still registered after a clean shutdown"
        shutil.rmtree(tmp_path / "broker" / "logs")
        broker.start()
        admin = AdminClient({"bootstrap.servers": broker.bootstrap})
        # Listed once the controller announced its partitions (as Kafka's
        # metadata cache, empty until the first UpdateMetadata).
        deadline = time.time() + 30
        while partitions_of(admin, "zk-t") != 5 and time.time() < deadline:
            time.sleep(0.1)
        assert partitions_of(admin, "zk-t") == 5
        assert json.loads(zk.get("/brokers/topics/zk-t")[0])["topic_id"] == assignment["topic_id"]

        admin.delete_topics(["zk-t"])["zk-t"].result(30)
        # As in Kafka, the answer comes once the topic is gone for clients;
        # its nodes go (with the /admin/delete_topics marker) once every
        # replica is deleted, a moment later.
        deadline = time.time() + 10
        while zk.exists("/brokers/topics/zk-t") is not None and time.time() < deadline:
            time.sleep(0.05)
        assert zk.exists("/brokers/topics/zk-t") is None
        assert zk.exists("/admin/delete_topics/zk-t") is None
        assert zk.exists("/config/topics/zk-t") is None
        broker.stop()
    finally:
        broker.stop()
        zk.stop()


def test_two_brokers_cannot_share_an_id(tmp_path, zookeeper):
    env = {"GREGOR_ZOOKEEPER_CONNECT": zookeeper.hosts}
    first = Broker(str(tmp_path / "a"), env=env)
    # The second waits 1.5 x its session timeout + 2 s for the id (a
    # restarted broker's previous session may still hold it), then fails.
    second = Broker(str(tmp_path / "b"), env=dict(env, GREGOR_ZOOKEEPER_SESSION_TIMEOUT_MS="4000"))
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first.start()
    try:
        try:
            second.start()
            raise AssertionError("a second broker with id 0 started")
        except RuntimeError as e:
            assert "broker id 0 is registered by another session" in str(e), e
    finally:
        first.stop()


def test_the_embedded_store_restores_partitions_a_disk_lost(broker):
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.create_topics([NewTopic("kept", num_partitions=2, replication_factor=1)])["kept"].result(30)
    broker.stop()
    shutil.rmtree(f"{broker.data_dir}/logs/kept-1")
    broker.start()
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    wait_for(lambda: partitions_of(admin, "kept") == 2)
