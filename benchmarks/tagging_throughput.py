"""``fashiontag tag`` (the CLI, end to end, against a real tritonserver) vs the in-process
onnxruntime pipeline (decode + preprocess + model) on the same images, in one run.

Two catalogs: catalog thumbnails (480x360 JPEG) and full-size photos (4000x3000 JPEG). For each,
in-process (best of batch 8 and 32, 2 threads) and the CLI with ``--decode server`` (JPEG bytes
to the ensemble) and ``--decode client`` (decode here, uint8 tiles to the attribute model) run in
alternating rounds; medians are reported. The CLI figure is the whole command's wall time
(start-up included), so the ratio is what a user sees. Client and server share this machine's
cores, exactly as the in-process pipeline uses them alone.

    python benchmarks/tagging_throughput.py                  # 2,000 + 100 images, 2 rounds
    python benchmarks/tagging_throughput.py --smoke          # seconds; run by the test suite
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.catalog import make_catalog  # noqa: E402
from benchmarks.served_vs_inprocess import in_process  # noqa: E402

DECODES = ("server", "client")


def run_cli(url: str, folder: Path, decode: str, concurrency: int, workdir: Path) -> dict:
    """One ``fashiontag tag FOLDER --out ...`` run; wall time from process start to exit."""
    out, stats_file = workdir / f"tags-{decode}.jsonl", workdir / f"stats-{decode}.json"
    cmd = [sys.executable, "-m", "fashiontag", "tag", str(folder), "--out", str(out),
           "--overwrite", "--url", url, "--decode", decode, "--concurrency", str(concurrency),
           "--no-progress", "--stats-json", str(stats_file)]
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=3600)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"fashiontag tag failed ({done.returncode}):\n{done.stderr[-2000:]}")
    stats = json.loads(stats_file.read_text())
    records = out.read_text().count("\n")
    return {"images_per_s": records / wall, "records": records, "failed": stats["failed"],
            "cli_internal_images_per_s": stats["images_per_s"], "p50_ms": stats["p50_ms"],
            "p99_ms": stats["p99_ms"], "peak_rss_mb": stats["peak_rss_mb"]}


def measure(url: str, model: Path, paths: list[Path], rounds: int, concurrency: int,
            workdir: Path) -> dict:
    blobs = [p.read_bytes() for p in paths]
    folder = paths[0].parent
    runs: dict[str, list] = {"in_process": [], **{f"cli_{d}": [] for d in DECODES}}
    for r in range(rounds):  # alternate, so every contender sees the same machine weather
        order = DECODES if r % 2 == 0 else DECODES[::-1]
        runs["in_process"].append(max(in_process(model, blobs, b) for b in (8, 32)))
        for decode in order:
            runs[f"cli_{decode}"].append(run_cli(url, folder, decode, concurrency, workdir))
    result: dict = {"images": len(paths), "rounds": rounds,
                    "in_process_images_per_s": statistics.median(runs["in_process"])}
    for decode in DECODES:
        cli = runs[f"cli_{decode}"]
        rate = statistics.median(c["images_per_s"] for c in cli)
        result[f"cli_{decode}"] = {**cli[-1], "images_per_s": rate,
                                   "all_rounds": [round(c["images_per_s"], 2) for c in cli]}
        result[f"ratio_cli_{decode}_to_in_process"] = rate / result["in_process_images_per_s"]
    result["faster_decode"] = max(DECODES, key=lambda d: result[f"cli_{d}"]["images_per_s"])
    return result


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2000, help="480x360 catalog size")
    parser.add_argument("--large", type=int, default=100, help="4000x3000 photos")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--model", type=Path, default=ROOT / "artifacts" / "fashiontag.onnx")
    parser.add_argument("--url", help="use this running server instead of starting one")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    if args.smoke:
        args.images, args.large, args.rounds = 24, 2, 1

    from fashiontag.serving.repository import SOURCE_REPOSITORY
    from fashiontag.serving.server import ServerConfig, TritonServer

    catalogs = {"480x360": make_catalog(args.images, (480, 360))}
    if args.large:
        catalogs["4000x3000"] = make_catalog(args.large, (4000, 3000))
    result: dict = {"machine_note": "2 shared cores; client, server and in-process all on them",
                    "catalogs": {}}
    with contextlib.ExitStack() as stack:
        url = args.url or stack.enter_context(TritonServer(ServerConfig(
            SOURCE_REPOSITORY, grpc_port=0, http_port=0, metrics_port=0))).grpc_url
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="fashiontag-bench-")))
        for name, paths in catalogs.items():
            result["catalogs"][name] = measure(url, args.model, paths, args.rounds,
                                               args.concurrency, tmp)
    print(json.dumps(result, indent=2))
    out = args.out or ROOT / "benchmarks" / "results" / time.strftime("%Y%m%d-%H%M%S") / \
        "tagging_throughput.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
