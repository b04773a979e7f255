"""Client quotas (issue 19): DescribeClientQuotas / AlterClientQuotas through
`gregor quota`, kept at Kafka's ZooKeeper paths with a change notification
every broker applies, and enforced: a producer over its byte rate is
throttled to within 10% of it while another is not slowed.

confluent-kafka's AdminClient (2.x) has no client quota API; Kafka's own
`kafka-configs` checks the same scenario in test_jvm.py."""
import json
import re
import subprocess
import threading
import time
import urllib.request

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic
from kazoo.client import KazooClient

from conftest import GREGOR, Broker, free_port


def quota(bootstrap, *args, check=True):
    done = subprocess.run([GREGOR, "quota", "--bootstrap-server", bootstrap, *args],
                          capture_output=True, text=True, timeout=60)
    if check:
        assert done.returncode == 0, done.stderr
    return done


def described(bootstrap, *args):
    return json.loads(quota(bootstrap, "describe", "--json", *args).stdout)


def test_quota_alter_and_describe_with_filters_and_errors(broker):
    b = broker.bootstrap
    quota(b, "alter", "--client-id", "app", "--add-config", "producer_byte_rate=1024,consumer_byte_rate=2048")
    quota(b, "alter", "--user", "alice", "--client-default", "--add-config", "request_percentage=50.5")
    quota(b, "alter", "--user-default", "--add-config", "producer_byte_rate=4096")
    every = described(b)
    assert sorted(every, key=lambda e: json.dumps(e, sort_keys=True)) == sorted([
        {"entity": {"client-id": "app"}, "values": {"producer_byte_rate": 1024.0, "consumer_byte_rate": 2048.0}},
        {"entity": {"user": "alice", "client-id": None}, "values": {"request_percentage": 50.5}},
        {"entity": {"user": None}, "values": {"producer_byte_rate": 4096.0}},
    ], key=lambda e: json.dumps(e, sort_keys=True))
    quota(b, "alter", "--user", "bob", "--client-id", "app", "--add-config", "consumer_byte_rate=1")
    # Exact match, not strict: every entity with that client id, whatever its user.
    assert sorted(map(lambda e: json.dumps(e, sort_keys=True), (e["entity"] for e in described(b, "--client-id", "app")))) == \
        sorted(map(lambda e: json.dumps(e, sort_keys=True), [{"client-id": "app"}, {"user": "bob", "client-id": "app"}]))
    quota(b, "alter", "--user", "bob", "--client-id", "app", "--delete-config", "consumer_byte_rate")
    assert [e["entity"] for e in described(b, "--client-id", "app", "--strict")] == [{"client-id": "app"}]
    assert [e["entity"] for e in described(b, "--user", "alice", "--client-default", "--strict")] == [
        {"user": "alice", "client-id": None}]
    assert [e["entity"] for e in described(b, "--user-default", "--strict")] == [{"user": None}]
    text = quota(b, "describe", "--client-id", "app", "--strict").stdout
    assert text.strip() == "Quota configs for client-id 'app' are consumer_byte_rate=2048.0, producer_byte_rate=1024.0"

    # Removing one key keeps the other; removing the last removes the entity.
    quota(b, "alter", "--client-id", "app", "--delete-config", "producer_byte_rate")
    assert described(b, "--client-id", "app", "--strict")[0]["values"] == {"consumer_byte_rate": 2048.0}
    quota(b, "alter", "--client-id", "app", "--delete-config", "consumer_byte_rate")
    assert described(b, "--client-id", "app", "--strict") == []

    # Kafka's refusals, with its messages; validate_only changes nothing.
    bad = quota(b, "alter", "--client-id", "app", "--add-config", "producer_byte_rat=1", check=False)
    assert bad.returncode != 0 and "Invalid configuration key producer_byte_rat" in bad.stderr, bad.stderr
    bad = quota(b, "alter", "--client-id", "app", "--add-config", "producer_byte_rate=1.5", check=False)
    assert "Configuration producer_byte_rate must be a LONG value" in bad.stderr, bad.stderr
    quota(b, "alter", "--client-id", "app", "--add-config", "producer_byte_rate=10", "--validate-only")
    assert described(b, "--client-id", "app", "--strict") == []


