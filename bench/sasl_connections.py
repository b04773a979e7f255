"""SASL authentications per second against a running gregor broker
(issue 16), end to end: `python3 bench/sasl_connections.py [--connections
5000] [--workers 2] [--rounds 3]` from the repository root, with a release
build of gregor-server (`cargo build --release -p gregor-server`; or
GREGOR_SERVER_BIN).

One broker (bench/tls.py's: SASL_PLAINTEXT and SASL_SSL listeners, the
user `bench` with SCRAM-SHA-256 and -512 credentials at 4096 iterations,
PLAIN from the JAAS configuration). Each of --workers processes opens
connections one after another: TCP connect (and, on SASL_SSL, a full TLS
handshake — no session resumption), SaslHandshake v1, SaslAuthenticate v1
with each SCRAM message (or the one PLAIN message), the server's
signature checked, close. Nothing else is sent.

The client's cost: this driver is Python (raw sockets, the standard
library's hmac/hashlib/ssl). Its SCRAM salted password is computed once per
salt and cached (`--client-pbkdf2` makes it salt on every connection, 4096
rounds, as Kafka's clients do), so what limits the rate is the driver's
interpreter and the broker, on the same 2 cores. The figure that does not
depend on the client is the broker's CPU time per authentication
(/proc/<pid>/stat over the run), printed with the authentications per
broker CPU-second it implies — the end-to-end counterpart of
`cargo bench -p gregor-auth --bench scram`, which times the SCRAM
exchange alone (no sockets, no framing, no connection set-up)."""
import argparse
import base64
import hashlib
import hmac
import multiprocessing
import os
import shutil
import socket
import ssl
import statistics
import struct
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from bench import tls  # noqa: E402
from bench.kafka import compare  # noqa: E402

SASL_HANDSHAKE, SASL_AUTHENTICATE = 17, 36
HASHES = {"SCRAM-SHA-256": hashlib.sha256, "SCRAM-SHA-512": hashlib.sha512}


def kafka_string(s):
    b = s.encode()
    return struct.pack(">h", len(b)) + b


def request(sock, api_key, version, correlation, body):
    """One request with a v1 header; the response body after its
    correlation id."""
    payload = struct.pack(">hhi", api_key, version, correlation) + kafka_string("sasl-bench") + body
    sock.sendall(struct.pack(">i", len(payload)) + payload)
    size = struct.unpack(">i", read_exactly(sock, 4))[0]
    response = read_exactly(sock, size)
    if struct.unpack(">i", response[:4])[0] != correlation:
        raise RuntimeError("a response to another request")
    return response[4:]


