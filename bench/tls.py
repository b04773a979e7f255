"""TLS beside plaintext on one gregor broker, in one run, alternating
(issue 16): `python3 bench/tls.py [--rounds 3] [--records 2000000] [--sasl]`
from the repository root, on an otherwise idle machine, with a release
build of gregor-server (`cargo build --release -p gregor-server`; or
GREGOR_SERVER_BIN).

Needs the OpenSSL headers once (`apt-get install -y libssl-dev`): the load
generator is librdkafka's `rdkafka_performance`, built with SSL (and its
built-in SASL) from the librdkafka the `rdkafka` crate vendors, once, into
~/.cache/gregor/librdkafka-<version>-ssl (bench/kafka/compare.py's build
has SSL disabled and stays as it is).

One broker (data in a temp dir under --dir, default /var/tmp) with a
PLAINTEXT and an SSL listener (and, with --sasl, a SASL_SSL one taking
SCRAM-SHA-512), certificates made with tests/e2e/tls_certs.py's helpers
(RSA 2048, a CA of their own). Every round, over each listener in turn —
the order alternating between rounds, so both see the same page cache and
writeback conditions — one partition: produce 100 B and 1 KiB records
(acks=1, linger.ms=5), then consume them from the beginning. Records/s and
MB/s per phase, the broker's CPU-seconds per GB (/proc/<pid>/stat around
each phase), the CPU use of the client's busiest thread in each phase
(over TLS at 1 KiB librdkafka's broker thread, which encrypts or decrypts
every byte: near 1.0 the client is its own limit), and per round the ratio TLS / plaintext; prints a
Markdown table of medians (ranges) for docs/PERFORMANCE.md.

What differs between the listeners: plaintext fetches go page cache →
socket by `sendfile`. On a kernel with the `tls` ULP the SSL listener
hands each connection's keys to the kernel after the handshake (kernel
TLS: fetches keep `sendfile`, the kernel encrypts) and a third listener,
SSL_USERSPACE (`ssl.kernel.tls.enable=false`), keeps rustls in userspace
(fetches read and encrypted by the broker); without it the SSL listener
is userspace TLS. Issue 16's targets: TLS produce ≥ 80% of plaintext, TLS
consume ≥ 70% of plaintext with kernel TLS, the userspace figure beside
it. The reference machine's kernel has no kernel TLS: measure it in a VM
with Debian's kernel (`scripts/vm/run.sh -- python3 bench/tls.py …`)."""
import argparse
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
from bench.kafka import compare  # noqa: E402
from tls_certs import make_ca, make_cert  # noqa: E402

CACHE = compare.CACHE
TREE = os.path.join(CACHE, f"librdkafka-{compare.RDKAFKA_VERSION}-ssl")
PERF = os.path.join(TREE, "examples", "rdkafka_performance")
SERVER = compare.SERVER
SCRAM_USER, SCRAM_PASSWORD = "bench", "bench-secret"


def build_rdkafka_performance():
    """rdkafka_performance with SSL and SASL (SCRAM: needs libssl-dev), built once."""
    return compare.build_rdkafka_performance(TREE, configure=())


def make_broker_certs(d):
    """A CA and a broker certificate for 127.0.0.1/localhost in `d`."""
    make_ca(d, "ca", "/O=gregor/CN=gregor bench CA")
    make_cert(d, "broker", "/O=gregor/CN=broker", "ca", sans="DNS:localhost,IP:127.0.0.1")
    return d


