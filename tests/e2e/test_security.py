"""Listeners and authentication with unmodified clients: named listeners
each answered with their own endpoints; TLS (certificates made here with
the openssl CLI: a CA, a broker certificate, client certificates, and an
untrusted CA) with mTLS principals; SASL PLAIN and SCRAM over TLS. Every
failure gets its clean error and the broker keeps serving the others."""
import json
import os
import re
import socket
import ssl
import subprocess
import time

import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from conftest import GREGOR, Broker, free_port, produce_and_consume
from controller_requests import read_frame
from tls_certs import make_certs, wait_until_served


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return make_certs(str(tmp_path_factory.mktemp("certs")))


def start(tmp_path, listeners, overrides=(), name="b"):
    # Debug lines of the network layer show each connection's principal.
    b = Broker(str(tmp_path / name), env={"RUST_LOG": "info,gregor_routing::network=debug"},
               args=[a for o in overrides for a in ("--override", o)])
    os.makedirs(b.data_dir, exist_ok=True)
    b.listeners = listeners
    return b.start()


def broker_lines(b):
    """The broker's log, colours removed."""
    return re.sub(r"\x1b\[[0-9;]*m", "", open(b.log_path).read())


def tls_overrides(certs, client_auth="none"):
    return [
        "ssl.keystore.type=PEM",
        f"ssl.keystore.location={certs}/broker.pem",
        f"ssl.truststore.location={certs}/ca.crt",
        f"ssl.client.auth={client_auth}",
    ]


def ssl_conf(certs, port, client="client"):
    conf = {
        "bootstrap.servers": f"127.0.0.1:{port}",
        "security.protocol": "SSL",
        "ssl.ca.location": f"{certs}/ca.crt",
    }
    if client:
        conf["ssl.certificate.location"] = f"{certs}/{client}.crt"
        conf["ssl.key.location"] = f"{certs}/{client}.key"
    return conf


def test_each_listener_answers_with_its_own_endpoints(tmp_path):
    plain, internal = free_port(), free_port()
    b = start(tmp_path, f"PLAINTEXT://127.0.0.1:{plain},INTERNAL://127.0.0.1:{internal}", [
        "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,INTERNAL:PLAINTEXT",
        # Clients of each listener are told a different name for the broker.
        f"advertised.listeners=PLAINTEXT://127.0.0.1:{plain},INTERNAL://localhost:{internal}",
        "inter.broker.listener.name=INTERNAL",
    ])
    try:
        for port, host in ((plain, "127.0.0.1"), (internal, "localhost")):
            md = AdminClient({"bootstrap.servers": f"127.0.0.1:{port}"}).list_topics(timeout=10)
            assert [(x.host, x.port) for x in md.brokers.values()] == [(host, port)]
        produce_and_consume({"bootstrap.servers": f"localhost:{internal}"}, "over-internal")
    finally:
        b.stop()


def test_a_bad_listener_configuration_is_refused(tmp_path):
    b = Broker(str(tmp_path))
    b.listeners = f"SSL://127.0.0.1:{free_port()}"  # no PLAINTEXT listener for the brokers
    with pytest.raises(RuntimeError, match="inter-broker listener PLAINTEXT"):
        b.start()


def test_tls_with_client_certificates(tmp_path, certs):
    plain, tls = free_port(), free_port()
    b = start(tmp_path, f"PLAINTEXT://127.0.0.1:{plain},SSL://127.0.0.1:{tls}",
              tls_overrides(certs, "required") + ["ssl.principal.mapping.rules=RULE:^CN=([^,]*),O=gregor$/$1/,DEFAULT"],)
    try:
        produce_and_consume(ssl_conf(certs, tls), "over-tls", n=200)
        # Large fetches go through TLS in userspace (no sendfile): a record
        # bigger than one 256 KiB chunk crosses chunk boundaries.
        big = os.urandom(700_000)
        p = Producer(ssl_conf(certs, tls))
        p.produce("big-over-tls", big)
        assert p.flush(30) == 0
        c = Consumer(dict(ssl_conf(certs, tls), **{"group.id": "big", "auto.offset.reset": "earliest"}))
        c.assign([TopicPartition("big-over-tls", 0, 0)])
        m = None
        deadline = time.time() + 30
        while m is None and time.time() < deadline:
            m = c.poll(1.0)
        c.close()
        assert m is not None and m.error() is None and m.value() == big
        # Requests of ~1 MB one after another (their bodies are read with a
        # receive low-water mark, which must never wait past a body's end).
        values = [os.urandom(1024) for _ in range(4000)]
        p = Producer(dict(ssl_conf(certs, tls), **{"linger.ms": 200, "batch.size": 1_000_000}))
        for v in values:
            p.produce("batches-over-tls", v)
        assert p.flush(30) == 0
        c = Consumer(dict(ssl_conf(certs, tls), **{"group.id": "batches", "auto.offset.reset": "earliest"}))
        c.assign([TopicPartition("batches-over-tls", 0, 0)])
        got, deadline = [], time.time() + 30
        while len(got) < len(values) and time.time() < deadline:
            m = c.poll(1.0)
            if m is not None and m.error() is None:
                got.append(m.value())
        c.close()
        assert got == values
        # The principal the mapping rule made of CN=client,O=gregor.
        deadline = time.time() + 10
        while "principal=User:client" not in broker_lines(b) and time.time() < deadline:
            time.sleep(0.2)
        assert "principal=User:client" in broker_lines(b)
    finally:
        b.stop()


