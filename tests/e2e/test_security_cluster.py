"""The secured broker of the README (config/secure-server.toml: one
SASL_SSL listener, brokers authenticating to each other with PLAIN over
TLS) with gregor's own tools (`--command-config`, `gregor user`) and
confluent-kafka; then three such brokers with the authorizer on, replicating
over SASL_SSL as their super user and surviving a leader SIGKILL, while an
authenticated client who is not super is refused the controller's APIs."""
import json
import os
import socket
import ssl
import struct
import subprocess
import time

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import (AclBinding, AclOperation, AclPermissionType, AdminClient, NewTopic,
                                   ResourcePatternType, ResourceType)

from conftest import GREGOR, ROOT, Broker, Coordination
from controller_requests import exchange, leader_and_isr_v4, read_frame, stop_replica_v3, update_metadata_v6
from tls_certs import make_certs

CONFIG = os.path.join(ROOT, "config", "secure-server.toml")
# The sample config's JAAS line with one more PLAIN user, who is not super.
JAAS_WITH_ALICE = ('org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" '
                   'password="admin-secret" user_admin="admin-secret" user_alice="alice-secret";')
CLUSTER_AUTHORIZATION_FAILED = 31
STALE_CONTROLLER_EPOCH = 11


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return make_certs(str(tmp_path_factory.mktemp("certs")))


def secure_broker(root, certs, broker_id=0, extra=()):
    """A broker from the sample config, its paths and port made the test's."""
    b = Broker(os.path.join(root, f"broker-{broker_id}"), args=[
        "--config", CONFIG, "--broker-id", str(broker_id),
        "--override", f"ssl.keystore.location={certs}/broker.pem",
        "--override", f"ssl.truststore.location={certs}/ca.crt",
        *extra,
    ])
    b.args += ["--advertised-listeners", f"SASL_SSL://localhost:{b.port}"]
    b.listeners = f"SASL_SSL://127.0.0.1:{b.port}"
    os.makedirs(b.data_dir, exist_ok=True)
    return b


def properties(path, certs, **values):
    with open(path, "w") as f:
        for line in open(os.path.join(ROOT, "config", os.path.basename(path))):
            key = line.split("=", 1)[0]
            if key == "ssl.ca.location":
                line = f"ssl.ca.location={certs}/ca.crt\n"
            elif key in values:
                line = f"{key}={values[key]}\n"
            f.write(line)
    return path


def gregor(config, *args, stdin=None, check=True):
    return subprocess.run([GREGOR, "--command-config", config, *args], input=stdin, capture_output=True,
                          text=True, timeout=120, check=check)


def client_conf(b, certs, mechanism, user, password):
    return {
        "bootstrap.servers": f"localhost:{b.port}",
        "security.protocol": "SASL_SSL",
        "ssl.ca.location": f"{certs}/ca.crt",
        "sasl.mechanism": mechanism,
        "sasl.username": user,
        "sasl.password": password,
    }


def test_the_readme_secured_broker_with_gregor_tools(tmp_path, certs):
    b = secure_broker(str(tmp_path), certs).start()
    try:
        bootstrap = ["--bootstrap-server", f"localhost:{b.port}"]
        admin = properties(str(tmp_path / "admin-client.properties"), certs)
        alice = properties(str(tmp_path / "scram-client.properties"), certs)
        gregor(admin, "user", "set-password", *bootstrap, "--user", "alice", "--password", "alice-secret")
        listed = json.loads(gregor(admin, "user", "list", *bootstrap, "--json").stdout)
        assert listed == [{"user": "alice", "credentials": [
            {"mechanism": "SCRAM-SHA-256", "iterations": 4096}, {"mechanism": "SCRAM-SHA-512", "iterations": 4096}]}]
        gregor(alice, "topic", "create", "secured", *bootstrap, "--partitions", "1")
        gregor(alice, "produce", *bootstrap, "--topic", "secured", stdin="one\ntwo\nthree\n")
        out = gregor(alice, "consume", *bootstrap, "--topic", "secured", "--from-beginning", "--max-messages", "3")
        assert out.stdout.split() == ["one", "two", "three"]
        # confluent-kafka reads the same records as alice with SCRAM-SHA-512.
        c = Consumer(dict(client_conf(b, certs, "SCRAM-SHA-512", "alice", "alice-secret"),
                          **{"group.id": "readme", "auto.offset.reset": "earliest"}))
        c.assign([TopicPartition("secured", 0, 0)])
        got, deadline = [], time.time() + 30
        while len(got) < 3 and time.time() < deadline:
            got += [m.value() for m in c.consume(10, 1.0) if m.error() is None]
        c.close()
        assert got == [b"one", b"two", b"three"]
        # A wrong password: the tool says why and fails.
        wrong = properties(str(tmp_path / "scram-client.properties"), certs, **{"sasl.password": "nope"})
        refused = gregor(wrong, "topic", "list", *bootstrap, check=False)
        assert refused.returncode != 0 and "SaslAuthenticationFailed" in refused.stderr, refused.stderr
        # Deleting the user's credentials locks it out.
        gregor(admin, "user", "delete", *bootstrap, "--user", "alice")
        assert json.loads(gregor(admin, "user", "list", *bootstrap, "--json").stdout) == []
        gone = gregor(alice, "topic", "list", *bootstrap, check=False)
        assert gone.returncode != 0 and "SaslAuthenticationFailed" in gone.stderr
    finally:
        b.stop()


