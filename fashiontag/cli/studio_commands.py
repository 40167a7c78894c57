"""``studio``: the labelling web page (define, label, suggest, train & deploy, roll back)."""

from __future__ import annotations

import argparse
from pathlib import Path

from fashiontag.cli._common import PORT, add_artifacts_flag, read_admin_key


def cmd_studio(args: argparse.Namespace) -> int:
    from werkzeug.serving import make_server

    from fashiontag.artifacts import SOURCE_REPOSITORY
    from fashiontag.serving.server import find_free_port
    from fashiontag.studio.app import StudioConfig, create_app

    port = args.port or find_free_port(args.host)
    cfg = StudioConfig(catalog=tuple(args.catalog), artifacts=args.artifacts,
                       repository=args.repository or SOURCE_REPOSITORY,
                       serve_url=args.serve_url,
                       admin_key=read_admin_key(args) if args.serve_url else None,
                       host=args.host, port=port)
    app = create_app(cfg)
    app.studio.tags.refresh()
    server = make_server(args.host, port, app, threaded=True)
    print(f"fashiontag studio on http://{args.host}:{port}/ ({len(app.studio.catalog)} images"
          f"{', tags from ' + args.serve_url if args.serve_url else ''}); Ctrl-C to stop",
          flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("studio", help="labelling web page: define an attribute, label images, "
                                      "train & deploy it to the running server, roll back")
    p.add_argument("--catalog", type=Path, nargs="+", required=True,
                   help="a folder, a list or a CSV of images (as `fashiontag tag` reads)")
    p.add_argument("--serve-url", metavar="HOST:PORT",
                   help="gRPC address of the server to read tags from and deploy to (started "
                        "with --model-control explicit for train & deploy)")
    p.add_argument("--admin-key-file", type=Path,
                   help="the operator's admin key of that server (default "
                        "$FASHIONTAG_ADMIN_KEY); it stays in this process, never in the page")
    p.add_argument("--repository", type=Path, help="model repository the server serves")
    p.add_argument("--host", default="127.0.0.1", help="interface to bind (default loopback)")
    p.add_argument("--port", type=PORT, default=8765, help="0 picks a free port")
    add_artifacts_flag(p)
    p.set_defaults(func=cmd_studio)
