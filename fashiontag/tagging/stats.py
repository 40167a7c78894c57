"""Counting a tagging run: done, failed, skipped, images/s and latency percentiles, in memory
that does not grow with the catalog (latencies are a fixed-size reservoir sample)."""

from __future__ import annotations

import random
import resource
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["RunStats", "LatencyReservoir", "peak_rss_mb"]


def peak_rss_mb() -> float:
    """Peak resident memory of this process, in MiB.

    ``VmHWM`` first: ``ru_maxrss`` keeps the peak of the parent a process was forked from, so a
    small CLI started by a big benchmark would report the benchmark's memory.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except (OSError, ValueError, IndexError):
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


class LatencyReservoir:
    """Uniform sample of at most ``capacity`` latencies (exact below that): percentiles of a
    million-image run in constant memory."""

    def __init__(self, capacity: int = 100_000, seed: int = 0) -> None:
        self.capacity = capacity
        self.seen = 0
        self._values: list[float] = []
        self._rng = random.Random(seed)

    def add(self, value: float) -> None:
        self.seen += 1
        if len(self._values) < self.capacity:
            self._values.append(value)
        else:
            slot = self._rng.randrange(self.seen)
            if slot < self.capacity:
                self._values[slot] = value

    def percentile(self, q: float) -> float | None:
        if not self._values:
            return None
        ordered = sorted(self._values)
        rank = min(len(ordered) - 1, max(0, round(q / 100.0 * (len(ordered) - 1))))
        return ordered[rank]


@dataclass
class RunStats:
    """What the summary line reports; ``add`` takes each written record."""

    total: int | None = None  # entries in the source, when counted
    done: int = 0  # records written with attributes
    failed: int = 0  # records written with an error
    resumed: int = 0  # skipped: already in the output
    repeated: int = 0  # skipped: id came twice in the source
    retried: int = 0  # images that needed more than one request
    deferred: int = 0  # not written: the server was unavailable (retried by --resume)
    errors: Counter = field(default_factory=Counter)
    latencies: LatencyReservoir = field(default_factory=LatencyReservoir)
    started: float = field(default_factory=time.perf_counter)
    finished: float | None = None
    # --engine ray: records written per Ray node id ({"images": n, "resources": [custom ones]})
    nodes: dict[str, dict] = field(default_factory=dict)

    def add(self, ok: bool, latency_ms: float | None = None, error_type: str | None = None,
            attempts: int = 1) -> None:
        if ok:
            self.done += 1
        else:
            self.failed += 1
            self.errors[error_type or "error"] += 1
        if attempts > 1:
            self.retried += 1
        if latency_ms is not None:
            self.latencies.add(latency_ms)

    def finish(self) -> RunStats:
        self.finished = time.perf_counter()
        return self

    @property
    def written(self) -> int:
        return self.done + self.failed

    @property
    def elapsed_s(self) -> float:
        return (self.finished or time.perf_counter()) - self.started

    @property
    def images_per_s(self) -> float:
        return self.written / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def to_dict(self) -> dict:
        p50, p99 = self.latencies.percentile(50), self.latencies.percentile(99)
        return {"total": self.total, "done": self.done, "failed": self.failed,
                "resumed": self.resumed, "repeated": self.repeated, "retried": self.retried,
                "deferred": self.deferred,
                "errors": dict(self.errors), "elapsed_s": round(self.elapsed_s, 3),
                "images_per_s": round(self.images_per_s, 2),
                "p50_ms": None if p50 is None else round(p50, 2),
                "p99_ms": None if p99 is None else round(p99, 2),
                "peak_rss_mb": round(peak_rss_mb(), 1),
                **({"ray_nodes": self.nodes} if self.nodes else {})}

    def summary(self) -> str:
        d = self.to_dict()
        line = (f"{d['done']} done, {d['failed']} failed in {d['elapsed_s']:.1f} s: "
                f"{d['images_per_s']:.1f} images/s")
        if d["p50_ms"] is not None:
            line += f", latency p50 {d['p50_ms']:.0f} ms / p99 {d['p99_ms']:.0f} ms"
        extras = [f"{d[k]} {k}" for k in ("resumed", "repeated", "retried", "deferred") if d[k]]
        if extras:
            line += " (" + ", ".join(extras) + ")"
        if d["errors"]:
            line += "; errors: " + ", ".join(f"{k} {v}" for k, v in sorted(d["errors"].items()))
        return line + f"; peak RSS {d['peak_rss_mb']:.0f} MB"
