"""CPU runtimes side by side in one run: FP32 vs INT8, onnxruntime vs OpenVINO, served too.

1. Model only, in-process, batch 8 (and 1), 2 intra-op threads: onnxruntime FP32 (graph level
   all / basic), onnxruntime INT8 (QDQ), OpenVINO INT8 (static batch buckets / dynamic batch),
   OpenVINO FP32. Rounds are interleaved and the median kept; ``x`` = ratio to onnxruntime FP32
   *of the same round*. Read ratios, not absolute numbers: the machine is shared and noisy.
2. Served end to end (JPEG bytes in → attribute set out, through Triton over gRPC): FP32 on
   onnxruntime (the reference), FP32 on OpenVINO (exact, f32 hint), the FP32 file in BF16 on
   OpenVINO (AMX CPUs) and INT8 on OpenVINO, all servers up at once and
   measured alternately at concurrency 16 on 480x360 catalog JPEGs. When the built INT8 model
   missed its gate (so nothing serves it), the refused file is measured.
3. Decoding a 4000x3000 JPEG to a model tile on one core (fashiontag.images: reduced-resolution
   DCT decode + letterbox) next to a full-size decode + resize, for a smooth and a camera-grain
   file; CPU time of the thread is reported next to wall time (the machine is shared).
4. Top-1 agreement of each INT8 runtime with FP32 on held-out renders, all images (also where an
   attribute does not apply, unlike the export gate; not a gate here: the gate
   is `fashiontag export --precision int8`; this shows the served runtime agrees too).

    python benchmarks/runtimes.py            # minutes; full figures
    python benchmarks/runtimes.py --smoke    # seconds; run by the test suite
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from fashiontag.artifacts import SAMPLES_DIR, checkout_artifacts  # noqa: E402

ARTIFACTS = checkout_artifacts()

from benchmarks.catalog import make_catalog  # noqa: E402
from benchmarks.common import new_results_dir, write_json  # noqa: E402
from fashiontag.runtimes import RuntimeOptions, load_model  # noqa: E402

FP32 = ARTIFACTS.model()
INT8 = ARTIFACTS.model("int8")
BASELINE = "onnxruntime fp32"


def configs(threads: int, with_openvino: bool) -> dict[str, tuple[Path, RuntimeOptions]]:
    ort = RuntimeOptions(runtime="onnxruntime", threads=threads)
    ov = RuntimeOptions(runtime="openvino", threads=threads)
    out = {
        BASELINE: (FP32, ort),
        "onnxruntime fp32 (graph basic)": (FP32, RuntimeOptions(
            runtime="onnxruntime", threads=threads, graph_optimization="basic")),
        "onnxruntime fp32 (spinning)": (FP32, RuntimeOptions(
            runtime="onnxruntime", threads=threads, spinning=True)),
        "onnxruntime int8": (INT8, ort),
    }
    if with_openvino:
        out.update({
            "openvino int8 (batch buckets)": (INT8, ov),
            "openvino int8 (dynamic batch)": (INT8, RuntimeOptions(
                runtime="openvino", threads=threads, batch_buckets=())),
            "openvino fp32": (FP32, ov),
            "openvino bf16 (AMX)": (FP32, RuntimeOptions(runtime="openvino", threads=threads,
                                                         precision_hint="bf16")),
        })
    return out


def _images_per_s(model, tiles: np.ndarray, batch: int, min_s: float) -> float:
    chunk = tiles[:batch]
    model.run(chunk)  # warm (and compile the bucket)
    n, start = 0, time.perf_counter()
    while True:
        model.run(chunk)
        n += batch
        elapsed = time.perf_counter() - start
        if elapsed >= min_s:
            return n / elapsed


def model_only(tiles: np.ndarray, batches: tuple[int, ...], rounds: int, min_s: float,
               threads: int, with_openvino: bool) -> dict:
    models = {name: load_model(path, opts)
              for name, (path, opts) in configs(threads, with_openvino).items()}
    result = {}
    for batch in batches:
        samples: dict[str, list[float]] = {name: [] for name in models}
        ratios: dict[str, list[float]] = {name: [] for name in models}
        for _ in range(rounds):
            this_round = {name: _images_per_s(m, tiles, batch, min_s)
                          for name, m in models.items()}
            for name, value in this_round.items():
                samples[name].append(value)
                ratios[name].append(value / this_round[BASELINE])
        result[f"batch_{batch}"] = {
            name: {"images_per_s": round(statistics.median(samples[name]), 1),
                   "x_onnxruntime_fp32": round(statistics.median(ratios[name]), 3)}
            for name in models}
    return result


def agreement(tiles: np.ndarray, taxonomy, threads: int, with_openvino: bool) -> dict:
    ref = load_model(FP32, RuntimeOptions(threads=threads)).run(tiles)
    out = {}
    for name, (path, opts) in configs(threads, with_openvino).items():
        if path != INT8:
            continue
        got = load_model(path, opts).run(tiles)
        out[name] = {attr: round(float((ref[:, s].argmax(1) == got[:, s].argmax(1)).mean()), 4)
                     for attr, s in taxonomy.slices.items()}
    return out


def large_jpeg(path: Path, grain: float) -> bytes:
    """A 4000x3000 JPEG made from a real sample photo, upscaled, with ``grain`` (std of added
    noise, grey levels): 0 is a smooth studio-like shot (small file); ~6 is as dense as a phone
    camera's file (~3 MB), where entropy decoding, which no DCT scaling avoids, dominates."""
    import cv2

    from fashiontag.images import encode_jpeg

    if path.exists():
        return path.read_bytes()
    photo = cv2.cvtColor(cv2.imread(str(sorted((SAMPLES_DIR / "photos").glob("*.jpg"))[0])),
                         cv2.COLOR_BGR2RGB)
    big = cv2.resize(photo, (4000, 3000), interpolation=cv2.INTER_CUBIC).astype(np.float32)
    if grain:
        big += np.random.default_rng(0).normal(0, grain, big.shape).astype(np.float32)
    data = encode_jpeg(np.clip(big, 0, 255).astype(np.uint8), quality=92)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return data


