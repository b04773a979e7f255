"""A cluster in network namespaces, and the faults a network can have.

Every node (the coordination service, each broker) runs in its own Linux
network namespace with one interface, `eth0`, a veth pair whose other end
is attached to a bridge in the root namespace; each node has its own
address on the bridge's /24, and the root namespace (where the test
clients run) has the bridge's address, so clients reach every node.

Faults are applied inside a node's namespace with nftables (its own
ruleset per namespace) and tc:
- `cut(a, b)` drops every packet between two nodes (input and output
  rules matching the other's address), the way Jepsen's partitions drop
  packets: connections hang, nothing is refused;
  `cut(a, b, one_way=True)` drops only what a sends to b;
- `isolate(a, from_clients=...)` cuts a node from every other node (and the
  clients' root namespace too if asked);
- `degrade(a, loss=..., delay=...)`: random packet loss (nftables numgen)
  and delay (tc netem, or a tbf rate limit where the kernel lacks netem);
- `heal()` removes every cut, loss and delay.

Needs root (CAP_NET_ADMIN), `ip`/`tc` (iproute2) and `nft` (nftables).
`Network.available()` says whether namespaces can be made here. Cleanup (kill the processes,
delete the namespaces, the bridge) runs from `close()`, which the fixtures
call even when a test fails; `sweep()` removes what a killed run left.
"""
import os
import signal
import socket
import struct
import subprocess
import time

from conftest import BINARY, GREGOR, wait_for
from controller_requests import read_frame

PREFIX = "gjn"  # every namespace, bridge and veth this harness makes


def sh(*args, check=True):
    """Runs a command (a list of words), raising with its stderr on failure."""
    done = subprocess.run(list(args), capture_output=True, text=True)
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: {done.stderr.strip()}")
    return done


def _alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def sweep():
    """Deletes the namespaces and bridges of earlier runs whose process is gone."""
    names = sh("ip", "netns", "list", check=False).stdout.split()
    for name in names:
        if name.startswith(PREFIX) and "-" in name:
            pid = name[len(PREFIX):].split("-")[0]
            if pid.isdigit() and not _alive(int(pid)):
                sh("ip", "netns", "del", name, check=False)
    links = sh("ip", "-o", "link", "show", "type", "bridge", check=False).stdout
    for line in links.splitlines():
        name = line.split(":")[1].strip().split("@")[0]
        if name.startswith(PREFIX + "br"):
            pid = name[len(PREFIX) + 2:]
            if pid.isdigit() and not _alive(int(pid)):
                sh("ip", "link", "del", name, check=False)