# An ApiVersions v0 request, correlation id 1, no client id.
API_VERSIONS_V0 = b"\x00\x00\x00\x0a\x00\x12\x00\x00\x00\x00\x00\x01\xff\xff"


def read_until_closed(s):
    """Everything the peer sends until it closes (a reset counts as closed)."""
    got = b""
    while True:
        try:
            chunk = s.recv(4096)
        except ConnectionResetError:
            return got
        if not chunk:
            return got
        got += chunk


def failed_handshake(port, context):
    """A TLS handshake with the broker; returns the error it ends with."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        try:
            with context.wrap_socket(raw, server_hostname="localhost") as s:
                # TLS 1.3: a refused client certificate shows on first read.
                s.sendall(b"\x00\x00\x00\x00")
                s.recv(1)
        except (ssl.SSLError, ConnectionResetError, BrokenPipeError) as e:
            return e
    return None


def test_tls_refusals_leave_everyone_else_served(tmp_path, certs):
    plain, tls = free_port(), free_port()
    b = start(tmp_path, f"PLAINTEXT://127.0.0.1:{plain},SSL://127.0.0.1:{tls}", tls_overrides(certs, "required"))
    try:
        # A client certificate from an untrusted CA: the handshake fails.
        ctx = ssl.create_default_context(cafile=f"{certs}/ca.crt")
        ctx.load_cert_chain(f"{certs}/rogue.crt", f"{certs}/rogue.key")
        assert failed_handshake(tls, ctx) is not None
        # An expired client certificate from the trusted CA.
        ctx = ssl.create_default_context(cafile=f"{certs}/ca.crt")
        ctx.load_cert_chain(f"{certs}/expired.crt", f"{certs}/expired.key")
        assert failed_handshake(tls, ctx) is not None
        # No client certificate where one is required.
        assert failed_handshake(tls, ssl.create_default_context(cafile=f"{certs}/ca.crt")) is not None
        # librdkafka with the untrusted certificate: no metadata.
        with pytest.raises(KafkaException):
            AdminClient(ssl_conf(certs, tls, client="rogue")).list_topics(timeout=5)
        # A client that does not trust the broker's CA.
        with pytest.raises(KafkaException):
            AdminClient(dict(ssl_conf(certs, tls), **{"ssl.ca.location": f"{certs}/rogue-ca.crt"})).list_topics(timeout=5)
        # Plaintext Kafka bytes to the TLS port: closed, no answer.
        with socket.create_connection(("127.0.0.1", tls), timeout=10) as s:
            s.sendall(API_VERSIONS_V0)
            answer = read_until_closed(s)
            # At most a TLS alert record (content type 21), never a Kafka answer.
            assert answer == b"" or answer[0] == 21, answer
        # A TLS hello to the plaintext port: the connection closes.
        with socket.create_connection(("127.0.0.1", plain), timeout=10) as raw:
            ctx = ssl.create_default_context(cafile=f"{certs}/ca.crt")
            with pytest.raises((ssl.SSLError, ConnectionResetError, OSError)):
                ctx.wrap_socket(raw, server_hostname="localhost")
        # Each refused for its own reason, in the broker's words.
        lines = broker_lines(b)
        for reason in ("UnknownIssuer", "certificate expired", "peer sent no certificates"):
            assert f"failed TLS handshake: invalid peer certificate: {reason}" in lines or \
                f"failed TLS handshake: {reason}" in lines, reason
        # Everyone else is still served, on both listeners.
        produce_and_consume(ssl_conf(certs, tls), "after-refusals")
        produce_and_consume({"bootstrap.servers": f"127.0.0.1:{plain}"}, "after-refusals-plain")
        assert b.process.poll() is None
    finally:
        b.stop()


def kafka_python_and_kcat_over_tls(certs, port, topic):
    """kafka-python writes ten records to `topic` over the SSL listener on
    `port` (with the client certificate) and reads them back; kcat reads
    them too."""
    from kafka import KafkaConsumer, KafkaProducer

    common = dict(bootstrap_servers=f"127.0.0.1:{port}", security_protocol="SSL", ssl_cafile=f"{certs}/ca.crt",
                  ssl_certfile=f"{certs}/client.crt", ssl_keyfile=f"{certs}/client.key")
    producer = KafkaProducer(**common)
    for i in range(10):
        producer.send(topic, f"k{i}".encode()).get(timeout=30)
    producer.close()
    consumer = KafkaConsumer(topic, auto_offset_reset="earliest", consumer_timeout_ms=10000, **common)
    assert [m.value for m in consumer][:10] == [f"k{i}".encode() for i in range(10)]
    consumer.close()
    out = subprocess.run(
        ["kcat", "-C", "-b", f"127.0.0.1:{port}", "-t", topic, "-o", "beginning", "-e", "-q",
         "-X", "security.protocol=SSL", "-X", f"ssl.ca.location={certs}/ca.crt",
         "-X", f"ssl.certificate.location={certs}/client.crt", "-X", f"ssl.key.location={certs}/client.key"],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout.split()
    assert out == [f"k{i}" for i in range(10)]


def test_kafka_python_and_kcat_over_tls(tmp_path, certs):
    tls = free_port()
    b = start(tmp_path, f"PLAINTEXT://127.0.0.1:{free_port()},SSL://127.0.0.1:{tls}", tls_overrides(certs, "required"))
    try:
        kafka_python_and_kcat_over_tls(certs, tls, "kp-tls")
    finally:
        b.stop()


# --- SASL -----------------------------------------------------------------

JAAS = ('org.apache.kafka.common.security.plain.PlainLoginModule required '
        'username="admin" password="admin-secret" user_admin="admin-secret" user_alice="alice-secret";')


def start_sasl(tmp_path, certs, extra=()):
    """PLAINTEXT (brokers, admin), SASL_SSL and SASL_PLAINTEXT listeners with
    PLAIN and both SCRAMs; SCRAM users made through the admin API."""
    ports = {"PLAINTEXT": free_port(), "SASL_SSL": free_port(), "SASL_PLAINTEXT": free_port()}
    b = start(tmp_path, ",".join(f"{name}://127.0.0.1:{port}" for name, port in ports.items()),
              tls_overrides(certs) + [
                  "sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512",
                  f"sasl.jaas.config={JAAS}",
                  *extra,
              ])
    b.ports = ports
    set_scram(ports["PLAINTEXT"], "bob", "bob-secret")
    return b


@pytest.fixture
def sasl_broker(tmp_path, certs):
    b = start_sasl(tmp_path, certs)
    yield b
    b.stop()


def set_scram(port, user, password, mechanisms=("SCRAM_SHA_256", "SCRAM_SHA_512")):
    from confluent_kafka.admin import ScramCredentialInfo, ScramMechanism, UserScramCredentialUpsertion

    admin = AdminClient({"bootstrap.servers": f"127.0.0.1:{port}"})
    upserts = [UserScramCredentialUpsertion(user, ScramCredentialInfo(getattr(ScramMechanism, m), 4096),
                                            password.encode()) for m in mechanisms]
    for f in admin.alter_user_scram_credentials(upserts).values():
        f.result(30)


def sasl_conf(b, certs, mechanism, user, password, listener="SASL_SSL"):
    conf = {
        "bootstrap.servers": f"127.0.0.1:{b.ports[listener]}",
        "security.protocol": listener,
        "sasl.mechanism": mechanism,
        "sasl.username": user,
        "sasl.password": password,
    }
    if listener == "SASL_SSL":
        conf["ssl.ca.location"] = f"{certs}/ca.crt"
    return conf


def auth_error(conf):
    """The authentication error librdkafka reports for `conf` (None if it
    connects)."""
    errors = []
    admin = AdminClient(dict(conf, error_cb=errors.append))
    try:
        admin.list_topics(timeout=5)
    except KafkaException as e:
        errors.append(e.args[0])
    admin.poll(0.5)  # serves error_cb
    return next((e for e in errors if "Authentication" in e.str() or "authentication" in e.str()), None)


def test_scram_sha_512_over_sasl_ssl(sasl_broker, certs):
    b = sasl_broker
    produce_and_consume(sasl_conf(b, certs, "SCRAM-SHA-512", "bob", "bob-secret"), "scram512")
    deadline = time.time() + 10
    while "principal=User:bob" not in broker_lines(b) and time.time() < deadline:
        time.sleep(0.2)
    assert "principal=User:bob" in broker_lines(b)
    # The credential as Kafka keeps it: mechanisms and iterations, never the keys.
    admin = AdminClient({"bootstrap.servers": f"127.0.0.1:{b.ports['PLAINTEXT']}"})
    described = admin.describe_user_scram_credentials(["bob"])["bob"].result(10)
    assert sorted((str(i.mechanism), i.iterations) for i in described.scram_credential_infos) == [
        ("ScramMechanism.SCRAM_SHA_256", 4096), ("ScramMechanism.SCRAM_SHA_512", 4096)]


def test_plain_over_sasl_ssl_with_three_clients(sasl_broker, certs):
    from kafka import KafkaConsumer, KafkaProducer

    b = sasl_broker
    produce_and_consume(sasl_conf(b, certs, "PLAIN", "alice", "alice-secret"), "plain-ssl")
    common = dict(bootstrap_servers=f"127.0.0.1:{b.ports['SASL_SSL']}", security_protocol="SASL_SSL",
                  ssl_cafile=f"{certs}/ca.crt", sasl_mechanism="PLAIN",
                  sasl_plain_username="alice", sasl_plain_password="alice-secret")
    producer = KafkaProducer(**common)
    for i in range(5):
        producer.send("kp-plain", f"p{i}".encode()).get(timeout=30)
    producer.close()
    consumer = KafkaConsumer("kp-plain", auto_offset_reset="earliest", consumer_timeout_ms=10000, **common)
    assert [m.value for m in consumer][:5] == [f"p{i}".encode() for i in range(5)]
    consumer.close()
    out = subprocess.run(
        ["kcat", "-C", "-b", f"127.0.0.1:{b.ports['SASL_SSL']}", "-t", "kp-plain", "-o", "beginning", "-e", "-q",
         "-X", "security.protocol=SASL_SSL", "-X", f"ssl.ca.location={certs}/ca.crt",
         "-X", "sasl.mechanism=PLAIN", "-X", "sasl.username=alice", "-X", "sasl.password=alice-secret"],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout.split()
    assert out == [f"p{i}" for i in range(5)]


def test_kafka_python_scram_sha_256_over_sasl_plaintext(sasl_broker):
    from kafka import KafkaConsumer, KafkaProducer

    b = sasl_broker
    common = dict(bootstrap_servers=f"127.0.0.1:{b.ports['SASL_PLAINTEXT']}", security_protocol="SASL_PLAINTEXT",
                  sasl_mechanism="SCRAM-SHA-256", sasl_plain_username="bob", sasl_plain_password="bob-secret")
    producer = KafkaProducer(**common)
    producer.send("kp-scram", b"s").get(timeout=30)
    producer.close()
    consumer = KafkaConsumer("kp-scram", auto_offset_reset="earliest", consumer_timeout_ms=10000, **common)
    assert [m.value for m in consumer] == [b"s"]
    consumer.close()


def test_refused_authentications_and_everyone_else_served(sasl_broker, certs):
    b = sasl_broker
    cases = [
        (sasl_conf(b, certs, "SCRAM-SHA-512", "bob", "wrong"), "invalid credentials with SASL mechanism SCRAM-SHA-512"),
        (sasl_conf(b, certs, "SCRAM-SHA-256", "nobody", "x"), "invalid credentials with SASL mechanism SCRAM-SHA-256"),
        (sasl_conf(b, certs, "PLAIN", "alice", "wrong"), "Invalid username or password"),
        (sasl_conf(b, certs, "PLAIN", "nobody", "x", listener="SASL_PLAINTEXT"), "Invalid username or password"),
    ]
    for conf, message in cases:
        error = auth_error(conf)
        assert error is not None and message in error.str(), (conf, error)
    # The broker said why, and closed those connections only.
    assert "failed authentication" in broker_lines(b)
    produce_and_consume(sasl_conf(b, certs, "SCRAM-SHA-512", "bob", "bob-secret"), "after-refusals")


def test_a_new_password_takes_effect_at_once(sasl_broker, certs):
    b = sasl_broker
    set_scram(b.ports["PLAINTEXT"], "bob", "new-secret", mechanisms=("SCRAM_SHA_512",))
    assert auth_error(sasl_conf(b, certs, "SCRAM-SHA-512", "bob", "bob-secret")) is not None
    produce_and_consume(sasl_conf(b, certs, "SCRAM-SHA-512", "bob", "new-secret"), "new-password")


def kafka_request(api_key, version, correlation_id, body=b""):
    header = api_key.to_bytes(2, "big") + version.to_bytes(2, "big") + correlation_id.to_bytes(4, "big") + b"\xff\xff"
    message = header + body
    return len(message).to_bytes(4, "big") + message


def test_only_api_versions_and_sasl_before_authentication(sasl_broker):
    port = sasl_broker.ports["SASL_PLAINTEXT"]
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(API_VERSIONS_V0)
        size = int.from_bytes(s.recv(4), "big")
        assert size > 0  # ApiVersions is answered
        answer = b""
        while len(answer) < size:
            answer += s.recv(size - len(answer))
        assert answer[:4] == (1).to_bytes(4, "big")
        # Metadata v0 (all topics) before authenticating: closed, unanswered.
        s.sendall(kafka_request(3, 0, 2, (0).to_bytes(4, "big")))
        assert read_until_closed(s) == b""
    # An unknown mechanism: UNSUPPORTED_SASL_MECHANISM with the list, then closed.
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        mechanism = b"GSSAPI"
        s.sendall(kafka_request(17, 1, 3, len(mechanism).to_bytes(2, "big") + mechanism))
        answer = read_until_closed(s)
        assert answer[8:10] == (33).to_bytes(2, "big"), answer
        assert b"SCRAM-SHA-512" in answer


def test_a_failed_authentication_is_answered_then_closed_after_the_delay(sasl_broker):
    with socket.create_connection(("127.0.0.1", sasl_broker.ports["SASL_PLAINTEXT"]), timeout=10) as s:
        s.sendall(kafka_request(17, 1, 1, len(b"PLAIN").to_bytes(2, "big") + b"PLAIN"))
        handshake = read_frame(s)
        assert handshake[4:6] == b"\x00\x00"  # no error: PLAIN is enabled
        token = b"\x00alice\x00wrong"
        s.sendall(kafka_request(36, 0, 2, len(token).to_bytes(4, "big") + token))
        answer = read_frame(s)
        answered = time.monotonic()
        assert answer[4:6] == (58).to_bytes(2, "big")  # SASL_AUTHENTICATION_FAILED
        assert b"Authentication failed: Invalid username or password" in answer
        assert read_until_closed(s) == b""
        # connection.failed.authentication.delay.ms (100 ms) before the close.
        assert time.monotonic() - answered >= 0.08


def test_a_renewed_certificate_is_used_without_a_restart(tmp_path, certs):
    from tls_certs import make_ca, make_cert

    d = str(tmp_path / "renewed")
    os.makedirs(d)
    keystore = os.path.join(d, "keystore.pem")
    with open(keystore, "w") as f:
        f.write(open(f"{certs}/broker.pem").read())
    tls = free_port()
    b = start(tmp_path, f"PLAINTEXT://127.0.0.1:{free_port()},SSL://127.0.0.1:{tls}",
              ["ssl.keystore.type=PEM", f"ssl.keystore.location={keystore}"])
    try:
        old = {"bootstrap.servers": f"127.0.0.1:{tls}", "security.protocol": "SSL", "ssl.ca.location": f"{certs}/ca.crt"}
        AdminClient(old).list_topics(timeout=10)
        # A certificate from another CA replaces the file (renamed in, as
        # certificate tools do).
        make_ca(d, "new-ca", "/O=gregor/CN=renewed CA")
        make_cert(d, "renewed", "/O=gregor/CN=broker", "new-ca", sans="DNS:localhost,IP:127.0.0.1")
        os.replace(os.path.join(d, "renewed.pem"), keystore)
        new = dict(old, **{"ssl.ca.location": f"{d}/new-ca.crt"})
        wait_until_served(new)
        with pytest.raises(KafkaException):
            AdminClient(old).list_topics(timeout=3)
    finally:
        b.stop()


def sasl_authenticate_v1(s, token, correlation_id=2):
    """SaslHandshake v1 (PLAIN) and one SaslAuthenticate v1: (error code,
    session lifetime in ms)."""
    s.sendall(kafka_request(17, 1, correlation_id, len(b"PLAIN").to_bytes(2, "big") + b"PLAIN"))
    assert read_frame(s)[4:6] == b"\x00\x00"
    s.sendall(kafka_request(36, 1, correlation_id + 1, len(token).to_bytes(4, "big") + token))
    answer = read_frame(s)
    error = int.from_bytes(answer[4:6], "big")
    message_len = int.from_bytes(answer[6:8], "big", signed=True)
    at = 8 + max(message_len, 0)
    auth_len = int.from_bytes(answer[at:at + 4], "big")
    at += 4 + auth_len
    return error, int.from_bytes(answer[at:at + 8], "big")


def test_sessions_expire_and_clients_re_authenticate(tmp_path, certs):
    b = start_sasl(tmp_path, certs, ["connections.max.reauth.ms=2000"])
    try:
        # A connection that does not re-authenticate is closed when it
        # speaks after its session ended.
        with socket.create_connection(("127.0.0.1", b.ports["SASL_PLAINTEXT"]), timeout=10) as s:
            assert sasl_authenticate_v1(s, b"\x00alice\x00alice-secret") == (0, 2000)
            s.sendall(API_VERSIONS_V0)
            read_frame(s)  # within the session: answered
            time.sleep(2.3)
            s.sendall(API_VERSIONS_V0)
            assert read_until_closed(s) == b""
        # librdkafka re-authenticates its connections (KIP-368) and keeps
        # producing and consuming across several session lifetimes.
        conf = sasl_conf(b, certs, "SCRAM-SHA-512", "bob", "bob-secret", listener="SASL_PLAINTEXT")
        p = Producer(conf)
        c = Consumer(dict(conf, **{"group.id": "reauth", "auto.offset.reset": "earliest"}))
        c.subscribe(["reauth"])
        sent, got = 0, []
        deadline = time.time() + 7
        while time.time() < deadline:
            p.produce("reauth", str(sent).encode())
            sent += 1
            p.poll(0)
            got += [int(m.value()) for m in c.consume(100, 0.25) if m.error() is None]
        assert p.flush(30) == 0
        end = time.time() + 20
        while len(got) < sent and time.time() < end:
            got += [int(m.value()) for m in c.consume(100, 0.5) if m.error() is None]
        c.close()
        assert sorted(got) == list(range(sent))
        # The same connections authenticated again (one line per peer each time).
        peers = re.findall(r"peer=Some\(([0-9.:]+)\) principal=User:bob", broker_lines(b))
        assert max(peers.count(peer) for peer in set(peers)) >= 3, peers
    finally:
        b.stop()


def test_credentials_and_quotas_share_the_user_node(sasl_broker, certs):
    """/config/users/<user> holds both: changing one keeps the other."""
    b = sasl_broker
    plain = ["--bootstrap-server", f"127.0.0.1:{b.ports['PLAINTEXT']}"]

    def quotas():
        out = subprocess.run([GREGOR, "quota", "describe", *plain, "--user", "bob", "--json"],
                             capture_output=True, text=True, check=True, timeout=60).stdout
        return json.loads(out)

    subprocess.run([GREGOR, "quota", "alter", *plain, "--user", "bob", "--add-config", "producer_byte_rate=1048576"],
                   capture_output=True, text=True, check=True, timeout=60)
    before = quotas()
    assert before and "1048576" in json.dumps(before)
    set_scram(b.ports["PLAINTEXT"], "bob", "changed-secret", mechanisms=("SCRAM_SHA_512",))
    assert quotas() == before
    produce_and_consume(sasl_conf(b, certs, "SCRAM-SHA-512", "bob", "changed-secret"), "shared-node")
    subprocess.run([GREGOR, "quota", "alter", *plain, "--user", "bob", "--delete-config", "producer_byte_rate"],
                   capture_output=True, text=True, check=True, timeout=60)
    assert quotas() == []
    assert auth_error(sasl_conf(b, certs, "SCRAM-SHA-512", "bob", "changed-secret")) is None
