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


def tls12_exchange(port, certs, cipher, requests=5):
    """A TLS 1.2 connection with `cipher` that sends `requests` ApiVersions
    requests and reads their answers; returns every byte the broker sent,
    as it came over the wire."""
    ctx = ssl.create_default_context(cafile=f"{certs}/ca.crt")
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers(cipher)
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ctx.wrap_bio(incoming, outgoing, server_hostname="localhost")
    wire = bytearray()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        def more():
            s.sendall(outgoing.read())
            data = s.recv(65536)
            assert data, "the broker closed the connection"
            wire.extend(data)
            incoming.write(data)

        while True:
            try:
                tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                more()
        for correlation_id in range(requests):
            tls.write(struct.pack(">ihhih", 10, 18, 0, correlation_id, -1))
            answer = b""
            while len(answer) < 4 or len(answer) < 4 + struct.unpack(">i", answer[:4])[0]:
                try:
                    answer += tls.read(65536)
                except ssl.SSLWantReadError:
                    more()
            assert struct.unpack(">i", answer[4:8])[0] == correlation_id
    return bytes(wire)


def encrypted_records(wire):
    """The records after the sender's ChangeCipherSpec (content type 20):
    the encrypted ones, as (content type, payload)."""
    records, at, encrypted = [], 0, False
    while at + 5 <= len(wire):
        kind, length = wire[at], struct.unpack(">H", wire[at + 3:at + 5])[0]
        if encrypted:
            records.append((kind, wire[at + 5:at + 5 + length]))
        encrypted = encrypted or kind == 20
        at += 5 + length
    return records


def test_tls_1_2_records_never_repeat_a_nonce(tmp_path, certs):
    # TLS 1.2 AES-GCM sends each record's explicit nonce in the clear; the
    # broker's Finished (rustls) and the records after it (the kernel)
    # are sealed with one key, so no nonce may come twice.
    tls = free_port()
    b = start(tmp_path, f"SSL://127.0.0.1:{tls}",
              tls_overrides(certs) + ["listener.security.protocol.map=SSL:SSL", "inter.broker.listener.name=SSL"])
    try:
        for cipher in ("ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-RSA-AES256-GCM-SHA384"):
            before = tls_stat()
            records = encrypted_records(tls12_exchange(tls, certs, cipher))
            assert tls_stat()["TlsTxSw"] > before["TlsTxSw"], "not through kernel TLS"
            assert [kind for kind, _ in records][:2] == [22, 23], records  # the Finished, then answers
            nonces = [payload[:8] for _, payload in records]
            assert len(set(nonces)) == len(nonces), (cipher, [n.hex() for n in nonces])
    finally:
        b.stop()


def test_a_hostile_handshake_is_refused_and_everyone_else_served(tmp_path, certs):
    tls = free_port()
    b = start(tmp_path, f"SSL://127.0.0.1:{tls}",
              tls_overrides(certs) + ["listener.security.protocol.map=SSL:SSL", "inter.broker.listener.name=SSL"])
    try:
        for hostile in (
            bytes.fromhex("160301000401010000"),  # a ClientHello announcing 64 KiB + 1
            b"\x00\x00\x00\x0a\x00\x12\x00\x00\x00\x00\x00\x01\xff\xff",  # Kafka bytes, not TLS
            bytes.fromhex("1603010000") * 3,  # empty handshake records
        ):
            with socket.create_connection(("127.0.0.1", tls), timeout=10) as s:
                s.sendall(hostile)
                s.shutdown(socket.SHUT_WR)
                got = b""
                while True:
                    try:
                        chunk = s.recv(4096)
                    except ConnectionResetError:
                        break
                    if not chunk:
                        break
                    got += chunk
                assert got == b"" or got[0] == 21, got  # at most an alert
        produce_and_consume(ssl_conf(certs, tls, client=None), "after-hostile", n=20)
        lines = broker_lines(b)
        assert "panicked" not in lines
        assert b.process.poll() is None
    finally:
        b.stop()
