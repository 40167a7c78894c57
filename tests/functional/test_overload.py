"""Overload, the short version of ``benchmarks/soak.py`` (which runs for minutes in make bench).

Locust users far above what the server can take, against a server whose queue is bounded small
so the shedding path is the one exercised: every failure must be load the queue policy shed
(the client backs off and retries those), the server must keep answering, its memory must not
climb, and latency with a single client must come back once the load is gone.
"""

from __future__ import annotations

import psutil

from benchmarks import soak


def test_locust_above_capacity_only_sheds_load_and_the_server_recovers(built_model, tmp_path):
    report = soak.run(built_model, users=32, seconds=10, out=tmp_path, max_queue_size=4,
                      queue_timeout_us=2_000_000, warmup_s=3, probe_s=3)
    load = report["soak"]
    assert "error" not in load, load.get("error")
    assert load["requests"] > 0
    assert load["failures_other"] == 0, load["failure_kinds"]
    assert load["failures_shed"] > 0, "32 users against a queue of 4 should have been shed"
    assert load["requests"] - load["failures"] > 50  # it kept serving while shedding
    assert report["ready_after"]
    assert report["rss_drift_mb"] < soak.RSS_DRIFT_LIMIT_MB, report["rss_samples"]
    before, after = report["probe_before"], report["probe_after"]
    assert before["errors"] == after["errors"] == 0
    assert after["p50_ms"] <= 3 * before["p50_ms"] + 30, (before, after)  # loose: shared box
    assert (tmp_path / "soak.json").exists()
    locusts = [p for p in psutil.process_iter(["cmdline"])
               if "locustfile.py" in " ".join(p.info["cmdline"] or ())]
    assert not locusts, "locust left running"
