"""`gregor coordination --auth-secret-file`: a 3-broker cluster whose
brokers prove the shared secret (`coordination.auth.secret.file`)
replicates as without it; a raw TCP client, a broker without the secret
and one with a wrong secret are refused before they read or write
anything, with a log line on both sides."""
import os
import socket
import struct
import subprocess
import time

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from conftest import BINARY, Broker, Coordination, consume_all
from test_replication import Cluster

SECRET = "a-shared-secret-of-the-cluster-0123456789"


def write_secret(path, secret):
    path.write_text(secret + "\n")
    os.chmod(path, 0o600)
    return str(path)


def raw_hello(address):
    """Says `Hello` (bincode: variant 0, session timeout 30000 as a varint)
    the way an unauthenticated client would; returns the first frame body
    the service answers, or None when it only closes."""
    host, port = address.split(":")
    with socket.create_connection((host, int(port)), timeout=10) as s:
        body = bytes([0, 251]) + struct.pack("<H", 30000)
        s.sendall(struct.pack(">I", len(body)) + body)
        header = s.recv(4)
        if len(header) < 4:
            return None
        (length,) = struct.unpack(">I", header)
        answer = b""
        while len(answer) < length:
            chunk = s.recv(length - len(answer))
            if not chunk:
                break
            answer += chunk
        # Then the service closes the connection.
        assert s.recv(1) == b""
        return answer


def refused_broker(tmp_path, name, coordination, extra):
    """A broker that must fail to start: returns its log."""
    data = tmp_path / name
    data.mkdir()
    log = data / "server.log"
    with open(log, "wb") as out:
        done = subprocess.run(
            [BINARY, "--listeners", "PLAINTEXT://127.0.0.1:0", "--log-dirs", str(data / "logs"),
             "--broker-id", "7", "--coordination", coordination.address] + extra,
            stdout=out, stderr=subprocess.STDOUT, timeout=60)
    text = log.read_text()
    assert done.returncode != 0, text
    return text