def test_quotas_live_at_kafkas_paths_and_reach_every_broker(tmp_path, zookeeper):
    """Set through broker 0, the quota is in /config/clients with a change
    notification, and broker 1 — started before — throttles by it."""
    brokers = []
    for i in range(2):
        (tmp_path / f"b{i}").mkdir()
        brokers.append(Broker(str(tmp_path / f"b{i}"), env={
            "GREGOR_ZOOKEEPER_CONNECT": zookeeper.hosts, "GREGOR_BROKER_ID": str(i)}).start())
    zk = KazooClient(hosts=zookeeper.hosts)
    zk.start(timeout=30)
    try:
        admin = AdminClient({"bootstrap.servers": brokers[0].bootstrap})
        admin.create_topics([NewTopic("q", num_partitions=4, replication_factor=2)])["q"].result(30)
        quota(brokers[0].bootstrap, "alter", "--client-id", "tiny one", "--add-config", "producer_byte_rate=10")
        quota(brokers[0].bootstrap, "alter", "--user", "ANONYMOUS", "--client-id", "tiny one",
              "--add-config", "request_percentage=200")
        assert json.loads(zk.get("/config/clients/tiny%20one")[0]) == {
            "version": 1, "config": {"producer_byte_rate": "10"}}
        assert json.loads(zk.get("/config/users/ANONYMOUS/clients/tiny%20one")[0]) == {
            "version": 1, "config": {"request_percentage": "200.0"}}
        changes = [json.loads(zk.get(f"/config/changes/{c}")[0]) for c in sorted(zk.get_children("/config/changes"))]
        assert {"version": 2, "entity_path": "clients/tiny%20one"} in changes, changes
        assert {"version": 2, "entity_path": "users/ANONYMOUS/clients/tiny%20one"} in changes, changes
        # The user/client entity has no byte rate: the client-id quota applies.
        quota(brokers[0].bootstrap, "alter", "--user", "ANONYMOUS", "--client-id", "tiny one",
              "--delete-config", "request_percentage")
        assert zk.exists("/config/users/ANONYMOUS") is None  # bare quota nodes are removed, as Kafka does

        throttled_by = set()
        lock = threading.Lock()

        def on_throttle(event):
            with lock:
                throttled_by.add(event.broker_id)

        producer = Producer({"bootstrap.servers": brokers[1].bootstrap, "client.id": "tiny one",
                             "throttle_cb": on_throttle, "linger.ms": 0})
        deadline = time.time() + 30
        while throttled_by != {0, 1} and time.time() < deadline:
            try:
                for p in range(4):
                    producer.produce("q", value=b"x" * 100, partition=p)
            except BufferError:
                pass  # throttled: the queue drains as the brokers let it
            producer.poll(0.2)
        producer.flush(30)
        assert throttled_by == {0, 1}, f"throttled by {throttled_by}, not by both brokers"
    finally:
        zk.stop()
        for b in brokers:
            b.stop()


QUOTA = 200_000  # bytes per second
RUN_S = 8
VALUE = 4000  # large records: the batch overhead the quota also counts is ~1%


def produce_for(bootstrap, client_id, seconds, **config):
    """Produces as fast as the client can for `seconds`; the value bytes
    acknowledged within that time. `config`: more client properties
    (security, throttle_cb)."""
    acked = [0]
    start = time.time()
    end = start + seconds

    def delivered(err, msg):
        if err is None and time.time() <= end:
            acked[0] += len(msg.value())

    producer = Producer({"bootstrap.servers": bootstrap, "client.id": client_id, "linger.ms": 5,
                         "queue.buffering.max.messages": 200, "compression.type": "none", "acks": 1,
                         # Requests of ~5 records (a tenth of a second of the quota), not
                         # librdkafka's 1 MB batches: a throttle is reckoned per request.
                         "batch.size": 5 * VALUE + 500, **config})
    value = b"v" * VALUE
    while time.time() < end:
        try:
            producer.produce("rates", value=value, on_delivery=delivered)
        except BufferError:
            producer.poll(0.01)
        producer.poll(0)
    producer.flush(30)
    return acked[0] / seconds


