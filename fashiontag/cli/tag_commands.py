"""``tag``: images → attribute sets from a running server (client-only install is enough)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def cmd_tag(args: argparse.Namespace) -> int:
    from fashiontag.client import TagClient

    failures = 0
    with TagClient(args.url, timeout_s=args.timeout) as client:
        for result in client.tag_many(args.images, concurrency=args.concurrency):
            print(json.dumps(result.to_record()))
            failures += not result.ok
    return 1 if failures and args.strict else 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("tag", help="tag image files against a running server (JSON lines out)")
    p.add_argument("images", nargs="+", type=Path)
    p.add_argument("--url", default="127.0.0.1:8001")
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--timeout", type=float, default=30.0, help="seconds per request")
    p.add_argument("--strict", action="store_true", help="exit 1 if any image failed")
    p.set_defaults(func=cmd_tag)
