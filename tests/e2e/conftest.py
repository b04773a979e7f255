"""Fixtures: a gregor broker process per test, on a free port with its own data dir."""
import os
import signal
import socket
import subprocess
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BINARY = os.environ.get("GREGOR_SERVER_BIN", os.path.join(ROOT, "target", "debug", "gregor-server"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Broker:
    """A gregor-server process; start() and stop() may be called repeatedly."""

    def __init__(self, data_dir, env=None):
        self.data_dir = data_dir
        self.env = dict(os.environ, **(env or {}))
        self.port = free_port()
        self.process = None
        self.log_path = os.path.join(data_dir, "server.log")

    @property
    def bootstrap(self):
        return f"127.0.0.1:{self.port}"

    def start(self):
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [BINARY, "--listeners", f"PLAINTEXT://{self.bootstrap}", "--log-dirs", os.path.join(self.data_dir, "logs")],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=self.env,
        )
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"broker exited: {open(self.log_path).read()}")
            # Ready once it says so: registered, topics reconciled, serving.
            with open(self.log_path, "rb") as f:
                if b"gregor broker listening on" in f.read():
                    return self
            time.sleep(0.05)
        raise RuntimeError("broker did not start listening within 30 s")

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                code = self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                raise RuntimeError("broker did not stop on SIGTERM within 30 s")
            assert code == 0, f"broker exited with {code}: {open(self.log_path).read()[-2000:]}"
        self.process = None


@pytest.fixture
def broker(tmp_path):
    b = Broker(str(tmp_path)).start()
    yield b
    b.stop()


@pytest.fixture
def eager_cleaner_broker(tmp_path):
    """A broker whose log cleaner looks for work every 100 ms."""
    b = Broker(str(tmp_path), env={"GREGOR_LOG_CLEANER_BACKOFF_MS": "100"}).start()
    yield b
    b.stop()


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
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    s.sendall(b"ruok")
                    if s.recv(4) == b"imok":
                        return
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("ZooKeeper did not start within 60 s")

    @property
    def hosts(self):
        return f"127.0.0.1:{self.port}"

    def stop(self):
        self.process.kill()
        self.process.wait()


@pytest.fixture
def zookeeper(tmp_path):
    zk = ZooKeeper(str(tmp_path / "zookeeper"))
    yield zk
    zk.stop()
