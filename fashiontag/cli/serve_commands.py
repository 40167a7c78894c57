"""``serve`` and ``demo``: run the real tritonserver."""

from __future__ import annotations

import argparse
from pathlib import Path

from fashiontag.cli._common import add_server_flags, server_config


def cmd_serve(args: argparse.Namespace) -> int:
    from fashiontag.serving.run import serve_forever

    return serve_forever(server_config(args))


def cmd_demo(args: argparse.Namespace) -> int:
    from fashiontag.demo import run_demo

    return run_demo(server_config(args), samples=args.samples, out=args.out, once=args.once)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="run tritonserver on the model repository until Ctrl-C")
    add_server_flags(p)
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("demo", help="serve, tag the bundled samples, print a table")
    add_server_flags(p)
    p.add_argument("--samples", type=Path, default=None)
    p.add_argument("--out", type=Path, default=Path("out/sample_tags.jsonl"))
    p.add_argument("--once", action="store_true", help="exit after the demo instead of serving")
    p.set_defaults(func=cmd_demo)
