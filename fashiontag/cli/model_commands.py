"""``train``, ``export``, ``build-repo`` and ``build``: from data to a servable repository."""

from __future__ import annotations

import argparse
from pathlib import Path

from fashiontag.artifacts import Artifacts
from fashiontag.cli._common import (
    NON_NEGATIVE_INT,
    POSITIVE_INT,
    NumberList,
    add_artifacts_flag,
)
from fashiontag.errors import FashiontagError


def _train_config(args: argparse.Namespace):
    from dataclasses import replace

    from fashiontag.model.train import SCHEDULES, quick_config

    cfg = quick_config(args.artifacts) if args.quick else SCHEDULES[args.schedule](args.artifacts)
    cfg = replace(cfg, clothing=args.clothing, fashionai_csv=args.fashionai_csv,
                  fashionai_root=args.fashionai_root, seed=args.seed,
                  colour=not getattr(args, "no_colour", False))
    tuning = {k: v for k, v in (("epochs", args.epochs), ("device", args.device))
              if v is not None}
    if tuning:
        cfg = replace(cfg, finetune=replace(cfg.finetune, **tuning))
    if args.views is not None:
        cfg = replace(cfg, views=args.views)
    return cfg


def cmd_train(args: argparse.Namespace) -> int:
    from fashiontag.model.train import train

    _print_training(train(_train_config(args)), args.artifacts)
    return 0


def _print_training(report: dict, artifacts: Path) -> None:
    for name, head in report["heads"].items():
        extra = ""
        real = head.get("real_photos", {})
        if real.get("short_long_accuracy") is not None:
            extra += f", short/long {real['short_long_accuracy']:.4f}"
        if "ece" in real:
            extra += f", ECE {real['ece_before']:.3f} -> {real['ece']:.3f}"
        print(f"{name:16s} test accuracy {head['test_accuracy']:.4f}{extra} "
              f"({head['test_examples']} examples, {head['test_set']})")
    stages = ", ".join(f"{k} {v}" for k, v in report["seconds"].items() if k != "total")
    print(f"trained in {report['seconds']['total']} s ({stages}); model in {artifacts}/")


def cmd_export(args: argparse.Namespace) -> int:
    if args.engine == "tensorrt":
        return _export_tensorrt(args)
    fp32 = Artifacts(args.artifacts).model()
    if args.precision == "fp32" or not fp32.exists():
        _export_fp32(args, args.out if args.precision == "fp32" else None)
    if args.precision != "fp32":
        _export_reduced(args, fp32)
    return 0


def _export_fp32(args: argparse.Namespace, out: Path | None) -> None:
    from fashiontag.pipeline import export_fp32

    result = export_fp32(Artifacts(args.artifacts), out)
    p = result.parity
    print(f"exported {result.path}: parity on {p.images} real images, max |torch - onnxruntime| "
          f"= {p.max_abs_diff:.2e}, top-1 agreement {p.argmax_agreement:.4f}")


