"""``fashiontag`` command line: parses flags and calls library functions; exits non-zero on failure.

Heavy modules (torch, onnx) are imported inside the commands that need them, so ``fashiontag tag``
runs from a client-only install.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from fashiontag.errors import FashiontagError

__all__ = ["main", "build_parser"]

DEFAULT_ARTIFACTS = Path("artifacts")
MODEL_FILE = "fashiontag.onnx"
log = logging.getLogger("fashiontag")


def _add_server_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--repository", type=Path, default=None,
                   help="model repository (default: the checkout's model_repository/)")
    p.add_argument("--host", default="127.0.0.1",
                   help="interface to bind; default loopback only (use 0.0.0.0 deliberately)")
    p.add_argument("--grpc-port", type=int, default=8001, help="0 picks a free port")
    p.add_argument("--http-port", type=int, default=8000)
    p.add_argument("--metrics-port", type=int, default=8002)
    p.add_argument("--model-control", choices=["none", "explicit"], default="none",
                   help="'explicit' enables the model load/unload API (operators only)")
    p.add_argument("--tls-cert", type=Path, help="server certificate (PEM): enables gRPC TLS")
    p.add_argument("--tls-key", type=Path, help="server private key (PEM)")
    p.add_argument("--tls-client-ca", type=Path,
                   help="CA that client certificates must chain to: enables mutual TLS")
    p.add_argument("--log-file", type=Path, help="tritonserver log (default: a temp file)")


def _server_config(args: argparse.Namespace):
    from fashiontag.serving.repository import SOURCE_REPOSITORY
    from fashiontag.serving.server import ServerConfig, TlsConfig

    tls = None
    if args.tls_cert or args.tls_key:
        if not (args.tls_cert and args.tls_key):
            raise FashiontagError("--tls-cert and --tls-key go together")
        tls = TlsConfig(args.tls_cert, args.tls_key, args.tls_client_ca)
    return ServerConfig(repository=args.repository or SOURCE_REPOSITORY, host=args.host,
                        grpc_port=args.grpc_port, http_port=args.http_port,
                        metrics_port=args.metrics_port, model_control=args.model_control,
                        tls=tls, log_path=args.log_file)


# ---------------------------------------------------------------------------- commands
def cmd_train(args: argparse.Namespace) -> int:
    from fashiontag.model.train import TrainConfig, train

    cfg = TrainConfig(artifacts=args.artifacts, fashionai_csv=args.fashionai_csv,
                      fashionai_root=args.fashionai_root, seed=args.seed)
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
    if args.force or not model.exists() or model.stat().st_mtime < heads.stat().st_mtime:
        args.out = None
        cmd_export(args)
    args.model, args.target, args.gpu_platform, args.engine = None, "cpu", "onnxruntime_onnx", None
    return cmd_build_repo(args)


def cmd_serve(args: argparse.Namespace) -> int:
    from fashiontag.serving.run import serve_forever

    return serve_forever(_server_config(args))


def cmd_demo(args: argparse.Namespace) -> int:
    from fashiontag.demo import run_demo

    return run_demo(_server_config(args), samples=args.samples, out=args.out, once=args.once)


def cmd_tag(args: argparse.Namespace) -> int:
    from fashiontag.client import TagClient

    failures = 0
    with TagClient(args.url, timeout_s=args.timeout) as client:
        for result in client.tag_many(args.images, concurrency=args.concurrency):
            print(json.dumps(result.to_record()))
            failures += not result.ok
    return 1 if failures and args.strict else 0


# ---------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fashiontag", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)

    def artifacts(p: argparse.ArgumentParser) -> None:
        p.add_argument("--artifacts", type=Path, default=DEFAULT_ARTIFACTS,
                       help="where heads, reports, caches and the ONNX model go")

    p = sub.add_parser("train", help="train the attribute heads on cached backbone features")
    artifacts(p)
    p.add_argument("--fashionai-csv", type=Path, help="FashionAI Annotations/label.csv")
    p.add_argument("--fashionai-root", type=Path, help="folder the CSV's image paths start in")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="tiny data; for smoke tests only")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("export", help="export backbone + heads to ONNX, check parity")
    artifacts(p)
    p.add_argument("--out", type=Path)
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("build-repo", help="generate the Triton model repository")
    artifacts(p)
    p.add_argument("--model", type=Path, help="exported ONNX (default artifacts/fashiontag.onnx)")
    p.add_argument("--repository", type=Path)
    p.add_argument("--target", choices=["cpu", "gpu"], default="cpu")
    p.add_argument("--gpu-platform", choices=["onnxruntime_onnx", "tensorrt_plan"],
                   default="onnxruntime_onnx")
    p.add_argument("--engine", type=Path, help="TensorRT plan for --gpu-platform tensorrt_plan")
    p.set_defaults(func=cmd_build_repo)

    p = sub.add_parser("build", help="train (if needed) + export + build-repo")
    artifacts(p)
    p.add_argument("--force", action="store_true")
    p.add_argument("--fashionai-csv", type=Path)
    p.add_argument("--fashionai-root", type=Path)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--repository", type=Path)
    p.set_defaults(func=cmd_build)

    p = sub.add_parser("serve", help="run tritonserver on the model repository until Ctrl-C")
    _add_server_flags(p)
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("demo", help="serve, tag the bundled samples, print a table")
    _add_server_flags(p)
    p.add_argument("--samples", type=Path, default=None)
    p.add_argument("--out", type=Path, default=Path("out/sample_tags.jsonl"))
    p.add_argument("--once", action="store_true", help="exit after the demo instead of serving")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("tag", help="tag image files against a running server (JSON lines out)")
    p.add_argument("images", nargs="+", type=Path)
    p.add_argument("--url", default="127.0.0.1:8001")
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--timeout", type=float, default=30.0, help="seconds per request")
    p.add_argument("--strict", action="store_true", help="exit 1 if any image failed")
    p.set_defaults(func=cmd_tag)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except FashiontagError as exc:
        print(f"fashiontag {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
