"""ACLs shared with Kafka 3.9 through ZooKeeper (issue 16): what gregor
writes at /kafka-acl and /kafka-acl-extended a Kafka 3.9 broker with
AclAuthorizer reads, and the other way round — one ZooKeeper, the two
brokers one after the other (both are super users here: the point is the
stored form, not the checks).

Also: an ACL created through one gregor broker reaches the others at once
(the /kafka-acl-changes notifications), each answering DescribeAcls from
its own cache."""
import struct
import socket
import time

import pytest
from confluent_kafka.admin import (AclBinding, AclBindingFilter, AclOperation, AclPermissionType, AdminClient,
                                   ResourcePatternType, ResourceType)

from bench.kafka import kafka
from bench.kafka.kafka import wait_for_controller
from conftest import Broker, ZooKeeper

TIMEOUT = 30
AUTHORIZER = "kafka.security.authorizer.AclAuthorizer"
ALL = AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY, None, None, AclOperation.ANY,
                       AclPermissionType.ANY)


def gregor_args(zookeeper, broker_id):
    return ["--zookeeper", zookeeper.hosts, "--broker-id", str(broker_id),
            "--override", "zookeeper.session.timeout.ms=3000",
            "--override", "offsets.topic.num.partitions=1",
            "--override", f"authorizer.class.name={AUTHORIZER}",
            "--override", "super.users=User:ANONYMOUS"]


def describe(bootstrap):
    client = AdminClient({"bootstrap.servers": bootstrap})
    return set(client.describe_acls(ALL, request_timeout=TIMEOUT).result(timeout=TIMEOUT))


def create(bootstrap, bindings):
    client = AdminClient({"bootstrap.servers": bootstrap})
    for f in client.create_acls(bindings, request_timeout=TIMEOUT).values():
        f.result(timeout=TIMEOUT)


FROM_GREGOR = [
    AclBinding(ResourceType.TOPIC, "shared", ResourcePatternType.LITERAL, "User:alice", "*", AclOperation.READ,
               AclPermissionType.ALLOW),
    AclBinding(ResourceType.GROUP, "app-", ResourcePatternType.PREFIXED, "User:bob", "10.0.0.1",
               AclOperation.DESCRIBE, AclPermissionType.DENY),
    AclBinding(ResourceType.BROKER, "kafka-cluster", ResourcePatternType.LITERAL, "User:*", "*",
               AclOperation.IDEMPOTENT_WRITE, AclPermissionType.ALLOW),
]
FROM_KAFKA = [
    AclBinding(ResourceType.TRANSACTIONAL_ID, "tx-1", ResourcePatternType.LITERAL, "User:carol", "*",
               AclOperation.WRITE, AclPermissionType.ALLOW),
    AclBinding(ResourceType.TOPIC, "kafka-", ResourcePatternType.PREFIXED, "User:dave", "*",
               AclOperation.ALL, AclPermissionType.ALLOW),
]


def test_kafka_and_gregor_read_each_others_acls(tmp_path):
    if kafka.missing():
        pytest.skip(f"no Kafka 3.9: {kafka.missing()}")
    zookeeper = ZooKeeper(str(tmp_path / "zookeeper"))
    try:
        (tmp_path / "gregor").mkdir()
        g = Broker(str(tmp_path / "gregor"), args=gregor_args(zookeeper, 0))
        g.start()
        try:
            # librdkafka's admin requests wait for a named controller.
            wait_for_controller(g.bootstrap, TIMEOUT)
            create(g.bootstrap, FROM_GREGOR)
            assert describe(g.bootstrap) == set(FROM_GREGOR)
        finally:
            g.stop()

        k = kafka.KafkaBroker(str(tmp_path / "kafka"), zookeeper.hosts, broker_id=1, overrides={
            "authorizer.class.name": AUTHORIZER, "super.users": "User:ANONYMOUS"}).start()
        try:
            assert describe(k.bootstrap) == set(FROM_GREGOR)
            create(k.bootstrap, FROM_KAFKA)
        finally:
            k.stop()

        g.start()
        try:
            wait_for_controller(g.bootstrap, TIMEOUT)
            assert describe(g.bootstrap) == set(FROM_GREGOR + FROM_KAFKA)
        finally:
            g.stop()
    finally:
        zookeeper.stop()


