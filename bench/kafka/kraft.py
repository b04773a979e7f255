"""Apache Kafka 4 in KRaft mode for reference runs of what only Kafka 4
serves (the consumer group protocol of KIP-848): one process that is both
broker and controller, on free 127.0.0.1 ports, its data in `data_dir`,
jars from lib/4-broker (`bench/kafka/fetch.sh 4-broker`). The consumer
protocol is on by default in Kafka 4; members heartbeat every
`heartbeat_ms`, as the gregor broker of the same test is told to."""
import os
import subprocess

from bench.kafka.kafka import BROKER_JVM, LIB, accepts, free_port, java, run, wait_for, wait_for_controller


def missing():
    """Why Kafka 4's broker can't run here (a skip reason), or None."""
    if not os.path.exists(os.path.join(LIB["4-broker"], ".fetched")):
        return f"no Kafka 4 broker jars in {LIB['4-broker']}: run bench/kafka/fetch.sh 4-broker"
    return None


class KraftBroker:
    """One Kafka 4 node (broker and controller)."""

    def __init__(self, data_dir, heartbeat_ms=500):
        self.port, self.controller_port = free_port(), free_port()
        self.log_path = os.path.join(data_dir, "server.log")
        self.config = os.path.join(data_dir, "server.properties")
        self.log_dir = os.path.join(data_dir, "logs")
        properties = {
            "process.roles": "broker,controller", "node.id": 1,
            "controller.quorum.bootstrap.servers": f"127.0.0.1:{self.controller_port}",
            "listeners": f"PLAINTEXT://{self.bootstrap},CONTROLLER://127.0.0.1:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://{self.bootstrap}", "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": self.log_dir, "offsets.topic.replication.factor": 1,
            "transaction.state.log.replication.factor": 1, "transaction.state.log.min.isr": 1,
            "group.initial.rebalance.delay.ms": 0, "group.consumer.heartbeat.interval.ms": heartbeat_ms,
            "group.consumer.min.heartbeat.interval.ms": heartbeat_ms,
        }
        os.makedirs(data_dir, exist_ok=True)
        with open(self.config, "w") as f:
            f.writelines(f"{k}={v}\n" for k, v in properties.items())
        self.process = None

    @property
    def bootstrap(self):
        return f"127.0.0.1:{self.port}"

    def start(self):
        run("kafka.tools.StorageTool", "format", "-t", "MkU3OEVBNTcwNTJENDM2Qk", "-c", self.config,
            "--standalone", version="4-broker")
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(java("kafka.Kafka", self.config, version="4-broker", heap="1g",
                                             jvm=BROKER_JVM), stdout=log, stderr=subprocess.STDOUT)

        def ready():
            if self.process.poll() is not None:
                raise RuntimeError(f"Kafka 4 exited: {open(self.log_path, errors='replace').read()[-3000:]}")
            return accepts(self.port)

        wait_for(ready, 90, lambda: "Kafka 4 did not start within 90 s", 0.1)
        wait_for_controller(self.bootstrap, 90)
        return self

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
