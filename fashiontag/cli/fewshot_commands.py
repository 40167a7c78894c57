"""``fewshot add|suggest|labels|versions|rollback|activate``: new attributes in minutes."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from fashiontag.cli._common import POSITIVE_INT, Number, add_artifacts_flag, read_admin_key
from fashiontag.errors import FashiontagError


def _repository(args: argparse.Namespace) -> Path:
    from fashiontag.artifacts import SOURCE_REPOSITORY

    return args.repository or SOURCE_REPOSITORY


def cmd_add(args: argparse.Namespace) -> int:
    from fashiontag.fewshot.add import AddConfig, add_attribute
    from fashiontag.fewshot.features import VIEWS
    from fashiontag.fewshot.report import DataRequirements, format_report

    views = tuple(v.strip() for v in args.views.split(",") if v.strip())
    unknown = set(views) - set(VIEWS)
    if unknown or "original" not in views:
        raise FashiontagError(f"--views: {sorted(unknown) or 'original missing'}; known: "
                              f"{VIEWS} (original must be one of them)")
    cfg = AddConfig(name=args.name, images=tuple(args.images), artifacts=args.artifacts,
                    repository=_repository(args), serve_url=args.serve_url,
                    admin_key=read_admin_key(args) if args.serve_url else None, pool=args.pool,
                    views=views, force=args.force, description=args.description,
                    applies_to=tuple(t.strip() for t in args.applies_to.split(",") if t.strip()),
                    requirements=DataRequirements(min_per_value=args.min_per_value,
                                                  max_imbalance=args.max_imbalance))
    result = add_attribute(cfg)
    print(format_report(result.report))
    where = (f"loaded by the server at {args.serve_url}" if result.loaded else
             "written to the repository; served after the next server start (or pass "
             "--serve-url to a server started with --model-control explicit)")
    print(f"model version {result.version} {where}")
    print("seconds: " + json.dumps(result.seconds))
    return 0


def cmd_suggest(args: argparse.Namespace) -> int:
    from fashiontag.fewshot.suggest import suggest, write_suggestions

    suggestions = suggest(args.name, args.pool, args.artifacts, args.count, args.method)
    for s in suggestions:
        print(f"{s.entropy:.3f}  {s.margin:.3f}  {s.predicted:20s} {s.path}")
    if args.out:
        write_suggestions(suggestions, args.out)
        print(f"{len(suggestions)} suggestions written to {args.out}: fill in the value column, "
              f"then `fashiontag fewshot add {args.name} --images <labels.csv> {args.out}`")
    return 0


def cmd_labels(args: argparse.Namespace) -> int:
    from fashiontag.artifacts import Artifacts
    from fashiontag.fewshot.data import load_labelled
    from fashiontag.labels import write_csv

    source = Artifacts(args.artifacts).fewshot_labels(args.name)
    if not source.exists():
        raise FashiontagError(f"no labels recorded for {args.name!r} (looked in {source})")
    labelled = load_labelled(args.name, source)
    if args.out:
        write_csv(labelled.items, args.out)
        print(f"{len(labelled.items)} labels of {args.name!r} written to {args.out}")
    else:
        print(source.read_text(), end="")
    return 0


def cmd_versions(args: argparse.Namespace) -> int:
    from fashiontag.serving.versions import ModelVersions

    for info in ModelVersions(_repository(args)).info():
        print(info.describe())
    return 0


def _switch(args: argparse.Namespace, version: int | None) -> int:
    from fashiontag.serving.versions import ModelVersions

    versions = ModelVersions(_repository(args))
    current = versions.served()
    admin_key = read_admin_key(args) if args.serve_url else None
    if version is None:
        target = versions.roll_back(args.serve_url, admin_key)
    else:
        versions.switch(version, args.serve_url, admin_key=admin_key)
        target = version
    state = f"loaded by {args.serve_url}" if args.serve_url else "served after the next start"
    print(f"fashiontag_attributes: version {current} → {target} ({state})")
    return 0


def cmd_rollback(args: argparse.Namespace) -> int:
    return _switch(args, None)


def cmd_activate(args: argparse.Namespace) -> int:
    return _switch(args, args.version)


def _repository_flags(p: argparse.ArgumentParser, serve: bool = True) -> None:
    p.add_argument("--repository", type=Path, help="model repository (default: the checkout's)")
    if serve:
        p.add_argument("--serve-url", metavar="HOST:PORT",
                       help="gRPC address of a server started with --model-control explicit: "
                            "switch it live (in-flight requests complete)")
        p.add_argument("--admin-key-file", type=Path,
                       help="the operator's admin key that server locks model control with "
                            "(default: $FASHIONTAG_ADMIN_KEY)")


def register(sub: argparse._SubParsersAction) -> None:
    group = sub.add_parser("fewshot", help="train a new attribute from a few dozen images and "
                                           "hot-load it; active learning; rollback")
    fsub = group.add_subparsers(dest="fewshot_command", required=True)

    p = fsub.add_parser("add", help="train + export + version (+ hot-load) a new attribute")
    p.add_argument("name", help="attribute name (a Python identifier, e.g. pattern)")
    p.add_argument("--images", type=Path, nargs="+", required=True,
                   help="folder with one sub-folder per value, and/or label CSVs (path,value; "
                        "or the rows of this attribute in path,attribute,value or "
                        "image,attribute,value,unsure)")
    p.add_argument("--pool", type=Path, help="unlabelled images of the same kind: used for "
                   "feature centring and label propagation (semi-supervised)")
    p.add_argument("--views", default="original,flip",
                   help="augmented views per labelled image (comma-separated; also crop_centre, "
                        "crop_top_left, crop_top_right, crop_bottom_left, crop_bottom_right)")
    p.add_argument("--min-per-value", type=POSITIVE_INT, default=8)
    p.add_argument("--max-imbalance", type=Number(float, minimum=1.0), default=3.0,
                   help="largest value count / smallest value count allowed")
    p.add_argument("--force", action="store_true", help="train and serve despite the checks")
    p.add_argument("--description", default="")
    p.add_argument("--applies-to", default="", metavar="TYPE,TYPE",
                   help="garment types the attribute applies to (default: every garment); "
                        "records of other types mark it not applicable")
    add_artifacts_flag(p)
    _repository_flags(p)
    p.set_defaults(func=cmd_add)

    p = fsub.add_parser("suggest", help="rank unlabelled images by uncertainty (label these next)")
    p.add_argument("name")
    p.add_argument("--pool", type=Path, required=True)
    p.add_argument("--count", type=POSITIVE_INT, default=20)
    p.add_argument("--method", choices=["entropy", "margin"], default="entropy")
    p.add_argument("--out", type=Path, help="CSV to fill in (path,value,...)")
    add_artifacts_flag(p)
    p.set_defaults(func=cmd_suggest)

    p = fsub.add_parser("labels", help="export the labels an attribute was trained on (CSV)")
    p.add_argument("name")
    p.add_argument("--out", type=Path)
    add_artifacts_flag(p)
    p.set_defaults(func=cmd_labels)

    p = fsub.add_parser("versions", help="list model versions on disk (* = served)")
    _repository_flags(p, serve=False)
    p.set_defaults(func=cmd_versions)

    p = fsub.add_parser("rollback", help="serve the previous model version again")
    _repository_flags(p)
    p.set_defaults(func=cmd_rollback)

    p = fsub.add_parser("activate", help="serve a given model version (e.g. roll forward)")
    p.add_argument("version", type=POSITIVE_INT)
    _repository_flags(p)
    p.set_defaults(func=cmd_activate)
