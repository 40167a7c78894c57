"""Metrics without a server: the served-value counts equal the client's decoding, cost a few µs
per image, and the dashboard, Prometheus config and images use only names the code defines."""

from __future__ import annotations

import json
import re
import time
import urllib.request
from collections import Counter

import numpy as np
import pytest
import yaml

from fashiontag.client import decode_probabilities
from fashiontag.serving import metrics as m
from fashiontag.serving.model_metrics import ServedValues
from fashiontag.taxonomy import DEFAULT_TAXONOMY
from tests.conftest import ROOT

DOCKER = ROOT / "docker"


def _rows(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    rows = rng.random((n, DEFAULT_TAXONOMY.total_values), dtype=np.float32)
    for s in DEFAULT_TAXONOMY.slices.values():
        rows[:, s] /= rows[:, s].sum(axis=1, keepdims=True)
    return rows


def test_served_values_count_what_the_client_decodes():
    rows = _rows(64)
    served = ServedValues(DEFAULT_TAXONOMY)
    counts = served.counts(rows)
    got = Counter({label: c for label, c in zip(served.labels, counts, strict=True) if c})
    expected: Counter = Counter()
    for answer in decode_probabilities(DEFAULT_TAXONOMY, rows, experimental=True):
        for name, value in answer.items():
            attribute = DEFAULT_TAXONOMY[name]
            if not value.applicable:
                expected[(name, m.NOT_APPLICABLE)] += 1
            else:
                expected[(name, value.value or attribute.invisible_value)] += 1
    assert got == expected
    assert sum(c for (a, _), c in got.items() if a == "category") == 64
    assert served.counts(rows[:, :-1]) is None  # another taxonomy's rows are not counted


def test_served_values_cost_a_few_microseconds_per_image():
    served = ServedValues(DEFAULT_TAXONOMY)
    for batch, budget_us in ((1, 100.0), (16, 20.0)):
        rows = _rows(batch)
        served.counts(rows)
        runs = 300
        start = time.perf_counter()
        for _ in range(runs):
            served.counts(rows)
        per_image = (time.perf_counter() - start) / runs / batch * 1e6
        print(f"served values: {per_image:.1f} µs per image at batch {batch}")
        assert per_image < budget_us, (batch, per_image)  # generous: 2 shared cores


def _dashboard_exprs() -> list[str]:
    dashboard = json.loads((DOCKER / "grafana" / "dashboards" / "fashiontag.json").read_text())
    return [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]


def test_the_dashboard_uses_only_defined_metrics_and_shows_every_one_of_ours():
    known = {s.name for s in (*m.MODEL_METRICS, *m.LAUNCHER_METRICS)} | set(m.TRITON_METRICS)
    used = set()
    for expr in _dashboard_exprs():
        names = re.sub(r'"[^"]*"', '""', expr)  # label values name models, not metrics
        used |= set(re.findall(r"\b((?:nv|fashiontag)_[a-z0-9_]+)", names))
    assert used - known == set()
    assert {s.name for s in (*m.MODEL_METRICS, *m.LAUNCHER_METRICS)} <= used
    for quantile in ("0.5", "0.99"):
        assert any("nv_inference_request_summary_us" in e and f'quantile="{quantile}"' in e
                   for e in _dashboard_exprs())


def test_prometheus_scrapes_triton_and_the_launcher():
    config = yaml.safe_load((DOCKER / "prometheus" / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert jobs["triton"]["static_configs"][0]["targets"] == ["triton:8002"]
    assert jobs["fashiontag-launcher"]["file_sd_configs"][0]["files"]


def test_every_server_command_enables_latency_summaries():
    from fashiontag.serving.server import ServerConfig, TritonServer

    assert m.SUMMARY_LATENCIES_FLAG in (DOCKER / "Dockerfile").read_text()
    deployment = yaml.safe_load((DOCKER / "k8s" / "deployment.yaml").read_text())
    triton = deployment["spec"]["template"]["spec"]["containers"][0]
    assert m.SUMMARY_LATENCIES_FLAG in triton["args"]
    command = TritonServer(ServerConfig(repository=ROOT)).command(ROOT)
    assert m.SUMMARY_LATENCIES_FLAG in command


def test_launcher_exposition_is_prometheus_text():
    values = {m.WATCHDOG_HEALS: 2, m.SERVER_UP: 1}
    exporter = m.LauncherMetrics(lambda: values)
    try:
        url = f"http://127.0.0.1:{exporter.port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as r:
            text = r.read().decode()
            assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        assert "# TYPE fashiontag_watchdog_heals_total counter" in text
        assert "\nfashiontag_watchdog_heals_total 2\n" in text
        assert "\nfashiontag_server_up 1\n" in text
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(f"http://127.0.0.1:{exporter.port}/other", timeout=5)
    finally:
        exporter.close()
