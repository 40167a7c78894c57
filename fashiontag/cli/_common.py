"""Flags and helpers shared by several command modules."""

from __future__ import annotations

import argparse
import math
import os
from dataclasses import dataclass
from pathlib import Path

from fashiontag.artifacts import DEFAULT_ROOT
from fashiontag.errors import FashiontagError
from fashiontag.protocol import ADMIN_KEY_HEADER

ADMIN_KEY_ENV = "FASHIONTAG_ADMIN_KEY"

__all__ = ["add_artifacts_flag", "add_server_flags", "server_config", "read_admin_key",
           "ADMIN_KEY_ENV", "Number", "NumberList", "POSITIVE_INT", "NON_NEGATIVE_INT",
           "POSITIVE_FLOAT", "PORT"]


@dataclass(frozen=True)
class Number:
    """argparse ``type=`` for a number within bounds: a bad value is refused while parsing
    (exit 2, one line), before anything connects, loads or trains."""

    kind: type = int  # int or float
    minimum: float | None = None  # inclusive
    maximum: float | None = None  # inclusive
    above: float | None = None  # exclusive lower bound (e.g. a timeout > 0)

    def describe(self) -> str:
        what = "an integer" if self.kind is int else "a number"
        bounds = [f">= {self.minimum:g}" if self.minimum is not None else "",
                  f"> {self.above:g}" if self.above is not None else "",
                  f"<= {self.maximum:g}" if self.maximum is not None else ""]
        return " ".join([what, " and ".join(b for b in bounds if b)]).strip()

    def __call__(self, text: str) -> int | float:
        try:
            value = self.kind(text)
        except (TypeError, ValueError):
            value = None
        if value is None or (self.kind is float and not math.isfinite(value)) or \
                (self.minimum is not None and value < self.minimum) or \
                (self.maximum is not None and value > self.maximum) or \
                (self.above is not None and value <= self.above):
            raise argparse.ArgumentTypeError(f"expected {self.describe()}, got {text!r}")
        return value


@dataclass(frozen=True)
class NumberList:
    """argparse ``type=`` for a comma-separated list of numbers, each checked by ``item``."""

    item: Number

    def __call__(self, text: str) -> tuple:
        parts = [p.strip() for p in text.split(",")]
        if not parts or any(not p for p in parts):
            raise argparse.ArgumentTypeError(
                f"expected comma-separated values, each {self.item.describe()}, got {text!r}")
        return tuple(self.item(p) for p in parts)


POSITIVE_INT = Number(int, minimum=1)
NON_NEGATIVE_INT = Number(int, minimum=0)
POSITIVE_FLOAT = Number(float, above=0.0)
PORT = Number(int, minimum=0, maximum=65535)


def add_artifacts_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--artifacts", type=Path, default=DEFAULT_ROOT,
                   help="where heads, reports, caches and the ONNX model go")


def add_server_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--repository", type=Path, default=None,
                   help="model repository (default: the checkout's model_repository/)")
    p.add_argument("--host", default="127.0.0.1",
                   help="interface to bind; default loopback only (use 0.0.0.0 deliberately)")
    p.add_argument("--grpc-port", type=PORT, default=8001, help="0 picks a free port")
    p.add_argument("--http-port", type=PORT, default=8000)
    p.add_argument("--metrics-port", type=PORT, default=8002)
    p.add_argument("--launcher-metrics-port", type=PORT, default=8003,
                   help="the launcher's own metrics (watchdog heals, restarts); 0 picks a "
                        "free port")
    p.add_argument("--model-control", choices=["none", "explicit"], default="none",
                   help="'explicit' enables the model load/unload API, locked with the admin key "
                        f"(header {ADMIN_KEY_HEADER!r}) from --admin-key-file or "
                        f"${ADMIN_KEY_ENV}")
    p.add_argument("--admin-key-file", type=Path,
                   help="file holding the admin key for --model-control explicit")
    p.add_argument("--no-watchdog", action="store_true",
                   help="do not heal models whose python stub process died")
    p.add_argument("--tls-cert", type=Path, help="server certificate (PEM): enables gRPC TLS")
    p.add_argument("--tls-key", type=Path, help="server private key (PEM)")
    p.add_argument("--tls-client-ca", type=Path,
                   help="CA that client certificates must chain to: enables mutual TLS")
    p.add_argument("--log-file", type=Path, help="tritonserver log (default: a temp file)")


def server_config(args: argparse.Namespace):
    from fashiontag.artifacts import SOURCE_REPOSITORY
    from fashiontag.serving.server import ServerConfig, TlsConfig

    tls = None
    if args.tls_cert or args.tls_key:
        if not (args.tls_cert and args.tls_key):
            raise FashiontagError("--tls-cert and --tls-key go together")
        tls = TlsConfig(args.tls_cert, args.tls_key, args.tls_client_ca)
    return ServerConfig(repository=args.repository or SOURCE_REPOSITORY, host=args.host,
                        grpc_port=args.grpc_port, http_port=args.http_port,
                        metrics_port=args.metrics_port,
                        launcher_metrics_port=args.launcher_metrics_port,
                        model_control=args.model_control,
                        admin_key=_admin_key(args), tls=tls, log_path=args.log_file,
                        watchdog=not args.no_watchdog)


def read_admin_key(args: argparse.Namespace) -> str | None:
    """The operator's admin key from ``--admin-key-file`` or ``$FASHIONTAG_ADMIN_KEY``."""
    if getattr(args, "admin_key_file", None):
        try:
            return args.admin_key_file.read_text().strip() or None
        except OSError as exc:
            raise FashiontagError(f"cannot read the admin key file: {exc.strerror}") from None
    return os.environ.get(ADMIN_KEY_ENV, "").strip() or None


def _admin_key(args: argparse.Namespace) -> str | None:
    """The operator's secret for model control; never generated silently, never logged."""
    if args.model_control != "explicit":
        return None
    key = read_admin_key(args) or ""
    if len(key) < 16:
        raise FashiontagError(
            f"--model-control explicit needs an admin key of at least 16 characters in "
            f"--admin-key-file or ${ADMIN_KEY_ENV}; clients send it as the {ADMIN_KEY_HEADER!r} "
            "header to load/unload models")
    return key
