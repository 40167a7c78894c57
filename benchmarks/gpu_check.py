"""GPU check of the served attribute model, in under 5 minutes on one GPU.

Two steps, because the GPU machine has no Fashion-MNIST, no OpenCV guarantee and no internet:

``prepare`` (here, on CPU): real held-out images → model tiles through fashiontag.images, and
the FP32 ONNX model's onnxruntime (CPU) outputs on them, saved to
``artifacts/gpu_check/reference.npz`` (with the taxonomy and the heads' fingerprint).

``run`` (on the GPU machine, ``PYTHONPATH=.``, numpy 1 or 2, Python ≥ 3.10):

* if ``tensorrt`` imports: export the ONNX from the same weights, build FP16 (and INT8 with the
  entropy calibrator when ``--int8``) engines with a (1, 32, 128) profile, check parity against
  the CPU reference, measure engine throughput at batch 1/8/32/128;
* otherwise say so, and measure the same network in PyTorch on CUDA instead: FP32, FP16
  autocast, FP16 + channels_last, and FP16 + channels_last + CUDA graphs, at batch 1/8/32/128,
  with per-head top-1 agreement and max |diff| against the CPU ONNX outputs.

Input tiles are uint8 on the GPU already (model-only throughput); one figure with the host→device
copy included is reported for batch 32. Results: JSON at ``--out``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from fashiontag.artifacts import SAMPLES_DIR, checkout_artifacts  # noqa: E402

ARTIFACTS = checkout_artifacts()

REFERENCE = ARTIFACTS.gpu_check / "reference.npz"
HEADS = ARTIFACTS.heads
BATCHES = (1, 8, 32, 128)


def _fingerprint(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


# ---------------------------------------------------------------- prepare (CPU, this machine)
def prepare(fashion_mnist: int, rendered: int) -> Path:
    from fashiontag.export.calibration import (
        RENDERED_TEST_SEED,
        fashion_mnist_tiles,
        rendered_tiles,
    )
    from fashiontag.images import preprocess_bytes
    from fashiontag.onnxio.metadata import read_metadata
    from fashiontag.runtimes import load_model

    model = ARTIFACTS.model()
    meta = read_metadata(model)
    fm_tiles, fm_labels = fashion_mnist_tiles("test", fashion_mnist, seed=7)
    r_tiles, r_labels = rendered_tiles(rendered, RENDERED_TEST_SEED)
    photos = [preprocess_bytes(p.read_bytes())
              for p in sorted((SAMPLES_DIR / "photos").glob("*.jpg"))]
    tiles = np.concatenate([fm_tiles, r_tiles] + ([np.stack(photos)] if photos else []))
    source = (["fashion-mnist-test"] * len(fm_tiles) + ["rendered-heldout"] * len(r_tiles)
              + ["sample-photo"] * len(photos))
    reference = load_model(model).run(tiles)
    REFERENCE.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        REFERENCE, tiles=tiles, reference=reference, source=np.array(source),
        category_labels=fm_labels,
        taxonomy=np.array(meta.taxonomy.to_json()), heads_sha=np.array(_fingerprint(HEADS)),
        **{f"label:{k}": v for k, v in r_labels.items()})
    print(f"wrote {REFERENCE} ({REFERENCE.stat().st_size / 1e6:.1f} MB, {len(tiles)} tiles)")
    return REFERENCE


# ---------------------------------------------------------------- run (GPU machine)
def _agreement(taxonomy, ref: np.ndarray, got: np.ndarray) -> dict:
    return {name: round(float((ref[:, s].argmax(1) == got[:, s].argmax(1)).mean()), 4)
            for name, s in taxonomy.slices.items()}


def _parity(taxonomy, ref: np.ndarray, got: np.ndarray) -> dict:
    agree = _agreement(taxonomy, ref, got)
    return {"max_abs_diff": float(np.abs(ref - got).max()),
            "mean_abs_diff": float(np.abs(ref - got).mean()),
            "top1_agreement": agree, "min_top1_agreement": min(agree.values())}


def _time_it(fn, sync, min_s: float = 0.5, warmup: int = 5) -> float:
    """Seconds per call (median of short windows)."""
    for _ in range(warmup):
        fn()
    sync()
    windows = []
    deadline = time.perf_counter() + min_s * 3
    while time.perf_counter() < deadline or len(windows) < 3:
        n, start = 0, time.perf_counter()
        while time.perf_counter() - start < min_s / 3:
            fn()
            n += 1
        sync()
        windows.append((time.perf_counter() - start) / n)
    return float(np.median(windows))


def _load_torch_model(taxonomy_json: str, device: str = "cuda"):
    import torch

    from fashiontag.model.backbone import load_backbone
    from fashiontag.model.heads import load_heads
    from fashiontag.model.network import AttributeHeads, AttributeModel
    from fashiontag.taxonomy import Taxonomy

    taxonomy, heads = load_heads(HEADS)
    if taxonomy != Taxonomy.from_json(taxonomy_json):
        raise SystemExit("heads.pt and reference.npz disagree on the taxonomy: re-run prepare")
    model = AttributeModel(load_backbone(), AttributeHeads(taxonomy, heads)).eval()
    return model.to(device), taxonomy, torch


def run_torch(ref: dict, batches: tuple[int, ...], cuda_graphs: bool,
              device: str = "cuda") -> dict:
    """``device="cpu"`` is a dry run of the same code (bfloat16 instead of float16, no graphs)."""
    model, taxonomy, torch = _load_torch_model(str(ref["taxonomy"]), device)
    tiles = torch.from_numpy(ref["tiles"]).to(device)
    reference = ref["reference"]
    results: dict = {}
    half = torch.float16 if device == "cuda" else torch.bfloat16
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)

    def forward_fn(channels_last: bool, fp16: bool):
        model.to(memory_format=torch.channels_last if channels_last else torch.contiguous_format)

        def forward(x):
            with torch.inference_mode(), torch.autocast(device, half, enabled=fp16):
                return model(x).float()

        return forward

    variants = {"torch fp32": (False, False), "torch fp16 autocast": (False, True),
                "torch fp16 autocast channels_last": (True, True)}
    torch.backends.cudnn.benchmark = True
    for name, (channels_last, fp16) in variants.items():
        forward = forward_fn(channels_last, fp16)
        outs = [forward(tiles[i:i + 64]).cpu().numpy() for i in range(0, len(tiles), 64)]
        entry = {"parity_vs_onnx_cpu": _parity(taxonomy, reference, np.concatenate(outs)),
                 "images_per_s": {}}
        for b in batches:
            x = tiles[torch.arange(b, device=device) % len(tiles)].contiguous()
            sec = _time_it(lambda x=x, f=forward: f(x), sync)
            entry["images_per_s"][str(b)] = round(b / sec, 1)
        results[name] = entry
        print(name, entry["images_per_s"], "min agreement",
              entry["parity_vs_onnx_cpu"]["min_top1_agreement"], flush=True)
    if device != "cuda":
        return results
    if cuda_graphs:
        results["torch fp16 channels_last cuda-graphs"] = _cuda_graphs(
            model, tiles, batches, torch, taxonomy, reference)
    # end to end from host memory at batch 32 (pinned upload included)
    host = torch.from_numpy(ref["tiles"][:32].copy()).pin_memory()
    fwd = forward_fn(True, True)
    sec = _time_it(lambda: fwd(host.cuda(non_blocking=True)).cpu(), sync)
    results["torch fp16 channels_last, host->device->host, batch 32"] = round(32 / sec, 1)
    return results


def _cuda_graphs(model, tiles, batches, torch, taxonomy, reference) -> dict:
    net = model.to(memory_format=torch.channels_last)
    entry: dict = {"images_per_s": {}}
    for b in batches:
        static_in = tiles[torch.arange(b, device="cuda") % len(tiles)].contiguous()
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        # autocast's weight-cast cache must be off while capturing (PyTorch CUDA graphs notes)
        with torch.cuda.stream(stream), torch.inference_mode(), \
                torch.autocast("cuda", torch.float16, cache_enabled=False):
            for _ in range(3):
                net(static_in)
        torch.cuda.current_stream().wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph), torch.inference_mode(), \
                torch.autocast("cuda", torch.float16, cache_enabled=False):
            static_out = net(static_in).float()
        sec = _time_it(graph.replay, torch.cuda.synchronize)
        entry["images_per_s"][str(b)] = round(b / sec, 1)
        if b == max(batches):  # parity through the graph on real tiles
            outs = []
            for i in range(0, len(tiles), b):
                chunk = tiles[i:i + b]
                static_in[:len(chunk)].copy_(chunk)
                graph.replay()
                outs.append(static_out[:len(chunk)].cpu().numpy())
            entry["parity_vs_onnx_cpu"] = _parity(taxonomy, reference, np.concatenate(outs))
    print("cuda graphs", entry["images_per_s"], flush=True)
    return entry


def run_tensorrt(ref: dict, batches: tuple[int, ...], int8: bool, workdir: Path) -> dict:
    import torch

    from fashiontag.export.tensorrt import TensorRTModel, build_engine
    from fashiontag.onnxio.torch_export import export_onnx

    model, taxonomy, _ = _load_torch_model(str(ref["taxonomy"]))
    onnx_path = workdir / "fashiontag.onnx"
    export_onnx(model.cpu(), onnx_path, _spec(), taxonomy=taxonomy, info={"gpu_check": True})
    tiles = torch.from_numpy(ref["tiles"]).cuda()
    results = {}
    for precision in ("fp16", "int8") if int8 else ("fp16",):
        built = build_engine(onnx_path, workdir / precision, precision,
                             max_batch_size=max(batches), opt_batch=32,
                             calibration_tiles=ref["tiles"] if precision == "int8" else None)
        engine = TensorRTModel(built.path)
        outs = [engine.run_device(tiles[i:i + 64]).cpu().numpy()
                for i in range(0, len(tiles), 64)]
        entry = {"engine": built.to_dict(),
                 "parity_vs_onnx_cpu": _parity(taxonomy, ref["reference"], np.concatenate(outs)),
                 "images_per_s": {}}
        for b in batches:
            x = tiles[torch.arange(b, device="cuda") % len(tiles)].contiguous()
            sec = _time_it(lambda x=x, e=engine: e.run_device(x), torch.cuda.synchronize)
            entry["images_per_s"][str(b)] = round(b / sec, 1)
        if precision == "int8":
            entry["note"] = ("calibrated on the check's own reference tiles (no training images "
                             "on the GPU machine): agreement is optimistic")
        results[f"tensorrt {precision}"] = entry
        print(f"tensorrt {precision}", entry["images_per_s"], flush=True)
    return results


def _spec():
    from fashiontag.spec import DEFAULT_SPEC

    return DEFAULT_SPEC


def environment() -> dict:
    import torch

    env = {"python": platform.python_version(), "numpy": np.__version__,
           "torch": torch.__version__, "cuda": torch.version.cuda,
           "cuda_available": torch.cuda.is_available()}
    if torch.cuda.is_available():
        major, minor = torch.cuda.get_device_capability(0)
        env.update(gpu=torch.cuda.get_device_name(0), compute_capability=f"{major}.{minor}")
    try:
        import tensorrt

        env["tensorrt"] = tensorrt.__version__
    except ImportError as exc:
        env["tensorrt"] = None
        env["tensorrt_missing"] = str(exc)
    return env


def run(out: Path, batches: tuple[int, ...], int8: bool, cuda_graphs: bool,
        device: str = "cuda") -> dict:
    t0 = time.perf_counter()
    result: dict = {"environment": environment(), "batches": list(batches), "device": device}
    print(json.dumps(result["environment"]), flush=True)
    if device == "cuda" and not result["environment"]["cuda_available"]:
        raise SystemExit("no CUDA GPU visible: nothing to check (--device cpu is a dry run)")
    with np.load(REFERENCE) as data:
        ref = {k: data[k] for k in data.files}
    if str(ref["heads_sha"]) != _fingerprint(HEADS):
        raise SystemExit("artifacts/heads.pt is not the one reference.npz was made from")
    result["reference"] = {"tiles": int(len(ref["tiles"])),
                           "sources": {s: int((ref["source"] == s).sum())
                                       for s in np.unique(ref["source"])}}
    from fashiontag.export.tensorrt import tensorrt_unavailable_reason

    reason = tensorrt_unavailable_reason()
    if reason is None and device == "cuda":
        result["tensorrt"] = run_tensorrt(ref, batches, int8, out.parent / "engines")
    else:
        print(f"TensorRT path skipped: {reason}. Measuring PyTorch on CUDA instead.", flush=True)
        result["tensorrt"] = {"skipped": reason}
    result["pytorch_" + device] = run_torch(ref, batches, cuda_graphs, device)
    result["seconds"] = round(time.perf_counter() - t0, 1)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"wrote {out} in {result['seconds']} s")
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("prepare", help="CPU: reference tiles + ONNX outputs for the GPU machine")
    p.add_argument("--fashion-mnist", type=int, default=160)
    p.add_argument("--rendered", type=int, default=160)
    p = sub.add_parser("run", help="GPU: TensorRT (or PyTorch CUDA) parity and throughput")
    p.add_argument("--out", type=Path, default=ROOT / "out" / "gpu_check" / "gpu_check.json")
    p.add_argument("--batches", default=",".join(map(str, BATCHES)))
    p.add_argument("--int8", action="store_true", help="TensorRT: also build an INT8 engine")
    p.add_argument("--no-cuda-graphs", action="store_true")
    p.add_argument("--device", choices=["cuda", "cpu"], default="cuda",
                   help="cpu: a dry run of the same code paths (bfloat16, no graphs)")
    args = parser.parse_args(argv)
    if args.command == "prepare":
        prepare(args.fashion_mnist, args.rendered)
    else:
        run(args.out, tuple(int(b) for b in args.batches.split(",")), args.int8,
            not args.no_cuda_graphs, args.device)


if __name__ == "__main__":
    main()