def wait_until(condition, what, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_authenticated_coordination_serves_the_cluster_and_refuses_the_rest(tmp_path):
    secret_file = write_secret(tmp_path / "coordination.secret", SECRET)
    coordination = Coordination(str(tmp_path / "coordination"), args=["--auth-secret-file", secret_file])
    cluster = None
    try:
        cluster = Cluster(str(tmp_path / "cluster"), [
            "--coordination", coordination.address,
            "--override", f"coordination.auth.secret.file={secret_file}"])
        admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
        admin.create_topics([NewTopic("guarded", num_partitions=1, replication_factor=3)])["guarded"].result(30)
        wait_until(lambda: len(admin.list_topics("guarded", timeout=10).topics["guarded"].partitions[0].isrs) == 3,
                   "three in-sync replicas")
        producer = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all"})
        for i in range(20):
            producer.produce("guarded", value=str(i).encode())
        assert producer.flush(30) == 0
        assert sorted(int(m.value()) for m in consume_all(cluster.bootstrap, "guarded", 1, 20)) == list(range(20))

        # A raw client speaking the protocol without the secret: told why,
        # and closed.
        answer = raw_hello(coordination.address)
        assert answer is not None and answer[0] == 7, answer  # ServerFrame::Refused
        assert b"authentication required" in answer, answer

        # A broker without the secret and one with another secret.
        without = refused_broker(tmp_path, "no-secret", coordination, [])
        assert "authentication required" in without, without[-2000:]
        wrong_file = write_secret(tmp_path / "wrong.secret", "somebody-else-s-secret-0123456789")
        wrong = refused_broker(tmp_path, "wrong-secret", coordination,
                               ["--override", f"coordination.auth.secret.file={wrong_file}"])
        assert "did not prove the shared secret" in wrong, wrong[-2000:]
        log = open(coordination.log_path).read()
        assert "coordination connection refused: authentication required" in log, log[-3000:]
        assert "coordination connection refused: wrong shared secret" not in log  # that broker stopped first
        # None of them registered or wrote anything.
        assert sorted(b.id for b in admin.list_topics(timeout=10).brokers.values()) == [0, 1, 2]

        # The service restarts: sessions do not survive it (as in ZooKeeper
        # they do not survive losing the ensemble), so each broker opens a
        # new one — through the handshake — and registers again; an admin
        # call during that may fail and is retried, as clients do.
        coordination.stop()
        coordination.start()

        def created():
            try:
                admin.create_topics([NewTopic("after-restart", num_partitions=1, replication_factor=3)])[
                    "after-restart"].result(30)
                return True
            except Exception as e:  # noqa: BLE001 (retried until the deadline)
                return "already exists" in str(e)
        wait_until(created, "a topic created after the restart")
        wait_until(lambda: len(admin.list_topics("after-restart", timeout=10)
                               .topics["after-restart"].partitions[0].isrs) == 3,
                   "three in-sync replicas after the restart")
        wait_until(lambda: sorted(b.id for b in admin.list_topics(timeout=10).brokers.values()) == [0, 1, 2],
                   "every broker registered again")
        log = open(coordination.log_path).read()
        assert "coordination connection refused" not in log.split("gregor coordination listening")[-1], log[-3000:]
    finally:
        if cluster:
            cluster.stop()
        coordination.stop()


def test_a_service_without_a_secret_is_refused_by_a_broker_with_one(tmp_path):
    """A broker with a secret does not talk to a service that can't prove
    it (an impostor, or a service started without --auth-secret-file)."""
    coordination = Coordination(str(tmp_path / "coordination"))
    try:
        secret_file = write_secret(tmp_path / "coordination.secret", SECRET)
        log = refused_broker(tmp_path, "broker", coordination,
                             ["--override", f"coordination.auth.secret.file={secret_file}"])
        assert "has none configured" in log, log[-2000:]
    finally:
        coordination.stop()


def test_zookeeper_set_acl_keeps_unauthenticated_clients_from_writing(tmp_path, zookeeper):
    """`zookeeper.set.acl=true` with digest credentials: the broker's znodes
    are readable by anyone (SCRAM credentials under /config/users by no
    one else) and writable only by the broker's ZooKeeper identity."""
    from confluent_kafka.admin import ScramCredentialInfo, ScramMechanism, UserScramCredentialUpsertion
    from kazoo.client import KazooClient
    from kazoo.exceptions import NoAuthError

    digest = tmp_path / "zookeeper.digest"
    digest.write_text("kafka:broker-secret\n")
    (tmp_path / "broker").mkdir()
    broker = Broker(str(tmp_path / "broker"), env={"GREGOR_ZOOKEEPER_CONNECT": zookeeper.hosts}, args=[
        "--override", "zookeeper.set.acl=true", "--override", f"zookeeper.auth.digest.file={digest}"])
    broker.start()
    stranger = KazooClient(hosts=zookeeper.hosts)
    stranger.start(timeout=30)
    owner = KazooClient(hosts=zookeeper.hosts, auth_data=[("digest", "kafka:broker-secret")])
    owner.start(timeout=30)
    try:
        admin = AdminClient({"bootstrap.servers": broker.bootstrap})
        admin.create_topics([NewTopic("acl-t", num_partitions=1, replication_factor=1)])["acl-t"].result(30)
        admin.alter_user_scram_credentials([UserScramCredentialUpsertion(
            "alice", ScramCredentialInfo(ScramMechanism.SCRAM_SHA_256, 4096), b"alice-secret")])["alice"].result(30)

        # Readable by anyone, as Kafka leaves them.
        assert stranger.get("/brokers/ids/0")[0]
        assignment = stranger.get("/brokers/topics/acl-t")[0]
        acls, _ = stranger.get_acls("/brokers/topics/acl-t")
        assert sorted((a.id.scheme, a.perms) for a in acls) == [("digest", 31), ("world", 1)], acls
        # Not writable by it.
        for number, attempt in enumerate([
            lambda: stranger.set("/brokers/topics/acl-t", b'{"partitions":{}}'),
            lambda: stranger.create("/brokers/topics/acl-t/evil", b""),
            lambda: stranger.create("/brokers/ids/9", b"{}", ephemeral=True),
            lambda: stranger.delete("/brokers/ids/0"),
            lambda: stranger.delete("/brokers/topics/acl-t"),
            lambda: stranger.get("/config/users/alice"),
        ]):
            try:
                attempt()
            except NoAuthError:
                continue
            raise AssertionError(f"an unauthenticated client got through (attempt {number})")
        assert stranger.get("/brokers/topics/acl-t")[0] == assignment
        # The broker's identity may (and can read the credentials).
        assert b"SCRAM-SHA-256" in owner.get("/config/users/alice")[0]
        owner.set("/brokers/topics/acl-t", assignment)
    finally:
        stranger.stop()
        owner.stop()
        broker.stop()


def test_zookeeper_set_acl_without_credentials_does_not_start(tmp_path, zookeeper):
    data = tmp_path / "broker"
    data.mkdir()
    done = subprocess.run(
        [BINARY, "--listeners", "PLAINTEXT://127.0.0.1:0", "--log-dirs", str(data / "logs"),
         "--zookeeper", zookeeper.hosts, "--override", "zookeeper.set.acl=true"],
        capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "zookeeper.set.acl is true but zookeeper.auth.digest.file is unset" in done.stdout + done.stderr
