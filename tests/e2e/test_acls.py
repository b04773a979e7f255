"""ACLs (issue 16): Kafka's authorizer semantics with unmodified clients.

The matrix runs for each principal of `PRINCIPALS`, on one shared broker
with a PLAINTEXT and a SASL_PLAINTEXT listener: `User:ANONYMOUS` (a
PLAINTEXT client) and `User:alice` (a SCRAM-SHA-512 user over
SASL_PLAINTEXT). Each has its own topics (`orders-<tag>`, …), so the runs
do not see each other's records; allow.everyone.if.no.acl.found is false,
and super.users names only `User:root` (another SCRAM user), whose bypass
is checked apart.

Bootstrapping, as an operator would with Kafka: the broker first runs
with super.users naming `User:ANONYMOUS`, which makes the SCRAM users and
grants each matrix principal Alter on the cluster (to administer ACLs
through the admin API from then on) and ANONYMOUS ClusterAction from
127.0.0.1 (the broker's own controller and replica traffic, which comes as
User:ANONYMOUS over its PLAINTEXT listener); then it restarts with
super.users=User:root. The three-broker test instead writes that
bootstrap ACL straight into ZooKeeper in Kafka's JSON, as `kafka-acls
--authorizer-properties zookeeper.connect=…` does.
"""
import json
import os
import socket
import subprocess
import time

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicCollection
from confluent_kafka.admin import (AclBinding, AclBindingFilter, AclOperation, AclPermissionType, AdminClient,
                                   ConfigResource, NewPartitions, NewTopic, ResourcePatternType, ResourceType,
                                   ScramCredentialInfo, ScramMechanism, UserScramCredentialUpsertion)

from bench.kafka.kafka import wait_for_controller
from conftest import GREGOR, Broker, ZooKeeper, free_port
from controller_requests import exchange, leader_and_isr_v4, stop_replica_v3, update_metadata_v6

PRINCIPALS = ["anonymous", "scram"]
SUPER_USER = "root"
AUTHORIZER = "kafka.security.authorizer.AclAuthorizer"
TIMEOUT = 30
TOPIC_DENIED = KafkaError.TOPIC_AUTHORIZATION_FAILED
GROUP_DENIED = KafkaError.GROUP_AUTHORIZATION_FAILED
# Each principal's own topics, made while bootstrapping.
TOPICS = ("orders", "payments", "acl-existing")


def secured_args(super_users=""):
    return ["--override", f"authorizer.class.name={AUTHORIZER}",
            "--override", f"super.users={super_users}",
            "--override", "allow.everyone.if.no.acl.found=false",
            "--override", "offsets.topic.num.partitions=1",
            "--override", "offsets.topic.replication.factor=1"]


class Who:
    """A principal the matrix runs as: its name, the client properties that
    connect as it (confluent-kafka's, kafka-python's, a `--command-config`
    file for gregor's tools), and its own topics' names."""

    def __init__(self, principal, tag, conf, kafka_python, command_config=None):
        self.principal, self.tag, self.conf = principal, tag, conf
        self.kafka_python, self.command_config = kafka_python, command_config

    def topic(self, base):
        return f"{base}-{self.tag}"


def scram_user(bootstrap_port, sasl_port, user, tmp_dir):
    """`User:<user>` over SASL_PLAINTEXT with SCRAM-SHA-512."""
    password = f"{user}-secret"
    config = os.path.join(tmp_dir, f"{user}.properties")
    with open(config, "w") as f:
        f.write(f"security.protocol=SASL_PLAINTEXT\nsasl.mechanism=SCRAM-SHA-512\n"
                f"sasl.username={user}\nsasl.password={password}\n")
    conf = {"bootstrap.servers": f"127.0.0.1:{sasl_port}", "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanism": "SCRAM-SHA-512", "sasl.username": user, "sasl.password": password}
    kafka_python = {"bootstrap_servers": f"127.0.0.1:{sasl_port}", "security_protocol": "SASL_PLAINTEXT",
                    "sasl_mechanism": "SCRAM-SHA-512", "sasl_plain_username": user,
                    "sasl_plain_password": password}
    return Who(f"User:{user}", user, conf, kafka_python, config)


