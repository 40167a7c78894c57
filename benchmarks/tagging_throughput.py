"""``fashiontag tag`` (the CLI, end to end, against a real tritonserver) vs the in-process
onnxruntime pipeline (decode + preprocess + model) on the same images, in one run.

Two catalogs: catalog thumbnails (480x360 JPEG) and full-size photos (4000x3000 JPEG). For each,
in-process (best of batch 8 and 32, 2 threads) and the CLI with ``--decode server`` (JPEG bytes
to the ensemble) and ``--decode client`` (decode here, uint8 tiles to the attribute model) run in
alternating rounds; medians are reported. The CLI figure is the whole command's wall time
(start-up included), so the ratio is what a user sees. Client and server share this machine's
cores, exactly as the in-process pipeline uses them alone.

On a machine shared with other work, wall-clock ratios favour the side with more processes and
threads (the kernel shares CPU per thread), so CPU time per image is reported too: in-process
process time vs. CLI + tritonserver (and its python stubs) time, read from /proc. That ratio
does not depend on what else runs; it is only available when the benchmark starts the server.

    python benchmarks/tagging_throughput.py                  # 2,000 + 100 images, 2 rounds
    python benchmarks/tagging_throughput.py --smoke          # seconds; run by the test suite
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from fashiontag.artifacts import checkout_artifacts  # noqa: E402

ARTIFACTS = checkout_artifacts()

import numpy as np  # noqa: E402

from benchmarks.catalog import make_catalog  # noqa: E402
from benchmarks.common import new_results_dir, write_json  # noqa: E402
from fashiontag.images import preprocess_bytes  # noqa: E402
from fashiontag.protocol import PIXELS, PROBABILITIES  # noqa: E402
from fashiontag.runtimes import onnx_session  # noqa: E402

DECODES = ("server", "client")


def session_cpu_s(session: int | None) -> float | None:
    """CPU seconds used so far by every live process of a session (tritonserver + stubs)."""
    if session is None:
        return None
    ticks = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[3]) == session:  # fields after "(comm)": state ppid pgrp session ...
            ticks += int(fields[11]) + int(fields[12])  # utime + stime
    return ticks / os.sysconf("SC_CLK_TCK")


def children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_cli(url: str, folder: Path, decode: str, concurrency: int, workdir: Path,
            server_session: int | None) -> dict:
    """One ``fashiontag tag FOLDER --out ...`` run; wall time from process start to exit."""
    out, stats_file = workdir / f"tags-{decode}.jsonl", workdir / f"stats-{decode}.json"
    cmd = [sys.executable, "-m", "fashiontag", "tag", str(folder), "--out", str(out),
           "--overwrite", "--url", url, "--decode", decode, "--concurrency", str(concurrency),
           "--no-progress", "--stats-json", str(stats_file)]
    cpu_client, cpu_server = children_cpu_s(), session_cpu_s(server_session)
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=3600)
    wall = time.perf_counter() - start
    cpu_client = children_cpu_s() - cpu_client
    if cpu_server is not None:
        cpu_server = session_cpu_s(server_session) - cpu_server
    if done.returncode != 0:
        raise RuntimeError(f"fashiontag tag failed ({done.returncode}):\n{done.stderr[-2000:]}")
    stats = json.loads(stats_file.read_text())
    records = out.read_text().count("\n")
    return {"images_per_s": records / wall, "records": records, "failed": stats["failed"],
            "cli_internal_images_per_s": stats["images_per_s"], "p50_ms": stats["p50_ms"],
            "p99_ms": stats["p99_ms"], "peak_rss_mb": stats["peak_rss_mb"],
            "client_cpu_ms_per_image": 1000 * cpu_client / records,
            "server_cpu_ms_per_image": None if cpu_server is None else
            1000 * cpu_server / records}


def in_process_run(model: Path, blobs: list[bytes]) -> tuple[float, float]:
    """The in-process pipeline (decode + preprocess + onnxruntime, 2 threads), as in
    served_vs_inprocess.py: best images/s over batch 8 and 32, and CPU ms per image of that
    run (session start-up excluded, like the server's model load)."""
    best = (0.0, 0.0)
    session = onnx_session(model, threads=2)
    for batch in (8, 32):
        session.run([PROBABILITIES], {PIXELS: np.zeros((batch, 224, 224, 3), np.uint8)})
        wall, cpu = time.perf_counter(), time.process_time()
        for i in range(0, len(blobs), batch):
            tiles = np.stack([preprocess_bytes(b) for b in blobs[i:i + batch]])
            session.run([PROBABILITIES], {PIXELS: tiles})
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        best = max(best, (len(blobs) / wall, 1000 * cpu / len(blobs)))
    return best


def measure(url: str, model: Path, paths: list[Path], rounds: int, concurrency: int,
            workdir: Path, server_session: int | None) -> dict:
    blobs = [p.read_bytes() for p in paths]
    folder = paths[0].parent
    runs: dict[str, list] = {"in_process": [], **{f"cli_{d}": [] for d in DECODES}}
    for r in range(rounds):  # alternate, so every contender sees the same machine weather
        order = DECODES if r % 2 == 0 else DECODES[::-1]
        runs["in_process"].append(in_process_run(model, blobs))
        for decode in order:
            runs[f"cli_{decode}"].append(run_cli(url, folder, decode, concurrency, workdir,
                                                 server_session))
    inproc_cpu = statistics.median(c for _, c in runs["in_process"])
    result: dict = {"images": len(paths), "rounds": rounds,
                    "in_process_images_per_s": statistics.median(r for r, _ in
                                                                 runs["in_process"]),
                    "in_process_cpu_ms_per_image": inproc_cpu}
    for decode in DECODES:
        cli = runs[f"cli_{decode}"]
        rate = statistics.median(c["images_per_s"] for c in cli)
        result[f"cli_{decode}"] = {**cli[-1], "images_per_s": rate,
                                   "all_rounds": [round(c["images_per_s"], 2) for c in cli]}
        result[f"ratio_cli_{decode}_to_in_process"] = rate / result["in_process_images_per_s"]
        if cli[-1]["server_cpu_ms_per_image"] is not None:
            total = statistics.median(c["client_cpu_ms_per_image"] + c["server_cpu_ms_per_image"]
                                      for c in cli)
            result[f"cli_{decode}"]["total_cpu_ms_per_image"] = total
            # > 1: the served path costs less CPU per image than the in-process pipeline
            result[f"cpu_efficiency_cli_{decode}_vs_in_process"] = inproc_cpu / total
    result["faster_decode"] = max(DECODES, key=lambda d: result[f"cli_{d}"]["images_per_s"])
    return result


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2000, help="480x360 catalog size")
    parser.add_argument("--large", type=int, default=100, help="4000x3000 photos")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--model", type=Path, default=ARTIFACTS.model())
    parser.add_argument("--url", help="use this running server instead of starting one")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    if args.smoke:
        args.images, args.large, args.rounds = 24, 2, 1

    from fashiontag.artifacts import SOURCE_REPOSITORY
    from fashiontag.serving.server import ServerConfig, TritonServer

    catalogs = {"480x360": make_catalog(args.images, (480, 360))}
    if args.large:
        catalogs["4000x3000"] = make_catalog(args.large, (4000, 3000))
    result: dict = {"machine_note": "2 shared cores; client, server and in-process all on them",
                    "catalogs": {}}
    with contextlib.ExitStack() as stack:
        url, session = args.url, None
        if url is None:
            server = stack.enter_context(TritonServer(ServerConfig(
                SOURCE_REPOSITORY, grpc_port=0, http_port=0, metrics_port=0)))
            url, session = server.grpc_url, server.process.pid  # it leads its own session
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="fashiontag-bench-")))
        for name, paths in catalogs.items():
            result["catalogs"][name] = measure(url, args.model, paths, args.rounds,
                                               args.concurrency, tmp, session)
    print(json.dumps(result, indent=2))
    write_json(args.out or new_results_dir() / "tagging_throughput.json", result)
    return result


if __name__ == "__main__":
    main()
