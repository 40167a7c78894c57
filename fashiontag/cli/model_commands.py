"""``train``, ``export``, ``build-repo`` and ``build``: from data to a servable repository."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from fashiontag.cli._common import MODEL_FILE, add_artifacts_flag


def cmd_train(args: argparse.Namespace) -> int:
    from fashiontag.model.train import TrainConfig, train

    cfg = TrainConfig(artifacts=args.artifacts, fashionai_csv=args.fashionai_csv,
                      fashionai_root=args.fashionai_root, seed=args.seed,
                      colour=not getattr(args, "no_colour", False))
    if args.quick:
        cfg.fmnist_per_class, cfg.rendered_train, cfg.rendered_test = 100, 600, 200
        cfg.hidden_options, cfg.steps = (0,), 300
    report = train(cfg)
    for name, head in report["heads"].items():
        print(f"{name:16s} test accuracy {head['test_accuracy']:.4f} "
              f"({head['test_examples']} examples, {head['test_set']})")
    print(f"trained in {report['seconds']} s; heads in {args.artifacts}/")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from fashiontag.export.attribute_model import export_attribute_model
    from fashiontag.model.train import HEADS_FILE, REPORT_FILE

    out = args.out or args.artifacts / MODEL_FILE
    result = export_attribute_model(args.artifacts / HEADS_FILE, out,
                                    training_report=args.artifacts / REPORT_FILE)
    (args.artifacts / "export_report.json").write_text(json.dumps(result.to_dict(), indent=2))
    p = result.parity
    print(f"exported {out}: parity on {p.images} real images, max |torch - onnxruntime| = "
          f"{p.max_abs_diff:.2e}, top-1 agreement {p.argmax_agreement:.4f}")
    return 0


def cmd_build_repo(args: argparse.Namespace) -> int:
    from fashiontag.serving.repository import SOURCE_REPOSITORY, ServingSettings, build_repository

    settings = ServingSettings(target=args.target, gpu_platform=args.gpu_platform)
    repo = build_repository(args.model or args.artifacts / MODEL_FILE,
                            args.repository or SOURCE_REPOSITORY, settings,
                            engine_path=args.engine)
    print(f"model repository ({args.target}) written to {repo}")
    return 0


def cmd_build(args: argparse.Namespace) -> int:
    """train → export → repository, skipping steps whose outputs are newer than their inputs."""
    from fashiontag.model.train import HEADS_FILE

    heads, model = args.artifacts / HEADS_FILE, args.artifacts / MODEL_FILE
    if args.force or not heads.exists():
        cmd_train(args)
    elif not args.no_colour:
        from fashiontag.colour.head import ensure_colour_head

        if ensure_colour_head(heads):  # heads trained before the colour attribute existed
            print(f"added the colour head to {heads}")
    if args.force or not model.exists() or model.stat().st_mtime < heads.stat().st_mtime:
        args.out = None
        cmd_export(args)
    args.model, args.target, args.gpu_platform, args.engine = None, "cpu", "onnxruntime_onnx", None
    return cmd_build_repo(args)


def _training_flags(p: argparse.ArgumentParser) -> None:
    add_artifacts_flag(p)
    p.add_argument("--fashionai-csv", type=Path, help="FashionAI Annotations/label.csv")
    p.add_argument("--fashionai-root", type=Path, help="folder the CSV's image paths start in")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="tiny data; for smoke tests only")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train the attribute heads on cached backbone features")
    _training_flags(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("export", help="export backbone + heads to ONNX, check parity")
    add_artifacts_flag(p)
    p.add_argument("--out", type=Path)
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("build-repo", help="generate the Triton model repository")
    add_artifacts_flag(p)
    p.add_argument("--model", type=Path, help="exported ONNX (default artifacts/fashiontag.onnx)")
    p.add_argument("--repository", type=Path)
    p.add_argument("--target", choices=["cpu", "gpu"], default="cpu")
    p.add_argument("--gpu-platform", choices=["onnxruntime_onnx", "tensorrt_plan"],
                   default="onnxruntime_onnx")
    p.add_argument("--engine", type=Path, help="TensorRT plan for --gpu-platform tensorrt_plan")
    p.set_defaults(func=cmd_build_repo)

    p = sub.add_parser("build", help="train (if needed) + export + build-repo")
    _training_flags(p)
    p.add_argument("--force", action="store_true")
    p.add_argument("--no-colour", action="store_true",
                   help="do not add the colour head to existing heads")
    p.add_argument("--repository", type=Path)
    p.set_defaults(func=cmd_build)
