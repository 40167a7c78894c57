"""perf_analyzer concurrency sweeps: the attribute model alone (PIXELS tiles) and the ensemble
(real JPEG bytes), Triton's own load tool against the served fashiontag.

perf_analyzer comes from ``tritonclient[grpc]==2.51.0`` in ``.venv-bench`` (PyPI's
perf-analyzer wheels need glibc 2.38; tritonclient 2.51 pins protobuf<5, hence its own venv).
The binary needs libb64.so.0d and libcudart.so.12: ``make bench-venvs`` links the copies shipped
in the main venv's nvidia_pytriton.libs into ``.venv-bench/perf-libs``.

    python benchmarks/perf_sweep.py [--smoke] [--concurrency 1,2,4,8,16,32,64]
"""

from __future__ import annotations

import argparse
import base64
import csv
import json
import os
import struct
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.common import (  # noqa: E402
    BENCH_VENV,
    DEFAULT_MODEL,
    BenchmarkSetupError,
    catalog_blobs,
    new_results_dir,
    venv_bin,
    write_json,
)
from fashiontag.images import preprocess_bytes  # noqa: E402
from fashiontag.protocol import ATTRIBUTES_MODEL, ENSEMBLE_MODEL, IMAGE, PIXELS  # noqa: E402

PERF_LIBS = BENCH_VENV / "perf-libs"
FULL_CONCURRENCY = (1, 2, 4, 8, 16, 32, 64)


def perf_analyzer() -> tuple[Path, dict[str, str]]:
    """The binary and the environment it runs in (its two missing libraries resolvable)."""
    exe = venv_bin(BENCH_VENV, "perf_analyzer")
    missing = [lib for lib in ("libb64.so.0d", "libcudart.so.12")
               if not (PERF_LIBS / lib).exists()]
    if missing:
        raise BenchmarkSetupError(f"{', '.join(missing)} not in {PERF_LIBS}: run "
                                  "`make bench-venvs`")
    env = dict(os.environ)
    env["LD_LIBRARY_PATH"] = os.pathsep.join(p for p in (str(PERF_LIBS),
                                                         env.get("LD_LIBRARY_PATH", "")) if p)
    return exe, env


def write_input_data(folder: Path, blobs: Sequence[bytes]) -> dict[str, Path]:
    """Real inputs for perf_analyzer (--input-data JSON): JPEG bytes and their model tiles."""
    folder.mkdir(parents=True, exist_ok=True)
    # BYTES elements in b64 are in Triton's wire format: a 4-byte little-endian length first
    images = {"data": [{IMAGE: {"b64": base64.b64encode(struct.pack("<I", len(b)) + b).decode()}}
                       for b in blobs]}
    tiles = {"data": [{PIXELS: {"b64": base64.b64encode(preprocess_bytes(b).tobytes()).decode()}}
                      for b in blobs]}
    paths = {ENSEMBLE_MODEL: folder / "images.json", ATTRIBUTES_MODEL: folder / "tiles.json"}
    paths[ENSEMBLE_MODEL].write_text(json.dumps(images))
    paths[ATTRIBUTES_MODEL].write_text(json.dumps(tiles))
    return paths


_COLUMNS = {"p50_ms": "p50 latency", "p90_ms": "p90 latency", "p99_ms": "p99 latency",
            "mean_ms": "Avg latency", "server_queue_ms": "Server Queue",
            "server_compute_input_ms": "Server Compute Input",
            "server_compute_infer_ms": "Server Compute Infer",
            "server_compute_output_ms": "Server Compute Output"}


def _parse_csv(path: Path) -> list[dict]:
    rows = []
    with open(path) as f:
        for row in csv.DictReader(f):
            us = {k: float(v) for k, v in row.items() if k and v not in (None, "")
                  and k != "Concurrency"}
            ms = {key: us[col] / 1000.0 for key, col in _COLUMNS.items() if col in us}
            rows.append({"concurrency": int(row["Concurrency"]),
                         "throughput": us.get("Inferences/Second"), **ms})
    return rows


UNSTABLE_EXIT = 2  # perf_analyzer: "Failed to obtain stable measurement"


def _measure(exe: Path, env: dict, url: str, model: str, input_data: Path, c: int, out: Path,
             request_count: int, max_trials: int, stability: int, timeout_s: float
             ) -> tuple[subprocess.CompletedProcess, Path]:
    csv_path = out / f"perf_{model}_c{c}.csv"
    csv_path.unlink(missing_ok=True)
    cmd = [str(exe), "-m", model, "-u", url, "-i", "grpc",
           "--input-data", str(input_data), "--concurrency-range", f"{c}:{c}",
           "--measurement-mode", "count_windows",
           "--measurement-request-count", str(max(request_count, c)),
           "--max-trials", str(max_trials), "--stability-percentage", str(stability),
           "--percentile", "99", "-f", str(csv_path)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout_s)
    with open(out / f"perf_{model}_c{c}.log", "a") as log:
        log.write(" ".join(cmd) + "\n" + proc.stdout + proc.stderr + "\n")
    return proc, csv_path


def sweep(url: str, model: str, input_data: Path, concurrencies: Sequence[int], out: Path,
          request_count: int = 200, max_trials: int = 8, stability: int = 20,
          timeout_s: float = 900) -> list[dict]:
    """One perf_analyzer run per concurrency level (count windows, gRPC); rows with latencies.

    This machine is shared: when perf_analyzer cannot get ``stability`` % agreement between
    windows, the level is measured again without the stability test and marked ``stable: false``.
    """
    exe, env = perf_analyzer()
    rows = []
    for c in concurrencies:
        stable = True
        proc, csv_path = _measure(exe, env, url, model, input_data, c, out, request_count,
                                  max_trials, stability, timeout_s)
        if proc.returncode == UNSTABLE_EXIT:
            # perf_analyzer compares latency too: on a loaded machine one slow window can be
            # 10x the others, so the retry accepts any spread (100x) over more windows
            stable = False
            proc, csv_path = _measure(exe, env, url, model, input_data, c, out, request_count,
                                      10, 10_000, timeout_s)
        if proc.returncode != 0 or not csv_path.exists():
            tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-15:])
            rows.append({"concurrency": c, "error": f"perf_analyzer exit {proc.returncode}: "
                                                    f"{tail}"})
            continue
        rows.extend(dict(row, stable=stable) for row in _parse_csv(csv_path))
    return rows


def run(url: str, blobs: Sequence[bytes], out: Path, concurrencies: Sequence[int],
        request_count: int) -> dict:
    inputs = write_input_data(out / "perf-inputs", blobs)
    return {model: sweep(url, model, inputs[model], concurrencies, out, request_count)
            for model in (ATTRIBUTES_MODEL, ENSEMBLE_MODEL)}


def main(argv: list[str] | None = None) -> dict:
    from benchmarks.systems import FashiontagSystem

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--concurrency", default=",".join(map(str, FULL_CONCURRENCY)))
    parser.add_argument("--requests", type=int, default=200, help="per measurement window")
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    levels = [1, 2] if args.smoke else [int(c) for c in args.concurrency.split(",")]
    out = args.out or new_results_dir()
    blobs = catalog_blobs(8 if args.smoke else 32)
    with FashiontagSystem(args.model) as system:
        result = run(system.grpc_url, blobs, out, levels, 10 if args.smoke else args.requests)
    write_json(out / "perf_analyzer.json", result)
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