class Network:
    """The bridge and the namespaces of one run; nodes are added by name."""

    def __init__(self):
        sweep()
        self.tag = str(os.getpid())
        self.subnet = f"10.{77 + os.getpid() % 150}.{os.getpid() % 250}"
        self.bridge = f"{PREFIX}br{self.tag}"[:15]
        self.nodes = {}  # name -> (namespace, address)
        self.processes = []
        self.cuts = set()  # (from, to): packets from -> to are dropped
        self.lossy = {}  # name -> percent of packets dropped
        self.shaped = {}  # name -> the qdisc delaying its packets
        sh("ip", "link", "add", self.bridge, "type", "bridge")
        sh("ip", "addr", "add", f"{self.subnet}.1/24", "dev", self.bridge)
        sh("ip", "link", "set", self.bridge, "up")

    @staticmethod
    def available():
        """Whether this machine lets us make namespaces and bridges (root, iproute2)."""
        probe = f"{PREFIX}probe{os.getpid()}"
        try:
            if sh("ip", "netns", "add", probe, check=False).returncode != 0:
                return False
            sh("ip", "netns", "del", probe, check=False)
            return all(sh(tool, "-V", check=False).returncode == 0 for tool in ("tc", "nft"))
        except FileNotFoundError:
            return False

    @property
    def client_address(self):
        """The root namespace's address: where the test clients come from."""
        return f"{self.subnet}.1"

    def add(self, name):
        """A namespace for node `name` on the bridge; returns its address."""
        index = len(self.nodes) + 10
        namespace = f"{PREFIX}{self.tag}-{name}"
        address = f"{self.subnet}.{index}"
        host_end = f"{PREFIX}{self.tag[-5:]}h{index}"[:15]
        sh("ip", "netns", "add", namespace)
        self.nodes[name] = (namespace, address)
        sh("ip", "link", "add", host_end, "type", "veth", "peer", "name", "eth0", "netns", namespace)
        sh("ip", "link", "set", host_end, "master", self.bridge, "up")
        self.ns(name, "ip", "addr", "add", f"{address}/24", "dev", "eth0")
        self.ns(name, "ip", "link", "set", "eth0", "up")
        self.ns(name, "ip", "link", "set", "lo", "up")
        return address

    def address(self, name):
        return self.nodes[name][1]

    def ns(self, name, *command, check=True):
        return sh("ip", "netns", "exec", self.nodes[name][0], *command, check=check)

    def popen(self, name, command, **kwargs):
        """Starts `command` in node `name`'s namespace (the process is the
        command itself: `ip netns exec` execs it, so signals reach it)."""
        process = subprocess.Popen(["ip", "netns", "exec", self.nodes[name][0]] + command, **kwargs)
        self.processes.append(process)
        return process

    # -- faults ---------------------------------------------------------

    def _peer_address(self, peer):
        return self.client_address if peer == "clients" else self.address(peer)

    def _apply(self, name):
        """Rebuilds node `name`'s nftables rules from `self.cuts` and `self.lossy`."""
        drop_in, drop_out = [], []
        for (src, dst) in sorted(self.cuts):
            if src == name:
                drop_out.append(f"ip daddr {self._peer_address(dst)} drop")
            if dst == name:
                drop_in.append(f"ip saddr {self._peer_address(src)} drop")
        if name in self.lossy:
            for rules in (drop_in, drop_out):
                rules.append(f"numgen random mod 100 < {self.lossy[name]} drop")
        ruleset = "flush ruleset\ntable inet jepsen {\n"
        for chain, rules in (("input", drop_in), ("output", drop_out)):
            ruleset += f"  chain {chain} {{ type filter hook {chain} priority 0; policy accept;\n"
            ruleset += "".join(f"    {r}\n" for r in rules) + "  }\n"
        ruleset += "}\n"
        done = subprocess.run(["ip", "netns", "exec", self.nodes[name][0], "nft", "-f", "-"], input=ruleset,
                              capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"nft in {name}: {done.stderr.strip()}")

    def cut(self, a, b, one_way=False):
        """Drops packets from a to b (and b to a unless `one_way`). `b` may be
        "clients" (the root namespace)."""
        self.cuts.add((a, b))
        if not one_way:
            self.cuts.add((b, a))
        for n in {a, b} - {"clients"}:
            self._apply(n)

    def uncut(self, a, b):
        """Heals the link between a and b (both directions)."""
        self.cuts -= {(a, b), (b, a)}
        for n in {a, b} - {"clients"}:
            self._apply(n)

    def isolate(self, name, from_clients=False):
        """Cuts `name` from every other node (and from the clients if asked)."""
        for other in self.nodes:
            if other != name:
                self.cuts |= {(name, other), (other, name)}
        if from_clients:
            self.cuts |= {(name, "clients"), ("clients", name)}
        for n in self.nodes:
            self._apply(n)

    def degrade(self, name, loss=0, delay=0, jitter=0):
        """Packet loss (percent, each direction, with nftables) and delay (ms)
        on node `name`'s interface. The delay is tc netem's when the kernel
        has it; without netem (CONFIG_NET_SCH_NETEM unset, as on the machine
        this was written on) a tbf rate limit of 1 Mbit/s with a 200 ms
        queue stands in for it: a slow link, where delay grows with load."""
        if loss:
            self.lossy[name] = loss
            self._apply(name)
        if delay:
            netem = ["netem", "delay", f"{delay}ms"] + ([f"{jitter}ms"] if jitter else [])
            tbf = ["tbf", "rate", "1mbit", "burst", "32kbit", "latency", "200ms"]
            for qdisc in (netem, tbf):
                if self.ns(name, "tc", "qdisc", "replace", "dev", "eth0", "root", *qdisc, check=False).returncode == 0:
                    self.shaped[name] = qdisc[0]
                    break
            else:
                raise RuntimeError("neither netem nor tbf available")

    def heal(self):
        """Removes every cut, loss and delay."""
        touched = ({n for pair in self.cuts for n in pair} | set(self.lossy)) - {"clients"}
        self.cuts.clear()
        self.lossy.clear()
        for n in touched:
            self._apply(n)
        for n in list(self.shaped):
            self.ns(n, "tc", "qdisc", "del", "dev", "eth0", "root", check=False)
        self.shaped.clear()

    def close(self):
        """Kills every process started here and removes the namespaces and the bridge."""
        for p in self.processes:
            if p.poll() is None:
                try:
                    p.send_signal(signal.SIGCONT)
                    p.kill()
                    p.wait(10)
                except (OSError, subprocess.TimeoutExpired):
                    pass
        for namespace, _ in self.nodes.values():
            sh("ip", "netns", "del", namespace, check=False)
        sh("ip", "link", "del", self.bridge, check=False)
        self.nodes.clear()


