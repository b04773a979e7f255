"""Apache Kafka 3.9 for tests and benches: a real broker (ZooKeeper mode, on
Debian's ZooKeeper) or a 3-broker cluster on free 127.0.0.1 ports with its
data in a temp dir, and Kafka's command-line tools, each run with `java -cp`
on the jars bench/kafka/fetch.sh puts in lib/. Import it as
`bench.kafka.kafka` with the repository root on sys.path (a top-level
`kafka` is kafka-python). `python3 bench/kafka/kafka.py [BROKERS]` runs a
cluster until Ctrl-C or SIGTERM."""
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
LIB = {"3.9": os.path.join(HERE, "lib", "3.9"), "4": os.path.join(HERE, "lib", "4"),
       # Kafka 4's broker (KRaft), fetched only by `fetch.sh 4-broker`.
       "4-broker": os.path.join(HERE, "lib", "4-broker")}
LOG4J = os.path.join(HERE, "log4j.properties")

# The main classes behind Kafka 3.9's bin/*.sh scripts.
TOOLS = {
    "kafka-topics": "org.apache.kafka.tools.TopicCommand",
    "kafka-configs": "kafka.admin.ConfigCommand",
    "kafka-console-producer": "kafka.tools.ConsoleProducer",
    "kafka-console-consumer": "org.apache.kafka.tools.consumer.ConsoleConsumer",
    "kafka-consumer-groups": "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand",
    "kafka-get-offsets": "org.apache.kafka.tools.GetOffsetShell",
    "kafka-dump-log": "kafka.tools.DumpLogSegments",
    "kafka-producer-perf-test": "org.apache.kafka.tools.ProducerPerformance",
    "kafka-consumer-perf-test": "org.apache.kafka.tools.ConsumerPerformance",
    "kafka-log-dirs": "org.apache.kafka.tools.LogDirsCommand",
    "kafka-cluster": "org.apache.kafka.tools.ClusterTool",
    "kafka-reassign-partitions": "org.apache.kafka.tools.reassign.ReassignPartitionsCommand",
    "kafka-leader-election": "org.apache.kafka.tools.LeaderElectionCommand",
    "kafka-delete-records": "org.apache.kafka.tools.DeleteRecordsCommand",
}
# JVM flags: the broker gets kafka-run-class.sh's and kafka-server-start.sh's;
# short-lived tools start fast instead.
BROKER_JVM = ["-Xms1g", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20", "-XX:InitiatingHeapOccupancyPercent=35",
              "-XX:+ExplicitGCInvokesConcurrent", "-XX:MaxInlineLevel=15", "-Djava.awt.headless=true",
              "-Dkafka.root.level=INFO"]
TOOL_JVM = ["-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC"]
# Kafka 3.9's shipped config/server.properties, less what each broker sets.
SHIPPED = {
    "num.network.threads": 3, "num.io.threads": 8, "socket.send.buffer.bytes": 102400,
    "socket.receive.buffer.bytes": 102400, "socket.request.max.bytes": 104857600, "num.partitions": 1,
    "num.recovery.threads.per.data.dir": 1, "log.retention.hours": 168, "log.segment.bytes": 1073741824,
    "log.retention.check.interval.ms": 300000, "zookeeper.connection.timeout.ms": 18000,
    "group.initial.rebalance.delay.ms": 0,
}


def missing(versions=("3.9",)):
    """Why Kafka can't run here (a skip reason), or None."""
    if not shutil.which("java"):
        return "no java on PATH"
    for v in versions:
        if not os.path.exists(os.path.join(LIB[v], ".fetched")):
            return f"no Kafka {v} jars in {LIB[v]}: run bench/kafka/fetch.sh"
    if not os.path.exists(ZooKeeper.JAR):
        return f"no ZooKeeper at {ZooKeeper.JAR}: apt-get install zookeeper"
    return None


# Ports handed to servers come from below the kernel's ephemeral range
# (32768-60999 by default), one after another: a port picked from the
# ephemeral range and closed again can be taken by any client's outgoing
# connection before the server binds it ("Address already in use").
_PORT_RANGE = (20000, 32000)
_next_port = [_PORT_RANGE[0] + (os.getpid() * 37) % (_PORT_RANGE[1] - _PORT_RANGE[0])]


