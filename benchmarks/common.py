"""What every benchmark script shares: result folders, JSON, latency statistics, the image set,
side environments, and starting/stopping server processes by PID.

Benchmarks compare systems measured side by side in one run on a shared, noisy machine: report
ratios, never absolute times alone.
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from fashiontag.artifacts import checkout_artifacts

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = checkout_artifacts()
RESULTS_ROOT = ROOT / "benchmarks" / "results"
DEFAULT_MODEL = ARTIFACTS.model()
#: A second model file (e.g. INT8 from the runtimes work) becomes another system when present.
OPTIONAL_MODELS = (ARTIFACTS.model("int8"),)

#: Side environments (their dependencies conflict with the main venv's): made by `make bench-venvs`.
BENCH_VENV = ROOT / ".venv-bench"  # tritonclient 2.51 with its bundled perf_analyzer
PEERS_VENV = ROOT / ".venv-peers"  # Ray Serve, TorchServe (+ fashiontag base, onnxruntime)


class BenchmarkSetupError(RuntimeError):
    """A benchmark cannot run here (missing venv, runtime or artifact); the message says how."""


def new_results_dir(root: Path | None = None, stamp: str | None = None) -> Path:
    """``benchmarks/results/<timestamp>/`` (created)."""
    folder = (root or RESULTS_ROOT) / (stamp or time.strftime("%Y%m%d-%H%M%S"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def write_json(path: Path, data) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=False, default=_jsonable))
    tmp.replace(path)
    return path


def _jsonable(value):
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def latency_stats(latencies_ms: Sequence[float]) -> dict[str, float | None]:
    """p50/p90/p99/mean/max in milliseconds (None when nothing completed)."""
    if len(latencies_ms) == 0:
        return {"p50_ms": None, "p90_ms": None, "p99_ms": None, "mean_ms": None, "max_ms": None}
    a = np.asarray(latencies_ms, dtype=np.float64)
    return {"p50_ms": float(np.percentile(a, 50)), "p90_ms": float(np.percentile(a, 90)),
            "p99_ms": float(np.percentile(a, 99)), "mean_ms": float(a.mean()),
            "max_ms": float(a.max())}


def catalog_blobs(n: int) -> list[bytes]:
    """``n`` real catalog JPEGs (480x360, see catalog.py), the same bytes for every system."""
    from benchmarks.catalog import make_catalog

    return [p.read_bytes() for p in make_catalog(max(n, 64))[:n]]


def model_files(extra: Iterable[str] = ()) -> dict[str, Path]:
    """label → model file: the FP32 model, any optional model present, and ``label=path`` extras.

    The label is the precision the file's own metadata declares (``fp32``, ``int8``, ...).
    """
    from fashiontag.onnxio.metadata import read_metadata

    files: dict[str, Path] = {}
    for path in (DEFAULT_MODEL, *OPTIONAL_MODELS):
        if path.exists():
            files.setdefault(read_metadata(path).precision, path)
    for item in extra:
        label, _, path = item.partition("=")
        if not path:
            label, path = read_metadata(Path(label)).precision, label
        files[label] = Path(path)
    if not files:
        raise BenchmarkSetupError(f"no model at {DEFAULT_MODEL}: run `make model`")
    return files


def venv_bin(venv: Path, program: str) -> Path:
    exe = venv / "bin" / program
    if not exe.exists():
        raise BenchmarkSetupError(f"{exe} is missing: run `make bench-venvs` (it creates "
                                  f"{venv.name} with the benchmark's side dependencies)")
    return exe


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout_s: float, process: subprocess.Popen | None = None,
              ok=lambda status: status == 200, log: Path | None = None) -> None:
    """Poll ``url`` until it answers ``ok``; fail early if ``process`` died."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise BenchmarkSetupError(f"process exited with code {process.returncode} before "
                                      f"{url} answered{_tail(log)}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if ok(r.status):
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise BenchmarkSetupError(f"{url} did not answer within {timeout_s:.0f} s{_tail(log)}")


def _tail(log: Path | None, lines: int = 30) -> str:
    if log is None or not Path(log).exists():
        return ""
    text = Path(log).read_text(errors="replace").splitlines()[-lines:]
    return "\n--- log tail ---\n" + "\n".join(text)


def process_tree(pid: int) -> list:
    """The process ``pid`` and all its descendants (psutil objects), parents first."""
    import psutil

    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def stop_process_tree(process: subprocess.Popen, grace_s: float = 15.0,
                      also: Iterable = ()) -> list[int]:
    """SIGTERM the process and every descendant by PID, wait, then SIGKILL what is left.

    Launchers such as TorchServe's do not forward signals to the java process and its workers,
    and Ray's daemons outlive a killed driver; so the tree is snapshotted first and every member
    is ended by its own PID. ``also``: psutil processes snapshotted earlier (psutil refuses to
    signal a PID that was reused since). Returns the PIDs that had to be killed.
    """
    import psutil

    procs = process_tree(process.pid)
    known = {p.pid for p in procs}
    procs += [p for p in also if p.pid not in known]
    for p in procs:
        try:
            p.terminate()
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(procs, timeout=grace_s)
    killed = []
    for p in alive:
        try:
            p.kill()
            killed.append(p.pid)
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(alive, timeout=5)
    try:
        process.wait(5)
    except subprocess.TimeoutExpired:
        pass
    return killed


def cpu_seconds(procs: Iterable) -> dict[int, float]:
    """pid → user + system CPU seconds so far, for the psutil processes still alive."""
    import psutil

    seen: dict[int, float] = {}
    for p in procs:
        try:
            t = p.cpu_times()
            seen[p.pid] = t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return seen


class CpuMeter:
    """CPU seconds used by a set of process trees between ``start`` and ``stop`` (in cores)."""

    def __init__(self, pids: Iterable[int]) -> None:
        self.pids = list(pids)
        self._start: dict[int, float] = {}
        self._t0 = 0.0

    def _sample(self) -> dict[int, float]:
        return cpu_seconds(p for pid in self.pids for p in process_tree(pid))

    def start(self) -> None:
        self._start = self._sample()
        self._t0 = time.perf_counter()

    def stop(self) -> float:
        """Average cores used since ``start``."""
        end = self._sample()
        wall = time.perf_counter() - self._t0
        used = sum(v - self._start.get(pid, 0.0) for pid, v in end.items())
        return used / wall if wall > 0 else 0.0