def wait_for_partition(admin, topic, check, what, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            p = admin.list_topics(topic, timeout=10).topics[topic].partitions[0]
            if p.leader >= 0 and check(p):
                return p
        except Exception:  # metadata not there yet
            pass
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def sasl_plain_connection(port, certs, user, password):
    """A raw connection to a SASL_SSL listener: TLS, then SaslHandshake v1
    and SaslAuthenticate v1 with PLAIN (checked to succeed)."""
    context = ssl.create_default_context(cafile=f"{certs}/ca.crt")
    s = context.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=10), server_hostname="localhost")
    mechanism = b"PLAIN"
    s.sendall(kafka_request(17, 1, 1, len(mechanism).to_bytes(2, "big") + mechanism))
    assert read_frame(s)[4:6] == b"\x00\x00", "PLAIN refused"
    token = b"\x00" + user.encode() + b"\x00" + password.encode()
    s.sendall(kafka_request(36, 1, 2, len(token).to_bytes(4, "big") + token))
    assert read_frame(s)[4:6] == b"\x00\x00", f"{user} did not authenticate"
    return s


def kafka_request(api_key, version, correlation_id, body):
    """A request with a v1 header (no client id) and its size prefix."""
    message = struct.pack(">hhih", api_key, version, correlation_id, -1) + body
    return struct.pack(">i", len(message)) + message


def test_a_secured_cluster_replicates_and_refuses_controller_apis_to_clients(tmp_path, certs):
    """Three brokers whose only listener is SASL_SSL, the authorizer on,
    and the brokers' own user (`admin`, PLAIN) the only super user: they
    replicate over SASL_SSL (RF 3, min.insync.replicas 2), and a leader
    SIGKILL loses nothing acknowledged, while `alice` — authenticated,
    granted her topic, not super — is refused LeaderAndIsr, UpdateMetadata
    and StopReplica on every broker with CLUSTER_AUTHORIZATION_FAILED."""
    coordination = Coordination(str(tmp_path / "coordination"))
    brokers = []
    try:
        for i in range(3):
            brokers.append(secure_broker(str(tmp_path), certs, broker_id=i, extra=[
                "--coordination", coordination.address,
                "--override", "zookeeper.session.timeout.ms=3000",
                "--override", "offsets.topic.num.partitions=3",
                "--override", f"sasl.jaas.config={JAAS_WITH_ALICE}",
                "--override", "authorizer.class.name=kafka.security.authorizer.AclAuthorizer",
                "--override", "super.users=User:admin",
                "--override", "allow.everyone.if.no.acl.found=false",
            ]).start())
        bootstrap = ",".join(f"localhost:{b.port}" for b in brokers)
        conf = dict(client_conf(brokers[0], certs, "PLAIN", "admin", "admin-secret"), **{"bootstrap.servers": bootstrap})
        alice = dict(conf, **{"sasl.username": "alice", "sasl.password": "alice-secret"})
        admin = AdminClient(conf)
        admin.create_topics([NewTopic("replicated", 1, 3, config={"min.insync.replicas": "2"})])["replicated"].result(30)
        grants = [AclBinding(ResourceType.TOPIC, "replicated", ResourcePatternType.LITERAL, "User:alice", "*", op,
                             AclPermissionType.ALLOW) for op in (AclOperation.WRITE, AclOperation.READ)]
        grants += [AclBinding(ResourceType.GROUP, "check", ResourcePatternType.LITERAL, "User:alice", "*",
                              AclOperation.READ, AclPermissionType.ALLOW),
                   AclBinding(ResourceType.BROKER, "kafka-cluster", ResourcePatternType.LITERAL, "User:alice", "*",
                              AclOperation.IDEMPOTENT_WRITE, AclPermissionType.ALLOW)]
        for f in admin.create_acls(grants).values():
            f.result(30)
        # Every broker has applied alice's grants: each shows her the topic.
        for b in brokers:
            one = AdminClient(dict(alice, **{"bootstrap.servers": f"localhost:{b.port}"}))
            wait_for_partition(one, "replicated", lambda p: True, f"alice's grants on broker {b.port}")
        # Followers fetch from the leader over SASL_SSL as User:admin: the ISR fills up.
        p = wait_for_partition(admin, "replicated", lambda p: len(p.isrs) == 3, "a full ISR")

        # alice, with an epoch far above the controller's (which a broker
        # would otherwise adopt, fencing the real controller).
        for b in brokers:
            with sasl_plain_connection(b.port, certs, "alice", "alice-secret") as s:
                for request in (leader_and_isr_v4(3, 1 << 30), update_metadata_v6(4, 1 << 30),
                                stop_replica_v3(5, 1 << 30)):
                    assert exchange(s, request) == CLUSTER_AUTHORIZATION_FAILED
        # The brokers' user gets past the authorizer to the controller-epoch
        # check (a stale epoch: refused by it, not by the authorizer).
        with sasl_plain_connection(brokers[0].port, certs, "admin", "admin-secret") as s:
            assert exchange(s, leader_and_isr_v4(3, 0)) == STALE_CONTROLLER_EPOCH

        producer = Producer(dict(alice, **{"acks": "all", "enable.idempotence": True, "message.timeout.ms": 120000}))
        for i in range(500):
            producer.produce("replicated", str(i).encode())
        assert producer.flush(60) == 0
        leader = p.leader
        brokers[leader].kill()
        wait_for_partition(admin, "replicated", lambda q: q.leader not in (-1, leader), "a new leader")
        for i in range(500, 1000):
            producer.produce("replicated", str(i).encode())
        assert producer.flush(120) == 0
        c = Consumer(dict(alice, **{"group.id": "check", "auto.offset.reset": "earliest"}))
        c.assign([TopicPartition("replicated", 0, 0)])
        got, deadline = [], time.time() + 60
        while len(got) < 1000 and time.time() < deadline:
            got += [int(m.value()) for m in c.consume(500, 1.0) if m.error() is None]
        c.close()
        assert got == list(range(1000))
    finally:
        for b in brokers:
            b.kill()
        coordination.stop()


