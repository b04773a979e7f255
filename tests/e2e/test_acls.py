"""ACLs (issue 16): Kafka's authorizer semantics with unmodified clients.

The matrix runs for a principal given as a parameter. Until authentication
lands (SASL/mTLS, the other half of issue 16) the only principal a client
can be is `User:ANONYMOUS`, so that is the one it runs for; super.users is
empty and allow.everyone.if.no.acl.found false.

Bootstrapping, as an operator would with Kafka: the broker first runs
with super.users naming the principal, which grants it Alter on the
cluster (to administer ACLs through the admin API from then on) and
ClusterAction from 127.0.0.1 (the broker's own controller and replica
traffic, which also comes as User:ANONYMOUS from 127.0.0.1 until brokers
authenticate to each other); then it restarts without super users. The
three-broker test instead writes that bootstrap ACL straight into
ZooKeeper in Kafka's JSON, as `kafka-acls --authorizer-properties
zookeeper.connect=…` does.
"""
import json
import os
import socket
import struct
import time

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import (AclBinding, AclBindingFilter, AclOperation, AclPermissionType, AdminClient,
                                   ConfigResource, NewPartitions, NewTopic, ResourcePatternType, ResourceType)

from bench.kafka.kafka import wait_for_controller
from conftest import Broker, ZooKeeper

PRINCIPALS = ["User:ANONYMOUS"]
AUTHORIZER = "kafka.security.authorizer.AclAuthorizer"
TIMEOUT = 30
TOPIC_DENIED = KafkaError.TOPIC_AUTHORIZATION_FAILED
GROUP_DENIED = KafkaError.GROUP_AUTHORIZATION_FAILED


def secured_args(super_users=""):
    return ["--override", f"authorizer.class.name={AUTHORIZER}",
            "--override", f"super.users={super_users}",
            "--override", "allow.everyone.if.no.acl.found=false",
            "--override", "offsets.topic.num.partitions=1",
            "--override", "offsets.topic.replication.factor=1"]


def binding(principal, operation, restype=ResourceType.TOPIC, name="*", pattern=ResourcePatternType.LITERAL,
            permission=AclPermissionType.ALLOW, host="*"):
    return AclBinding(restype, name, pattern, principal, host, operation, permission)


def admin(bootstrap):
    return AdminClient({"bootstrap.servers": bootstrap})


def create_acls(bootstrap, bindings):
    client = admin(bootstrap)
    for _, future in client.create_acls(bindings, request_timeout=TIMEOUT).items():
        future.result(timeout=TIMEOUT)


def delete_acls(bootstrap, bindings):
    filters = [AclBindingFilter(b.restype, b.name, b.resource_pattern_type, b.principal, b.host, b.operation,
                                b.permission_type) for b in bindings]
    client = admin(bootstrap)
    return [f.result(timeout=TIMEOUT) for f in client.delete_acls(filters, request_timeout=TIMEOUT).values()]


class Granted:
    """ACLs that hold inside a `with` block and are deleted after it."""

    def __init__(self, bootstrap, *bindings):
        self.bootstrap, self.bindings = bootstrap, list(bindings)

    def __enter__(self):
        create_acls(self.bootstrap, self.bindings)
        return self

    def __exit__(self, *exc):
        delete_acls(self.bootstrap, self.bindings)


def error_of(future):
    try:
        future.result(timeout=TIMEOUT)
    except KafkaException as e:
        return e.args[0].code()
    return None


def produce_one(bootstrap, topic, value, **config):
    outcome = []
    producer = Producer({"bootstrap.servers": bootstrap, "message.timeout.ms": 10000, "acks": "all",
                         "enable.idempotence": False, **config})
    producer.produce(topic, value, on_delivery=lambda err, msg: outcome.append(err))
    producer.flush(TIMEOUT)
    assert outcome, "no delivery report"
    return outcome[0].code() if outcome[0] else None