def test_a_producer_over_its_byte_rate_is_throttled_to_it_and_others_are_not(tmp_path):
    # Kafka's default window (11 samples of 1 s) lets a client send 10 s of
    # its quota in one burst and evens out over ~11 s cycles; 2 samples
    # bound a burst to 1 s of quota, so an 8 s run measures the rate.
    broker = Broker(str(tmp_path), env={"GREGOR_QUOTA_WINDOW_NUM": "2"}).start()
    try:
        admin = AdminClient({"bootstrap.servers": broker.bootstrap})
        admin.create_topics([NewTopic("rates", num_partitions=1, replication_factor=1)])["rates"].result(30)
        quota(broker.bootstrap, "alter", "--client-id", "limited", "--add-config", f"producer_byte_rate={QUOTA}")
        rates = {}
        threads = [threading.Thread(target=lambda c=c: rates.__setitem__(c, produce_for(broker.bootstrap, c, RUN_S)))
                   for c in ("limited", "free")]
        for t in threads:
            t.start()
        for t in threads:
            t.join(RUN_S + 60)
        print("produce rates (B/s):", rates)
        assert abs(rates["limited"] - QUOTA) <= 0.1 * QUOTA, rates
        assert rates["free"] > 5 * QUOTA, rates
    finally:
        broker.stop()


def set_scram(port, user, password):
    from confluent_kafka.admin import ScramCredentialInfo, ScramMechanism, UserScramCredentialUpsertion

    admin = AdminClient({"bootstrap.servers": f"127.0.0.1:{port}"})
    upsert = UserScramCredentialUpsertion(user, ScramCredentialInfo(ScramMechanism.SCRAM_SHA_256, 4096),
                                          password.encode())
    for f in admin.alter_user_scram_credentials([upsert]).values():
        f.result(30)


def throttle_times(bootstrap, client_id, seconds=3):
    """Produces 4 KB records for up to `seconds`, until the broker first
    throttles the producer; the throttle times reported (none: never)."""
    throttles = []
    producer = Producer({"bootstrap.servers": bootstrap, "client.id": client_id, "linger.ms": 0,
                         "throttle_cb": lambda event: throttles.append(event.throttle_time)})
    deadline = time.time() + seconds  # (a throttle's end is reported as a 0: the first is not)
    while not throttles and time.time() < deadline:
        try:
            producer.produce("rates", value=b"t" * VALUE)
        except BufferError:
            pass
        producer.poll(0.01)
    # What is queued or sent would wait out the throttle (the broker holds
    # the answer as long): dropped, the producer closes at once.
    producer.purge(in_queue=True, in_flight=True)
    producer.flush(30)
    return throttles


def test_quotas_are_charged_to_the_authenticated_user(tmp_path):
    """Two SASL users with the same client id on one broker: the one with a
    user quota is throttled to it, the other is not slowed. Unauthenticated
    clients are User:ANONYMOUS, matched by `--user ANONYMOUS` quotas (and
    by `<default>` user quotas when it has none) as in Kafka."""
    plain, sasl = free_port(), free_port()
    broker = Broker(str(tmp_path), env={"GREGOR_QUOTA_WINDOW_NUM": "2"},
                    args=["--override", "sasl.enabled.mechanisms=SCRAM-SHA-256"])
    broker.listeners = f"PLAINTEXT://127.0.0.1:{plain},SASL_PLAINTEXT://127.0.0.1:{sasl}"
    broker.port = plain
    broker.start()
    try:
        admin = AdminClient({"bootstrap.servers": broker.bootstrap})
        admin.create_topics([NewTopic("rates", num_partitions=1, replication_factor=1)])["rates"].result(30)
        for user in ("alice", "bob"):
            set_scram(plain, user, f"{user}-secret")
        quota(broker.bootstrap, "alter", "--user", "alice", "--add-config", f"producer_byte_rate={QUOTA}")
        throttles = {"alice": [], "bob": []}

        def as_user(user):
            return {"security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "SCRAM-SHA-256",
                    "sasl.username": user, "sasl.password": f"{user}-secret",
                    "throttle_cb": lambda event: throttles[user].append(event.throttle_time)}

        rates = {}
        threads = [threading.Thread(target=lambda u=u: rates.__setitem__(
                       u, produce_for(f"127.0.0.1:{sasl}", "same-app", RUN_S, **as_user(u))))
                   for u in ("alice", "bob")]
        for t in threads:
            t.start()
        for t in threads:
            t.join(RUN_S + 60)
        print("produce rates by user (B/s):", rates, "throttles:", {u: len(t) for u, t in throttles.items()})
        assert abs(rates["alice"] - QUOTA) <= 0.1 * QUOTA, rates
        # (librdkafka also reports a 0 when a throttle ends.)
        assert any(t > 0 for t in throttles["alice"]), throttles
        assert rates["bob"] > 5 * QUOTA, rates
        assert throttles["bob"] == [], throttles

        # An unauthenticated client (PLAINTEXT) is User:ANONYMOUS: alice's
        # quota is not its, the default user's is — until ANONYMOUS has its own.
        assert throttle_times(broker.bootstrap, "same-app") == []
        quota(broker.bootstrap, "alter", "--user-default", "--add-config", "producer_byte_rate=20000")
        assert throttle_times(broker.bootstrap, "same-app"), "the <default> user quota did not apply to ANONYMOUS"
        quota(broker.bootstrap, "alter", "--user", "ANONYMOUS", "--add-config", f"producer_byte_rate={100 * QUOTA}")
        assert throttle_times(broker.bootstrap, "same-app") == []
    finally:
        broker.stop()


