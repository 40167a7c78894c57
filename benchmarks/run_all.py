"""The whole benchmark suite, side by side in one run (what ``make bench`` runs).

1. reference limits: in-process onnxruntime per model file, model FLOPs vs measured sgemm peak;
2. served systems (fashiontag per model file, Ray Serve, TorchServe) under the same closed-loop
   client and images at each concurrency, with their CPU use; ratios to in-process per round;
3. perf_analyzer sweeps (attribute model alone and ensemble) and headless locust runs;
4. the dynamic batching study;
5. a profile: CPU milliseconds per image per server process at concurrency 16, py-spy samples.

Results: ``benchmarks/results/<timestamp>/`` — results.json, report.md (table + goals),
throughput_vs_p99.png, and each tool's own files. This machine is shared: read ratios.

    python benchmarks/run_all.py                       # full (~25 min on 2 cores)
    python benchmarks/run_all.py --rounds 3            # medians of 3 rounds
    python benchmarks/run_all.py --smoke               # a minute or two; run by the tests
    python benchmarks/run_all.py --parts reference,systems --peers torchserve
    python benchmarks/run_all.py --model int8=artifacts/fashiontag.int8.onnx
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import (  # noqa: E402
    batching_study,
    locust_runs,
    perf_sweep,
    profile_server,
    reference,
    report,
)
from benchmarks.catalog import make_catalog  # noqa: E402
from benchmarks.common import (  # noqa: E402
    BenchmarkSetupError,
    CpuMeter,
    catalog_blobs,
    model_files,
    new_results_dir,
    write_json,
)
from benchmarks.loadgen import run_closed_loop  # noqa: E402
from benchmarks.systems import PEERS, FashiontagSystem, System  # noqa: E402

PARTS = ("reference", "systems", "perf", "locust", "batching", "profile")


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _git_commit() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, text=True,
                              capture_output=True, timeout=10).stdout.strip() or None
    except OSError:
        return None


def _fp32(models: dict[str, Path]) -> Path:
    return models.get("fp32") or next(iter(models.values()))


def make_systems(models: dict[str, Path], peers: list[str]) -> list[System]:
    """fashiontag on every model file; peers on the FP32 model (the fair, same-model match)."""
    systems: list[System] = [FashiontagSystem(path, precision)
                             for precision, path in models.items()]
    systems += [PEERS[name](_fp32(models), "fp32") for name in peers]
    return systems


def measure_system(system: System, blobs, concurrencies, seconds, warmup_s,
                   in_process_best: float | None, round_no: int) -> list[dict]:
    runs = []
    with system:
        for c in concurrencies:
            meter = CpuMeter(system.pids())
            meter.start()
            result = run_closed_loop(system.target(), blobs, c, duration_s=seconds,
                                     warmup_s=warmup_s, system=system.name).to_dict()
            result["server_cpu_cores"] = meter.stop()
            result["round"] = round_no
            result["ratio_to_in_process"] = (result["throughput"] / in_process_best
                                             if in_process_best else None)
            runs.append(result)
            print(f"  {system.name:>16} c={c:<3} {result['throughput']:7.1f} img/s  "
                  f"p50 {result['p50_ms'] or 0:7.1f} ms  p99 {result['p99_ms'] or 0:7.1f} ms  "
                  f"errors {result['errors']}  server cores {result['server_cpu_cores']:.2f}",
                  flush=True)
    return runs


def run_rounds(results: dict, args, models: dict[str, Path], blobs) -> None:
    """Each round: for every system, in-process onnxruntime on the same model file is measured
    right before it, so each ratio pairs two measurements taken under the same machine load."""
    parts = set(args.parts)
    systems = make_systems(models, args.peers) if "systems" in parts else []
    results["systems"] = [dict(s.describe(), runs=[]) for s in systems]
    results["reference"].setdefault("in_process", {})
    for round_no in range(args.rounds):
        print(f"round {round_no + 1}/{args.rounds}", flush=True)
        pending = {precision: path for precision, path in models.items()
                   if not any(s.precision == precision for s in systems)}
        for precision, path in pending.items():  # references without a system of their own
            _reference(results, precision, path, blobs, args.batches)
        for system, record in zip(systems, results["systems"], strict=True):
            best = _reference(results, system.precision, system.model, blobs, args.batches)
            try:
                record["runs"] += measure_system(system, blobs, args.concurrency, args.seconds,
                                                 args.warmup, best, round_no)
            except BenchmarkSetupError as exc:
                record.setdefault("failures", []).append(str(exc))
                print(f"  {system.name} could not run: {exc}", file=sys.stderr, flush=True)


def _reference(results: dict, precision: str, path: Path, blobs, batches) -> float:
    ref = reference.in_process(path, blobs, batches)
    results["reference"]["in_process"].setdefault(precision, []).append(ref)
    print(f"  in-process {precision}: best {ref['best_images_per_s']:.1f} img/s "
          f"(batch {ref['best_batch']}), single image p50 "
          f"{ref['single_image']['p50_ms']:.1f} ms", flush=True)
    return ref["best_images_per_s"]


def run_tools(results: dict, args, models: dict[str, Path], out: Path) -> None:
    parts = set(args.parts)
    if not parts & {"perf", "locust"}:
        return
    fp32 = _fp32(models)
    images = make_catalog(64)[0].parent
    with FashiontagSystem(fp32) as system:
        if "perf" in parts:
            print("perf_analyzer sweeps", flush=True)
            results["perf_analyzer"] = _guard(perf_sweep.run, system.grpc_url, catalog_blobs(32),
                                              out, args.perf_concurrency, args.perf_requests)
        if "locust" in parts:
            print("locust runs", flush=True)
            results["locust"] = _guard(locust_runs.run, system.grpc_url, args.locust_users,
                                       args.locust_seconds, out, images)


def _guard(fn, *a):
    """A tool that cannot run here is recorded as such, and the suite goes on."""
    try:
        return fn(*a)
    except (BenchmarkSetupError, OSError, subprocess.SubprocessError) as exc:
        traceback.print_exc()
        return {"error": f"{type(exc).__name__}: {exc}"}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ints = lambda text: [int(x) for x in text.split(",") if x]  # noqa: E731
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--smoke", action="store_true", help="tiny counts, seconds per part")
    p.add_argument("--parts", default=",".join(PARTS), help=f"subset of {','.join(PARTS)}")
    p.add_argument("--peers", default=",".join(PEERS), help="peer systems ('' for none)")
    p.add_argument("--model", action="append", default=[], metavar="LABEL=PATH",
                   help="another model file to serve as a fashiontag system (repeatable)")
    p.add_argument("--concurrency", type=ints, default=[1, 4, 16, 64])
    p.add_argument("--seconds", type=float, default=20.0, help="measurement window per level")
    p.add_argument("--warmup", type=float, default=3.0)
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--images", type=int, default=200)
    p.add_argument("--batches", type=ints, default=[1, 8, 16, 32])
    p.add_argument("--perf-concurrency", type=ints, default=list(perf_sweep.FULL_CONCURRENCY))
    p.add_argument("--perf-requests", type=int, default=200)
    p.add_argument("--locust-users", type=ints, default=[1, 16, 64])
    p.add_argument("--locust-seconds", type=int, default=30)
    p.add_argument("--batching-seconds", type=float, default=15.0)
    p.add_argument("--out", type=Path)
    args = p.parse_args(argv)
    args.parts = [x for x in args.parts.split(",") if x]
    args.peers = [x for x in args.peers.split(",") if x]
    unknown = set(args.parts) - set(PARTS) | set(args.peers) - set(PEERS)
    if unknown:
        p.error(f"unknown part/peer: {', '.join(sorted(unknown))}")
    if args.smoke:
        args.concurrency, args.seconds, args.warmup = [1, 16], 2.0, 1.0
        args.images, args.batches = 16, [1, 8]
        args.perf_concurrency, args.perf_requests = [1, 2], 10
        args.locust_users, args.locust_seconds = [1, 4], 3
        args.batching_seconds = 2.0
    return args


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    out = args.out or new_results_dir()
    out.mkdir(parents=True, exist_ok=True)
    models = model_files(args.model)
    blobs = catalog_blobs(args.images)
    results: dict = {
        "meta": {"started": time.strftime("%Y-%m-%dT%H:%M:%S"), "cpu": _cpu_name(),
                 "cores": os.cpu_count(), "load_avg_start": os.getloadavg(),
                 "commit": _git_commit(), "smoke": args.smoke,
                 "images": f"{len(blobs)} catalog JPEGs 480x360",
                 "args": {k: v for k, v in vars(args).items() if k != "out"},
                 "models": {k: str(v) for k, v in models.items()}},
        "reference": {}, "systems": [],
    }
    print(f"results → {out}", flush=True)
    if "reference" in args.parts or "systems" in args.parts:
        peak = reference.peak_gflops(n=512 if args.smoke else 2048,
                                     repeats=2 if args.smoke else 5)
        results["reference"]["peak"] = peak
        print(f"sgemm peak {peak['peak']:.0f} GFLOP/s (2 threads)", flush=True)
        run_rounds(results, args, models, blobs)
        _compute_bound(results, models)
    write_json(out / "results.json", results)
    run_tools(results, args, models, out)
    if "batching" in args.parts:
        print("batching study", flush=True)
        fp32 = _fp32(models)
        if args.smoke:
            results["batching"] = batching_study.run(fp32, blobs, [0], [(1, 2)], (1, 4),
                                                     args.batching_seconds, 1.0)
        else:
            results["batching"] = batching_study.run(
                fp32, catalog_blobs(args.images), batching_study.DELAYS_US,
                batching_study.LAYOUTS, (1, 16, 64), args.batching_seconds, rounds=args.rounds,
                extra=batching_study.EXTRA)
    if "profile" in args.parts:
        print("profile: CPU per image per process at c16, py-spy on the stubs", flush=True)
        fp32 = _fp32(models)
        results["profile"] = profile_server.profile(fp32, 16, 3.0 if args.smoke else 15.0,
                                                    True, out)
    results["meta"]["load_avg_end"] = os.getloadavg()
    results["meta"]["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S")
    write_json(out / "results.json", results)
    text = report.render(out)
    if "batching" in results:
        text += "\n\nBatching study\n\n" + batching_study.table(results["batching"])
        (out / "report.md").write_text(text + "\n")
    print(text)
    print(f"\nresults in {out}")
    return results


def _compute_bound(results: dict, models: dict[str, Path]) -> None:
    """Achieved % of the sgemm peak for FP32 in-process and every FP32 system at c16."""
    fp32 = models.get("fp32")
    if fp32 is None or "peak" not in results["reference"]:
        return
    ref = report.in_process_summary(results).get("fp32", {})
    achieved = {"in-process (best batch)": ref.get("best_images_per_s")}
    for s in results["systems"]:
        rows = report.by_concurrency(s) if s["runs"] else {}
        if s["precision"] == "fp32" and report.HIGH in rows:
            achieved[f"{s['name']} c{report.HIGH}"] = rows[report.HIGH]["throughput"]
    achieved = {k: v for k, v in achieved.items() if v}
    results["reference"]["compute_bound"] = reference.compute_bound(
        fp32, results["reference"]["peak"], achieved)


if __name__ == "__main__":
    main()