def read_all(bootstrap, topic, group=None, expect=None, timeout=15):
    """The values of `topic` read from the start by a subscribed consumer
    (of group `group`, else a fresh `reader-…` one), or the error."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group or f"reader-{time.time_ns()}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    try:
        consumer.subscribe([topic])
        values, deadline = [], time.time() + timeout
        while time.time() < deadline and (expect is None or len(values) < expect):
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            if msg.error():
                if msg.error().code() in (TOPIC_DENIED, GROUP_DENIED):
                    return msg.error().code()
                continue
            values.append(msg.value())
        return values
    finally:
        consumer.close()


@pytest.fixture(scope="module")
def secured(tmp_path_factory):
    """A broker with the authorizer on, bootstrapped as the module doc says."""
    data = str(tmp_path_factory.mktemp("acls"))
    principal = PRINCIPALS[0]
    first = Broker(data, args=secured_args(super_users=principal)).start()
    try:
        # librdkafka's admin requests wait for a named controller.
        wait_for_controller(first.bootstrap, TIMEOUT)
        create_acls(first.bootstrap, [
            binding(principal, AclOperation.ALTER, ResourceType.BROKER, "kafka-cluster"),
            binding(principal, AclOperation.CLUSTER_ACTION, ResourceType.BROKER, "kafka-cluster", host="127.0.0.1"),
            # The groups read_all's assigned (group-less) readers are in.
            binding(principal, AclOperation.READ, ResourceType.GROUP, "reader-", ResourcePatternType.PREFIXED),
        ])
        # Topics the matrix uses, made while the principal is super.
        client = admin(first.bootstrap)
        futures = client.create_topics(
            [NewTopic(t, 1, 1) for t in ("orders", "payments", "acl-existing")], request_timeout=TIMEOUT)
        for f in futures.values():
            f.result(timeout=TIMEOUT)
        assert produce_one(first.bootstrap, "orders", b"first") is None
    finally:
        first.stop()
    broker = Broker(data, args=secured_args()).start()
    wait_for_controller(broker.bootstrap, TIMEOUT)
    yield broker
    broker.stop()


@pytest.fixture(scope="module")
def bootstrap(secured):
    return secured.bootstrap


@pytest.mark.parametrize("principal", PRINCIPALS)
def test_acls_are_created_described_and_deleted_through_the_admin_api(bootstrap, principal):
    mine = binding(principal, AclOperation.READ, name="acl-admin-", pattern=ResourcePatternType.PREFIXED)
    create_acls(bootstrap, [mine])
    client = admin(bootstrap)
    described = client.describe_acls(
        AclBindingFilter(ResourceType.TOPIC, None, ResourcePatternType.ANY, None, None, AclOperation.ANY,
                         AclPermissionType.ANY), request_timeout=TIMEOUT).result(timeout=TIMEOUT)
    assert mine in described
    # A binding Kafka refuses: the cluster under another name.
    bad = binding(principal, AclOperation.ALTER, ResourceType.BROKER, "not-the-cluster")
    futures = client.create_acls([bad], request_timeout=TIMEOUT)
    assert error_of(futures[bad]) == KafkaError.INVALID_REQUEST
    assert delete_acls(bootstrap, [mine]) == [[mine]]
    described = client.describe_acls(
        AclBindingFilter(ResourceType.TOPIC, "acl-admin-", ResourcePatternType.PREFIXED, None, None, AclOperation.ANY,
                         AclPermissionType.ANY), request_timeout=TIMEOUT).result(timeout=TIMEOUT)
    assert described == []


@pytest.mark.parametrize("principal", PRINCIPALS)
def test_produce_needs_write_and_a_refused_record_is_not_written(bootstrap, principal):
    assert produce_one(bootstrap, "payments", b"refused") == TOPIC_DENIED
    with Granted(bootstrap, binding(principal, AclOperation.WRITE, name="payments")):
        assert produce_one(bootstrap, "payments", b"accepted") is None
    with Granted(bootstrap, binding(principal, AclOperation.READ, name="payments")):
        assert read_all(bootstrap, "payments", expect=1) == [b"accepted"]


@pytest.mark.parametrize("principal", PRINCIPALS)
def test_consume_needs_read_on_the_topic_and_the_group(bootstrap, principal):
    assert read_all(bootstrap, "orders") == TOPIC_DENIED
    with Granted(bootstrap, binding(principal, AclOperation.READ, name="orders")):
        assert read_all(bootstrap, "orders", expect=1) == [b"first"]
        # A group the principal may not read.
        assert read_all(bootstrap, "orders", group="no-group-acl") == GROUP_DENIED
        with Granted(bootstrap, binding(principal, AclOperation.READ, ResourceType.GROUP, "app-",
                                        ResourcePatternType.PREFIXED)):
            assert read_all(bootstrap, "orders", group="app-1", expect=1) == [b"first"]


@pytest.mark.parametrize("principal", PRINCIPALS)
def test_a_deny_overrides_an_allow(bootstrap, principal):
    allow_all = binding(principal, AclOperation.READ, name="*")
    deny = binding(principal, AclOperation.READ, name="orders", permission=AclPermissionType.DENY)
    with Granted(bootstrap, allow_all):
        assert read_all(bootstrap, "orders", expect=1) == [b"first"]
        with Granted(bootstrap, deny):
            assert read_all(bootstrap, "orders") == TOPIC_DENIED
            # Read implies Describe, which the Deny of Read does not take.
            client = admin(bootstrap)
            assert "orders" in client.list_topics(timeout=TIMEOUT).topics


@pytest.mark.parametrize("principal", PRINCIPALS)
def test_metadata_leaves_out_topics_the_principal_may_not_describe(bootstrap, principal):
    client = admin(bootstrap)
    assert "orders" not in client.list_topics(timeout=TIMEOUT).topics
    with Granted(bootstrap, binding(principal, AclOperation.DESCRIBE, name="ord", pattern=ResourcePatternType.PREFIXED)):
        topics = client.list_topics(timeout=TIMEOUT).topics
        assert "orders" in topics and "payments" not in topics


@pytest.mark.parametrize("principal", PRINCIPALS)
def test_create_topics_needs_create_and_a_prefixed_grant_gives_it(bootstrap, principal):
    client = admin(bootstrap)
    refused = client.create_topics([NewTopic("acl-new", 1, 1)], request_timeout=TIMEOUT)["acl-new"]
    assert error_of(refused) == TOPIC_DENIED
    with Granted(bootstrap, binding(principal, AclOperation.CREATE, name="acl-", pattern=ResourcePatternType.PREFIXED),
                 binding(principal, AclOperation.DESCRIBE, name="acl-", pattern=ResourcePatternType.PREFIXED)):
        assert error_of(client.create_topics([NewTopic("acl-new", 1, 1)], request_timeout=TIMEOUT)["acl-new"]) is None
        other = client.create_topics([NewTopic("other-new", 1, 1)], request_timeout=TIMEOUT)["other-new"]
        assert error_of(other) == TOPIC_DENIED
        assert "acl-new" in client.list_topics(timeout=TIMEOUT).topics


@pytest.mark.parametrize("principal", PRINCIPALS)
def test_delete_and_alter_need_their_operations_and_leave_the_topic_untouched(bootstrap, principal):
    client = admin(bootstrap)
    describe = binding(principal, AclOperation.DESCRIBE, name="acl-existing")
    with Granted(bootstrap, describe):
        assert error_of(client.delete_topics(["acl-existing"], request_timeout=TIMEOUT)["acl-existing"]) == TOPIC_DENIED
        more = client.create_partitions([NewPartitions("acl-existing", 3)], request_timeout=TIMEOUT)["acl-existing"]
        assert error_of(more) == TOPIC_DENIED
        topic = client.list_topics("acl-existing", timeout=TIMEOUT).topics["acl-existing"]
        assert topic.error is None and len(topic.partitions) == 1
        resource = ConfigResource(ConfigResource.Type.TOPIC, "acl-existing")
        assert error_of(client.describe_configs([resource], request_timeout=TIMEOUT)[resource]) == TOPIC_DENIED
        with Granted(bootstrap, binding(principal, AclOperation.ALTER_CONFIGS, name="acl-existing")):
            # AlterConfigs implies DescribeConfigs.
            configs = client.describe_configs([resource], request_timeout=TIMEOUT)[resource].result(timeout=TIMEOUT)
            assert "retention.ms" in configs
        with Granted(bootstrap, binding(principal, AclOperation.ALTER, name="acl-existing")):
            more = client.create_partitions([NewPartitions("acl-existing", 2)], request_timeout=TIMEOUT)
            assert error_of(more["acl-existing"]) is None


@pytest.mark.parametrize("principal", PRINCIPALS)
def test_transactions_need_write_on_the_transactional_id(bootstrap, principal):
    def init(txn_id):
        producer = Producer({"bootstrap.servers": bootstrap, "transactional.id": txn_id,
                             "transaction.timeout.ms": 10000})
        try:
            producer.init_transactions(15)
            return producer, None
        except KafkaException as e:
            return producer, e.args[0].code()

    write = binding(principal, AclOperation.WRITE, name="payments")
    with Granted(bootstrap, write):
        _, error = init("tx-refused")
        assert error == KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED
        with Granted(bootstrap, binding(principal, AclOperation.WRITE, ResourceType.TRANSACTIONAL_ID, "tx-",
                                        ResourcePatternType.PREFIXED),
                     binding(principal, AclOperation.READ, name="payments")):
            producer, error = init("tx-ok")
            assert error is None
            producer.begin_transaction()
            producer.produce("payments", b"in-a-transaction")
            producer.commit_transaction(15)
            assert b"in-a-transaction" in read_all(bootstrap, "payments", expect=2)


@pytest.mark.parametrize("principal", PRINCIPALS)
def test_an_idempotent_producer_needs_idempotent_write_or_write_on_some_topic(bootstrap, principal):
    def idempotent():
        return produce_one(bootstrap, "payments", b"idempotent", **{"enable.idempotence": True})

    # No Write anywhere: InitProducerId is refused (the record with it).
    assert idempotent() is not None
    with Granted(bootstrap, binding(principal, AclOperation.WRITE, name="payments")):
        assert idempotent() is None


@pytest.mark.parametrize("principal", PRINCIPALS)
def test_kafka_python_administers_acls_and_is_refused_like_kafka(bootstrap, principal):
    from kafka import KafkaProducer
    from kafka.admin import (ACL, ACLFilter, ACLOperation, ACLPermissionType, ACLResourcePatternType,
                             KafkaAdminClient, ResourcePattern, ResourcePatternFilter)
    from kafka.admin import ResourceType as KResourceType
    from kafka.errors import TopicAuthorizationFailedError

    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", retries=0, max_block_ms=10000)
    try:
        with pytest.raises(TopicAuthorizationFailedError):
            producer.send("payments", b"kafka-python refused").get(timeout=TIMEOUT)
    finally:
        producer.close()
    client = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        acl = ACL(principal, "*", ACLOperation.WRITE, ACLPermissionType.ALLOW,
                  ResourcePattern(KResourceType.TOPIC, "pay", ACLResourcePatternType.PREFIXED))
        result = client.create_acls([acl])
        assert result["failed"] == [], result
        found, error = client.describe_acls(ACLFilter(principal, None, ACLOperation.ANY, ACLPermissionType.ANY,
                                                       ResourcePatternFilter(KResourceType.TOPIC, None,
                                                                             ACLResourcePatternType.ANY)))
        assert error.errno == 0 and any(a.resource_pattern.resource_name == "pay" for a in found)
        producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", retries=0, max_block_ms=10000)
        try:
            producer.send("payments", b"kafka-python accepted").get(timeout=TIMEOUT)
        finally:
            producer.close()
        deleted = client.delete_acls([ACLFilter(principal, "*", ACLOperation.WRITE, ACLPermissionType.ALLOW,
                                                ResourcePatternFilter(KResourceType.TOPIC, "pay",
                                                                      ACLResourcePatternType.PREFIXED))])
        assert len(deleted[0][1]) == 1, deleted
    finally:
        client.close()
    with Granted(bootstrap, binding(principal, AclOperation.READ, name="payments")):
        values = read_all(bootstrap, "payments", expect=100, timeout=8)
        assert b"kafka-python accepted" in values and b"kafka-python refused" not in values


@pytest.mark.parametrize("principal", PRINCIPALS)
def test_the_cli_adds_lists_and_removes_acls(bootstrap, principal):
    """`gregor acl` through the admin APIs; runs before the Deny-Alter test."""
    import subprocess
    from conftest import GREGOR

    def gregor(*args):
        out = subprocess.run([GREGOR, "acl", *args, "--bootstrap-server", bootstrap, "--json"],
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)

    spec = ["--principal", principal, "--operation", "Write", "--resource-type", "topic",
            "--resource-name", "cli-", "--pattern-type", "prefixed"]
    assert gregor("add", *spec)[0]["operation"] == "Write"
    listed = gregor("list", "--resource-type", "topic", "--resource-name", "cli-")
    assert {"resource_name": "cli-", "pattern_type": "PREFIXED", "principal": principal, "host": "*",
            "operation": "Write", "permission": "Allow", "resource_type": "Topic"} in listed
    assert len(gregor("remove", *spec)) == 1
    assert gregor("list", "--resource-type", "topic", "--resource-name", "cli-") == []


@pytest.mark.parametrize("principal", PRINCIPALS)
def test_acl_changes_need_alter_on_the_cluster(bootstrap, principal):
    """Last of the single-broker tests: the Deny it adds also stops the
    delete that would take it back (only a super user or the store could)."""
    deny = binding(principal, AclOperation.ALTER, ResourceType.BROKER, "kafka-cluster",
                   permission=AclPermissionType.DENY)
    create_acls(bootstrap, [deny])
    attempt = binding(principal, AclOperation.READ, name="x")
    client = admin(bootstrap)
    futures = client.create_acls([attempt], request_timeout=TIMEOUT)
    assert error_of(futures[attempt]) == KafkaError.CLUSTER_AUTHORIZATION_FAILED
    deleted = client.delete_acls([AclBindingFilter(
        ResourceType.ANY, None, ResourcePatternType.ANY, None, None, AclOperation.ANY, AclPermissionType.ANY)],
        request_timeout=TIMEOUT)
    assert error_of(list(deleted.values())[0]) == KafkaError.CLUSTER_AUTHORIZATION_FAILED


def leader_and_isr_v4(correlation_id, controller_epoch):
    """A LeaderAndIsr v4 with no partitions (flexible header v2)."""
    client_id = b"intruder"
    header = struct.pack(">hhih", 4, 4, correlation_id, len(client_id)) + client_id + b"\x00"
    body = struct.pack(">iiq", 0, controller_epoch, -1) + b"\x01" + b"\x01" + b"\x00"
    return header + body


def stop_replica_v3(correlation_id, controller_epoch):
    """A StopReplica v3 with no topics."""
    client_id = b"intruder"
    header = struct.pack(">hhih", 5, 3, correlation_id, len(client_id)) + client_id + b"\x00"
    body = struct.pack(">iiq", 0, controller_epoch, -1) + b"\x01" + b"\x00"
    return header + body


def controller_request(port, request, source="127.0.0.2"):
    """Sends a request from `source` and returns the response's error code."""
    with socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source, 0)) as s:
        s.sendall(struct.pack(">i", len(request)) + request)
        size = struct.unpack(">i", recv_exactly(s, 4))[0]
        response = recv_exactly(s, size)
    # correlation id, the header's tagged fields (0), then error_code.
    return struct.unpack(">h", response[5:7])[0]