def binding(principal, operation, restype=ResourceType.TOPIC, name="*", pattern=ResourcePatternType.LITERAL,
            permission=AclPermissionType.ALLOW, host="*"):
    return AclBinding(restype, name, pattern, principal, host, operation, permission)


def admin(conf):
    return AdminClient(dict(conf))


def create_acls(conf, bindings):
    client = admin(conf)
    for _, future in client.create_acls(bindings, request_timeout=TIMEOUT).items():
        future.result(timeout=TIMEOUT)


def delete_acls(conf, bindings):
    filters = [AclBindingFilter(b.restype, b.name, b.resource_pattern_type, b.principal, b.host, b.operation,
                                b.permission_type) for b in bindings]
    client = admin(conf)
    return [f.result(timeout=TIMEOUT) for f in client.delete_acls(filters, request_timeout=TIMEOUT).values()]


class Granted:
    """ACLs that hold inside a `with` block and are deleted after it."""

    def __init__(self, conf, *bindings):
        self.conf, self.bindings = conf, list(bindings)

    def __enter__(self):
        create_acls(self.conf, self.bindings)
        return self

    def __exit__(self, *exc):
        delete_acls(self.conf, self.bindings)


def error_of(future):
    try:
        future.result(timeout=TIMEOUT)
    except KafkaException as e:
        return e.args[0].code()
    return None


def produce_one(conf, topic, value, **config):
    outcome = []
    producer = Producer({**conf, "message.timeout.ms": 10000, "acks": "all", "enable.idempotence": False, **config})
    producer.produce(topic, value, on_delivery=lambda err, msg: outcome.append(err))
    producer.flush(TIMEOUT)
    assert outcome, "no delivery report"
    return outcome[0].code() if outcome[0] else None