class SecuredBroker:
    """One release gregor-server with a PLAINTEXT and an SSL listener, and
    with `sasl` SASL_SSL and SASL_PLAINTEXT ones (PLAIN, SCRAM-SHA-256/512;
    the user `bench` has both SCRAM credentials at 4096 iterations)."""

    def __init__(self, root, certs, sasl=False, userspace=False):
        self.root, self.certs, self.sasl = root, certs, sasl
        names = ["PLAINTEXT", "SSL"] + (["SSL_USERSPACE"] if userspace else []) + (
            ["SASL_SSL", "SASL_PLAINTEXT"] if sasl else [])
        self.ports = {name: compare.free_port() for name in names}
        self.process = None

    def bootstrap(self, listener="PLAINTEXT"):
        return f"127.0.0.1:{self.ports[listener]}"

    def client_conf(self, listener, mechanism="SCRAM-SHA-512"):
        """librdkafka properties for `listener`."""
        conf = {}
        if listener != "PLAINTEXT":
            conf["security.protocol"] = protocol(listener)
        if "SSL" in listener:
            conf["ssl.ca.location"] = os.path.join(self.certs, "ca.crt")
        if listener.startswith("SASL"):
            conf.update({"sasl.mechanism": mechanism, "sasl.username": SCRAM_USER, "sasl.password": SCRAM_PASSWORD})
        return conf

    def start(self):
        overrides = [
            "ssl.keystore.type=PEM",
            f"ssl.keystore.location={self.certs}/broker.pem",
            f"ssl.truststore.location={self.certs}/ca.crt",
            "ssl.client.auth=none",
        ]
        if "SSL_USERSPACE" in self.ports:
            overrides += [
                "listener.security.protocol.map=" + ",".join(f"{n}:{protocol(n)}" for n in self.ports),
                "inter.broker.listener.name=PLAINTEXT",
                "listener.name.ssl_userspace.ssl.kernel.tls.enable=false",
            ]
        if self.sasl:
            overrides += [
                "sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512",
                "sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required "
                f'user_{SCRAM_USER}="{SCRAM_PASSWORD}";',
            ]
        args = [SERVER, "--listeners", ",".join(f"{n}://127.0.0.1:{p}" for n, p in self.ports.items()),
                "--log-dirs", os.path.join(self.root, "logs"), *compare.GREGOR_OVERRIDES]
        for o in overrides:
            args += ["--override", o]
        env = dict(os.environ, GREGOR_METRICS_LISTEN=f"127.0.0.1:{compare.free_port()}")
        self.process = subprocess.Popen(args, env=env, stdout=open(os.path.join(self.root, "server.log"), "ab"),
                                        stderr=subprocess.STDOUT)
        compare.wait_serving(self.bootstrap(), 1)
        if self.sasl:
            from confluent_kafka.admin import (AdminClient, ScramCredentialInfo, ScramMechanism,
                                               UserScramCredentialUpsertion)
            admin = AdminClient({"bootstrap.servers": self.bootstrap()})
            upserts = [UserScramCredentialUpsertion(SCRAM_USER, ScramCredentialInfo(m, 4096), SCRAM_PASSWORD.encode())
                       for m in (ScramMechanism.SCRAM_SHA_256, ScramMechanism.SCRAM_SHA_512)]
            for f in admin.alter_user_scram_credentials(upserts).values():
                f.result(30)
        return self

    @property
    def pid(self):
        return self.process.pid

    def stop(self):
        if self.process:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None


def protocol(listener):
    """The security protocol of the listener named `listener`."""
    return "SSL" if listener == "SSL_USERSPACE" else listener


def kernel_has_tls():
    try:
        return "tls" in open("/proc/sys/net/ipv4/tcp_available_ulp").read().split()
    except OSError:
        return False


def negotiated_cipher(broker):
    """The TLS version and cipher suite the broker picks for OpenSSL's
    client (what librdkafka uses)."""
    done = subprocess.run(["openssl", "s_client", "-connect", broker.bootstrap("SSL"), "-CAfile",
                           os.path.join(broker.certs, "ca.crt")], input="", capture_output=True, text=True, timeout=30)
    m = re.search(r"New, (\S+), Cipher is (\S+)", done.stdout)
    return f"{m.group(1)} {m.group(2)}" if m else "unknown"


def x_args(conf):
    return [a for k, v in conf.items() for a in ("-X", f"{k}={v}")]


