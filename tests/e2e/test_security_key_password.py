"""`ssl.key.password`: a PEM keystore whose private key is an encrypted
PKCS#8 key, as Kafka reads it. Keys encrypted by Python cryptography's
`BestAvailableEncryption` and by `openssl pkcs8 -topk8 -v2 aes-256-cbc`
serve confluent-kafka over SSL, also after the keystore is renewed; a
wrong password, a missing one, or one given for an unencrypted key stops
the broker at start with the reason on stderr, naming the file; gregor's
own tools present an encrypted client key (`--command-config`)."""
import os
import subprocess

import pytest
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from conftest import BINARY, GREGOR, Broker, free_port, produce_and_consume
from tls_certs import make_ca, make_cert, make_certs, openssl, wait_until_served

PASSWORD = "k3y-pass word!"


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return make_certs(str(tmp_path_factory.mktemp("certs")))


def encrypt_with_cryptography(key_file, out, password):
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(open(key_file, "rb").read(), None)
    with open(out, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.BestAvailableEncryption(password.encode())))


def encrypt_with_openssl(key_file, out, password):
    openssl("pkcs8", "-topk8", "-v2", "aes-256-cbc", "-in", key_file, "-passout", f"pass:{password}", "-out", out,
            cwd=os.path.dirname(out))


def encrypted_keystore(d, name, encrypt=encrypt_with_cryptography, password=PASSWORD):
    """`<d>/<name>.crt` and `<name>.key`, the key encrypted, together as
    `<d>/<name>-encrypted.pem`."""
    encrypted_key = os.path.join(d, f"{name}-encrypted.key")
    encrypt(os.path.join(d, f"{name}.key"), encrypted_key, password)
    assert open(encrypted_key).read().startswith("-----BEGIN ENCRYPTED PRIVATE KEY-----")
    path = os.path.join(d, f"{name}-encrypted.pem")
    with open(path, "w") as f:
        f.write(open(os.path.join(d, f"{name}.crt")).read() + open(encrypted_key).read())
    return path


def tls_args(keystore, truststore, password=None, client_auth="none"):
    overrides = ["ssl.keystore.type=PEM", f"ssl.keystore.location={keystore}",
                 f"ssl.truststore.location={truststore}", f"ssl.client.auth={client_auth}"]
    if password is not None:
        overrides.append(f"ssl.key.password={password}")
    return [a for o in overrides for a in ("--override", o)]


def tls_broker(tmp_path, name, args, env=None):
    b = Broker(str(tmp_path / name), args=args, env=env)
    os.makedirs(b.data_dir, exist_ok=True)
    b.tls = free_port()
    b.listeners = f"PLAINTEXT://{b.bootstrap},SSL://127.0.0.1:{b.tls}"
    return b


def ssl_conf(port, ca):
    return {"bootstrap.servers": f"127.0.0.1:{port}", "security.protocol": "SSL", "ssl.ca.location": ca}


@pytest.mark.parametrize("encrypt", [encrypt_with_cryptography, encrypt_with_openssl])
def test_an_encrypted_key_serves_confluent_kafka_over_ssl(tmp_path, certs, encrypt):
    keystore = encrypted_keystore(certs, "broker", encrypt)
    if encrypt is encrypt_with_cryptography:
        # The password as a property on the command line.
        b = tls_broker(tmp_path, "b", tls_args(keystore, f"{certs}/ca.crt", PASSWORD))
    else:
        # The password from the environment, as every property.
        b = tls_broker(tmp_path, "b", tls_args(keystore, f"{certs}/ca.crt"), env={"GREGOR_SSL_KEY_PASSWORD": PASSWORD})
    b.start()
    try:
        produce_and_consume(ssl_conf(b.tls, f"{certs}/ca.crt"), f"encrypted-{encrypt.__name__}")
    finally:
        b.stop()


def refused_start(tmp_path, args):
    """Runs the broker, which must exit at start: its stderr."""
    d = str(tmp_path / "refused")
    os.makedirs(d, exist_ok=True)
    run = subprocess.run(
        [BINARY, "--listeners", f"PLAINTEXT://127.0.0.1:{free_port()},SSL://127.0.0.1:{free_port()}",
         "--log-dirs", os.path.join(d, "logs")] + args,
        capture_output=True, text=True, timeout=60,
        env=dict(os.environ, GREGOR_METRICS_LISTEN=f"127.0.0.1:{free_port()}"),
    )
    assert run.returncode != 0, run
    return run.stderr


