"""confluent-kafka with enable.idempotence=true against a broker whose
responses are lost and connections cut, or which is killed and restarted
before it answers, mid-produce: the client retries batches the broker
already wrote, and every record lands exactly once and in order per
partition."""
import threading
import time

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from conftest import Broker, CuttingProxy, consume_all

RECORDS = 100_000
PARTITIONS = 3


def produce_through(bootstrap, topic, disrupt, every):
    producer = Producer({
        "bootstrap.servers": bootstrap,
        "enable.idempotence": True,
        # Many small requests, so some are always in flight.
        "linger.ms": 2,
        "batch.num.messages": 200,
        "message.timeout.ms": 300000,
        "retry.backoff.ms": 50,
        "reconnect.backoff.ms": 50,
        "reconnect.backoff.max.ms": 500,
    })
    failures = []

    def delivered(err, _msg):
        if err is not None:
            failures.append(err)

    # Disruptions run beside the producing loop, so batches are in flight.
    disruptions = []
    for i in range(RECORDS):
        while True:
            try:
                producer.produce(topic, key=b"%d" % i, value=b"%d" % i, on_delivery=delivered)
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
        if i % every == every // 2 and not any(t.is_alive() for t in disruptions):
            disruptions.append(threading.Thread(target=disrupt))
            disruptions[-1].start()
        if i % 500 == 0:
            time.sleep(0.02)  # spread the records over the disruptions
    for t in disruptions:
        t.join()
    assert producer.flush(300) == 0, "records left undelivered"
    assert not failures, failures[:5]


def check_exactly_once_in_order(bootstrap, topic):
    messages = consume_all(bootstrap, topic, PARTITIONS, RECORDS, timeout=120)
    values = [int(m.value()) for m in messages]
    assert len(values) == len(set(values)), f"{len(values) - len(set(values))} duplicates"
    assert sorted(values) == list(range(RECORDS)), f"{RECORDS - len(set(values))} records missing"
    for p in range(PARTITIONS):
        mine = [m for m in messages if m.partition() == p]
        assert [m.offset() for m in mine] == list(range(len(mine))), f"partition {p}: offsets"
        ordered = [int(m.value()) for m in mine]
        assert ordered == sorted(ordered), f"partition {p}: out of order"


def create_topic(bootstrap, topic):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, num_partitions=PARTITIONS, replication_factor=1)])[topic].result(30)


def broker_behind_proxy(tmp_path):
    broker = Broker(str(tmp_path))
    proxy = CuttingProxy(broker.port)
    broker.env["GREGOR_ADVERTISED_LISTENERS"] = f"PLAINTEXT://127.0.0.1:{proxy.port}"
    return broker.start(), proxy, f"127.0.0.1:{proxy.port}"


def test_lost_responses_neither_lose_nor_duplicate(tmp_path):
    broker, proxy, bootstrap = broker_behind_proxy(tmp_path)
    lost = []
    try:
        create_topic(bootstrap, "idem-cut")
        produce_through(bootstrap, "idem-cut", lambda: lost.append(proxy.cut()), every=10_000)
        assert sum(lost) >= 3, f"too few written-but-unanswered batches to test anything: {lost}"
        check_exactly_once_in_order(bootstrap, "idem-cut")
    finally:
        proxy.close()
        broker.stop()


def test_a_broker_killed_before_it_answers_neither_loses_nor_duplicates(tmp_path):
    broker, proxy, bootstrap = broker_behind_proxy(tmp_path)
    lost = []
    try:
        create_topic(bootstrap, "idem-kill")

        def crash_and_restart():
            broker.kill()
            broker.start()

        produce_through(bootstrap, "idem-kill", lambda: lost.append(proxy.cut(meanwhile=crash_and_restart)),
                        every=20_000)
        assert sum(lost) >= 1, f"no written-but-unanswered batch to test anything with: {lost}"
        check_exactly_once_in_order(bootstrap, "idem-kill")
    finally:
        proxy.close()
        broker.stop()