def describe_acls_v1(port, name):
    """The number of ACLs a broker's own DescribeAcls v1 reports on the
    literal topic `name` (a raw request: admin clients may ask another broker)."""
    client_id = b"probe"
    name_bytes = name.encode()
    request = (struct.pack(">hhih", 29, 1, 7, len(client_id)) + client_id
               + struct.pack(">bh", 2, len(name_bytes)) + name_bytes
               + struct.pack(">bhhbb", 3, -1, -1, 1, 1))
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(struct.pack(">i", len(request)) + request)
        size = struct.unpack(">i", s.recv(4, socket.MSG_WAITALL))[0]
        body = s.recv(size, socket.MSG_WAITALL)
    _, _, error = struct.unpack(">iih", body[:10])
    assert error == 0, f"DescribeAcls error {error}"
    message_len = struct.unpack(">h", body[10:12])[0]
    at = 12 + max(message_len, 0)
    resources = struct.unpack(">i", body[at:at + 4])[0]
    if resources == 0:
        return 0
    # One resource: type, name, pattern type, then its ACL count.
    at += 4 + 1
    name_len = struct.unpack(">h", body[at:at + 2])[0]
    at += 2 + name_len + 1
    return struct.unpack(">i", body[at:at + 4])[0]


def test_an_acl_made_through_one_broker_reaches_every_broker_at_once(tmp_path):
    zookeeper = ZooKeeper(str(tmp_path / "zookeeper"))
    brokers = []
    try:
        for i in range(3):
            (tmp_path / f"broker-{i}").mkdir()
            brokers.append(Broker(str(tmp_path / f"broker-{i}"), args=gregor_args(zookeeper, i)).start())
        wait_for_controller(brokers[0].bootstrap, TIMEOUT)
        before = [describe_acls_v1(b.port, "live") for b in brokers]
        assert before == [0, 0, 0]
        create(brokers[0].bootstrap, [AclBinding(ResourceType.TOPIC, "live", ResourcePatternType.LITERAL,
                                                 "User:erin", "*", AclOperation.READ, AclPermissionType.ALLOW)])
        deadline = time.time() + 10
        while time.time() < deadline:
            seen = [describe_acls_v1(b.port, "live") for b in brokers]
            if seen == [1, 1, 1]:
                break
            time.sleep(0.05)
        assert seen == [1, 1, 1]
    finally:
        for b in brokers:
            b.kill()
        zookeeper.stop()


def test_kafka_acls_tool_manages_gregors_acls(tmp_path):
    """Kafka's own `kafka-acls --bootstrap-server` (the Java admin client)
    adds, lists and removes ACLs on a gregor broker."""
    if kafka.missing():
        pytest.skip(f"no Kafka 3.9: {kafka.missing()}")
    b = Broker(str(tmp_path), args=["--override", f"authorizer.class.name={AUTHORIZER}",
                                    "--override", "super.users=User:ANONYMOUS"]).start()
    try:
        wait_for_controller(b.bootstrap, TIMEOUT)
        def acls(*args):
            return kafka.run("kafka.admin.AclCommand", "--bootstrap-server", b.bootstrap, *args).stdout

        acls("--add", "--allow-principal", "User:alice", "--operation", "Read", "--topic", "orders",
             "--resource-pattern-type", "prefixed")
        acls("--add", "--deny-principal", "User:bob", "--deny-host", "10.0.0.1", "--operation", "All", "--group", "*")
        assert describe(b.bootstrap) == {
            AclBinding(ResourceType.TOPIC, "orders", ResourcePatternType.PREFIXED, "User:alice", "*",
                       AclOperation.READ, AclPermissionType.ALLOW),
            AclBinding(ResourceType.GROUP, "*", ResourcePatternType.LITERAL, "User:bob", "10.0.0.1",
                       AclOperation.ALL, AclPermissionType.DENY),
        }
        listed = acls("--list", "--topic", "orders", "--resource-pattern-type", "prefixed")
        assert "(principal=User:alice, host=*, operation=READ, permissionType=ALLOW)" in listed
        acls("--remove", "--force", "--allow-principal", "User:alice", "--operation", "Read", "--topic", "orders",
             "--resource-pattern-type", "prefixed")
        assert len(describe(b.bootstrap)) == 1
    finally:
        b.stop()
