"""``evaluate``: accuracy, confusion matrix and calibration on labelled real photos."""

from __future__ import annotations

import argparse
from pathlib import Path

from fashiontag.artifacts import Artifacts
from fashiontag.cli._common import POSITIVE_INT, add_artifacts_flag


def cmd_evaluate(args: argparse.Namespace) -> int:
    from fashiontag.evaluation import (
        evaluate_model,
        evaluate_server,
        format_evaluation,
        read_labelled,
        write_evaluation,
    )
    from fashiontag.labels import first_images

    items = read_labelled(args.source)
    if args.limit:
        items = first_images(items, args.limit)
    if args.serve_url:
        result = evaluate_server(items, args.serve_url, source=args.source)
    else:
        model = args.model or Artifacts(args.artifacts).model()
        result = evaluate_model(items, model, runtime=args.runtime, source=args.source)
    print(format_evaluation(result))
    if args.json:
        print(f"\nwritten to {write_evaluation(result, args.json)}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="score tags against labelled real photos: accuracy per "
                                        "attribute, confusion matrix, calibration (ECE)")
    p.add_argument("source", help="a folder of garment-type folders, a CSV of labels "
                                  "(path,value named after its attribute, as the studio "
                                  "exports; path,attribute,value; image,attribute,value,unsure; "
                                  "FashionAI's label.csv), or clothing:test|val|train "
                                  "(the photographer splits of the real photos)")
    p.add_argument("--serve-url", metavar="HOST:PORT",
                   help="score a running server (gRPC) instead of a model file in-process")
    p.add_argument("--model", type=Path, help="exported ONNX (default: the artifacts' FP32)")
    p.add_argument("--runtime", choices=["onnxruntime", "openvino"], default="onnxruntime")
    p.add_argument("--limit", type=POSITIVE_INT, help="score only the first N images")
    p.add_argument("--json", type=Path, help="also write the scores as JSON here")
    add_artifacts_flag(p)
    p.set_defaults(func=cmd_evaluate)
