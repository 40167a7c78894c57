"""``fashiontag evaluate``: scores on labelled real photos, in-process and against a server."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys

import pytest

from fashiontag.cli import main
from fashiontag.errors import FashiontagError
from fashiontag.evaluation import read_labelled, score
from fashiontag.labels import by_image
from fashiontag.model.datasets import clothing
from fashiontag.taxonomy import DEFAULT_TAXONOMY
from tests.conftest import ROOT


def _fashiontag(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fashiontag", *args], capture_output=True,
                          text=True, timeout=600, cwd=ROOT)


def test_evaluate_prints_accuracy_confusion_and_calibration_for_unseen_photographers(
        built_model, tmp_path):
    out = tmp_path / "scores.json"
    done = _fashiontag("evaluate", "clothing:test", "--limit", "60", "--model", str(built_model),
                       "--json", str(out))
    assert done.returncode == 0, done.stderr
    assert "confusion matrix" in done.stdout and "sleeve_length (short/long)" in done.stdout
    scores = json.loads(out.read_text())
    assert scores["images"] == 60 and not scores["failed"]
    category = scores["attributes"]["category"]
    assert category["images"] == 60 and 0.5 <= category["accuracy"] <= 1.0
    assert 0.0 <= category["ece"] <= 0.5
    assert sum(sum(row.values()) for row in category["confusion"].values()) == 60


def test_a_folder_of_type_folders_is_scored_against_the_running_server(server, tmp_path):
    test = clothing.sender_split(clothing.load()).test
    for label in ("T-Shirt", "Pants", "Shoes", "Blazer"):  # Blazer: merged into Outwear
        folder = tmp_path / "catalog" / label
        folder.mkdir(parents=True)
        for photo in [p for p in test if p.label == label][:3]:
            shutil.copy2(photo.path, folder / photo.path.name)
    done = _fashiontag("evaluate", str(tmp_path / "catalog"), "--serve-url", server.grpc_url,
                       "--json", str(tmp_path / "s.json"))
    assert done.returncode == 0, done.stderr
    scores = json.loads((tmp_path / "s.json").read_text())
    assert scores["images"] == 12 and scores["predictor"].startswith("server")
    assert set(scores["attributes"]["category"]["confusion"]) == {"T-Shirt", "Pants", "Shoes",
                                                                  "Outwear"}
    assert scores["attributes"]["sleeve_length"]["short_long"] is True
    assert scores["attributes"]["sleeve_length"]["images"] == 3  # the T-shirts
    assert scores["attributes"]["pant_length"]["images"] == 3  # the pants


def test_the_annotation_teams_attribute_file_is_scored_value_by_value(built_model, tmp_path,
                                                                      capsys):
    """``image,attribute,value,unsure`` (the shared ``attributes.csv``): uuids resolved against
    the ``images/`` folder next to it; run in-process, as a user runs the command."""
    photos = [p for p in clothing.sender_split(clothing.load()).test if p.label == "T-Shirt"][:4]
    (tmp_path / "images").mkdir()
    path = tmp_path / "attributes.csv"
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["image", "attribute", "value", "unsure"])
        for i, p in enumerate(photos):
            shutil.copy2(p.path, tmp_path / "images" / p.path.name)
            writer.writerow([p.image, "category", "T-Shirt", ""])
            writer.writerow([p.image, "sleeve_length", "Short Sleeves", "?" if i else ""])
    images = by_image(read_labelled(path))
    assert len(images) == 4 and {a: i.value for a, i in next(iter(images.values())).items()} \
        == {"category": "T-Shirt", "sleeve_length": "Short Sleeves"}
    out = tmp_path / "scores.json"
    assert main(["evaluate", str(path), "--model", str(built_model), "--json", str(out)]) == 0
    assert "4 labelled images" in capsys.readouterr().out
    sleeve = json.loads(out.read_text())["attributes"]["sleeve_length"]
    assert sleeve["images"] == 4 and sleeve["short_long"] is False and sleeve["ece"] is not None


def test_a_label_that_is_no_value_is_refused_with_its_file(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text(f"{clothing.load()[0].path},category,Spacesuit\n")
    items = read_labelled(path)
    with pytest.raises(FashiontagError, match="Spacesuit"):
        score(items, {items[0].path: None}, DEFAULT_TAXONOMY)