def read_exactly(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise RuntimeError("the broker closed the connection")
        data += chunk
    return data


def authenticate_step(sock, correlation, token):
    """SaslAuthenticate v1: the server's token (an error raises)."""
    body = request(sock, SASL_AUTHENTICATE, 1, correlation, struct.pack(">i", len(token)) + token)
    error = struct.unpack(">h", body[:2])[0]
    message_len = struct.unpack(">h", body[2:4])[0]
    at = 4 + max(message_len, 0)
    if error:
        raise RuntimeError(f"SaslAuthenticate error {error}: {body[4:at].decode(errors='replace')}")
    token_len = struct.unpack(">i", body[at:at + 4])[0]
    return body[at + 4:at + 4 + token_len]


class ScramClient:
    """SCRAM's client side (RFC 5802), its salted password cached per salt
    unless `salt_every_time`."""

    def __init__(self, mechanism, user, password, salt_every_time):
        self.hash = HASHES[mechanism]
        self.user, self.password = user, password.encode()
        self.salt_every_time = salt_every_time
        self.cache = {}

    def keys(self, salt, iterations):
        key = (salt, iterations)
        if self.salt_every_time or key not in self.cache:
            salted = hashlib.pbkdf2_hmac(self.hash().name, self.password, salt, iterations)
            client_key = hmac.digest(salted, b"Client Key", self.hash)
            self.cache[key] = (client_key, self.hash(client_key).digest(),
                               hmac.digest(salted, b"Server Key", self.hash))
        return self.cache[key]

    def exchange(self, sock):
        nonce = base64.b64encode(os.urandom(24)).decode()
        bare = f"n={self.user},r={nonce}"
        server_first = authenticate_step(sock, 2, f"n,,{bare}".encode()).decode()
        fields = dict(f.split("=", 1) for f in server_first.split(","))
        if not fields["r"].startswith(nonce):
            raise RuntimeError("the server's nonce does not extend ours")
        client_key, stored_key, server_key = self.keys(base64.b64decode(fields["s"]), int(fields["i"]))
        without_proof = f"c=biws,r={fields['r']}"
        auth = f"{bare},{server_first},{without_proof}".encode()
        proof = bytes(a ^ b for a, b in zip(client_key, hmac.digest(stored_key, auth, self.hash)))
        server_final = authenticate_step(sock, 3, f"{without_proof},p={base64.b64encode(proof).decode()}".encode())
        if not hmac.compare_digest(server_final, b"v=" + base64.b64encode(hmac.digest(server_key, auth, self.hash))):
            raise RuntimeError("the server's signature is wrong")


def connect_and_authenticate(port, mechanism, client, tls_context):
    sock = socket.create_connection(("127.0.0.1", port))
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if tls_context:
            sock = tls_context.wrap_socket(sock, server_hostname="127.0.0.1")
        body = request(sock, SASL_HANDSHAKE, 1, 1, kafka_string(mechanism))
        if struct.unpack(">h", body[:2])[0]:
            raise RuntimeError(f"SaslHandshake refused {mechanism}")
        if mechanism == "PLAIN":
            authenticate_step(sock, 2, f"\0{tls.SCRAM_USER}\0{tls.SCRAM_PASSWORD}".encode())
        else:
            client.exchange(sock)
    finally:
        sock.close()


def worker(port, mechanism, count, ca, salt_every_time, results):
    context = None
    if ca:
        context = ssl.create_default_context(cafile=ca)
    client = ScramClient(mechanism, tls.SCRAM_USER, tls.SCRAM_PASSWORD, salt_every_time) \
        if mechanism != "PLAIN" else None
    for _ in range(count):
        connect_and_authenticate(port, mechanism, client, context)
    results.put(count)


def run(broker, listener, mechanism, connections, workers, salt_every_time):
    """`connections` authentications over `workers` processes: (per second,
    broker CPU-seconds per authentication)."""
    ca = os.path.join(broker.certs, "ca.crt") if listener == "SASL_SSL" else None
    results = multiprocessing.Queue()
    per_worker = connections // workers
    processes = [multiprocessing.Process(target=worker, args=(broker.ports[listener], mechanism, per_worker, ca,
                                                               salt_every_time, results)) for _ in range(workers)]
    cpu = compare.cpu_seconds([broker.pid])
    started = time.monotonic()
    for p in processes:
        p.start()
    done = sum(results.get(timeout=600) for _ in processes)
    elapsed = time.monotonic() - started
    for p in processes:
        p.join()
    cpu = compare.cpu_seconds([broker.pid]) - cpu
    return done / elapsed, cpu / done


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--connections", type=int, default=5000, help="per measurement")
    parser.add_argument("--workers", type=int, default=2, help="client processes")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--client-pbkdf2", action="store_true",
                        help="the client salts the password on every connection (as Kafka's clients)")
    parser.add_argument("--listeners", default="SASL_PLAINTEXT,SASL_SSL")
    parser.add_argument("--mechanisms", default="SCRAM-SHA-256,SCRAM-SHA-512,PLAIN")
    parser.add_argument("--dir", default="/var/tmp")
    args = parser.parse_args()
    if not os.path.exists(tls.SERVER):
        sys.exit(f"no {tls.SERVER}: cargo build --release -p gregor-server (or GREGOR_SERVER_BIN)")
    root = tempfile.mkdtemp(prefix="sasl-bench-", dir=args.dir)
    broker = tls.SecuredBroker(root, tls.make_broker_certs(tempfile.mkdtemp(prefix="certs-", dir=root)), sasl=True)
    cases = [(lst, m) for lst in args.listeners.split(",") for m in args.mechanisms.split(",")]
    rates, costs = {}, {}
    try:
        broker.start()
        for round_ in range(args.rounds):
            print(f"round {round_ + 1}", flush=True)
            for listener, mechanism in (cases if round_ % 2 == 0 else cases[::-1]):
                rate, cpu = run(broker, listener, mechanism, args.connections, args.workers, args.client_pbkdf2)
                rates.setdefault((listener, mechanism), []).append(rate)
                costs.setdefault((listener, mechanism), []).append(cpu)
                print(f"  {listener} {mechanism}: {rate:,.0f} connections/s, broker {cpu * 1e6:,.0f} µs CPU each",
                      flush=True)
    finally:
        broker.stop()
        shutil.rmtree(root, ignore_errors=True)

    def show(vs, fmt):
        med = statistics.median(vs)
        return fmt.format(med) + (f" ({fmt.format(min(vs))}–{fmt.format(max(vs))})" if len(vs) > 1 else "")

    client = "salting on every connection" if args.client_pbkdf2 else "salted password cached"
    print()
    print(f"| listener, mechanism | authenticated connections/s ({args.workers} Python clients, {client}) | "
          "broker CPU per connection | connections per broker CPU-second |")
    print("|---|---|---|---|")
    for case in cases:
        per_cpu_second = [1 / c if c else float("inf") for c in costs[case]]  # 0: under one /proc tick
        print(f"| {case[0]}, {case[1]} | {show(rates[case], '{:,.0f}')} | "
              f"{show([c * 1e6 for c in costs[case]], '{:,.0f} µs')} | {show(per_cpu_second, '{:,.0f}')} |")


if __name__ == "__main__":
    main()