def consume_for(bootstrap, client_id, seconds):
    """Reads `rates` from the start for `seconds`; the value bytes read."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "client.id": client_id, "group.id": client_id,
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe(["rates"])
    read, end = 0, time.time() + seconds
    try:
        while time.time() < end:
            for message in consumer.consume(100, timeout=0.1):
                if message.error() is None and time.time() <= end:
                    read += len(message.value())
    finally:
        consumer.close()
    return read / seconds


def test_a_consumer_over_its_byte_rate_is_throttled_to_it_and_others_are_not(tmp_path):
    broker = Broker(str(tmp_path), env={"GREGOR_QUOTA_WINDOW_NUM": "2"}).start()
    try:
        admin = AdminClient({"bootstrap.servers": broker.bootstrap})
        admin.create_topics([NewTopic("rates", num_partitions=1, replication_factor=1)])["rates"].result(30)
        # Batches of ~20 KB: a fetch may ask for one window of the quota
        # (200 KB here), and a batch larger than that could never be read.
        producer = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 20, "batch.size": 5 * VALUE + 500})
        for _ in range(2000):  # 8 MB: more than either reader takes in the run
            producer.produce("rates", value=b"r" * VALUE)
            producer.poll(0)
        assert producer.flush(60) == 0
        quota(broker.bootstrap, "alter", "--client-id", "limited-reader", "--add-config",
              f"consumer_byte_rate={QUOTA}")
        rates = {}
        threads = [threading.Thread(target=lambda c=c: rates.__setitem__(c, consume_for(broker.bootstrap, c, RUN_S)))
                   for c in ("limited-reader", "free-reader")]
        for t in threads:
            t.start()
        for t in threads:
            t.join(RUN_S + 60)
        print("consume rates (B/s):", rates)
        # A throttled fetch is answered empty (Kafka's all-or-nothing), so
        # with fetches of up to a window's worth a reader stays under its
        # quota rather than near it: bounded above, and still progressing.
        assert 0.5 * QUOTA <= rates["limited-reader"] <= 1.1 * QUOTA, rates
        # The other reader is not slowed: it reads all 8 MB within the run
        # (the quota would allow 1.6 MB).
        assert rates["free-reader"] * RUN_S == 2000 * VALUE, rates
        with urllib.request.urlopen(f"http://127.0.0.1:{broker.metrics_port}/metrics", timeout=10) as r:
            text = r.read().decode()
        throttled = re.search(r'^gregor_quota_throttled_responses_total\{quota="fetch"\} (\d+)', text, re.M)
        assert throttled and int(throttled.group(1)) > 0, text
    finally:
        broker.stop()


def test_request_percentage_throttles_a_busy_client_for_at_most_a_window(broker):
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.create_topics([NewTopic("busy", num_partitions=1, replication_factor=1)])["busy"].result(30)
    quota(broker.bootstrap, "alter", "--client-id", "busy", "--add-config", "request_percentage=0.0001")
    throttles = {"busy": [], "idle": []}

    def producer(client_id):
        return Producer({"bootstrap.servers": broker.bootstrap, "client.id": client_id, "linger.ms": 0,
                         "throttle_cb": lambda event: throttles[client_id].append(event.throttle_time)})

    clients = {c: producer(c) for c in throttles}
    deadline = time.time() + 20
    while not throttles["busy"] and time.time() < deadline:
        for p in clients.values():
            p.produce("busy", value=b"x")
            p.poll(0.05)
    clients["busy"].purge()  # what is still queued would wait out more throttles
    for p in clients.values():
        p.flush(30)
    # Any handler time is over 0.0001% of a thread: the busy client is
    # throttled, for at most one 1 s window (Kafka's bound); the other never.
    assert throttles["busy"] and all(0 < t <= 1.0 for t in throttles["busy"]), throttles
    assert throttles["idle"] == [], throttles
