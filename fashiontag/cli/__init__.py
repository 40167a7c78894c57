"""``fashiontag`` command line: parses flags and calls library functions; exits non-zero on failure.

Each command group lives in its own module with a ``register(subparsers)`` function; heavy
modules (torch, onnx) are imported inside the commands that need them, so ``fashiontag tag`` runs
from a client-only install.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from fashiontag.errors import FashiontagError

__all__ = ["main", "build_parser", "COMMAND_MODULES"]

#: One module per command group; each defines ``register(subparsers)``.
COMMAND_MODULES = (
    "fashiontag.cli.model_commands",
    "fashiontag.cli.serve_commands",
    "fashiontag.cli.tag_commands",
    "fashiontag.cli.fewshot_commands",
    "fashiontag.cli.evaluate_commands",
    "fashiontag.cli.studio_commands",
)


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line (``fashiontag CMD: error: ...``, exit 2) instead of the usage
    block; sub-commands inherit it (argparse builds subparsers with the parent's class)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="fashiontag", description="Fine-grained fashion attribute tagging on Triton.")
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
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
    except OSError as exc:  # a path the user gave cannot be read or written
        if args.verbose:
            raise
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"fashiontag {args.command}: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
