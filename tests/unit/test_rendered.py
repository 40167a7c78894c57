"""The procedural renderer: labels valid and exact by construction, coverage, determinism."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest

from fashiontag.model.datasets.rendered import (
    CROPS,
    NECK_ATTRS,
    OUTFITS,
    OutfitSpec,
    outfit_labels,
    render_dataset,
    render_outfit,
    sample_outfit,
)
from fashiontag.taxonomy import FASHIONAI_ATTRIBUTES, INVISIBLE

ATTRS = {a.name: a for a in FASHIONAI_ATTRIBUTES}
LENGTHS = ("coat_length", "skirt_length", "pant_length")


def visible_values(name: str) -> list[str]:
    return [v for v in ATTRS[name].values if v != INVISIBLE]


def spec_with(outfit: str, crop: str = "full", seed: int = 0, **changes) -> OutfitSpec:
    """A sampled spec forced to an outfit/crop, with label fields valid for that outfit."""
    base = sample_outfit(np.random.default_rng(seed))
    coat = outfit.startswith("coat")
    bottom_attr = "pant_length" if outfit.endswith("pants") else "skirt_length"
    fields = dict(
        outfit=outfit, crop=crop, sleeve="Long Sleeves", bottom=visible_values(bottom_attr)[-1],
        neck_attr=None if coat else "neckline_design", neck=None if coat else "Round Neckline",
        coat_length="Regular Length" if coat else None, lapel="Notched" if coat else None,
    )
    fields.update(changes)
    return dataclasses.replace(base, **fields)


@pytest.fixture(scope="module")
def dataset():
    return render_dataset(1500, seed=0)


def test_image_shape_and_dtype():
    spec = sample_outfit(np.random.default_rng(1))
    img = render_outfit(spec)
    assert img.shape == (288, 224, 3) and img.dtype == np.uint8
    assert render_outfit(spec, (160, 128)).shape == (160, 128, 3)
    assert img.std() > 5  # something was drawn


def test_deterministic():
    a, la = render_dataset(16, seed=7)
    b, lb = render_dataset(16, seed=7)
    c, _ = render_dataset(16, seed=8)
    assert np.array_equal(a, b)
    assert all(np.array_equal(la[k], lb[k]) for k in la)
    assert not np.array_equal(a, c)
    spec = sample_outfit(np.random.default_rng(3))
    assert np.array_equal(render_outfit(spec), render_outfit(spec))


def test_labels_are_taxonomy_values():
    rng = np.random.default_rng(2)
    for _ in range(400):
        spec = sample_outfit(rng)
        labels = outfit_labels(spec)
        assert labels and set(labels) <= set(ATTRS)
        for name, value in labels.items():
            assert value in ATTRS[name].values, (name, value)


def test_dataset_labels_match_outfit_labels():
    images, labels = render_dataset(12, seed=5)
    rng = np.random.default_rng(5)
    for i in range(12):
        spec = sample_outfit(rng)
        expected = outfit_labels(spec)
        assert np.array_equal(images[i], render_outfit(spec))
        for name, arr in labels.items():
            want = ATTRS[name].index(expected[name]) if name in expected else -1
            assert arr[i] == want


@pytest.mark.parametrize("attribute", FASHIONAI_ATTRIBUTES, ids=lambda a: a.name)
def test_every_value_covered(dataset, attribute):
    _, labels = dataset
    idx = labels[attribute.name]
    counts = np.bincount(idx[idx >= 0], minlength=attribute.num_values)
    assert counts.min() >= 15, dict(zip(attribute.values, counts.tolist(), strict=True))
    assert (idx >= 0).mean() >= 0.25


def test_labels_follow_outfit():
    for outfit, crop in itertools.product(OUTFITS, CROPS):
        labels = outfit_labels(spec_with(outfit, crop))
        coat = outfit.startswith("coat")
        assert ("lapel_design" in labels) == coat and ("coat_length" in labels) == coat
        assert "sleeve_length" in labels
        pants = outfit.endswith("pants")
        assert ("pant_length" in labels) == pants and ("skirt_length" in labels) == (not pants)
        present = [a for a in NECK_ATTRS if a in labels]
        if coat:
            assert present == []  # a top under a coat carries no neck label
        elif crop == "lower":
            assert present == list(NECK_ATTRS)
        else:
            assert present == ["neckline_design"]


@pytest.mark.parametrize("outfit", OUTFITS)
def test_full_body_has_no_invisible(outfit):
    assert INVISIBLE not in outfit_labels(spec_with(outfit, "full")).values()


@pytest.mark.parametrize("outfit", OUTFITS)
def test_lower_crop_hides_upper_body(outfit):
    labels = outfit_labels(spec_with(outfit, "lower"))
    upper = ["sleeve_length", "lapel_design", *NECK_ATTRS]
    assert all(labels[a] == INVISIBLE for a in upper if a in labels)
    assert all(labels[a] != INVISIBLE for a in LENGTHS if a in labels)


def test_upper_crop_hides_low_hems_only():
    short = spec_with("coat_pants", "upper", coat_length="High Waist Length", bottom="Full Length")
    labels = outfit_labels(short)
    assert labels["coat_length"] == "High Waist Length"  # hem above the crop edge stays visible
    assert labels["pant_length"] == INVISIBLE
    assert labels["sleeve_length"] == "Long Sleeves" and labels["lapel_design"] == "Notched"
    long = dataclasses.replace(short, coat_length="Knee Length")
    assert outfit_labels(long)["coat_length"] == INVISIBLE
    for value in visible_values("skirt_length"):
        got = outfit_labels(spec_with("dress", "upper", bottom=value))["skirt_length"]
        assert got == INVISIBLE, value  # every skirt hem is below the fingertips


def test_bottom_hidden_under_long_coat_is_unlabelled():
    spec = spec_with("coat_pants", coat_length="Ankle&Floor Length", bottom="Short Pant")
    assert "pant_length" not in outfit_labels(spec)


def _field_changes(name: str) -> tuple[OutfitSpec, str, list[str]]:
    """A visible full-body spec and the spec field that carries attribute ``name``."""
    if name in NECK_ATTRS:
        spec = spec_with("top_pants", neck_attr=name, neck=visible_values(name)[0])
        return spec, "neck", visible_values(name)
    if name in ("coat_length", "lapel_design"):
        field = "coat_length" if name == "coat_length" else "lapel"
        return spec_with("coat_skirt", bottom="Floor Length"), field, visible_values(name)
    if name == "sleeve_length":
        return spec_with("top_pants", neck="Round Neckline"), "sleeve", visible_values(name)
    outfit = "top_pants" if name == "pant_length" else "top_skirt"
    return spec_with(outfit), "bottom", visible_values(name)


@pytest.mark.parametrize("attribute", FASHIONAI_ATTRIBUTES, ids=lambda a: a.name)
def test_each_labelled_choice_changes_pixels(attribute):
    base, field, values = _field_changes(attribute.name)
    renders = []
    for value in values:
        spec = dataclasses.replace(base, **{field: value})
        assert outfit_labels(spec)[attribute.name] == value
        renders.append(render_outfit(spec).astype(np.int16))
    for (va, a), (vb, b) in itertools.combinations(zip(values, renders, strict=True), 2):
        changed = (np.abs(a - b).max(axis=2) > 24).sum()
        assert changed >= 15, f"{attribute.name}: {va!r} vs {vb!r} differ in {changed} pixels"
