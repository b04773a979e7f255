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


def make_certs(d):
    """A CA, a broker certificate for localhost/127.0.0.1, a client
    certificate (CN=client,O=gregor), and an untrusted CA with a client
    certificate of its own, in directory `d`."""
    make_ca(d, "ca", "/O=gregor/CN=gregor test CA")
    make_cert(d, "broker", "/O=gregor/CN=broker", "ca", sans="DNS:localhost,IP:127.0.0.1")
    make_cert(d, "client", "/O=gregor/CN=client", "ca")
    make_ca(d, "rogue-ca", "/O=rogue/CN=rogue CA")
    make_cert(d, "rogue", "/O=rogue/CN=intruder", "rogue-ca")
    return d