def read_all(conf, topic, group=None, expect=None, timeout=15):
    """The values of `topic` read from the start by a subscribed consumer
    (of group `group`, else a fresh `reader-…` one), or the error."""
    consumer = Consumer({**conf, "group.id": group or f"reader-{time.time_ns()}",
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


class Secured:
    """The shared broker and who may connect to it."""

    def __init__(self, broker, who, root):
        self.broker, self.who, self.root = broker, who, root


@pytest.fixture(scope="module")
def secured(tmp_path_factory):
    """A broker with the authorizer on, bootstrapped as the module doc says."""
    data = str(tmp_path_factory.mktemp("acls"))
    plain, sasl = free_port(), free_port()
    who = {"anonymous": Who("User:ANONYMOUS", "anonymous", {"bootstrap.servers": f"127.0.0.1:{plain}"},
                            {"bootstrap_servers": f"127.0.0.1:{plain}"}),
           "scram": scram_user(plain, sasl, "alice", data)}
    root = scram_user(plain, sasl, SUPER_USER, data)

    def broker(super_users):
        b = Broker(data, args=secured_args(super_users) + [
            "--override", "sasl.enabled.mechanisms=SCRAM-SHA-512"])
        b.port = plain
        b.listeners = f"PLAINTEXT://127.0.0.1:{plain},SASL_PLAINTEXT://127.0.0.1:{sasl}"
        return b.start()

    first = broker("User:ANONYMOUS")
    try:
        # librdkafka's admin requests wait for a named controller.
        wait_for_controller(first.bootstrap, TIMEOUT)
        client = admin({"bootstrap.servers": first.bootstrap})
        upserts = [UserScramCredentialUpsertion(user, ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 4096),
                                                f"{user}-secret".encode()) for user in ("alice", SUPER_USER)]
        for f in client.alter_user_scram_credentials(upserts).values():
            f.result(TIMEOUT)
        create_acls({"bootstrap.servers": first.bootstrap}, [
            binding("User:ANONYMOUS", AclOperation.CLUSTER_ACTION, ResourceType.BROKER, "kafka-cluster",
                    host="127.0.0.1"),
        ] + [b for w in who.values() for b in (
            binding(w.principal, AclOperation.ALTER, ResourceType.BROKER, "kafka-cluster"),
            # The groups read_all's assigned (group-less) readers are in.
            binding(w.principal, AclOperation.READ, ResourceType.GROUP, "reader-", ResourcePatternType.PREFIXED),
        )])
        # Topics the matrix uses, made while ANONYMOUS is super.
        futures = client.create_topics([NewTopic(w.topic(t), 1, 1) for w in who.values() for t in TOPICS],
                                       request_timeout=TIMEOUT)
        for f in futures.values():
            f.result(timeout=TIMEOUT)
        for w in who.values():
            assert produce_one({"bootstrap.servers": first.bootstrap}, w.topic("orders"), b"first") is None
    finally:
        first.stop()
    b = broker(f"User:{SUPER_USER}")
    wait_for_controller(b.bootstrap, TIMEOUT)
    yield Secured(b, who, root)
    b.stop()


@pytest.fixture(scope="module", params=PRINCIPALS)
def who(request, secured):
    return secured.who[request.param]


def test_acls_are_created_described_and_deleted_through_the_admin_api(who):
    mine = binding(who.principal, AclOperation.READ, name="acl-admin-", pattern=ResourcePatternType.PREFIXED)
    create_acls(who.conf, [mine])
    client = admin(who.conf)
    described = client.describe_acls(
        AclBindingFilter(ResourceType.TOPIC, None, ResourcePatternType.ANY, None, None, AclOperation.ANY,
                         AclPermissionType.ANY), request_timeout=TIMEOUT).result(timeout=TIMEOUT)
    assert mine in described
    # A binding Kafka refuses: the cluster under another name.
    bad = binding(who.principal, AclOperation.ALTER, ResourceType.BROKER, "not-the-cluster")
    futures = client.create_acls([bad], request_timeout=TIMEOUT)
    assert error_of(futures[bad]) == KafkaError.INVALID_REQUEST
    assert delete_acls(who.conf, [mine]) == [[mine]]
    described = client.describe_acls(
        AclBindingFilter(ResourceType.TOPIC, "acl-admin-", ResourcePatternType.PREFIXED, None, None, AclOperation.ANY,
                         AclPermissionType.ANY), request_timeout=TIMEOUT).result(timeout=TIMEOUT)
    assert described == []


def test_produce_needs_write_and_a_refused_record_is_not_written(who):
    assert produce_one(who.conf, who.topic("payments"), b"refused") == TOPIC_DENIED
    with Granted(who.conf, binding(who.principal, AclOperation.WRITE, name=who.topic("payments"))):
        assert produce_one(who.conf, who.topic("payments"), b"accepted") is None
    with Granted(who.conf, binding(who.principal, AclOperation.READ, name=who.topic("payments"))):
        assert read_all(who.conf, who.topic("payments"), expect=1) == [b"accepted"]


def test_consume_needs_read_on_the_topic_and_the_group(who):
    assert read_all(who.conf, who.topic("orders")) == TOPIC_DENIED
    with Granted(who.conf, binding(who.principal, AclOperation.READ, name=who.topic("orders"))):
        assert read_all(who.conf, who.topic("orders"), expect=1) == [b"first"]
        # A group the principal may not read.
        assert read_all(who.conf, who.topic("orders"), group="no-group-acl") == GROUP_DENIED
        with Granted(who.conf, binding(who.principal, AclOperation.READ, ResourceType.GROUP, "app-",
                                        ResourcePatternType.PREFIXED)):
            assert read_all(who.conf, who.topic("orders"), group="app-1", expect=1) == [b"first"]


def test_a_deny_overrides_an_allow(who):
    allow_all = binding(who.principal, AclOperation.READ, name="*")
    deny = binding(who.principal, AclOperation.READ, name=who.topic("orders"), permission=AclPermissionType.DENY)
    with Granted(who.conf, allow_all):
        assert read_all(who.conf, who.topic("orders"), expect=1) == [b"first"]
        with Granted(who.conf, deny):
            assert read_all(who.conf, who.topic("orders")) == TOPIC_DENIED
            # Read implies Describe, which the Deny of Read does not take.
            client = admin(who.conf)
            assert who.topic("orders") in client.list_topics(timeout=TIMEOUT).topics


def test_metadata_leaves_out_topics_the_principal_may_not_describe(who):
    client = admin(who.conf)
    assert who.topic("orders") not in client.list_topics(timeout=TIMEOUT).topics
    with Granted(who.conf, binding(who.principal, AclOperation.DESCRIBE, name="ord", pattern=ResourcePatternType.PREFIXED)):
        topics = client.list_topics(timeout=TIMEOUT).topics
        assert who.topic("orders") in topics and who.topic("payments") not in topics


def test_create_topics_needs_create_and_a_prefixed_grant_gives_it(who):
    client = admin(who.conf)
    refused = client.create_topics([NewTopic(who.topic("acl-new"), 1, 1)], request_timeout=TIMEOUT)[who.topic("acl-new")]
    assert error_of(refused) == TOPIC_DENIED
    with Granted(who.conf, binding(who.principal, AclOperation.CREATE, name="acl-", pattern=ResourcePatternType.PREFIXED),
                 binding(who.principal, AclOperation.DESCRIBE, name="acl-", pattern=ResourcePatternType.PREFIXED)):
        assert error_of(client.create_topics([NewTopic(who.topic("acl-new"), 1, 1)], request_timeout=TIMEOUT)[who.topic("acl-new")]) is None
        other = client.create_topics([NewTopic(who.topic("other-new"), 1, 1)], request_timeout=TIMEOUT)[who.topic("other-new")]
        assert error_of(other) == TOPIC_DENIED
        assert who.topic("acl-new") in client.list_topics(timeout=TIMEOUT).topics


def test_delete_and_alter_need_their_operations_and_leave_the_topic_untouched(who):
    client = admin(who.conf)
    describe = binding(who.principal, AclOperation.DESCRIBE, name=who.topic("acl-existing"))
    with Granted(who.conf, describe):
        assert error_of(client.delete_topics([who.topic("acl-existing")], request_timeout=TIMEOUT)[who.topic("acl-existing")]) == TOPIC_DENIED
        more = client.create_partitions([NewPartitions(who.topic("acl-existing"), 3)], request_timeout=TIMEOUT)[who.topic("acl-existing")]
        assert error_of(more) == TOPIC_DENIED
        topic = client.list_topics(who.topic("acl-existing"), timeout=TIMEOUT).topics[who.topic("acl-existing")]
        assert topic.error is None and len(topic.partitions) == 1
        resource = ConfigResource(ConfigResource.Type.TOPIC, who.topic("acl-existing"))
        assert error_of(client.describe_configs([resource], request_timeout=TIMEOUT)[resource]) == TOPIC_DENIED
        with Granted(who.conf, binding(who.principal, AclOperation.ALTER_CONFIGS, name=who.topic("acl-existing"))):
            # AlterConfigs implies DescribeConfigs.
            configs = client.describe_configs([resource], request_timeout=TIMEOUT)[resource].result(timeout=TIMEOUT)
            assert "retention.ms" in configs
        with Granted(who.conf, binding(who.principal, AclOperation.ALTER, name=who.topic("acl-existing"))):
            more = client.create_partitions([NewPartitions(who.topic("acl-existing"), 2)], request_timeout=TIMEOUT)
            assert error_of(more[who.topic("acl-existing")]) is None


def test_transactions_need_write_on_the_transactional_id(who):
    def init(txn_id):
        producer = Producer({**who.conf, "transactional.id": f"{txn_id}-{who.tag}",
                             "transaction.timeout.ms": 10000})
        try:
            producer.init_transactions(15)
            return producer, None
        except KafkaException as e:
            return producer, e.args[0].code()

    write = binding(who.principal, AclOperation.WRITE, name=who.topic("payments"))
    with Granted(who.conf, write):
        _, error = init("tx-refused")
        assert error == KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED
        with Granted(who.conf, binding(who.principal, AclOperation.WRITE, ResourceType.TRANSACTIONAL_ID, "tx-",
                                        ResourcePatternType.PREFIXED),
                     binding(who.principal, AclOperation.READ, name=who.topic("payments"))):
            producer, error = init("tx-ok")
            assert error is None
            producer.begin_transaction()
            producer.produce(who.topic("payments"), b"in-a-transaction")
            producer.commit_transaction(15)
            assert b"in-a-transaction" in read_all(who.conf, who.topic("payments"), expect=2)


def test_an_idempotent_producer_needs_idempotent_write_or_write_on_some_topic(who):
    def idempotent():
        return produce_one(who.conf, who.topic("payments"), b"idempotent", **{"enable.idempotence": True})

    # No Write anywhere: InitProducerId is refused (the record with it).
    assert idempotent() is not None
    with Granted(who.conf, binding(who.principal, AclOperation.WRITE, name=who.topic("payments"))):
        assert idempotent() is None


def test_kafka_python_administers_acls_and_is_refused_like_kafka(who):
    from kafka import KafkaProducer
    from kafka.admin import (ACL, ACLFilter, ACLOperation, ACLPermissionType, ACLResourcePatternType,
                             KafkaAdminClient, ResourcePattern, ResourcePatternFilter)
    from kafka.admin import ResourceType as KResourceType
    from kafka.errors import TopicAuthorizationFailedError

    producer = KafkaProducer(**who.kafka_python, acks="all", retries=0, max_block_ms=10000)
    try:
        with pytest.raises(TopicAuthorizationFailedError):
            producer.send(who.topic("payments"), b"kafka-python refused").get(timeout=TIMEOUT)
    finally:
        producer.close()
    client = KafkaAdminClient(**who.kafka_python)
    try:
        acl = ACL(who.principal, "*", ACLOperation.WRITE, ACLPermissionType.ALLOW,
                  ResourcePattern(KResourceType.TOPIC, "pay", ACLResourcePatternType.PREFIXED))
        result = client.create_acls([acl])
        assert result["failed"] == [], result
        found, error = client.describe_acls(ACLFilter(who.principal, None, ACLOperation.ANY, ACLPermissionType.ANY,
                                                       ResourcePatternFilter(KResourceType.TOPIC, None,
                                                                             ACLResourcePatternType.ANY)))
        assert error.errno == 0 and any(a.resource_pattern.resource_name == "pay" for a in found)
        producer = KafkaProducer(**who.kafka_python, acks="all", retries=0, max_block_ms=10000)
        try:
            producer.send(who.topic("payments"), b"kafka-python accepted").get(timeout=TIMEOUT)
        finally:
            producer.close()
        deleted = client.delete_acls([ACLFilter(who.principal, "*", ACLOperation.WRITE, ACLPermissionType.ALLOW,
                                                ResourcePatternFilter(KResourceType.TOPIC, "pay",
                                                                      ACLResourcePatternType.PREFIXED))])
        assert len(deleted[0][1]) == 1, deleted
    finally:
        client.close()
    with Granted(who.conf, binding(who.principal, AclOperation.READ, name=who.topic("payments"))):
        values = read_all(who.conf, who.topic("payments"), expect=100, timeout=8)
        assert b"kafka-python accepted" in values and b"kafka-python refused" not in values


def test_the_cli_adds_lists_and_removes_acls(who):
    """`gregor acl` through the admin APIs (as the principal: a SCRAM user's
    `--command-config`); runs before the Deny-Alter test."""
    security = ["--command-config", who.command_config] if who.command_config else []

    def gregor(*args):
        out = subprocess.run([GREGOR, *security, "acl", *args, "--bootstrap-server", who.conf["bootstrap.servers"],
                              "--json"],
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)

    spec = ["--principal", who.principal, "--operation", "Write", "--resource-type", "topic",
            "--resource-name", "cli-", "--pattern-type", "prefixed"]
    assert gregor("add", *spec)[0]["operation"] == "Write"
    listed = gregor("list", "--resource-type", "topic", "--resource-name", "cli-")
    assert {"resource_name": "cli-", "pattern_type": "PREFIXED", "principal": who.principal, "host": "*",
            "operation": "Write", "permission": "Allow", "resource_type": "Topic"} in listed
    assert len(gregor("remove", *spec)) == 1
    assert gregor("list", "--resource-type", "topic", "--resource-name", "cli-") == []


def test_authorized_operations_are_what_the_acls_grant(who):
    """Metadata's, DescribeGroups' and ConsumerGroupDescribe's
    authorized_operations (and DescribeCluster's), asked for by
    confluent-kafka's admin client: the
    operations the principal may do, implied ones included; not asked,
    none are sent."""
    client = admin(who.conf)
    topic, group = who.topic("orders"), f"ops-{who.tag}"
    with Granted(who.conf, binding(who.principal, AclOperation.READ, name=topic),
                 binding(who.principal, AclOperation.ALTER_CONFIGS, name=topic),
                 binding(who.principal, AclOperation.DELETE, ResourceType.GROUP, group)):
        described = client.describe_topics(TopicCollection([topic]), include_authorized_operations=True,
                                           request_timeout=TIMEOUT)[topic].result(TIMEOUT)
        assert set(described.authorized_operations) == {
            AclOperation.READ, AclOperation.DESCRIBE, AclOperation.ALTER_CONFIGS, AclOperation.DESCRIBE_CONFIGS}
        plain = client.describe_topics(TopicCollection([topic]), request_timeout=TIMEOUT)[topic].result(TIMEOUT)
        assert plain.authorized_operations is None
        groups = client.describe_consumer_groups([group], include_authorized_operations=True,
                                                 request_timeout=TIMEOUT)
        assert set(groups[group].result(TIMEOUT).authorized_operations) == {AclOperation.DELETE,
                                                                            AclOperation.DESCRIBE}
    # A consumer-protocol group (KIP-848) is described by
    # ConsumerGroupDescribe, with its operations too.
    member_group = f"ops-848-{who.tag}"
    with Granted(who.conf, binding(who.principal, AclOperation.READ, name=topic),
                 binding(who.principal, AclOperation.READ, ResourceType.GROUP, member_group)):
        member = Consumer(dict(who.conf, **{"group.id": member_group, "group.protocol": "consumer"}))
        member.subscribe([topic])
        deadline = time.time() + 60
        while not member.assignment() and time.time() < deadline:
            member.poll(0.2)
        try:
            described = client.describe_consumer_groups([member_group], include_authorized_operations=True,
                                                        request_timeout=TIMEOUT)[member_group].result(TIMEOUT)
            assert len(described.members) == 1
            assert set(described.authorized_operations) == {AclOperation.READ, AclOperation.DESCRIBE}
        finally:
            member.close()
    # Alter on the cluster (the bootstrap's grant) implies Describe;
    # ANONYMOUS also has ClusterAction from this host.
    cluster = client.describe_cluster(include_authorized_operations=True, request_timeout=TIMEOUT).result(TIMEOUT)
    expected = {AclOperation.ALTER, AclOperation.DESCRIBE}
    if who.principal == "User:ANONYMOUS":
        expected.add(AclOperation.CLUSTER_ACTION)
    assert set(cluster.authorized_operations) == expected


def test_acl_changes_need_alter_on_the_cluster(who):
    """Last of the single-broker tests: the Deny it adds also stops the
    delete that would take it back (only a super user or the store could)."""
    deny = binding(who.principal, AclOperation.ALTER, ResourceType.BROKER, "kafka-cluster",
                   permission=AclPermissionType.DENY)
    create_acls(who.conf, [deny])
    attempt = binding(who.principal, AclOperation.READ, name="x")
    client = admin(who.conf)
    futures = client.create_acls([attempt], request_timeout=TIMEOUT)
    assert error_of(futures[attempt]) == KafkaError.CLUSTER_AUTHORIZATION_FAILED
    deleted = client.delete_acls([AclBindingFilter(
        ResourceType.ANY, None, ResourcePatternType.ANY, None, None, AclOperation.ANY, AclPermissionType.ANY)],
        request_timeout=TIMEOUT)
    assert error_of(list(deleted.values())[0]) == KafkaError.CLUSTER_AUTHORIZATION_FAILED


def test_a_super_user_bypasses_every_acl_even_a_deny(secured):
    """super.users: User:root may do anything, a Deny of All on every
    resource notwithstanding; the same requests from a user who is not
    super are still refused."""
    root, alice = secured.root, secured.who["scram"]
    denied = [binding(root.principal, AclOperation.ALL, restype, name, permission=AclPermissionType.DENY)
              for restype, name in ((ResourceType.TOPIC, "*"), (ResourceType.GROUP, "*"),
                                    (ResourceType.BROKER, "kafka-cluster"))]
    topic = root.topic("super")
    with Granted(root.conf, *denied):
        client = admin(root.conf)
        assert error_of(client.create_topics([NewTopic(topic, 1, 1)], request_timeout=TIMEOUT)[topic]) is None
        assert produce_one(root.conf, topic, b"by-root") is None
        assert read_all(root.conf, topic, group="any-group", expect=1) == [b"by-root"]
        # Another principal's topic, which no ACL lets root read.
        assert read_all(root.conf, alice.topic("orders"), group="any-group", expect=1) == [b"first"]
        assert topic in client.list_topics(timeout=TIMEOUT).topics
        resource = ConfigResource(ConfigResource.Type.TOPIC, topic)
        assert "retention.ms" in client.describe_configs([resource], request_timeout=TIMEOUT)[resource].result(TIMEOUT)
        described = client.describe_topics(TopicCollection([topic]), include_authorized_operations=True,
                                           request_timeout=TIMEOUT)[topic].result(TIMEOUT)
        assert len(described.authorized_operations) == 8  # every topic operation
    assert produce_one(alice.conf, topic, b"by-alice") == TOPIC_DENIED
    assert read_all(alice.conf, topic) == TOPIC_DENIED
    assert topic not in admin(alice.conf).list_topics(timeout=TIMEOUT).topics


def controller_request(port, request, source="127.0.0.2"):
    """Sends a request from `source` and returns the response's error code."""
    with socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source, 0)) as s:
        return exchange(s, request)


