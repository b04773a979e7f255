"""Certificates for the security tests, made with the openssl CLI."""
import os
import subprocess


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_cert(d, name, subject, ca, sans=None):
    """A key and a certificate signed by `ca` (a name in `d`); the key and
    the certificate chain also together in `<name>.pem` (a PEM keystore)."""
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-subj", subject,
            "-out", f"{name}.csr", cwd=d)
    ext = os.path.join(d, f"{name}.ext")
    with open(ext, "w") as f:
        f.write("basicConstraints=CA:FALSE\n")
        if sans:
            f.write(f"subjectAltName={sans}\n")
    openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.crt", "-CAkey", f"{ca}.key",
            "-CAcreateserial", "-days", "2", "-sha256", "-extfile", ext, "-out", f"{name}.crt", cwd=d)
    with open(os.path.join(d, f"{name}.pem"), "w") as out:
        out.write(open(os.path.join(d, f"{name}.crt")).read())
        out.write(open(os.path.join(d, f"{name}.key")).read())


def make_ca(d, name, subject):
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-subj", subject,
            "-days", "2", "-out", f"{name}.crt", cwd=d)


def make_expired_cert(d, name, subject_cn, ca):
    """A client certificate signed by `ca` that expired yesterday (the
    cryptography package: openssl 3.0's CLI cannot back-date)."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    ca_key = serialization.load_pem_private_key(open(os.path.join(d, f"{ca}.key"), "rb").read(), None)
    ca_cert = x509.load_pem_x509_certificate(open(os.path.join(d, f"{ca}.crt"), "rb").read())
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject_cn)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=10))
        .not_valid_after(now - datetime.timedelta(days=1))
        .sign(ca_key, hashes.SHA256())
    )
    with open(os.path.join(d, f"{name}.crt"), "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(os.path.join(d, f"{name}.key"), "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))


def make_certs(d):
    """A CA, a broker certificate for localhost/127.0.0.1, a client
    certificate (CN=client,O=gregor), an expired client certificate, and
    an untrusted CA with a client certificate of its own, in directory
    `d`."""
    make_ca(d, "ca", "/O=gregor/CN=gregor test CA")
    make_cert(d, "broker", "/O=gregor/CN=broker", "ca", sans="DNS:localhost,IP:127.0.0.1")
    make_cert(d, "client", "/O=gregor/CN=client", "ca")
    make_ca(d, "rogue-ca", "/O=rogue/CN=rogue CA")
    make_cert(d, "rogue", "/O=rogue/CN=intruder", "rogue-ca")
    make_expired_cert(d, "expired", "expired-client", "ca")
    return d


def wait_until_served(conf, within=15):
    """Until a client with `conf` gets Metadata from the broker (e.g. after
    the broker reloaded renewed certificate files); fails after `within` s."""
    import time

    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient

    deadline = time.time() + within
    while True:
        try:
            AdminClient(conf).list_topics(timeout=3)
            return
        except KafkaException:
            assert time.time() < deadline, "the renewed certificate files were not picked up"
            time.sleep(0.5)
