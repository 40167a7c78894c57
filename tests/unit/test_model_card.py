"""The model card is regenerated from the reports: a small synthetic build's numbers, attributes
(one the current taxonomy does not have, as a retrained model may) and mistakes reach the card;
`fashiontag model-card` writes it from an artifacts folder and refuses a missing report."""

from __future__ import annotations

import json

from fashiontag.cli import main
from fashiontag.model_card import render_model_card
from fashiontag.taxonomy import DEFAULT_TAXONOMY, Attribute
from tests.onnx_files import write_metadata_model

FIT = Attribute(name="fit", values=("Slim", "Regular", "Oversized"), source="studio",
                description="How loose the garment is.", applies_to=("T-Shirt", "Shirt"),
                experimental=True)
TAXONOMY = DEFAULT_TAXONOMY.subset(["category", "sleeve_length"]).with_attribute(FIT)

TRAINING = {
    "signature": "feedc0ffee123456",
    "config": {"tune_from": "12", "rendered": "{'train': 40, 'test': 10}"},
    "finetune": {"epochs": 3, "steps": 21, "device": "cpu"},
    "seconds": {"total": 42.4},
    "data": {"clothing": {"train": {"photos": 30, "photographers": 4, "labelled": 29},
                          "test": {"photos": 12, "photographers": 3, "labelled": 11}},
             "used": {"train": 29, "test": 11}},
    "heads": {
        "category": {"experimental": False, "real_photos": {
            "examples": 11, "accuracy": 0.7273, "ece_before": 0.2101, "ece": 0.0412}},
        "sleeve_length": {"experimental": False,
                          "real_photos": {"examples": 9, "accuracy": 0.8889, "ece_before": 0.3,
                                          "ece": 0.05, "short_long_accuracy": 0.9111},
                          "renders": {"examples": 10, "accuracy": 0.6, "ece": 0.07}},
        "fit": {"experimental": True, "renders": {"examples": 10, "accuracy": 0.5556,
                                                  "ece": 0.123}},
    },
    "fixed_heads": {},
}
EVALUATION = {"fp32 onnxruntime": {
    "source": "clothing:test", "predictor": "fashiontag.onnx", "images": 11, "failed": [],
    "attributes": {
        "category": {"images": 11, "with_value": 11, "accuracy": 0.6364, "ece": 0.0877,
                     "confusion": {"Dress": {"Dress": 4, "Skirt": 3}, "Shirt": {"Shirt": 4}}},
        "sleeve_length": {"images": 9, "with_value": 7, "accuracy": 0.7778, "short_long": True,
                          "ece": None, "confusion": {"short": {"short": 6, "None": 2, "long": 1}}},
    }}}


def test_the_reports_numbers_and_attributes_flow_into_the_card():
    card = render_model_card(TRAINING, TAXONOMY, EVALUATION, sources="synthetic")
    assert "`feedc0ffee123456`" in card and f"`{TAXONOMY.id}`" in card
    assert "| `category` | validated | all | real photos | 11 | 0.727 | – | 0.210 → 0.041 |" \
        in card
    assert "| `sleeve_length` | validated |" in card and "| 9 | 0.889 | 0.911 |" in card
    assert "| `fit` | experimental | T-Shirt, Shirt | renders | 10 | 0.556 | – | – → 0.123 |" \
        in card  # an attribute DEFAULT_TAXONOMY does not have (a retrained model's)
    assert "| clothing | test | 12 | 3 | 11 |" in card
    flat = " ".join(card.split())  # prose is wrapped at 100 characters
    assert "(40 train, 10 test)" in flat and "3 epochs (21 steps on cpu)" in flat
    assert "| `category` | 11 | 11 | 0.636 | 0.088 |" in card  # as served
    assert "| `sleeve_length` (short/long) | 9 | 7 | 0.778 | – |" in card
    assert "Dress → Skirt (3)" in flat and "short → long (1)" in flat
    assert "2 of 9 photos got no value" in flat
    prose = flat.split("## What is experimental")[1]
    assert "Experimental: `fit`." in prose and "`sleeve_length` were checked" in prose
    assert "CC0 1.0" in flat and "Apache-2.0" in flat
    assert all(len(line) <= 100 for line in card.splitlines()
               if not line.startswith(("|", "<!--")))


def test_a_card_without_an_evaluation_report_still_has_the_training_scores():
    card = render_model_card(TRAINING, TAXONOMY)
    assert "| `fit` | experimental |" in card and "as served" not in card


def _write_model(path, taxonomy) -> None:
    """A real ONNX file carrying the exported metadata (the card reads only its taxonomy)."""
    write_metadata_model(path, taxonomy)


def test_the_command_writes_the_card_from_an_artifacts_folder(tmp_path, capsys):
    (tmp_path / "training_report.json").write_text(json.dumps(TRAINING))
    (tmp_path / "evaluation_report.json").write_text(json.dumps(EVALUATION))
    _write_model(tmp_path / "fashiontag.onnx", TAXONOMY)
    out = tmp_path / "docs" / "model-card.md"
    assert main(["model-card", "--artifacts", str(tmp_path), "--out", str(out)]) == 0
    assert out.read_text() == render_model_card(
        TRAINING, TAXONOMY, EVALUATION,
        sources="training_report.json, evaluation_report.json, fashiontag.onnx")


def test_the_command_refuses_a_missing_or_broken_report(tmp_path, capsys):
    assert main(["model-card", "--artifacts", str(tmp_path)]) == 2
    assert "training_report.json does not exist" in capsys.readouterr().err
    (tmp_path / "training_report.json").write_text("{not json")
    assert main(["model-card", "--artifacts", str(tmp_path)]) == 2
    assert "is not a JSON report" in capsys.readouterr().err