def decode_large(reps: int) -> dict:
    """4000x3000 JPEG → tile with fashiontag.images (reduced-resolution DCT decode + letterbox),
    pinned to one core, next to a full-size decode + resize. ``cpu_ms`` is the thread's CPU time
    (what the work costs one core, unaffected by other processes); ``wall_ms`` is elapsed time."""
    import cv2

    from fashiontag.images import letterbox, preprocess_bytes

    def full(data: bytes):
        return letterbox(cv2.cvtColor(cv2.imdecode(np.frombuffer(data, np.uint8),
                                                   cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB))

    def timed(fn) -> dict:
        fn()
        cpu, wall = [], []
        for _ in range(reps):
            c0, w0 = time.thread_time(), time.perf_counter()
            fn()
            cpu.append((time.thread_time() - c0) * 1000)
            wall.append((time.perf_counter() - w0) * 1000)
        return {"cpu_ms": round(statistics.median(cpu), 2),
                "wall_ms": round(statistics.median(wall), 2)}

    affinity = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(affinity)})
    out: dict = {"size": "4000x3000", "one_core": True}
    try:
        for label, grain in (("smooth", 0.0), ("camera_grain", 6.0)):
            data = large_jpeg(ARTIFACTS.bench_catalog /
                              f"large-4000x3000-grain{grain:g}.jpg", grain)
            reduced = timed(lambda d=data: preprocess_bytes(d))
            whole = timed(lambda d=data: full(d))
            out[label] = {"bytes": len(data), "fashiontag_preprocess": reduced,
                          "full_decode_and_resize": whole,
                          "speedup_cpu": round(whole["cpu_ms"] / reduced["cpu_ms"], 2)}
    finally:
        os.sched_setaffinity(0, affinity)
    out["fashiontag_preprocess_cpu_ms_max"] = max(
        out[k]["fashiontag_preprocess"]["cpu_ms"] for k in ("smooth", "camera_grain"))
    return out


def served(blobs: list[bytes], rounds: int, concurrency: int, threads: int,
           sweep: bool = False) -> dict:
    from fashiontag.client import TagClient
    from fashiontag.serving.repository import ServingSettings, build_repository
    from fashiontag.serving.server import ServerConfig, TritonServer

    variants = {
        "fp32 onnxruntime": (FP32, ServingSettings(runtime="onnxruntime",
                                                   attribute_threads=threads)),
        "fp32 openvino": (FP32, ServingSettings(runtime="openvino", attribute_threads=threads)),
        "bf16 openvino": (FP32, ServingSettings(runtime="openvino", attribute_threads=threads,
                                                precision_hint="bf16")),
        "int8 openvino": (INT8, ServingSettings(runtime="openvino", attribute_threads=threads)),
    }
    if sweep:  # instances x intra-op threads, same total cores
        variants.update({
            "fp32 onnxruntime 2 instances x 1 thread": (FP32, ServingSettings(
                runtime="onnxruntime", attribute_threads=1, attribute_instances=2)),
            "int8 openvino 2 instances x 1 thread": (INT8, ServingSettings(
                runtime="openvino", attribute_threads=1, attribute_instances=2)),
            "int8 onnxruntime": (INT8, ServingSettings(runtime="onnxruntime",
                                                       attribute_threads=threads)),
        })
    with tempfile.TemporaryDirectory(prefix="fashiontag-bench-") as tmp:
        servers = {}
        try:
            for name, (model, settings) in variants.items():
                repo = build_repository(model, Path(tmp) / name.replace(" ", "-"), settings)
                servers[name] = TritonServer(ServerConfig(repo, grpc_port=0, http_port=0,
                                                          metrics_port=0))
                servers[name].start()
            samples: dict[str, list[float]] = {name: [] for name in servers}
            errors = dict.fromkeys(servers, 0)
            # decode="server": the whole served pipeline (preprocess + attributes), as recorded
            with_clients = {name: TagClient(s.grpc_url, decode="server", timeout_s=120)
                            for name, s in servers.items()}
            for client in with_clients.values():
                list(client.tag_many(blobs[:concurrency * 2], concurrency=concurrency))  # warm
            for _ in range(rounds):
                for name, client in with_clients.items():
                    start = time.perf_counter()
                    results = list(client.tag_many(blobs, concurrency=concurrency))
                    samples[name].append(len(blobs) / (time.perf_counter() - start))
                    errors[name] += sum(not r.ok for r in results)
            for client in with_clients.values():
                client.close()
        finally:
            for server in servers.values():
                server.stop()
    base = statistics.median(samples["fp32 onnxruntime"])
    return {name: {"images_per_s": round(statistics.median(v), 1), "errors": errors[name],
                   "x_fp32_served": round(statistics.median(v) / base, 3)}
            for name, v in samples.items()}