def _export_reduced(args: argparse.Namespace, fp32: Path) -> None:
    from fashiontag.export.calibration import CalibrationSet
    from fashiontag.export.precision import CHECK_SIZES, export_precision
    from fashiontag.runtimes import RuntimeOptions

    default_photos, default_rendered = CHECK_SIZES[args.precision]
    sizes = (args.check_images if args.check_images is not None else default_photos,
             args.check_rendered if args.check_rendered is not None else default_rendered)
    cal = CalibrationSet(photos=args.calibration_images * 2 // 3,
                         rendered=args.calibration_images - args.calibration_images * 2 // 3)
    result = export_precision(
        fp32, args.precision, args.out, calibration=cal,
        check_runtime=RuntimeOptions(runtime=args.check_runtime), check_sizes=sizes,
        report_path=Artifacts(args.artifacts).precision_report(args.precision))
    c = result.check
    agreement = ", ".join(f"{k} {v:.3f}" for k, v in c.agreement.items())
    print(f"exported {result.path} ({args.precision}, checked with {c.runtime}): garment type "
          f"accuracy {c.category_accuracy_candidate:.4f} vs fp32 "
          f"{c.category_accuracy_reference:.4f} on {c.category_images} real photos of unseen "
          f"photographers; top-1 agreement with fp32: {agreement}")


def _export_tensorrt(args: argparse.Namespace) -> int:
    from fashiontag.artifacts import precision_path
    from fashiontag.export.tensorrt import build_engine
    from fashiontag.protocol import ATTRIBUTES_MODEL

    if args.opt_batch > args.max_batch_size:
        raise FashiontagError(f"--opt-batch {args.opt_batch} is above --max-batch-size "
                              f"{args.max_batch_size}")
    precision = "fp16" if args.precision == "fp32" and not args.explicit_fp32 else args.precision
    source = args.onnx or Artifacts(args.artifacts).model()
    if precision == "int8" and args.onnx is None and precision_path(source, "int8").exists():
        source = precision_path(source, "int8")  # the checked QDQ file: explicit quantization
    out_dir = (args.repository / ATTRIBUTES_MODEL / "1") if args.repository else \
        args.artifacts / "engines"
    result = build_engine(source, out_dir, precision, max_batch_size=args.max_batch_size,
                          opt_batch=args.opt_batch)
    print(f"TensorRT {result.precision} engine for compute capability "
          f"{result.compute_capability} ({result.gpu}): {result.path} in {result.seconds} s")
    return 0


def cmd_build_repo(args: argparse.Namespace) -> int:
    from fashiontag.artifacts import SOURCE_REPOSITORY
    from fashiontag.serving.repository import (
        TORCH,
        ServingSettings,
        build_repository,
        gpu_torch_settings,
    )

    artifacts = Artifacts(args.artifacts)
    gpu_torch = args.target == "gpu" and TORCH in (args.runtime, args.gpu_platform)
    kwargs = {}
    if args.target == "cpu":
        kwargs["runtime"] = args.runtime
    if args.threads is not None:
        kwargs["attribute_threads"] = args.threads
    if args.instances is not None:
        kwargs["gpu_instances" if args.target == "gpu" else "attribute_instances"] = args.instances
    if args.max_batch_size is not None:
        kwargs["max_batch_size"] = args.max_batch_size
    if args.queue_delay_us is not None:
        kwargs["max_queue_delay_us"] = args.queue_delay_us
    if args.preferred_batch_sizes is not None:
        kwargs["preferred_batch_sizes"] = args.preferred_batch_sizes
    platform = TORCH if gpu_torch else args.gpu_platform
    try:
        settings = (gpu_torch_settings(**kwargs) if gpu_torch
                    else ServingSettings(target=args.target, gpu_platform=platform, **kwargs))
    except ValueError as exc:  # flags that are fine alone but not together (e.g. a preferred
        raise FashiontagError(f"{exc} (--target {args.target})") from None  # batch > max)
    torch_weights = None
    if settings.uses_torch:
        backbone = artifacts.backbone if artifacts.backbone.exists() else None
        torch_weights = (args.heads or artifacts.heads, args.backbone or backbone)
    repo = build_repository(args.model or artifacts.model(),
                            args.repository or SOURCE_REPOSITORY, settings,
                            engine_path=args.engine, torch_weights=torch_weights)
    flavour = args.runtime if args.target == "cpu" else platform
    print(f"model repository ({args.target}, {flavour}) written to {repo}")
    return 0


def cmd_build(args: argparse.Namespace) -> int:
    """train → export → INT8 → evaluation → repository, skipping steps whose outputs are
    current."""
    from fashiontag.artifacts import SOURCE_REPOSITORY
    from fashiontag.pipeline import BuildConfig, build

    result = build(BuildConfig(artifacts=Artifacts(args.artifacts),
                               repository=args.repository or SOURCE_REPOSITORY,
                               train=_train_config(args), force=args.force,
                               colour=not args.no_colour, int8=not args.no_int8,
                               serve=args.serve))
    if result.training_report:
        _print_training(result.training_report, args.artifacts)
    for name, scores in result.evaluation.items():
        attributes = scores["attributes"]
        print(f"{name} on {scores['images']} photos of unseen photographers: " + ", ".join(
            f"{a} {v['accuracy']:.4f}" for a, v in attributes.items() if v["accuracy"]))
    if result.int8_refused:
        print(f"INT8 refused ({result.int8_refused}); serving FP32")
    print(f"steps: {', '.join(result.steps)}; serving {result.served.model.name} as "
          f"{result.served.label} from {result.repository}")
    return 0


def _training_flags(p: argparse.ArgumentParser) -> None:
    add_artifacts_flag(p)
    p.add_argument("--fashionai-csv", type=Path, help="FashionAI Annotations/label.csv")
    p.add_argument("--fashionai-root", type=Path, help="folder the CSV's image paths start in")
    p.add_argument("--clothing", type=Path,
                   help="real photo folder (labels.csv + images/; default: `make data`'s)")
    p.add_argument("--schedule", choices=["fast", "full"], default="fast",
                   help="fast: what `make model` trains (minutes on 2 cores); full: the longer "
                        "schedule of `make train-full` (see docs/model-quality.md)")
    p.add_argument("--epochs", type=POSITIVE_INT,
                   help="fine-tuning epochs (default: the schedule's)")
    p.add_argument("--views", type=POSITIVE_INT, help="cached views per training photo")
    p.add_argument("--device", help="torch device for fine-tuning, e.g. cuda (default cpu)")
    p.add_argument("--seed", type=NON_NEGATIVE_INT, default=0)
    p.add_argument("--quick", action="store_true", help="tiny data; for smoke tests only")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train the attribute heads on cached backbone features")
    _training_flags(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("export", help="export backbone + heads to ONNX (fp32, int8, fp16) or "
                                      "a TensorRT engine; every variant is checked")
    add_artifacts_flag(p)
    p.add_argument("--out", type=Path, help="ONNX path (default artifacts/fashiontag[.P].onnx)")
    p.add_argument("--precision", choices=["fp32", "int8", "fp16"], default="fp32",
                   help="int8: static QDQ for CPUs; fp16: an FP16 ONNX for GPU runtimes")
    p.add_argument("--engine", choices=["onnx", "tensorrt"], default="onnx",
                   help="tensorrt: build model_smXY.plan on this GPU (fp16 unless --precision)")
    p.add_argument("--check-runtime", choices=["onnxruntime", "openvino"],
                   default="onnxruntime", help="runtime the int8/fp16 check runs the file in")
    p.add_argument("--check-images", type=POSITIVE_INT,
                   help="real test photos for the check (default int8: every one)")
    p.add_argument("--check-rendered", type=NON_NEGATIVE_INT,
                   help="held-out rendered garments for the check")
    p.add_argument("--calibration-images", type=POSITIVE_INT, default=384,
                   help="training images calibrating INT8 (2/3 real photos, 1/3 rendered)")
    p.add_argument("--onnx", type=Path, help="tensorrt: source ONNX (default: the export)")
    p.add_argument("--repository", type=Path,
                   help="tensorrt: write the engine into this model repository")
    p.add_argument("--max-batch-size", type=POSITIVE_INT, default=64,
                   help="tensorrt profile max")
    p.add_argument("--opt-batch", type=POSITIVE_INT, default=32, help="tensorrt profile optimum")
    p.add_argument("--explicit-fp32", action="store_true",
                   help="tensorrt: build an FP32 engine (default fp16 for --precision fp32)")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("build-repo", help="generate the Triton model repository")
    add_artifacts_flag(p)
    p.add_argument("--model", type=Path,
                   help="exported ONNX, any precision (default artifacts/fashiontag.onnx)")
    p.add_argument("--repository", type=Path)
    p.add_argument("--target", choices=["cpu", "gpu"], default="cpu")
    p.add_argument("--runtime", choices=["onnxruntime", "openvino", "torch"],
                   default="onnxruntime",
                   help="runtime of the attribute model; torch = the network in PyTorch "
                        "(with --target gpu: FP16 on KIND_GPU instances of the pip tritonserver)")
    p.add_argument("--threads", type=POSITIVE_INT,
                   help="intra-op threads per attribute model instance")
    p.add_argument("--instances", type=POSITIVE_INT,
                   help="attribute model instances (per GPU on gpu)")
    p.add_argument("--gpu-platform", choices=["onnxruntime_onnx", "tensorrt_plan", "torch"],
                   default="onnxruntime_onnx")
    p.add_argument("--max-batch-size", type=POSITIVE_INT)
    p.add_argument("--queue-delay-us", type=NON_NEGATIVE_INT,
                   help="dynamic batcher's max queue delay")
    p.add_argument("--preferred-batch-sizes", type=NumberList(POSITIVE_INT),
                   help="e.g. 64,128,256 (each at most --max-batch-size)")
    p.add_argument("--heads", type=Path, help="torch runtime: heads file (default artifacts')")
    p.add_argument("--backbone", type=Path,
                   help="torch runtime: tuned backbone file (default artifacts')")
    p.add_argument("--engine", type=Path, help="TensorRT plan for --gpu-platform tensorrt_plan")
    p.set_defaults(func=cmd_build_repo)

    p = sub.add_parser("build", help="train (if needed) + export + build-repo")
    _training_flags(p)
    p.add_argument("--force", action="store_true")
    p.add_argument("--no-colour", action="store_true",
                   help="do not add the colour head to existing heads")
    p.add_argument("--no-int8", action="store_true", help="skip the INT8 model")
    p.add_argument("--serve", choices=["auto", "fp32", "int8"], default="auto",
                   help="what the repository serves: auto = INT8 on OpenVINO when it passed "
                        "its gate on real photos, else FP32 (default)")
    p.add_argument("--repository", type=Path)
    p.set_defaults(func=cmd_build)