def thread_cpu(pid):
    """CPU seconds so far of each thread of `pid`, by (tid, name)."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            stat = open(f"/proc/{pid}/task/{tid}/stat").read()
        except OSError:
            continue
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        out[(tid, name)] = compare.stat_cpu_seconds(stat)
    return out


def run_perf(args, busiest=None, check=True):
    """rdkafka_performance, run to its end: a CompletedProcess (text).
    With `busiest` (a dict), its busiest thread is put there: `name` and
    `cpu` (its CPU seconds, start to end)."""
    out, err = tempfile.TemporaryFile("w+"), tempfile.TemporaryFile("w+")
    process = subprocess.Popen([PERF, *args], stdout=out, stderr=err, text=True)
    samples = []
    if busiest is not None:
        try:
            while process.poll() is None:
                time.sleep(0.1)
                samples.append((time.monotonic(), thread_cpu(process.pid)))
        except OSError:  # it ended between poll and the read
            pass
    process.wait(timeout=900)
    out.seek(0), err.seek(0)
    stdout, stderr = out.read(), err.read()
    if check and process.returncode != 0:
        raise RuntimeError(f"rdkafka_performance exited with {process.returncode}:\n{stdout[-2000:]}\n"
                           f"{stderr[-2000:]}")
    if busiest is not None:
        # A thread's value is from the last sample that saw it: the
        # threads end one by one as the client shuts down.
        last = {}
        for _, threads in samples:
            last.update(threads)
        if last:
            (_, name), cpu = max(last.items(), key=lambda item: item[1])
            busiest.update(name=name, cpu=cpu)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def produce(broker, listener, topic, records, size, busiest=None):
    """`records` of `size` bytes to partition 0 (acks=1, linger.ms=5);
    records/s (`busiest`: see run_perf)."""
    done = run_perf(["-P", "-t", topic, "-p", "0", "-s", str(size), "-c", str(records), "-a", "1",
                     "-X", "linger.ms=5", "-b", broker.bootstrap(listener), *x_args(broker.client_conf(listener))],
                    busiest, check=False)
    return compare.produced_rate(done, records)


def consume(broker, listener, topic, records, busiest=None):
    """`records` from the beginning of partition 0; records/s (`busiest`:
    see run_perf)."""
    out = run_perf(["-C", "-t", topic, "-p", "0", "-o", "beginning", "-c", str(records),
                    "-b", broker.bootstrap(listener), *x_args(broker.client_conf(listener))], busiest).stdout
    summaries = re.findall(r"(\d+) messages \(\d+ bytes\) consumed in (\d+)ms: (\d+) msgs/s", out)
    if not summaries or int(summaries[-1][0]) < records:
        raise RuntimeError(f"rdkafka_performance consumed short:\n{out[-2000:]}")
    return int(summaries[-1][2])


def delete_topic(broker, topic):
    from confluent_kafka.admin import AdminClient
    admin = AdminClient({"bootstrap.servers": broker.bootstrap()})
    admin.delete_topics([topic])[topic].result(60)


class Results:
    """Measurements by (phase, listener), one per round."""

    def __init__(self):
        self.values = {}
        self.phases = []

    def add(self, phase, listener, value):
        if phase not in self.phases:
            self.phases.append(phase)
        self.values.setdefault(phase, {}).setdefault(listener, []).append(value)

    def table(self, listeners):
        def show(vs, fmt="{:,.0f}"):
            med = statistics.median(vs)
            return fmt.format(med) + (f" ({fmt.format(min(vs))}–{fmt.format(max(vs))})" if len(vs) > 1 else "")

        head = "| phase | " + " | ".join(listeners) + " | " + " | ".join(
            f"{lst} / PLAINTEXT (per round)" for lst in listeners[1:]) + " |"
        lines = [head, "|" + "---|" * (1 + 2 * len(listeners) - 1)]
        for phase in self.phases:
            v = self.values[phase]
            fmt = "{:,.2f}" if "CPU" in phase else ("{:,.1f}" if "MB/s" in phase else "{:,.0f}")
            cells = [show(v[lst], fmt) for lst in listeners]
            for lst in listeners[1:]:
                if "thread" in phase:
                    cells.append("—")
                    continue
                ratios = [100 * t / p for t, p in zip(v[lst], v["PLAINTEXT"]) if p]
                cells.append(show(ratios, "{:.0f}%") if ratios else "—")
            lines.append(f"| {phase} | " + " | ".join(cells) + " |")
        return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--records", type=int, default=2_000_000, help="100 B records per produce phase "
                                                                       "(1 KiB phases write a quarter as many)")
    parser.add_argument("--dir", default="/var/tmp", help="where the broker's data goes")
    parser.add_argument("--sasl", action="store_true", help="SASL_SSL (SCRAM-SHA-512) too")
    args = parser.parse_args()
    if not os.path.exists(SERVER):
        sys.exit(f"no {SERVER}: cargo build --release -p gregor-server (or GREGOR_SERVER_BIN)")
    build_rdkafka_performance()
    root = tempfile.mkdtemp(prefix="tls-bench-", dir=args.dir)
    kernel_tls = kernel_has_tls()
    broker = SecuredBroker(root, make_broker_certs(tempfile.mkdtemp(prefix="certs-", dir=root)), sasl=args.sasl,
                           userspace=kernel_tls)
    listeners = ["PLAINTEXT", "SSL"] + (["SSL_USERSPACE"] if kernel_tls else []) + (["SASL_SSL"] if args.sasl else [])
    results = Results()
    try:
        broker.start()
        print(f"TLS: {negotiated_cipher(broker)} (rustls, the broker; OpenSSL, the client); "
              + ("SSL: kernel TLS, SSL_USERSPACE: rustls" if kernel_tls else "no kernel TLS here: SSL is rustls"),
              flush=True)
        for round_ in range(args.rounds):
            order = listeners if round_ % 2 == 0 else listeners[::-1]
            print(f"round {round_ + 1}: {', '.join(order)}", flush=True)
            for listener in order:
                for size, label in ((100, "100 B"), (1024, "1 KiB")):
                    count = args.records if size == 100 else args.records // 4
                    gb = count * size / 1e9
                    topic = f"{listener.lower()}-{size}-{round_}"
                    compare.create_topic(broker.bootstrap(), topic, 1)
                    for phase, run in (("produce", lambda b: produce(broker, listener, topic, count, size, b)),
                                       ("consume", lambda b: consume(broker, listener, topic, count, b))):
                        busiest = {}
                        cpu = compare.cpu_seconds([broker.pid])
                        rate = run(busiest)
                        cpu = compare.cpu_seconds([broker.pid]) - cpu
                        results.add(f"{phase} {label} (records/s)", listener, rate)
                        results.add(f"{phase} {label} (MB/s)", listener, rate * size / 1e6)
                        results.add(f"broker CPU-s per GB, {phase} {label} (lower is better)", listener, cpu / gb)
                        client = ""
                        if busiest:
                            # Its CPU over the time the records took at the
                            # rate measured: near 1.0, the client is its own limit.
                            cores = busiest["cpu"] * rate / count
                            results.add(f"client's busiest thread, {phase} {label} (CPU cores)", listener, cores)
                            client = f", client's busiest thread {busiest['name']} {cores:.2f} cores"
                        print(f"  {listener} {phase} {label}: {rate:,} records/s, {rate * size / 1e6:,.1f} MB/s, "
                              f"broker {cpu / gb:.2f} CPU-s/GB{client}", flush=True)
                    delete_topic(broker, topic)  # the disk holds one phase's data at a time
    finally:
        broker.stop()
        shutil.rmtree(root, ignore_errors=True)
    print()
    print(results.table(listeners))


if __name__ == "__main__":
    main()
