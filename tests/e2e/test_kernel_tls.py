"""Kernel TLS: on a kernel with the `tls` ULP, a TLS listener hands each
connection's keys to the kernel after rustls's handshake, and fetches keep
`sendfile`. The kernel's own counters (/proc/net/tls_stat) show whether it
did. These tests need such a kernel: the reference machine's has none
(built without CONFIG_TLS), so the test command runs them, with
test_security.py, in a VM booted with Debian's kernel (scripts/vm/run.sh);
elsewhere they are skipped."""
import os
import socket
import ssl
import struct
import time

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from conftest import free_port, produce_and_consume
from test_security import (broker_lines, certs, kafka_python_and_kcat_over_tls, ssl_conf,  # noqa: F401 (certs: a fixture)
                           start, tls_overrides)


def kernel_has_tls():
    try:
        return "tls" in open("/proc/sys/net/ipv4/tcp_available_ulp").read().split()
    except OSError:
        return False


pytestmark = pytest.mark.skipif(not kernel_has_tls(),
                                reason="no kernel TLS on this kernel (scripts/vm/run.sh runs these in a VM)")


def tls_stat():
    """The kernel's TLS counters: sessions set up in software per direction."""
    return {name: int(value) for name, value in (line.split() for line in open("/proc/net/tls_stat"))}


def consume_all(conf, topic, n, timeout=60):
    c = Consumer(dict(conf, **{"group.id": f"g-{topic}", "auto.offset.reset": "earliest"}))
    c.assign([TopicPartition(topic, 0, 0)])
    got, deadline = [], time.time() + timeout
    while len(got) < n and time.time() < deadline:
        for m in c.consume(1000, 1.0):
            assert m.error() is None, m.error()
            got.append(m.value())
    c.close()
    return got


def test_clients_are_served_through_kernel_tls(tmp_path, certs):
    tls = free_port()
    b = start(tmp_path, f"PLAINTEXT://127.0.0.1:{free_port()},SSL://127.0.0.1:{tls}",
              tls_overrides(certs, "required") + ["ssl.principal.mapping.rules=RULE:^CN=([^,]*),O=gregor$/$1/,DEFAULT"])
    try:
        before = tls_stat()
        produce_and_consume(ssl_conf(certs, tls), "small", n=200)
        # ~20 MB of random records read back: fetch responses of 1 MiB
        # whose file regions go out with sendfile through the kernel's TLS.
        values = [os.urandom(10_000) for _ in range(2_000)]
        p = Producer(dict(ssl_conf(certs, tls), **{"linger.ms": 50}))
        for v in values:
            p.produce("large", v)
        assert p.flush(60) == 0
        assert consume_all(ssl_conf(certs, tls), "large", len(values)) == values
        # A single record bigger than a TLS record (16 KiB) many times over.
        big = os.urandom(900_000)
        p.produce("big", big)
        assert p.flush(30) == 0
        assert consume_all(ssl_conf(certs, tls), "big", 1) == [big]
        # kafka-python (Python's ssl) and kcat.
        kafka_python_and_kcat_over_tls(certs, tls, "kp")
        after = tls_stat()
        # Every connection above had its keys in the kernel, both ways
        # (the clients' TLS is OpenSSL's in userspace: these are the broker's).
        assert after["TlsTxSw"] - before["TlsTxSw"] >= 6, (before, after)
        assert after["TlsRxSw"] - before["TlsRxSw"] >= 6, (before, after)
        assert after["TlsDecryptError"] == before["TlsDecryptError"]
        lines = broker_lines(b)
        assert "kernel TLS" in lines
        assert "principal=User:client" in lines
    finally:
        b.stop()


def test_a_close_notify_ends_the_connection_and_the_switch_keeps_tls_in_userspace(tmp_path, certs):
    tls, user_tls = free_port(), free_port()
    b = start(tmp_path, f"SSL://127.0.0.1:{tls},USERSPACE://127.0.0.1:{user_tls}",
              tls_overrides(certs) + ["listener.security.protocol.map=SSL:SSL,USERSPACE:SSL",
                                      "inter.broker.listener.name=SSL",
                                      "listener.name.userspace.ssl.kernel.tls.enable=false"])
    try:
        ctx = ssl.create_default_context(cafile=f"{certs}/ca.crt")
        before = tls_stat()
        with socket.create_connection(("127.0.0.1", tls), timeout=10) as raw:
            with ctx.wrap_socket(raw, server_hostname="localhost") as s:
                # ApiVersions v0, correlation id 7: answered through the kernel.
                s.sendall(struct.pack(">ihhih", 10, 18, 0, 7, -1))
                size = struct.unpack(">i", s.recv(4))[0]
                answer = b""
                while len(answer) < size:
                    answer += s.recv(size - len(answer))
                assert struct.unpack(">i", answer[:4])[0] == 7
                # close_notify: the broker ends the connection (a broker
                # that ignored it would leave unwrap waiting: a timeout).
                try:
                    rest = s.unwrap().recv(100)
                except (ssl.SSLEOFError, ConnectionResetError):
                    rest = b""
                assert rest == b""
        assert tls_stat()["TlsRxSw"] > before["TlsRxSw"]
        # The listener with ssl.kernel.tls.enable=false: rustls in userspace.
        before = tls_stat()
        produce_and_consume(ssl_conf(certs, user_tls, client=None), "userspace", n=50)
        assert tls_stat()["TlsRxSw"] == before["TlsRxSw"]
        assert b.process.poll() is None
    finally:
        b.stop()
