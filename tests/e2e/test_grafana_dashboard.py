"""docs/grafana/gregor.json: valid JSON Grafana can import, and every
PromQL expression names only metrics a running gregor broker exports (read
from its /metrics, not from a list kept by hand)."""
import json
import os
import re
import urllib.request

from confluent_kafka import Producer

from conftest import ROOT, consume_all

DASHBOARD = os.path.join(ROOT, "docs", "grafana", "gregor.json")
METRIC = re.compile(r"\b(gregor_[a-z_]+)\b")


def exported(broker):
    """The sample names in the broker's /metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{broker.metrics_port}/metrics", timeout=10) as r:
        text = r.read().decode()
    return {m.group(1) for m in re.finditer(r"^(gregor_[a-z_]+)[{ ]", text, re.M)}


def expressions(dashboard):
    """(where, expr) of every panel target and templating query."""
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            yield f"panel {panel['title']!r} target {target['refId']}", target["expr"]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            yield f"variable {variable['name']}", variable["definition"]


def balanced(expr):
    depth = {"(": 0, "[": 0, "{": 0}
    closing = {")": "(", "]": "[", "}": "{"}
    for c in expr:
        if c in depth:
            depth[c] += 1
        elif c in closing:
            depth[closing[c]] -= 1
            if depth[closing[c]] < 0:
                return False
    return not any(depth.values())


def test_dashboard_names_only_exported_metrics(broker):
    with open(DASHBOARD) as f:
        dashboard = json.load(f)
    # Some traffic, so every family has samples.
    producer = Producer({"bootstrap.servers": broker.bootstrap})
    for i in range(10):
        producer.produce("dashboard", value=b"%d" % i)
    assert producer.flush(30) == 0
    assert len(consume_all(broker.bootstrap, "dashboard", 1, 10)) == 10
    names = exported(broker)
    assert {"gregor_requests_total", "gregor_request_latency_seconds_bucket"} <= names, names

    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids)), ids
    used = set()
    for where, expr in expressions(dashboard):
        metrics = METRIC.findall(expr)
        assert metrics, f"{where}: no gregor metric in {expr}"
        unknown = set(metrics) - names
        assert not unknown, f"{where}: {sorted(unknown)} not exported (exported: {sorted(names)})"
        assert balanced(expr), f"{where}: unbalanced brackets in {expr}"
        used |= set(metrics)
    # What the dashboard is for: requests and latencies by API, bytes in
    # and out, under-replicated partitions, ISR changes.
    assert {"gregor_requests_total", "gregor_request_latency_seconds_bucket", "gregor_bytes_in_total",
            "gregor_bytes_out_total", "gregor_under_replicated_partitions", "gregor_isr_shrinks_total",
            "gregor_isr_expands_total"} <= used, used
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24 and grid["h"] > 0, panel["title"]