def free_port():
    """A port on 127.0.0.1 that nothing listens on, not handed out before by this process."""
    low, high = _PORT_RANGE
    for _ in range(high - low):
        port = _next_port[0]
        _next_port[0] = low + (port + 1 - low) % (high - low)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {low}-{high}")


def java(main, *args, version="3.9", heap="512m", jvm=(), classpath=()):
    """The command line running `main` on lib/<version>'s jars (and `classpath`)."""
    cp = os.pathsep.join([*classpath, os.path.join(LIB[version], "*")])
    return ["java", f"-Xmx{heap}", *jvm, f"-Dlog4j.configuration=file:{LOG4J}",
            "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn", "-cp", cp, main, *map(str, args)]


def run(main, *args, input=None, timeout=180, check=True, **java_args):
    """Runs a short-lived JVM program to its end; its CompletedProcess (text)."""
    command = java(main, *args, jvm=TOOL_JVM, **java_args)
    done = subprocess.run(command, input=input, capture_output=True, text=True, timeout=timeout)
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(command[-len(args) - 1:])} exited with {done.returncode}:\n"
                           f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return done


def tool(name, *args, **run_args):
    """One of Kafka 3.9's command-line tools by its script's name (`kafka-topics`, …)."""
    return run(TOOLS[name], *args, **run_args)


def wait_for_controller(bootstrap, timeout=90):
    """Until the broker's metadata names a controller: a just-started
    Kafka answers Metadata before its cache knows one, and librdkafka's
    admin requests then wait for the next metadata refresh (minutes)."""
    try:
        from confluent_kafka.admin import AdminClient
    except ImportError:  # the benches' machines may not have it
        return
    admin = AdminClient({"bootstrap.servers": bootstrap})
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if admin.list_topics(timeout=5).controller_id >= 0:
                return
        except Exception:  # not answering yet
            pass
        time.sleep(0.1)
    raise RuntimeError(f"Kafka at {bootstrap} named no controller within {timeout} s")


def wait_for(ready, timeout, failure, interval=0.05):
    """Calls `ready` until it returns true (it may raise to give up at
    once); after `timeout` seconds, RuntimeError with the message
    `failure()` gives."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if ready():
            return
        time.sleep(interval)
    raise RuntimeError(failure())


def accepts(port, ask=None, answer=None):
    """True when 127.0.0.1:`port` takes a connection (and, given `ask`,
    answers it with `answer`)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            if ask is None:
                return True
            s.sendall(ask)
            return s.recv(len(answer)) == answer
    except OSError:
        return False


class ZooKeeper:
    """A real ZooKeeper 3.8 (Debian's package) on a free port."""

    JAR = "/usr/share/java/zookeeper.jar"

    def __init__(self, data_dir):
        self.port = free_port()
        os.makedirs(data_dir, exist_ok=True)
        config = os.path.join(data_dir, "zoo.cfg")
        with open(config, "w") as f:
            f.write(f"tickTime=200\ninitLimit=10\nsyncLimit=5\ndataDir={data_dir}/data\nclientPort={self.port}\n"
                    "clientPortAddress=127.0.0.1\nadmin.enableServer=false\n4lw.commands.whitelist=ruok\n")
        classpath = f"/etc/zookeeper/conf:{self.JAR}:/usr/share/java/slf4j-log4j12.jar:/usr/share/java/log4j-1.2.jar"
        self.process = subprocess.Popen(
            ["java", "-Xmx256m", "-cp", classpath, "org.apache.zookeeper.server.quorum.QuorumPeerMain", config],
            stdout=open(os.path.join(data_dir, "zookeeper.out"), "ab"),
            stderr=subprocess.STDOUT,
        )
        try:
            wait_for(lambda: accepts(self.port, b"ruok", b"imok"), 60, lambda: "ZooKeeper did not start within 60 s",
                     0.1)
        except RuntimeError:
            self.stop()
            raise

    @property
    def hosts(self):
        return f"127.0.0.1:{self.port}"

    def stop(self):
        self.process.kill()
        self.process.wait()


