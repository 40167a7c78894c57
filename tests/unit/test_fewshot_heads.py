"""Few-shot heads on feature vectors: normalisation twins, head kinds, CV selection, saving."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fashiontag.fewshot.heads import (
    KINDS,
    FitOptions,
    fewshot_probabilities,
    fit_fewshot_head,
    normalize,
    propagate_labels,
    select_fewshot_head,
    stratified_folds,
)
from fashiontag.model.heads import load_heads, save_heads
from fashiontag.model.network import NormalizedLinearHead, normalize_features
from fashiontag.taxonomy import Attribute, Taxonomy


def _clusters(per_class: int, classes: int = 3, dim: int = 64, views: int = 2, seed: int = 0,
              spread: float = 0.3):
    """Non-negative features (like pooled ReLU6 activations) around one centre per class."""
    rng = np.random.default_rng(seed)
    centres = rng.uniform(0, 2, (classes, dim))
    labels = np.repeat(np.arange(classes), per_class)
    base = centres[labels] + rng.normal(0, spread, (len(labels), dim))
    feats = np.stack([base + rng.normal(0, 0.05, base.shape) for _ in range(views)], axis=1)
    return np.maximum(feats, 0).astype(np.float32), labels


def test_numpy_and_graph_normalisation_agree():
    x = np.abs(np.random.default_rng(0).normal(size=(5, 32))).astype(np.float32)
    mean = normalize(x).mean(0)
    torch_out = normalize_features(torch.from_numpy(x), torch.from_numpy(mean)).numpy()
    assert np.allclose(normalize(x, mean), torch_out, atol=1e-6)


@pytest.mark.parametrize("kind", KINDS)
def test_every_head_kind_learns_separable_values(kind):
    feats, labels = _clusters(10)
    test_feats, test_labels = _clusters(20, seed=0)
    head = fit_fewshot_head(kind, feats, labels, 3)
    assert (fewshot_probabilities(head, test_feats[:, 0]).argmax(1) == test_labels).mean() > 0.9


def test_an_unlabelled_pool_is_used_for_centring_and_pseudo_labels():
    feats, labels = _clusters(1, spread=0.6)
    pool, pool_labels = _clusters(60, views=1, seed=0, spread=0.6)
    pseudo, confidence = propagate_labels(normalize(feats[:, 0]), labels,
                                          normalize(pool[:, 0]), 3)
    assert (pseudo == pool_labels).mean() > 0.9 and ((0 < confidence) & (confidence <= 1)).all()
    head = fit_fewshot_head("logistic", feats, labels, 3, pool=pool[:, 0])
    assert isinstance(head, NormalizedLinearHead)
    assert not torch.allclose(head.mean, torch.zeros_like(head.mean))


def test_select_head_cross_validates_every_kind_and_reports_out_of_fold_confusion():
    feats, labels = _clusters(8)
    fit = select_fewshot_head(feats, labels, 3, options=FitOptions(linear_steps=100))
    assert set(fit.candidates) == set(KINDS) and fit.kind in KINDS and fit.folds == 5
    assert fit.cv_accuracy == fit.candidates[fit.kind]
    best = max(fit.candidates.values())
    margin = 2 * np.sqrt(best * (1 - best) / len(labels))  # the default kind wins within noise
    assert fit.cv_accuracy == best or (fit.kind == KINDS[0] and fit.cv_accuracy >= best - margin)
    assert fit.confusion.sum() == len(labels) and np.trace(fit.confusion) / len(labels) == \
        pytest.approx(fit.cv_accuracy)


def test_one_image_per_value_skips_cross_validation():
    feats, labels = _clusters(1)
    fit = select_fewshot_head(feats, labels, 3)
    assert fit.cv_accuracy is None and fit.confusion is None and fit.kind == "logistic"


def test_folds_spread_every_value_evenly():
    folds = stratified_folds(np.repeat([0, 1], [10, 5]), 5)
    for value, size in ((0, 2), (1, 1)):
        assert np.bincount(folds[np.repeat([0, 1], [10, 5]) == value]).tolist() == [size] * 5


def test_few_shot_and_mlp_heads_round_trip_through_the_heads_file(tmp_path):
    from fashiontag.colour.head import ColourHead
    from fashiontag.colour.palette import colour_attribute
    from fashiontag.model.network import AttributeHead

    feats, labels = _clusters(8, dim=16)
    fewshot = fit_fewshot_head("logistic", feats, labels, 3)
    colour = colour_attribute()
    taxonomy = Taxonomy((Attribute("shape", ("a", "b", "c"), source="fewshot"),
                         Attribute("other", ("x", "y")), colour))
    heads = {"shape": fewshot, "other": AttributeHead(2, in_dim=16),
             colour.name: ColourHead(colour.values)}
    save_heads(tmp_path / "heads.pt", taxonomy, heads)
    loaded_taxonomy, loaded = load_heads(tmp_path / "heads.pt")
    assert loaded_taxonomy == taxonomy
    assert type(loaded["shape"]) is NormalizedLinearHead
    assert np.allclose(fewshot_probabilities(loaded["shape"], feats[:, 0]),
                       fewshot_probabilities(fewshot, feats[:, 0]))
    assert loaded[colour.name].config() == heads[colour.name].config()
