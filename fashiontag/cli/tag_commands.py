"""``tag``: a catalog (directory, list, CSV or image files) → one record per image, resumable.

Runs from a client-only install (``fashiontag[client]``); ``--engine ray`` needs
``fashiontag[ray]``, ``--format parquet`` needs ``fashiontag[parquet]``, URL sources need
``fashiontag[remote]``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from fashiontag.cli._common import NON_NEGATIVE_INT, POSITIVE_FLOAT, POSITIVE_INT
from fashiontag.client.defaults import DECODE_MODES, DEFAULT_DECODE, DEFAULT_TIMEOUT_S
from fashiontag.errors import FashiontagError


def _urls(values: list[str] | None) -> tuple[str, ...]:
    from fashiontag.client._common import split_urls

    urls = tuple(u for v in (values or ["127.0.0.1:8001"]) for u in split_urls(v))
    if not urls:
        raise FashiontagError("--url needs at least one host:port")
    return urls


def _path(value: Path | None) -> str | None:
    if value is None:
        return None
    if not value.is_file():
        raise FashiontagError(f"{value}: no such file")
    return str(value)


def _settings(args: argparse.Namespace):
    from fashiontag.tagging.runner import TagSettings

    if args.shared_memory and args.decode == "server":
        raise FashiontagError("--shared-memory sends decoded tiles: it cannot go with "
                              "--decode server")
    decode = "client" if args.shared_memory else args.decode
    return TagSettings(urls=_urls(args.url), decode=decode, shared_memory=args.shared_memory,
                       concurrency=args.concurrency, retries=args.retries, timeout_s=args.timeout,
                       balance=args.balance.replace("-", "_"), load_threads=args.load_threads,
                       outage_limit=args.outage_limit, tls_ca=_path(args.tls_ca),
                       tls_cert=_path(args.tls_cert), tls_key=_path(args.tls_key),
                       experimental=args.experimental)


def _open(args: argparse.Namespace, settings):
    """Check the servers answer and open the sink (which reads back ids when resuming)."""
    from fashiontag.client import TagClient
    from fashiontag.tagging.sink import open_sink

    with TagClient(options=settings.client_options()) as client:
        taxonomy = client.taxonomy  # fails fast, with a clear error, when no server answers
    out = args.out or "-"
    return open_sink(out, args.format, resume=args.resume, overwrite=args.overwrite,
                     attributes=taxonomy.reported(args.experimental))


def cmd_tag(args: argparse.Namespace) -> int:
    from fashiontag.tagging.progress import Progress
    from fashiontag.tagging.sources import count_items, open_sources
    from fashiontag.tagging.stats import RunStats

    if args.resume and not args.out:
        raise FashiontagError("--resume needs --out FILE")
    settings = _settings(args)
    source_args = (args.source, args.source_format, args.id_column, args.path_column)
    stats = RunStats(total=None if args.no_count else count_items(*source_args))
    sink = _open(args, settings)
    todo = None if stats.total is None else max(0, stats.total - len(sink.done_ids))
    show = args.progress or (not args.no_progress and args.out is not None
                             and sys.stderr.isatty())
    try:
        with Progress(todo, enabled=show) as progress:
            if args.engine == "ray":
                from fashiontag.tagging.ray_runner import tag_catalog_ray

                tag_catalog_ray(open_sources(*source_args), sink, settings, stats=stats,
                                progress=progress, workers=args.workers,
                                address=args.ray_address, batch_size=args.batch_size)
            else:
                from fashiontag.tagging.runner import tag_catalog

                tag_catalog(open_sources(*source_args), sink, settings, stats=stats,
                            progress=progress)
    finally:
        sink.close()
        stats.finish()
        where = f"; records in {args.out}" if args.out else ""
        print(f"fashiontag tag: {stats.summary()}{where}", file=sys.stderr)
        if args.stats_json:
            args.stats_json.write_text(json.dumps(stats.to_dict(), indent=2))
    if stats.deferred:
        print(f"fashiontag tag: {stats.deferred} images deferred because the server was "
              "unavailable; rerun with --resume to tag them", file=sys.stderr)
        return 3
    return 1 if stats.failed and args.strict else 0


def register(sub: argparse._SubParsersAction) -> None:

    from fashiontag.tagging.sources import SOURCE_KINDS

    p = sub.add_parser(
        "tag", help="tag a catalog (directory, list, CSV or image files) against running servers",
        description="One record per image (id, path, attributes, model, model_version — or "
                    "error, error_type). With --out, a run killed at any point continues with "
                    "--resume and ends with every image exactly once.")
    p.add_argument("source", nargs="+", help="a directory (recursive), a text file of paths "
                   "(.txt/.lst/.list), a CSV with id and path columns (.csv), or image files; "
                   "each may be a URL (http(s)://, s3://bucket/prefix/, gs://...; needs "
                   "fashiontag[remote]), and lists and CSVs may name URLs")
    p.add_argument("--out", type=Path, help="JSONL file (or Parquet folder); default stdout")
    p.add_argument("--format", choices=["jsonl", "parquet"], default="jsonl")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--resume", action="store_true", help="skip ids already in --out")
    mode.add_argument("--overwrite", action="store_true", help="start --out afresh")
    p.add_argument("--url", action="append", metavar="HOST:PORT",
                   help="server gRPC address; repeat (or comma-separate) for several servers; "
                        "a gRPC target such as dns:///fashiontag:8001 is balanced over every "
                        "address it resolves to (default 127.0.0.1:8001)")
    p.add_argument("--balance", choices=["least-loaded", "round-robin"], default="least-loaded")
    p.add_argument("--engine", choices=["local", "ray"], default="local")
    p.add_argument("--decode", choices=DECODE_MODES, default=DEFAULT_DECODE,
                   help="where JPEGs are decoded: here (uint8 tiles sent to the attribute model) "
                        "or in the server's preprocess model; default: "
                        f"{DEFAULT_DECODE}, the one measured to cost less CPU per image")
    p.add_argument("--shared-memory", action="store_true",
                   help="decode here and pass tiles through Triton's system shared memory "
                        "(the server must run on this host; implies --decode client)")
    p.add_argument("--concurrency", type=POSITIVE_INT, default=16,
                   help="images in flight (per worker)")
    p.add_argument("--load-threads", type=POSITIVE_INT, default=2,
                   help="file read/decode threads")
    p.add_argument("--retries", type=NON_NEGATIVE_INT, default=8,
                   help="retries per image when a server is unavailable/overloaded/timing out")
    p.add_argument("--timeout", type=POSITIVE_FLOAT, default=DEFAULT_TIMEOUT_S,
                   help=f"seconds per request (default {DEFAULT_TIMEOUT_S:g})")
    p.add_argument("--outage-limit", type=POSITIVE_INT, default=64,
                   help="stop when this many images in a row failed because the server is "
                        "unavailable (they are not written; --resume tags them later)")
    p.add_argument("--tls-ca", type=Path, help="CA bundle (PEM) to verify the servers: "
                   "enables gRPC TLS")
    p.add_argument("--tls-cert", type=Path, help="client certificate (PEM), for mutual TLS")
    p.add_argument("--tls-key", type=Path, help="client private key (PEM), for mutual TLS")
    p.add_argument("--source-format", choices=SOURCE_KINDS, default="auto")
    p.add_argument("--id-column", default="id", help="CSV column holding the image id")
    p.add_argument("--path-column", default="path", help="CSV column holding the image path")
    p.add_argument("--no-count", action="store_true",
                   help="skip counting the source first (no ETA)")
    p.add_argument("--progress", action="store_true", help="show the bar even when not a TTY")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--stats-json", type=Path, help="also write the summary as JSON here")
    p.add_argument("--experimental", action="store_true",
                   help="also record attributes the taxonomy marks experimental (never "
                        "validated on real photos; left out by default)")
    p.add_argument("--strict", action="store_true", help="exit 1 if any image failed")
    ray = p.add_argument_group("--engine ray")
    ray.add_argument("--workers", type=POSITIVE_INT, default=None,
                     help="Ray actors calling the servers (default: one per URL, at least 2)")
    ray.add_argument("--batch-size", type=POSITIVE_INT, default=64,
                     help="images per Ray Data batch")
    ray.add_argument("--ray-address", default=None,
                     help="cluster to join (e.g. 'auto' on a cluster node); default: "
                          "$RAY_ADDRESS, else a local Ray")
    p.set_defaults(func=cmd_tag)