def recv_exactly(s, n):
    data = b""
    while len(data) < n:
        chunk = s.recv(n - len(data))
        assert chunk, "connection closed"
        data += chunk
    return data


def test_a_client_is_refused_controller_apis_while_three_brokers_still_replicate(tmp_path):
    """Brokers reach each other from 127.0.0.1 as User:ANONYMOUS (until
    they authenticate, issue 16's other half); the bootstrap ACL grants
    ClusterAction from that host only, and the intruder connects from
    127.0.0.2."""
    from kazoo.client import KazooClient

    zookeeper = ZooKeeper(str(tmp_path / "zookeeper"))
    brokers = []
    try:
        zk = KazooClient(hosts=zookeeper.hosts)
        zk.start(timeout=30)
        acls = {"version": 1, "acls": [
            {"principal": "User:ANONYMOUS", "permissionType": "Allow", "operation": "ClusterAction", "host": "127.0.0.1"},
            {"principal": "User:ANONYMOUS", "permissionType": "Allow", "operation": "All", "host": "127.0.0.1"},
        ]}
        zk.create("/kafka-acl/Cluster/kafka-cluster", json.dumps(acls).encode(), makepath=True)
        topic_acls = {"version": 1, "acls": [
            {"principal": "User:*", "permissionType": "Allow", "operation": "All", "host": "*"}]}
        zk.create("/kafka-acl/Topic/*", json.dumps(topic_acls).encode(), makepath=True)
        zk.create("/kafka-acl/Group/*", json.dumps(topic_acls).encode(), makepath=True)
        zk.stop()
        common = ["--zookeeper", zookeeper.hosts, "--override", "zookeeper.session.timeout.ms=3000",
                  "--override", "offsets.topic.num.partitions=1"] + secured_args()[:6]
        for i in range(3):
            b = Broker(str(tmp_path / f"broker-{i}"), args=["--broker-id", str(i)] + common)
            os.makedirs(b.data_dir, exist_ok=True)
            brokers.append(b.start())
        bootstrap = ",".join(b.bootstrap for b in brokers)
        wait_for_controller(bootstrap, TIMEOUT)
        client = admin(bootstrap)
        client.create_topics([NewTopic("replicated", 1, 3)], request_timeout=TIMEOUT)["replicated"].result(TIMEOUT)

        # The intruder, with an epoch far above the controller's (which a
        # broker would otherwise adopt, fencing the real controller).
        for b in brokers:
            assert controller_request(b.port, leader_and_isr_v4(1, 1 << 30)) == KafkaError.CLUSTER_AUTHORIZATION_FAILED
            assert controller_request(b.port, stop_replica_v3(2, 1 << 30)) == KafkaError.CLUSTER_AUTHORIZATION_FAILED
        # From the brokers' own host the same request is let through to
        # the controller-epoch check (a stale epoch: refused by it, not by
        # the authorizer).
        assert controller_request(brokers[0].port, leader_and_isr_v4(3, 0), source="127.0.0.1") != \
            KafkaError.CLUSTER_AUTHORIZATION_FAILED

        # Replication still works: every replica in sync, and a leader
        # killed loses nothing.
        values = [f"v{i}".encode() for i in range(50)]
        producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
        for v in values:
            producer.produce("replicated", v)
        assert producer.flush(TIMEOUT) == 0
        deadline = time.time() + 60
        while time.time() < deadline:
            p = client.list_topics("replicated", timeout=10).topics["replicated"].partitions[0]
            if len(p.isrs) == 3:
                break
            time.sleep(0.2)
        assert len(p.isrs) == 3, f"ISR {p.isrs}"
        brokers[p.leader].kill()
        survivors = ",".join(b.bootstrap for i, b in enumerate(brokers) if i != p.leader)
        assert read_all(survivors, "replicated", expect=len(values), timeout=60) == values
    finally:
        for b in brokers:
            b.kill()
        zookeeper.stop()

