"""Served (Triton over gRPC) vs in-process onnxruntime on the same images, in one run.

In-process = decode + preprocess (fashiontag.images) + onnxruntime (2 intra-op threads), batch
sizes 1/8/32, best kept. Served = the fashiontag ensemble through the sync client at concurrency
1 and 16. Ratios are what to read: this machine is shared and noisy.

    python benchmarks/served_vs_inprocess.py            # 400 images
    python benchmarks/served_vs_inprocess.py --smoke    # seconds; run by the test suite
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.catalog import make_catalog  # noqa: E402
from fashiontag.export.onnx_export import onnx_session  # noqa: E402
from fashiontag.images import preprocess_bytes  # noqa: E402
from fashiontag.protocol import PIXELS, PROBABILITIES  # noqa: E402


def in_process(model: Path, blobs: list[bytes], batch: int) -> float:
    session = onnx_session(model, threads=2)
    session.run([PROBABILITIES], {PIXELS: np.zeros((batch, 224, 224, 3), np.uint8)})  # warm
    start = time.perf_counter()
    for i in range(0, len(blobs), batch):
        tiles = np.stack([preprocess_bytes(b) for b in blobs[i:i + batch]])
        session.run([PROBABILITIES], {PIXELS: tiles})
    return len(blobs) / (time.perf_counter() - start)


def served(url: str, blobs: list[bytes], concurrency: int) -> dict:
    from fashiontag.client import TagClient

    with TagClient(url, timeout_s=120) as client:
        list(client.tag_many(blobs[:concurrency * 2], concurrency=concurrency))  # warm
        start = time.perf_counter()
        results = list(client.tag_many(blobs, concurrency=concurrency))
        elapsed = time.perf_counter() - start
    latencies = np.array([r.latency_ms for r in results])
    return {"images_per_s": len(blobs) / elapsed, "errors": sum(not r.ok for r in results),
            "p50_ms": float(np.percentile(latencies, 50)),
            "p99_ms": float(np.percentile(latencies, 99))}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=400)
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--model", type=Path, default=ROOT / "artifacts" / "fashiontag.onnx")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    n = 24 if args.smoke else args.images
    blobs = [p.read_bytes() for p in make_catalog(max(n, 64))[:n]]

    from fashiontag.serving.repository import SOURCE_REPOSITORY
    from fashiontag.serving.server import ServerConfig, TritonServer

    result: dict = {"images": n, "image_size": "480x360 JPEG", "in_process": {}, "served": {}}
    with TritonServer(ServerConfig(SOURCE_REPOSITORY, grpc_port=0, http_port=0,
                                   metrics_port=0)) as server:
        # interleave so both sides see the same machine weather
        for batch in (1, 8, 32):
            result["in_process"][f"batch_{batch}"] = in_process(args.model, blobs, batch)
        for concurrency in (1, 16):
            result["served"][f"concurrency_{concurrency}"] = served(server.grpc_url, blobs,
                                                                    concurrency)
    best = max(result["in_process"].values())
    single = result["in_process"]["batch_1"]
    result["ratio_served_c16_to_best_in_process"] = \
        result["served"]["concurrency_16"]["images_per_s"] / best
    result["in_process_single_image_ms"] = 1000.0 / single
    print(json.dumps(result, indent=2))
    out = args.out or ROOT / "benchmarks" / "results" / time.strftime("%Y%m%d-%H%M%S") / \
        "served_vs_inprocess.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