class NsCoordination:
    """`gregor coordination` in its own namespace."""

    PORT = 2181

    def __init__(self, network, data_dir, name="coord"):
        self.network, self.name = network, name
        network.add(name)
        os.makedirs(data_dir, exist_ok=True)
        self.process = network.popen(
            name, [GREGOR, "coordination", "--listen", self.address, "--dir", os.path.join(data_dir, "store")],
            stdout=open(os.path.join(data_dir, "coordination.log"), "ab"), stderr=subprocess.STDOUT)
        host = network.address(name)
        wait_for(lambda: connects(host, self.PORT), 30, lambda: "the coordination service did not start within 30 s")

    @property
    def address(self):
        return f"{self.network.address(self.name)}:{self.PORT}"


def connects(host, port):
    """True when host:port takes a TCP connection within a second."""
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


class NsBroker:
    """A gregor-server in its own namespace, listening on its address:9092."""

    PORT = 9092

    def __init__(self, network, data_dir, broker_id, args):
        self.network, self.id = network, broker_id
        self.name = f"b{broker_id}"
        self.data_dir = data_dir
        os.makedirs(data_dir, exist_ok=True)
        self.host = network.add(self.name)
        self.args = ["--broker-id", str(broker_id)] + list(args)
        self.log_path = os.path.join(data_dir, "server.log")
        self.process = None
        self.env = dict(os.environ, GREGOR_METRICS_LISTEN=f"{self.host}:9100")
        if "GREGOR_TEST_RUST_LOG" in os.environ:
            self.env["RUST_LOG"] = os.environ["GREGOR_TEST_RUST_LOG"]

    @property
    def bootstrap(self):
        return f"{self.host}:{self.PORT}"

    def start(self, timeout=60):
        log = open(self.log_path, "ab")
        since = self.since = log.tell()
        self.process = self.network.popen(
            self.name,
            [BINARY, "--listeners", f"PLAINTEXT://{self.bootstrap}", "--log-dirs",
             os.path.join(self.data_dir, "logs")] + self.args,
            stdout=log, stderr=subprocess.STDOUT, env=self.env)

        def ready():
            if self.process.poll() is not None:
                raise RuntimeError(f"broker {self.id} exited: {open(self.log_path).read()[-3000:]}")
            with open(self.log_path, "rb") as f:
                f.seek(since)
                return b"gregor broker listening on" in f.read()

        wait_for(ready, timeout, lambda: f"broker {self.id} did not start listening within {timeout} s")
        return self

    def running(self):
        return self.process is not None and self.process.poll() is None

    def registered_brokers(self):
        """The broker ids this broker's metadata lists (a Metadata v0 request
        on a socket of its own, so that the answer is this broker's)."""
        request = struct.pack(">hhih", 3, 0, 1, 6) + b"jepsen" + struct.pack(">i", 0)
        with socket.create_connection((self.host, self.PORT), timeout=3) as s:
            s.sendall(struct.pack(">i", len(request)) + request)
            body = read_frame(s)
        count = struct.unpack_from(">i", body, 4)[0]
        at, ids = 8, set()
        for _ in range(count):
            node = struct.unpack_from(">i", body, at)[0]
            host_len = struct.unpack_from(">h", body, at + 4)[0]
            at += 4 + 2 + host_len + 4
            ids.add(node)
        return ids

    def kill(self):
        """SIGKILL: a crash."""
        if self.running():
            self.process.kill()
            self.process.wait()
        self.process = None


def wait_until(check, timeout, what, interval=0.2):
    """Polls `check` until it returns something true; raises naming `what`."""
    deadline = time.time() + timeout
    while True:
        try:
            got = check()
            if got:
                return got
        except Exception:  # noqa: BLE001 (metadata not there yet, a broker restarting)
            pass
        if time.time() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


