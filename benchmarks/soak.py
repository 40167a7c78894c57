"""Soak: locust users above the server's capacity for minutes; does overload stay clean?

Against a server of our own (generated repository, its queue policy as configured here):

1. probe: one closed-loop client for a few seconds (p50/p99 when nobody else is asking);
2. warm-up: the full load for a short while, so batch buffers and arenas reach their working
   size before memory is measured;
3. soak: ``--users`` locust users, back to back, for ``--minutes``; the server tree's RSS
   (tritonserver + every python stub) is sampled throughout;
4. probe again: latency must come back once the load is gone.

Overload is judged by what the clients got: requests the queue policy shed (queue full, queue
timeout; the client backs off and retries those) are expected, anything else is a failure.
Results: ``soak.json`` plus locust's CSVs, and one line of verdicts.

    python benchmarks/soak.py                      # 64 users, 5 minutes (what make bench runs)
    python benchmarks/soak.py --minutes 0.5 --users 32 --max-queue-size 4   # a quick look
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.catalog import make_catalog  # noqa: E402
from benchmarks.common import (  # noqa: E402
    DEFAULT_MODEL,
    catalog_blobs,
    new_results_dir,
    process_tree,
    write_json,
)
from benchmarks.loadgen import run_closed_loop  # noqa: E402
from benchmarks.locust_runs import run_locust  # noqa: E402
from fashiontag.serving.repository import ServingSettings  # noqa: E402

#: Loose bounds for the verdicts (a shared 2-core machine): RSS may grow this much over a soak,
#: and the p50 after the load may be this many times the p50 before it (plus a few ms).
RSS_DRIFT_LIMIT_MB = 64.0
RECOVERY_FACTOR, RECOVERY_SLACK_MS = 2.0, 15.0


def tree_rss_mb(pid: int) -> float:
    """Resident memory of a process and all its descendants (the python stubs), in MiB."""
    import psutil

    total = 0
    for proc in process_tree(pid):
        try:
            total += proc.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total / 2**20


class RssSampler:
    """Samples :func:`tree_rss_mb` every ``interval_s`` on a thread while the load runs."""

    def __init__(self, pid: int, interval_s: float = 5.0) -> None:
        self.pid, self.interval_s = pid, interval_s
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._t0 = 0.0

    def _run(self) -> None:
        while True:
            self.samples.append((round(time.monotonic() - self._t0, 1),
                                 round(tree_rss_mb(self.pid), 1)))
            if self._stop.wait(self.interval_s):
                return

    def __enter__(self) -> RssSampler:
        self._t0 = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def probe(system, blobs: list[bytes], seconds: float) -> dict:
    """Latency with one client and nothing else running."""
    result = run_closed_loop(system.target(), blobs, 1, duration_s=seconds, warmup_s=1.0)
    return {k: getattr(result, k) for k in ("requests", "errors", "p50_ms", "p99_ms",
                                            "throughput")}


def verdicts(report: dict) -> dict[str, bool]:
    before, after, load = report["probe_before"], report["probe_after"], report["soak"]
    return {
        "no failures but shed load": load.get("failures_other", 1) == 0,
        "server kept answering under load": load.get("requests", 0) > load.get("failures", 0),
        f"RSS drift < {RSS_DRIFT_LIMIT_MB:.0f} MiB": report["rss_drift_mb"] < RSS_DRIFT_LIMIT_MB,
        "latency recovered": (after["p50_ms"] or 1e9)
        <= RECOVERY_FACTOR * (before["p50_ms"] or 0) + RECOVERY_SLACK_MS,
        "server ready after": report["ready_after"],
    }


def run(model: Path, users: int, seconds: float, out: Path, *, max_queue_size: int,
        queue_timeout_us: int, warmup_s: float = 20.0, probe_s: float = 8.0,
        shed_backoff_ms: float = 50.0, images: Path | None = None) -> dict:
    from benchmarks.systems import FashiontagSystem

    blobs = catalog_blobs(64)
    images = images or make_catalog(64)[0].parent
    settings = replace(ServingSettings(), max_queue_size=max_queue_size,
                       queue_timeout_us=queue_timeout_us)
    extra = ["--shed-backoff-ms", str(shed_backoff_ms)]
    out.mkdir(parents=True, exist_ok=True)
    with FashiontagSystem(model, serving=settings) as system:
        (pid,) = system.pids()
        before = probe(system, blobs, probe_s)
        (out / "warmup").mkdir(exist_ok=True)
        warm = run_locust(system.grpc_url, users, max(1, round(warmup_s)), out / "warmup", images,
                          extra)
        time.sleep(2.0)
        rss_before = tree_rss_mb(pid)
        with RssSampler(pid, interval_s=max(1.0, seconds / 60)) as sampler:
            load = run_locust(system.grpc_url, users, max(1, round(seconds)), out, images, extra)
        time.sleep(2.0)
        rss_after = tree_rss_mb(pid)
        after = probe(system, blobs, probe_s)
        ready = system.server.is_ready()
    report = {
        "users": users, "seconds": seconds, "server_pid_tree": "tritonserver + python stubs",
        "queue_policy": {"max_queue_size": max_queue_size, "queue_timeout_us": queue_timeout_us},
        "shed_backoff_ms": shed_backoff_ms,
        "probe_before": before, "warmup": warm, "soak": load, "probe_after": after,
        "rss_before_mb": round(rss_before, 1), "rss_after_mb": round(rss_after, 1),
        "rss_drift_mb": round(rss_after - rss_before, 1),
        "rss_samples": sampler.samples, "ready_after": ready,
    }
    report["verdicts"] = verdicts(report)
    write_json(out / "soak.json", report)
    return report


def summary(report: dict) -> str:
    load = report["soak"]
    lines = [
        f"soak: {report['users']} users x {report['seconds']:.0f} s — {load.get('requests')} "
        f"requests, {load.get('failures_shed')} shed (queue policy), "
        f"{load.get('failures_other')} other failures, p99 {load.get('p99_ms')} ms under load",
        f"RSS {report['rss_before_mb']} → {report['rss_after_mb']} MiB "
        f"(drift {report['rss_drift_mb']:+.1f} MiB); p50 alone "
        f"{report['probe_before']['p50_ms']:.1f} → {report['probe_after']['p50_ms']:.1f} ms "
        "after the load",
        "verdicts: " + ", ".join(f"{k}: {'yes' if v else 'NO'}"
                                 for k, v in report["verdicts"].items()),
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--users", type=int, default=64)
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--max-queue-size", type=int, default=16,
                        help="per-model queue bound for this run (the shipped default is "
                             f"{ServingSettings().max_queue_size}: more users than a 2-core "
                             "machine can run locust for; a small queue makes the shedding "
                             "path the one under test)")
    parser.add_argument("--queue-timeout-us", type=int, default=ServingSettings().queue_timeout_us)
    parser.add_argument("--shed-backoff-ms", type=float, default=50.0)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    out = (args.out or new_results_dir()) / "soak"
    report = run(args.model, args.users, args.minutes * 60, out,
                 max_queue_size=args.max_queue_size, queue_timeout_us=args.queue_timeout_us,
                 shed_backoff_ms=args.shed_backoff_ms)
    print(summary(report))
    print(f"results: {out / 'soak.json'}")
    return report


if __name__ == "__main__":
    main()
