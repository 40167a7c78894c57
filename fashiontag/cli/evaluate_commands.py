"""``evaluate``: accuracy, confusion matrix and calibration on labelled real photos;
``model-card``: the model card written from those scores and the training report."""

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


def cmd_model_card(args: argparse.Namespace) -> int:
    from fashiontag.model_card import read_report, render_model_card
    from fashiontag.onnxio.metadata import read_metadata

    artifacts = Artifacts(args.artifacts)
    model = args.model or artifacts.model()
    training = read_report(artifacts.training_report)
    evaluation = read_report(artifacts.evaluation_report, required=False)
    taxonomy = read_metadata(model).taxonomy  # what the exported model serves
    used = [artifacts.training_report.name, model.name]
    if evaluation is not None:
        used.insert(1, artifacts.evaluation_report.name)
    card = render_model_card(training, taxonomy, evaluation, sources=", ".join(used))
    if args.out is None:
        print(card, end="")
    else:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(card)
        print(f"model card written to {args.out}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("model-card", help="write the model card (intended use, data and "
                                          "licences, per-attribute scores, failure modes) "
                                          "from the training and evaluation reports")
    p.add_argument("--out", type=Path, help="Markdown file to write (default: stdout), e.g. "
                                            "docs/model-card.md")
    p.add_argument("--model", type=Path, help="exported ONNX whose taxonomy the card describes "
                                              "(default: the artifacts' FP32)")
    add_artifacts_flag(p)
    p.set_defaults(func=cmd_model_card)

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