def _int8_file() -> bool:
    """Point ``INT8`` at the built INT8 model (True), or at the one its gate refused (False):
    its speed is still worth knowing."""
    global INT8
    if INT8.exists():
        return True
    from fashiontag.export.precision import refused_path

    if not refused_path(INT8).exists():
        raise SystemExit(f"neither {INT8} nor {refused_path(INT8)}: run `make model`")
    INT8 = refused_path(INT8)
    return False


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes; checks it all runs")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--images", type=int, default=400, help="served catalog size")
    parser.add_argument("--skip-served", action="store_true")
    parser.add_argument("--sweep", action="store_true",
                        help="served: also 2 instances x 1 thread, and INT8 in onnxruntime")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    if not FP32.exists():
        parser.error(f"{FP32} is missing: run `make model`")
    int8_checked = _int8_file()
    try:
        import openvino  # noqa: F401
        with_openvino = True
    except ImportError:
        with_openvino = False

    from fashiontag.export.calibration import RENDERED_TEST_SEED, rendered_tiles
    from fashiontag.images import preprocess_bytes
    from fashiontag.onnxio.metadata import read_metadata

    rounds = 1 if args.smoke else args.rounds
    min_s = 0.2 if args.smoke else 3.0
    n_served = 24 if args.smoke else args.images
    blobs = [p.read_bytes() for p in make_catalog(max(n_served, 64))[:n_served]]
    tiles = np.stack([preprocess_bytes(b) for b in blobs[:16]])
    result: dict = {"threads": args.threads, "rounds": rounds, "smoke": args.smoke,
                    "openvino": with_openvino, "cpu_count": os.cpu_count(),
                    "int8_passed_its_gate": int8_checked}
    result["model_only"] = model_only(tiles, (8,) if args.smoke else (1, 8), rounds, min_s,
                                      args.threads, with_openvino)
    taxonomy = read_metadata(INT8).taxonomy
    check_tiles, _ = rendered_tiles(16 if args.smoke else 256, RENDERED_TEST_SEED)
    result["int8_agreement_rendered_all_images"] = agreement(check_tiles, taxonomy, args.threads,
                                                  with_openvino)
    result["decode_4000x3000"] = decode_large(3 if args.smoke else 30)
    if not args.skip_served and with_openvino:
        result["served_concurrency_16"] = served(blobs, rounds, 16, args.threads, args.sweep)
    b8 = result["model_only"]["batch_8"]
    fastest = max((k for k in b8 if "int8" in k), key=lambda k: b8[k]["x_onnxruntime_fp32"])
    result["summary"] = {
        "fastest_int8_model_only_batch_8": fastest,
        "x_onnxruntime_fp32_batch_8": b8[fastest]["x_onnxruntime_fp32"],
        "served_int8_x_fp32": result.get("served_concurrency_16", {}).get(
            "int8 openvino", {}).get("x_fp32_served"),
        "served_fp32_openvino_x_fp32": result.get("served_concurrency_16", {}).get(
            "fp32 openvino", {}).get("x_fp32_served"),
        "decode_4000x3000_cpu_ms_one_core": {
            k: result["decode_4000x3000"][k]["fashiontag_preprocess"]["cpu_ms"]
            for k in ("smooth", "camera_grain")},
    }
    print(json.dumps(result, indent=2))
    write_json(args.out or new_results_dir() / "runtimes.json", result)
    return result


if __name__ == "__main__":
    main()