def test_kafkas_own_tools_over_sasl_ssl(tmp_path, certs):
    """Kafka 3.9's Java client and tools: kafka-configs sets a SCRAM
    password (AlterUserScramCredentials) and describes it, the console
    producer and consumer then work as that user over SASL_SSL."""
    from bench.kafka import kafka

    if kafka.missing():
        pytest.skip(f"needs Kafka's tools: {kafka.missing()}")
    b = secure_broker(str(tmp_path), certs).start()
    try:
        bootstrap = f"localhost:{b.port}"

        def java_config(name, mechanism, user, password):
            path = str(tmp_path / name)
            module = "plain.PlainLoginModule" if mechanism == "PLAIN" else "scram.ScramLoginModule"
            with open(path, "w") as f:
                f.write(f"security.protocol=SASL_SSL\nsasl.mechanism={mechanism}\n"
                        f"ssl.truststore.type=PEM\nssl.truststore.location={certs}/ca.crt\n"
                        f"sasl.jaas.config=org.apache.kafka.common.security.{module} required "
                        f'username="{user}" password="{password}";\n')
            return path

        admin = java_config("admin.properties", "PLAIN", "admin", "admin-secret")
        kafka.tool("kafka-configs", "--bootstrap-server", bootstrap, "--command-config", admin, "--alter",
                   "--entity-type", "users", "--entity-name", "carol",
                   "--add-config", "SCRAM-SHA-512=[iterations=8192,password=carol-secret]")
        described = kafka.tool("kafka-configs", "--bootstrap-server", bootstrap, "--command-config", admin,
                               "--describe", "--entity-type", "users", "--entity-name", "carol").stdout
        assert "SCRAM-SHA-512=iterations=8192" in described, described
        carol = java_config("carol.properties", "SCRAM-SHA-512", "carol", "carol-secret")
        kafka.tool("kafka-console-producer", "--bootstrap-server", bootstrap, "--producer.config", carol,
                   "--topic", "java-secured", input="a\nb\nc\n")
        consumed = kafka.tool("kafka-console-consumer", "--bootstrap-server", bootstrap, "--consumer.config", carol,
                              "--topic", "java-secured", "--from-beginning", "--max-messages", "3").stdout
        assert consumed.split() == ["a", "b", "c"]
        # And a wrong password: the Java client's authentication error.
        wrong = java_config("wrong.properties", "SCRAM-SHA-512", "carol", "nope")
        refused = kafka.tool("kafka-topics", "--bootstrap-server", bootstrap, "--command-config", wrong, "--list",
                             check=False, timeout=120)
        assert "SaslAuthenticationException" in refused.stdout + refused.stderr
    finally:
        b.stop()