class KafkaBroker:
    """One Kafka 3.9 broker (`kafka.Kafka`, ZooKeeper mode, -Xmx1g) of a
    cluster of `size`; start() and stop() may be called repeatedly."""

    def __init__(self, data_dir, zookeeper, broker_id=0, size=1, overrides=None):
        self.data_dir = data_dir
        self.broker_id = broker_id
        self.port = free_port()
        self.log_dir = os.path.join(data_dir, "logs")
        self.log_path = os.path.join(data_dir, "server.log")
        self.config = os.path.join(data_dir, "server.properties")
        self.process = None
        replicas = min(size, 3)
        properties = dict(SHIPPED, **{
            "broker.id": broker_id, "listeners": f"PLAINTEXT://{self.bootstrap}", "log.dirs": self.log_dir,
            "zookeeper.connect": zookeeper, "offsets.topic.replication.factor": replicas,
            "transaction.state.log.replication.factor": replicas,
            "transaction.state.log.min.isr": min(replicas, 2),
        }, **(overrides or {}))
        os.makedirs(data_dir, exist_ok=True)
        with open(self.config, "w") as f:
            f.writelines(f"{k}={v}\n" for k, v in properties.items())

    @property
    def bootstrap(self):
        return f"127.0.0.1:{self.port}"

    def partition_dir(self, topic, partition):
        return os.path.join(self.log_dir, f"{topic}-{partition}")

    def launch(self):
        log = open(self.log_path, "ab")
        self.since = log.tell()  # this start's lines, not a previous run's
        self.process = subprocess.Popen(java("kafka.Kafka", self.config, heap="1g", jvm=BROKER_JVM),
                                        stdout=log, stderr=subprocess.STDOUT)
        return self

    def wait_started(self, timeout=90):
        started = f"[KafkaServer id={self.broker_id}] started".encode()

        def ready():
            if self.process.poll() is not None:
                raise RuntimeError(f"Kafka broker {self.broker_id} exited: {self.tail()}")
            with open(self.log_path, "rb") as f:
                f.seek(self.since)
                return started in f.read()

        wait_for(ready, timeout,
                 lambda: f"Kafka broker {self.broker_id} did not start within {timeout} s: {self.tail()}", 0.1)
        wait_for_controller(self.bootstrap, timeout)
        return self

    def start(self):
        return self.launch().wait_started()

    def tail(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()[-3000:]

    def stop(self):
        """SIGTERM: a controlled shutdown."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                code = self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.kill()
                raise RuntimeError(f"Kafka broker {self.broker_id} did not stop on SIGTERM within 60 s")
            if code not in (0, 128 + signal.SIGTERM):
                raise RuntimeError(f"Kafka broker {self.broker_id} exited with {code}: {self.tail()}")
        self.process = None

    def kill(self):
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.process = None


class KafkaCluster:
    """`size` Kafka 3.9 brokers (ids 0..size-1) on a ZooKeeper of their own
    (or the one given), in `data_dir` (a new temp dir, removed by stop(),
    by default); a context manager. `broker_overrides`: per broker id, more
    properties for that broker only (e.g. its `broker.rack`)."""

    def __init__(self, size=1, data_dir=None, zookeeper=None, overrides=None, broker_overrides=None):
        self.temp = data_dir is None
        self.data_dir = tempfile.mkdtemp(prefix="kafka-") if self.temp else data_dir
        self.own_zookeeper = zookeeper is None
        self.zookeeper = zookeeper or ZooKeeper(os.path.join(self.data_dir, "zookeeper"))
        per_broker = broker_overrides or {}
        self.brokers = [KafkaBroker(os.path.join(self.data_dir, f"broker-{i}"), self.zookeeper.hosts, i, size,
                                    dict(overrides or {}, **per_broker.get(i, {}))) for i in range(size)]
        try:
            for b in self.brokers:
                b.launch()
            for b in self.brokers:
                b.wait_started()
        except BaseException:
            self.stop()
            raise

    @property
    def bootstrap(self):
        return ",".join(b.bootstrap for b in self.brokers)

    def stop(self):
        try:
            for b in reversed(self.brokers):
                b.stop()
        finally:
            for b in self.brokers:
                b.kill()
            if self.own_zookeeper:
                self.zookeeper.stop()
            if self.temp:
                shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


if __name__ == "__main__":
    reason = missing()
    if reason:
        sys.exit(reason)
    # Ctrl-C or SIGTERM stops the cluster (also when started in the background).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    with KafkaCluster(int(sys.argv[1]) if len(sys.argv) > 1 else 1) as cluster:
        print(f"Kafka 3.9 on {cluster.bootstrap} (data in {cluster.data_dir}); Ctrl-C stops it", flush=True)
        try:
            signal.pause()
        except KeyboardInterrupt:
            pass