def test_a_wrong_or_missing_password_stops_the_broker(tmp_path, certs):
    keystore = encrypted_keystore(certs, "broker")
    ca = f"{certs}/ca.crt"
    stderr = refused_start(tmp_path, tls_args(keystore, ca, "not the password"))
    assert f"ssl.key.password does not decrypt the private key in {keystore}" in stderr, stderr
    stderr = refused_start(tmp_path, tls_args(keystore, ca))
    assert f"the private key in {keystore} is encrypted" in stderr and "set ssl.key.password" in stderr, stderr
    # A password for a key that is not encrypted: refused, as Kafka does.
    stderr = refused_start(tmp_path, tls_args(f"{certs}/broker.pem", ca, PASSWORD))
    assert f"ssl.key.password is set, but the private key in {certs}/broker.pem is not encrypted" in stderr, stderr


def test_a_renewed_encrypted_keystore_is_used_without_a_restart(tmp_path, certs):
    d = str(tmp_path / "renewed")
    os.makedirs(d)
    keystore = os.path.join(d, "keystore.pem")
    with open(keystore, "w") as f:
        f.write(open(encrypted_keystore(certs, "broker")).read())
    b = tls_broker(tmp_path, "b", tls_args(keystore, f"{certs}/ca.crt", PASSWORD)).start()
    try:
        old = ssl_conf(b.tls, f"{certs}/ca.crt")
        AdminClient(old).list_topics(timeout=10)
        # A certificate from another CA, its key encrypted with the same
        # password, renamed over the keystore.
        make_ca(d, "new-ca", "/O=gregor/CN=renewed CA")
        make_cert(d, "renewed", "/O=gregor/CN=broker", "new-ca", sans="DNS:localhost,IP:127.0.0.1")
        os.replace(encrypted_keystore(d, "renewed", encrypt_with_openssl), keystore)
        new = ssl_conf(b.tls, f"{d}/new-ca.crt")
        wait_until_served(new)
        produce_and_consume(new, "after-renewal", n=5)
    finally:
        b.stop()


def test_gregor_tools_present_an_encrypted_client_key(tmp_path, certs):
    client_keystore = encrypted_keystore(certs, "client")
    b = tls_broker(tmp_path, "b", tls_args(f"{certs}/broker.pem", f"{certs}/ca.crt", client_auth="required")).start()
    try:
        def tool(name, **props):
            path = str(tmp_path / f"{name}.properties")
            with open(path, "w") as f:
                f.write("security.protocol=SSL\n")
                f.write(f"ssl.truststore.location={certs}/ca.crt\n")
                for key, value in props.items():
                    f.write(f"{key.replace('_', '.')}={value}\n")
            return subprocess.run([GREGOR, "--command-config", path, "topic", "list",
                                   "--bootstrap-server", f"127.0.0.1:{b.tls}"],
                                  capture_output=True, text=True, timeout=120)

        ok = tool("client", ssl_keystore_location=client_keystore, ssl_key_password=PASSWORD)
        assert ok.returncode == 0, ok.stderr
        # Without a certificate the listener refuses the tool.
        assert tool("anonymous").returncode != 0
        wrong = tool("wrong", ssl_keystore_location=client_keystore, ssl_key_password="nope")
        assert wrong.returncode != 0
        assert f"ssl.key.password does not decrypt the private key in {client_keystore}" in wrong.stderr, wrong.stderr
    finally:
        b.stop()


def test_pem_text_in_the_properties(tmp_path, certs):
    """Kafka's `ssl.keystore.key` (here encrypted), `ssl.keystore.certificate.chain`
    and `ssl.truststore.certificates`: PEM text instead of files, from
    GREGOR_* variables; the client's certificate is checked against the
    CA given that way."""
    encrypted_keystore(certs, "broker")
    env = {
        "GREGOR_SSL_KEYSTORE_KEY": open(f"{certs}/broker-encrypted.key").read(),
        "GREGOR_SSL_KEYSTORE_CERTIFICATE_CHAIN": open(f"{certs}/broker.crt").read(),
        "GREGOR_SSL_TRUSTSTORE_CERTIFICATES": open(f"{certs}/ca.crt").read(),
        "GREGOR_SSL_KEY_PASSWORD": PASSWORD,
    }
    b = tls_broker(tmp_path, "b", ["--override", "ssl.client.auth=required"], env=env).start()
    try:
        encrypted_keystore(certs, "client")
        conf = dict(ssl_conf(b.tls, f"{certs}/ca.crt"), **{
            # librdkafka decrypts its own key with the same property.
            "ssl.certificate.location": f"{certs}/client.crt",
            "ssl.key.location": f"{certs}/client-encrypted.key",
            "ssl.key.password": PASSWORD,
        })
        produce_and_consume(conf, "pem-text")
        # Without a client certificate the listener refuses.
        with pytest.raises(KafkaException):
            AdminClient(ssl_conf(b.tls, f"{certs}/ca.crt")).list_topics(timeout=5)
    finally:
        b.stop()