class NsCluster:
    """The coordination service and `size` brokers, each in its own namespace."""

    def __init__(self, root, size=3, overrides=()):
        self.network = Network()
        self.restarted_expired = 0
        try:
            self.coordination = NsCoordination(self.network, os.path.join(root, "coordination"))
            common = ["--coordination", self.coordination.address]
            for key, value in [
                # A broker silent for 3 s is gone (not the default 18 s).
                ("zookeeper.session.timeout.ms", "3000"),
                # A follower that cannot fetch for 5 s leaves the ISR (not 30 s).
                ("replica.lag.time.max.ms", "5000"),
                ("offsets.topic.num.partitions", "3"),
                ("offsets.topic.replication.factor", "3"),
                ("min.insync.replicas", "2"),
                *overrides,
            ]:
                common += ["--override", f"{key}={value}"]
            self.brokers = [NsBroker(self.network, os.path.join(root, f"broker-{i}"), i, common) for i in range(size)]
            for b in self.brokers:
                b.start()
        except BaseException:
            self.network.close()
            raise

    @property
    def bootstrap(self):
        return ",".join(b.bootstrap for b in self.brokers)

    def admin(self, brokers=None):
        """An AdminClient bootstrapped from `brokers` (default: all)."""
        from confluent_kafka.admin import AdminClient
        chosen = brokers if brokers is not None else self.brokers
        return AdminClient({"bootstrap.servers": ",".join(b.bootstrap for b in chosen),
                            "topic.metadata.refresh.interval.ms": 1000})

    def create_topic(self, topic, partitions=3):
        """A topic with replication factor 3, min.insync.replicas=2, every ISR whole."""
        from confluent_kafka.admin import NewTopic
        admin = self.admin()
        admin.create_topics([NewTopic(topic, partitions, 3, config={"min.insync.replicas": "2"})])[topic].result(30)
        self.wait_healthy(topic, partitions)

    def metadata(self, topic, via=None):
        """{partition: PartitionMetadata} and the controller id, as `via` (brokers) see them."""
        md = self.admin(via).list_topics(topic, timeout=5)
        return md.topics[topic].partitions, md.controller_id

    def leader(self, topic, partition, via=None):
        return self.metadata(topic, via)[0][partition].leader

    def healthy(self, topic, partitions):
        """Every broker registered, every partition led with its whole ISR."""
        md = self.admin().list_topics(topic, timeout=5)
        if len(md.brokers) != len(self.brokers) or md.controller_id < 0:
            return False
        ps = md.topics[topic].partitions
        return len(ps) == partitions and all(
            p.leader >= 0 and len(p.isrs) == len(self.brokers) for p in ps.values())

    def wait_healthy(self, topic, partitions, timeout=120, stable=2.0):
        """Until `healthy` has held for `stable` seconds: a broker's metadata
        may lag an ISR shrink by a moment, and one look could see the
        whole ISR of just before."""
        since = [None]

        def steady():
            if not self.healthy(topic, partitions):
                since[0] = None
                return False
            since[0] = since[0] or time.time()
            return time.time() - since[0] >= stable

        wait_until(steady, timeout, f"{topic}: every ISR whole again", interval=0.25)

    def unregistered(self):
        """The running brokers that no other running broker lists: their
        coordination session expired and they have not registered again yet
        (they do by themselves since finding 1 in docs/RELIABILITY.md was
        fixed)."""
        views = {}
        for b in self.brokers:
            if b.running():
                try:
                    views[b.id] = b.registered_brokers()
                except (OSError, struct.error):
                    views[b.id] = None
        return [b for b in self.brokers if b.running()
                and not any(v is not None and b.id in v for i, v in views.items() if i != b.id)]

    def revive(self, restart_expired=True):
        """Heals the network, restarts every broker that is down and (unless
        told not to) every broker still left out of the cluster after 15 s.
        A fallback: a broker whose session expired registers again by
        itself (finding 1 in docs/RELIABILITY.md, fixed) within a few
        seconds of healing; `self.restarted_expired` counts the restarts,
        and the soak reports them."""
        self.network.heal()
        for b in self.brokers:
            if not b.running():
                b.start()
        if restart_expired:
            deadline = time.time() + 15
            while self.unregistered() and time.time() < deadline:
                time.sleep(0.5)
            for b in self.unregistered():
                b.kill()
                self.restarted_expired += 1
                b.start()

    def close(self):
        self.network.close()
