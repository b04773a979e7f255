"""The broker's Prometheus endpoint, scraped after real traffic and parsed
with the Prometheus client's own text-format parser; and JSON logs."""
import json
import os
import time
import urllib.request

from confluent_kafka import Producer
# The endpoint speaks OpenMetrics (Prometheus' text format 1.0.0), parsed strictly.
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from conftest import Broker, consume_all


def scrape(broker):
    with urllib.request.urlopen(f"http://127.0.0.1:{broker.metrics_port}/metrics", timeout=10) as r:
        assert r.status == 200
        text = r.read().decode()
    return {family.name: family for family in text_string_to_metric_families(text)}


def samples(family, name, **labels):
    return [s.value for s in family.samples if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())]


def test_metrics_follow_traffic(broker):
    producer = Producer({"bootstrap.servers": broker.bootstrap, "acks": "all"})
    for i in range(1000):
        producer.produce("metered", value=b"x" * 100, key=b"%d" % i)
    assert producer.flush(30) == 0
    assert len(consume_all(broker.bootstrap, "metered", 1, 1000)) == 1000

    families = scrape(broker)
    requests = families["gregor_requests"]
    assert samples(requests, "gregor_requests_total", api="Produce")[0] >= 1
    assert samples(requests, "gregor_requests_total", api="Fetch")[0] >= 1
    latency = families["gregor_request_latency_seconds"]
    assert samples(latency, "gregor_request_latency_seconds_count", api="Produce")[0] >= 1
    assert samples(latency, "gregor_request_latency_seconds_bucket", api="Produce", le="+Inf")
    assert samples(families["gregor_bytes_in"], "gregor_bytes_in_total")[0] > 100_000
    assert samples(families["gregor_bytes_out"], "gregor_bytes_out_total")[0] > 100_000
    assert samples(families["gregor_log_size_bytes"], "gregor_log_size_bytes", topic="metered", partition="0")[0] > 100_000
    assert samples(families["gregor_log_segments"], "gregor_log_segments", topic="metered", partition="0")[0] == 1
    assert samples(families["gregor_under_replicated_partitions"], "gregor_under_replicated_partitions")[0] == 0
    assert "gregor_isr_shrinks" in families and "gregor_request_queue_depth" in families

    # Anything else is not found.
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{broker.metrics_port}/other", timeout=10)
        raise AssertionError("expected a 404")
    except urllib.error.HTTPError as e:
        assert e.code == 404


def test_json_logs(tmp_path):
    b = Broker(str(tmp_path), env={"GREGOR_LOG_FORMAT": "json"}).start()
    b.stop()
    lines = [line for line in open(b.log_path) if line.startswith("{")]
    assert lines, "no JSON log lines"
    records = [json.loads(line) for line in lines]
    assert any(r.get("fields", {}).get("message") == "gregor broker started" for r in records), records[:3]
    assert all("level" in r and "timestamp" in r for r in records)


def test_kafka_python_fetches_through_an_incremental_session(broker):
    """kafka-python keeps a fetch session (KIP-227) with the broker: the
    broker holds it while the consumer reads, and every record arrives
    once, in order, though later fetches name only what changed."""
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition
    from kafka.admin import KafkaAdminClient, NewTopic

    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    admin.create_topics([NewTopic("sessions", num_partitions=3, replication_factor=1)])
    admin.close()
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, linger_ms=0)
    consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap, fetch_max_wait_ms=100)
    consumer.assign([TopicPartition("sessions", p) for p in range(3)])
    consumer.seek_to_beginning()
    got = {p: [] for p in range(3)}
    held = 0
    for round_ in range(20):
        # Only one partition moves each round; the others stay quiet.
        p = round_ % 2
        for i in range(5):
            producer.send("sessions", value=b"%d-%d" % (round_, i), partition=p).get(10)
        deadline = time.time() + 10
        while sum(map(len, got.values())) < (round_ + 1) * 5 and time.time() < deadline:
            for tp, records in consumer.poll(timeout_ms=200).items():
                got[tp.partition].extend(r.value for r in records)
        held = max(held, samples(scrape(broker)["gregor_fetch_sessions"], "gregor_fetch_sessions")[0])
    consumer.close()
    producer.close()
    assert held >= 1, "no fetch session was kept"
    for p in range(2):
        expected = [b"%d-%d" % (r, i) for r in range(20) if r % 2 == p for i in range(5)]
        assert got[p] == expected
    assert got[2] == []