def test_a_client_is_refused_controller_apis_while_three_brokers_still_replicate(tmp_path):
    """A cluster without authentication: brokers reach each other from
    127.0.0.1 as User:ANONYMOUS over PLAINTEXT; the bootstrap ACL grants
    ClusterAction from that host only, and the intruder connects from
    127.0.0.2. (With authentication — brokers on SASL_SSL as a super user,
    clients refused as themselves — see test_security_cluster.py.)"""
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
        client = admin({"bootstrap.servers": bootstrap})
        client.create_topics([NewTopic("replicated", 1, 3)], request_timeout=TIMEOUT)["replicated"].result(TIMEOUT)

        # The intruder, with an epoch far above the controller's (which a
        # broker would otherwise adopt, fencing the real controller).
        for b in brokers:
            assert controller_request(b.port, leader_and_isr_v4(1, 1 << 30)) == KafkaError.CLUSTER_AUTHORIZATION_FAILED
            assert controller_request(b.port, stop_replica_v3(2, 1 << 30)) == KafkaError.CLUSTER_AUTHORIZATION_FAILED
            assert controller_request(b.port, update_metadata_v6(3, 1 << 30)) == \
                KafkaError.CLUSTER_AUTHORIZATION_FAILED
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
        assert read_all({"bootstrap.servers": survivors}, "replicated", expect=len(values), timeout=60) == values
    finally:
        for b in brokers:
            b.kill()
        zookeeper.stop()

