"""Flags and helpers shared by several command modules."""

from __future__ import annotations

import argparse
from pathlib import Path

from fashiontag.errors import FashiontagError

__all__ = ["DEFAULT_ARTIFACTS", "MODEL_FILE", "add_artifacts_flag", "add_server_flags",
           "server_config"]

DEFAULT_ARTIFACTS = Path("artifacts")
MODEL_FILE = "fashiontag.onnx"


def add_artifacts_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--artifacts", type=Path, default=DEFAULT_ARTIFACTS,
                   help="where heads, reports, caches and the ONNX model go")


def add_server_flags(p: argparse.ArgumentParser) -> None:
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


def server_config(args: argparse.Namespace):
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
