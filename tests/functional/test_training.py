"""Training on real photos: a fine-tuning smoke run, and what `make model`'s training reports.

The full training runs in `make model`; here a few steps on a few dozen real photos show that
fine-tuning learns (the loss falls), and the built model's report is checked for the numbers a
customer cares about: real-photo accuracy of photographers never trained on, and calibration.
"""

from __future__ import annotations

import json

import numpy as np
import torch

from fashiontag.images import preprocess_bytes
from fashiontag.model.backbone import load_backbone
from fashiontag.model.datasets import clothing
from fashiontag.model.features import trunk_extractor
from fashiontag.model.finetune import FinetuneConfig, finetune, tail_features
from fashiontag.onnxio.metadata import read_metadata
from fashiontag.taxonomy import DEFAULT_TAXONOMY
from tests.conftest import LAYOUT


def _activations(photos: list[clothing.ClothingPhoto]) -> np.ndarray:
    trunk = trunk_extractor(LAYOUT.cache)
    tiles = np.stack([preprocess_bytes(p.path.read_bytes()) for p in photos])
    views = np.stack([tiles, np.ascontiguousarray(tiles[:, :, ::-1])], axis=1)
    flat = trunk(views.reshape(-1, *tiles.shape[1:]))
    return flat.reshape(len(photos), 2, *flat.shape[1:])


def test_fine_tuning_a_few_steps_on_real_photos_lowers_the_loss(built_model):
    photos = [p for p in clothing.sender_split(clothing.load()).train if p.labelled][:48]
    acts = _activations(photos)
    targets = clothing.targets(photos, DEFAULT_TAXONOMY)
    sizes = {name: DEFAULT_TAXONOMY[name].num_values for name in targets}
    backbone = load_backbone()
    before = {k: v.clone() for k, v in backbone.tail_modules().state_dict().items()}
    torch.manual_seed(0)
    result = finetune(backbone, acts, targets, sizes,
                      FinetuneConfig(epochs=6, batch=16, lr=2e-3, label_smoothing=0.0))
    losses = [entry["loss"] for entry in result.history]
    assert len(losses) == 6 and result.steps == 18
    assert losses[-1] < 0.6 * losses[0], losses
    after = backbone.tail_modules().state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)  # the tail did change
    trunk_weights = backbone.net._blocks[0].state_dict()
    fresh = load_backbone().net._blocks[0].state_dict()
    assert all(torch.equal(trunk_weights[k], fresh[k]) for k in fresh)  # the trunk did not
    features = tail_features(backbone, acts[:, 0])
    assert features.shape == (48, 1280) and np.isfinite(features).all()


def test_the_training_report_scores_photographers_never_trained_on(built_model):
    report = json.loads(LAYOUT.training_report.read_text())
    data = report["data"]["clothing"]
    assert data["test"]["photographers"] >= 50 and data["test"]["labelled"] >= 500
    category = report["heads"]["category"]["real_photos"]
    values = DEFAULT_TAXONOMY.category.values
    assert np.array(category["confusion"]).shape == (len(values), len(values))
    assert category["examples"] == np.array(category["confusion"]).sum()
    assert category["accuracy"] >= 0.8  # a floor against regressions; README has the figures
    for name in ("sleeve_length", "pant_length"):
        assert report["heads"][name]["real_photos"]["short_long_accuracy"] >= 0.9, name


def test_calibration_lowers_the_garment_type_error_on_held_out_photographers(built_model):
    """Temperatures are fitted on the validation photographers; the test ones judge them."""
    category = json.loads(LAYOUT.training_report.read_text())["heads"]["category"]
    assert category["real_photos"]["ece"] < category["real_photos"]["ece_before"]
    assert category["real_photos"]["ece"] <= 0.08


def test_the_exported_model_carries_its_real_photo_scores(built_model):
    info = read_metadata(built_model).info
    assert info["real_photos"]["category"]["accuracy"] >= 0.8
    assert "ece" in info["real_photos"]["category"]
