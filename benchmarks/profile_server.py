"""Where a served image's CPU time goes: per-process CPU milliseconds per image under load, and
py-spy's view of the python-backend stubs.

On 2 saturated cores, throughput = cores / CPU-seconds per image, so the serving overhead is the
CPU the server spends per image beyond what in-process decode + model costs. This drives the
served ensemble closed-loop and splits the CPU between tritonserver itself (gRPC, ensemble
scheduling, shared-memory transfers), the preprocess stubs and the attribute-model stub, and
the load client; py-spy (``--py-spy``) samples the stubs to name the python functions.

    python benchmarks/profile_server.py [--concurrency 16] [--seconds 20] [--py-spy]
"""

from __future__ import annotations

import argparse
import collections
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.common import (  # noqa: E402
    DEFAULT_MODEL,
    catalog_blobs,
    cpu_seconds,
    new_results_dir,
    write_json,
)
from benchmarks.loadgen import run_closed_loop  # noqa: E402
from benchmarks.reference import in_process_cpu_ms  # noqa: E402
from fashiontag.serving.repository import ServingSettings  # noqa: E402


def _role(proc) -> str:
    cmd = " ".join(proc.cmdline())
    if "triton_python_backend_stub" in cmd:
        for part in proc.cmdline():
            if part.endswith("model.py"):
                return f"stub:{Path(part).parents[1].name}"
        return "stub:?"
    if "tritonserver" in cmd:
        return "tritonserver"
    return proc.name()


def _py_spy(pids_roles: dict[int, str], seconds: float, out: Path) -> dict[str, list]:
    """Sample each stub with py-spy; top functions by share of samples (self time)."""
    exe = Path(sys.executable).parent / "py-spy"
    tops: dict[str, list] = {}
    procs = []
    for pid, role in pids_roles.items():
        if not role.startswith("stub:"):
            continue
        path = out / f"py-spy-{role.split(':')[1]}-{pid}.txt"
        procs.append((role, pid, path, subprocess.Popen(
            [str(exe), "record", "--pid", str(pid), "--duration", str(int(seconds)),
             "--rate", "200", "--format", "raw", "--nonblocking", "--output", str(path)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)))
    for role, pid, path, proc in procs:
        try:
            proc.wait(seconds + 60)
        except subprocess.TimeoutExpired:
            proc.kill()
        if not path.exists():
            tops[f"{role}:{pid}"] = [{"error": "py-spy failed: "
                                               f"{proc.stderr.read().decode()[-300:]}"}]
            continue
        tops[f"{role}:{pid}"] = _top_frames(path)
    return tops


def _top_frames(path: Path, n: int = 8) -> list:
    """Collapsed stacks → the leaf functions with the largest share of samples."""
    leaves: collections.Counter = collections.Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        total += int(count)
        leaves[stack.split(";")[-1]] += int(count)
    return [{"frame": frame, "percent": round(100.0 * c / total, 1)}
            for frame, c in leaves.most_common(n)]


def profile(model: Path, concurrency: int, seconds: float, use_py_spy: bool, out: Path,
            serving: ServingSettings | None = None) -> dict:
    from benchmarks.common import process_tree
    from benchmarks.systems import FashiontagSystem

    blobs = catalog_blobs(200)
    result: dict = {"concurrency": concurrency, "seconds": seconds,
                    "in_process_cpu_ms_per_image": in_process_cpu_ms(model, blobs[:64])}
    with FashiontagSystem(model, serving=serving) as system:
        result["settings"] = system.settings
        run_closed_loop(system.target(), blobs, concurrency, duration_s=2, warmup_s=0)
        stats0 = system.statistics()
        procs = process_tree(system.server.process.pid)
        roles = {p.pid: _role(p) for p in procs}
        spy: dict = {}
        spy_thread = None
        if use_py_spy:
            spy_thread = threading.Thread(
                target=lambda: spy.update(_py_spy(roles, seconds, out)), daemon=True)
            spy_thread.start()
        before = cpu_seconds(procs)
        client0, t0 = time.process_time(), time.perf_counter()
        load = run_closed_loop(system.target(), blobs, concurrency, duration_s=seconds,
                               warmup_s=0)
        wall = time.perf_counter() - t0
        client_cpu = time.process_time() - client0
        after = cpu_seconds(procs)
        stats1 = system.statistics()
        if spy_thread is not None:
            spy_thread.join(seconds + 90)
    images = load.requests or 1
    by_role: dict[str, float] = collections.defaultdict(float)
    for pid, cpu in after.items():
        by_role[roles[pid]] += (cpu - before.get(pid, cpu)) * 1000.0 / images
    by_role["load client (this process)"] = client_cpu * 1000.0 / images
    result.update({
        "throughput": load.requests / wall, "errors": load.errors, "p99_ms": load.p99_ms,
        "cpu_ms_per_image": dict(sorted(by_role.items(), key=lambda kv: -kv[1])),
        "server_cpu_ms_per_image": sum(v for k, v in by_role.items() if k != "load client "
                                       "(this process)"),
    })
    model_stats = {name: (stats1[name]["inferences"] - stats0[name]["inferences"],
                          stats1[name]["executions"] - stats0[name]["executions"])
                   for name in stats1}
    result["mean_batch"] = {name: inf / ex if ex else None
                            for name, (inf, ex) in model_stats.items()}
    if use_py_spy:
        result["py_spy_top_self"] = spy
    return result


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--py-spy", action="store_true", help="sample the stubs with py-spy")
    parser.add_argument("--delay-us", type=int, help="max_queue_delay_us (default: shipped)")
    parser.add_argument("--instances", type=int, help="attribute-model instances")
    parser.add_argument("--threads", type=int, help="intra-op threads per instance")
    parser.add_argument("--preprocess-instances", type=int)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    overrides = {k: v for k, v in (("max_queue_delay_us", args.delay_us),
                                   ("attribute_instances", args.instances),
                                   ("attribute_threads", args.threads),
                                   ("preprocess_instances", args.preprocess_instances))
                 if v is not None}
    out = args.out or new_results_dir()
    out.mkdir(parents=True, exist_ok=True)
    result = profile(args.model, args.concurrency, args.seconds, args.py_spy, out,
                     ServingSettings(**overrides))
    write_json(out / "profile.json", result)
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
