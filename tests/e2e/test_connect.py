"""Kafka Connect 3.9 in distributed mode on a 3-broker gregor cluster (a real
Kafka 3.9 one with GREGOR_JVM_REFERENCE=1): the worker keeps its connector
configs, source offsets and statuses in compacted topics it creates with
replication factor 3, joins a group of protocol type `connect`, and runs
the FileStream connectors — a file's lines to a topic and back to another
file. Stopped and started again, the worker carries on from the offsets it
stored: the second file ends as a copy of the first, no line lost or
repeated."""
import json
import os
import shutil
import subprocess
import time
import urllib.request

import pytest
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

from bench.kafka import kafka

REASON = kafka.missing(("3.9",)) or (None if shutil.which("java") else "no java on PATH")
pytestmark = pytest.mark.skipif(REASON is not None, reason=f"Kafka Connect needs Java and the Kafka jars: {REASON}")

INTERNAL_TOPICS = ("connect-configs", "connect-offsets", "connect-status")


class Worker:
    """One Connect worker (ConnectDistributed) with its REST port."""

    def __init__(self, root, bootstrap):
        self.port = kafka.free_port()
        self.properties = os.path.join(root, "worker.properties")
        self.log = os.path.join(root, "worker.log")
        settings = {
            "bootstrap.servers": bootstrap,
            "group.id": "connect-gregor",
            "key.converter": "org.apache.kafka.connect.storage.StringConverter",
            "value.converter": "org.apache.kafka.connect.storage.StringConverter",
            "config.storage.topic": "connect-configs",
            "offset.storage.topic": "connect-offsets",
            "status.storage.topic": "connect-status",
            "config.storage.replication.factor": 3,
            "offset.storage.replication.factor": 3,
            "status.storage.replication.factor": 3,
            "offset.flush.interval.ms": 500,
            "listeners": f"http://127.0.0.1:{self.port}",
            "rest.advertised.host.name": "127.0.0.1",
        }
        with open(self.properties, "w") as f:
            f.writelines(f"{k}={v}\n" for k, v in settings.items())
        self.process = None

    def start(self):
        command = kafka.java("org.apache.kafka.connect.cli.ConnectDistributed", self.properties, heap="512m",
                             jvm=kafka.TOOL_JVM)
        self.process = subprocess.Popen(command, stdout=open(self.log, "ab"), stderr=subprocess.STDOUT)
        kafka.wait_for(lambda: self.exited() or self.answers(), 120,
                       lambda: f"the Connect worker's REST API did not come up:\n{self.tail()}")
        assert not self.exited(), f"the Connect worker exited:\n{self.tail()}"
        return self

    def exited(self):
        return self.process.poll() is not None

    def answers(self):
        try:
            self.rest("GET", "/connectors")
            return True
        except OSError:
            return False

    def rest(self, method, path, body=None, timeout=10):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=timeout) as response:
            text = response.read()
            return json.loads(text) if text else None

    def configure(self, connector, config):
        """PUTs a connector's config once the worker takes it: until the
        worker has joined its group (Kafka delays a new group's first
        rebalance by group.initial.rebalance.delay.ms) the REST API answers
        409 or holds the request."""
        def put():
            try:
                self.rest("PUT", f"/connectors/{connector}/config", config, timeout=90)
                return True
            except OSError:
                return False
        kafka.wait_for(put, 180, lambda: f"the worker did not take {connector}'s config:\n{self.tail()}", interval=1)

    def running(self, connector):
        """Whether the connector and all its tasks are RUNNING (a REST error,
        e.g. while the worker rebalances, is a no)."""
        try:
            status = self.rest("GET", f"/connectors/{connector}/status")
        except OSError:
            return False
        states = [status["connector"]["state"]] + [t["state"] for t in status["tasks"]]
        assert "FAILED" not in states, json.dumps(status, indent=1)
        return len(states) > 1 and set(states) == {"RUNNING"}

    def stop(self):
        """A clean stop (SIGTERM: the worker commits its offsets and leaves)."""
        if self.process and not self.exited():
            self.process.terminate()
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def tail(self):
        with open(self.log, errors="replace") as f:
            return f.read()[-4000:]


def lines_of(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return f.read().splitlines()


@pytest.fixture
def cluster(tmp_path):
    if os.environ.get("GREGOR_JVM_REFERENCE"):
        c = kafka.KafkaCluster(3, data_dir=str(tmp_path / "kafka"))
        yield c
        c.stop()
        return
    from conftest import Coordination
    from test_replication import Cluster
    coordination = Coordination(str(tmp_path / "coordination"))
    c = Cluster(str(tmp_path / "gregor"), ["--coordination", coordination.address])
    yield c
    c.stop()
    coordination.stop()


def test_connect_distributed_moves_a_file_through_a_topic_and_survives_a_worker_restart(cluster, tmp_path):
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
    for future in admin.create_topics([NewTopic("lines", 1, 3)]).values():
        future.result(30)
    source, sink = str(tmp_path / "source.txt"), str(tmp_path / "sink.txt")
    first = [f"line {i}" for i in range(500)]
    with open(source, "w") as f:
        f.writelines(line + "\n" for line in first)

    worker = Worker(str(tmp_path), cluster.bootstrap).start()
    try:
        worker.configure("file-source", {
            "connector.class": "org.apache.kafka.connect.file.FileStreamSourceConnector",
            "tasks.max": "1", "file": source, "topic": "lines"})
        worker.configure("file-sink", {
            "connector.class": "org.apache.kafka.connect.file.FileStreamSinkConnector",
            "tasks.max": "1", "file": sink, "topics": "lines"})
        kafka.wait_for(lambda: worker.running("file-source") and worker.running("file-sink"), 120,
                       lambda: f"connectors not running:\n{worker.tail()}")
        kafka.wait_for(lambda: len(lines_of(sink)) >= len(first), 120,
                       lambda: f"{len(lines_of(sink))} of {len(first)} lines reached the sink:\n{worker.tail()}")
        assert lines_of(sink) == first
        # The worker's stores are compacted topics of replication factor 3.
        described = admin.describe_configs([ConfigResource(ConfigResource.Type.TOPIC, t) for t in INTERNAL_TOPICS])
        for resource, future in described.items():
            assert future.result(30)["cleanup.policy"].value == "compact", resource
        metadata = admin.list_topics(timeout=10).topics
        for topic in INTERNAL_TOPICS:
            assert all(len(p.replicas) == 3 for p in metadata[topic].partitions.values()), topic
        # Let the source's offset reach the offsets topic before stopping.
        time.sleep(2)
    finally:
        worker.stop()

    # A new worker process reads the connectors back from connect-configs,
    # the source's position from connect-offsets and the sink's from its
    # consumer group, and moves only what was added since.
    second = [f"line {i}" for i in range(500, 800)]
    with open(source, "a") as f:
        f.writelines(line + "\n" for line in second)
    worker = Worker(str(tmp_path), cluster.bootstrap).start()
    try:
        kafka.wait_for(lambda: len(lines_of(sink)) >= len(first) + len(second), 120,
                       lambda: f"{len(lines_of(sink))} lines in the sink after the restart:\n{worker.tail()}")
        time.sleep(2)  # nothing more arrives: no line is moved twice
        assert lines_of(sink) == first + second
        assert sorted(worker.rest("GET", "/connectors")) == ["file-sink", "file-source"]
    finally:
        worker.stop()
