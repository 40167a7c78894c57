"""Reference limits measured in the same run as the served systems.

- **In-process**: decode + preprocess (``fashiontag.images``) + onnxruntime in one loop, one
  process, the same session settings the server uses (``onnx_session``, 2 intra-op threads).
  Best batch size kept: the gap between a server and this is serving overhead.
- **Compute bound**: multiply-accumulates per image counted from the ONNX graph (Conv, Gemm,
  MatMul; 1 MAC = 2 FLOP) against this CPU's measured sgemm peak on 2 threads, so "achieved %"
  says how much of the arithmetic the machine can do a system actually turns into images.

    python benchmarks/reference.py [--smoke] [--model artifacts/fashiontag.onnx]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.common import DEFAULT_MODEL, catalog_blobs, latency_stats  # noqa: E402
from fashiontag.images import preprocess_bytes  # noqa: E402
from fashiontag.protocol import PIXELS, PROBABILITIES  # noqa: E402
from fashiontag.runtimes import onnx_session  # noqa: E402

THREADS = 2  # the machine's cores; the served attribute model uses the same


def in_process_throughput(model: Path, blobs: Sequence[bytes], batch: int,
                          threads: int = THREADS, min_seconds: float = 0.0) -> float:
    """Images per second for decode + preprocess + model, ``batch`` images per ``run``."""
    session = onnx_session(model, threads=threads)
    session.run([PROBABILITIES], {PIXELS: np.zeros((batch, 224, 224, 3), np.uint8)})  # warm
    done, start = 0, time.perf_counter()
    while True:
        for i in range(0, len(blobs), batch):
            tiles = np.stack([preprocess_bytes(b) for b in blobs[i:i + batch]])
            session.run([PROBABILITIES], {PIXELS: tiles})
            done += len(tiles)
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds:
            return done / elapsed


def in_process_latency(model: Path, blobs: Sequence[bytes], threads: int = THREADS) -> dict:
    """Per-image latency of decode + preprocess + model at batch 1 (the concurrency-1 bound)."""
    session = onnx_session(model, threads=threads)
    session.run([PROBABILITIES], {PIXELS: np.zeros((1, 224, 224, 3), np.uint8)})
    times = []
    for blob in blobs:
        t0 = time.perf_counter()
        session.run([PROBABILITIES], {PIXELS: preprocess_bytes(blob)[None]})
        times.append((time.perf_counter() - t0) * 1000.0)
    return latency_stats(times)


def in_process_cpu_ms(model: Path, blobs: Sequence[bytes], batch: int = 8,
                      threads: int = THREADS) -> dict[str, float]:
    """CPU milliseconds per image in-process, split into decode+preprocess and model."""
    session = onnx_session(model, threads=threads)
    session.run([PROBABILITIES], {PIXELS: np.zeros((batch, 224, 224, 3), np.uint8)})
    decode = model_cpu = 0.0
    for i in range(0, len(blobs), batch):
        c0 = time.process_time()
        tiles = np.stack([preprocess_bytes(b) for b in blobs[i:i + batch]])
        c1 = time.process_time()
        session.run([PROBABILITIES], {PIXELS: tiles})
        c2 = time.process_time()
        decode, model_cpu = decode + c1 - c0, model_cpu + c2 - c1
    n = len(blobs)
    return {"decode_preprocess": 1000 * decode / n, "model": 1000 * model_cpu / n,
            "total": 1000 * (decode + model_cpu) / n, "batch": batch}


def in_process(model: Path, blobs: Sequence[bytes], batches: Sequence[int] = (1, 8, 16, 32),
               min_seconds: float = 0.0) -> dict:
    """Throughput per batch size, the best of them, and the single-image latency."""
    per_batch = {f"batch_{b}": in_process_throughput(model, blobs, b, min_seconds=min_seconds)
                 for b in batches}
    best_key = max(per_batch, key=per_batch.get)
    return {"images_per_s": per_batch, "best_images_per_s": per_batch[best_key],
            "best_batch": int(best_key.split("_")[1]),
            "single_image": in_process_latency(model, blobs)}


# ----------------------------------------------------------------------------- compute bound
_COUNTED = ("Conv", "Gemm", "MatMul")


def model_macs(model: Path) -> dict:
    """Multiply-accumulates per image, counted from the graph with shapes from one real run.

    Shapes come from running the graph (batch 1) with every counted node's input and output
    exposed, not from static shape inference, which the exporter's padding Slices defeat.
    """
    import onnx
    import onnxruntime as ort

    graph_model = onnx.load(str(model))
    graph = graph_model.graph
    inits = {t.name: tuple(t.dims) for t in graph.initializer}
    nodes = [n for n in graph.node if n.op_type in _COUNTED]
    exposed = {n.input[0] for n in nodes if n.input[0] not in inits}
    exposed |= {n.input[1] for n in nodes if n.op_type != "Conv" and n.input[1] not in inits}
    exposed |= {n.output[0] for n in nodes}
    known = {o.name for o in graph.output}
    for name in sorted(exposed - known):
        graph.output.append(onnx.helper.make_empty_tensor_value_info(name))
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(graph_model.SerializeToString(), opts,
                                   providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    values = session.run(names, {PIXELS: np.zeros((1, 224, 224, 3), np.uint8)})
    shapes = {n: v.shape for n, v in zip(names, values, strict=True)}
    shapes.update(inits)
    by_op = dict.fromkeys(_COUNTED, 0)
    for node in nodes:
        by_op[node.op_type] += _node_macs(node, shapes)
    total = sum(by_op.values())
    return {"macs_per_image": total, "gflop_per_image": 2 * total / 1e9, "by_op": by_op}


def _node_macs(node, shapes: dict) -> int:
    out = shapes[node.output[0]]
    if node.op_type == "Conv":
        w = shapes[node.input[1]]  # [Cout, Cin/group, kh, kw]
        return int(np.prod(out)) * int(np.prod(w[1:]))
    a = shapes[node.input[0]]
    if node.op_type == "Gemm":
        trans_a = any(at.name == "transA" and at.i for at in node.attribute)
        k = a[0] if trans_a else a[-1]
        return int(np.prod(out)) * int(k)
    return int(np.prod(out)) * int(a[-1])  # MatMul: [..., M, K] x [..., K, N]


def _onnxruntime_sgemm_gflops(n: int, threads: int, repeats: int) -> float:
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper

    a = helper.make_tensor_value_info("A", TensorProto.FLOAT, [n, n])
    b = helper.make_tensor_value_info("B", TensorProto.FLOAT, [n, n])
    c = helper.make_tensor_value_info("C", TensorProto.FLOAT, [n, n])
    graph = helper.make_graph([helper.make_node("MatMul", ["A", "B"], ["C"])], "sgemm",
                              [a, b], [c])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    proto.ir_version = min(proto.ir_version, 9)
    onnx.checker.check_model(proto)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    session = ort.InferenceSession(proto.SerializeToString(), opts,
                                   providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    feeds = {"A": rng.standard_normal((n, n), np.float32),
             "B": rng.standard_normal((n, n), np.float32)}
    session.run(None, feeds)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        session.run(None, feeds)
        best = min(best, time.perf_counter() - t0)
    return 2 * n ** 3 / best / 1e9


_NUMPY_SGEMM = """
import time, numpy as np
n, r = {n}, {repeats}
a = np.random.default_rng(0).standard_normal((n, n), np.float32); b = a.T.copy()
a @ b
best = min((lambda t0: (a @ b, time.perf_counter() - t0)[1])(time.perf_counter()) for _ in range(r))
print(2 * n ** 3 / best / 1e9)
"""


def _numpy_sgemm_gflops(n: int, threads: int, repeats: int) -> float:
    """numpy's BLAS reads its thread count at import: run it in a child with the count set."""
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads),
               MKL_NUM_THREADS=str(threads))
    out = subprocess.run([sys.executable, "-c", _NUMPY_SGEMM.format(n=n, repeats=repeats)],
                         env=env, capture_output=True, text=True, timeout=300, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def peak_gflops(threads: int = THREADS, n: int = 2048, repeats: int = 5) -> dict:
    """Best of onnxruntime's and numpy's large sgemm on ``threads`` threads (GFLOP/s)."""
    ort_g = _onnxruntime_sgemm_gflops(n, threads, repeats)
    np_g = _numpy_sgemm_gflops(n, threads, repeats)
    return {"onnxruntime_sgemm": ort_g, "numpy_sgemm": np_g, "peak": max(ort_g, np_g),
            "threads": threads, "n": n}


def compute_bound(model: Path, peak: dict, images_per_s: dict[str, float]) -> dict:
    """Model FLOPs x measured throughputs vs the sgemm peak → achieved % per system."""
    macs = model_macs(model)
    ceiling = peak["peak"] / macs["gflop_per_image"]
    achieved = {name: {"images_per_s": ips,
                       "gflop_per_s": ips * macs["gflop_per_image"],
                       "percent_of_peak": 100.0 * ips * macs["gflop_per_image"] / peak["peak"]}
                for name, ips in images_per_s.items()}
    return {**macs, "peak_gflop_per_s": peak["peak"], "images_per_s_at_peak": ceiling,
            "achieved": achieved}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--smoke", action="store_true", help="seconds, tiny counts")
    args = parser.parse_args(argv)
    blobs = catalog_blobs(16 if args.smoke else args.images)
    batches = (1, 8) if args.smoke else (1, 8, 16, 32)
    peak = peak_gflops(n=512 if args.smoke else 2048, repeats=2 if args.smoke else 5)
    ref = in_process(args.model, blobs, batches)
    result = {"in_process": ref, "peak": peak,
              "compute_bound": compute_bound(args.model, peak,
                                             {"in-process": ref["best_images_per_s"]})}
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
