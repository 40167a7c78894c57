"""The real clothing photos: loading the shared copy, photographer splits, training targets."""

from __future__ import annotations

import numpy as np
import pytest

from fashiontag.errors import FashiontagError
from fashiontag.model.datasets import clothing
from fashiontag.taxonomy import DEFAULT_TAXONOMY


@pytest.fixture(scope="module")
def photos():
    return clothing.load()


def test_the_shared_copy_loads_every_photo_with_its_photographer(photos):
    assert len(photos) == 4369
    assert len({p.sender for p in photos}) == 232
    assert all(p.path.exists() for p in photos[:50])
    assert {p.label for p in photos} >= {"T-Shirt", "Pants", "Not sure", "Blazer"}


def test_no_photographer_is_on_two_sides_of_the_split(photos):
    splits = clothing.sender_split(photos)
    train, val, test = (splits.senders(part) for part in ("train", "val", "test"))
    assert not train & val and not train & test and not val & test
    assert len(splits.train) + len(splits.val) + len(splits.test) == len(photos)
    share = len(splits.test) / len(photos)
    assert 0.18 <= share <= 0.25 and len(splits.senders("test")) >= 50


def test_the_split_is_the_same_on_every_run_and_in_any_order(photos):
    again = clothing.sender_split(list(reversed(photos)))
    assert {p.image for p in again.test} == {p.image for p in clothing.sender_split(photos).test}


def test_prolific_photographers_always_train(photos):
    splits = clothing.sender_split(photos)
    counts = {}
    for p in photos:
        counts[p.sender] = counts.get(p.sender, 0) + 1
    big = {s for s, n in counts.items() if n > 0.03 * len(photos)}
    assert big and big <= splits.senders("train")


def test_targets_merge_aliases_skip_unlabelled_and_carry_weak_labels(photos):
    category = DEFAULT_TAXONOMY.category
    sample = [next(p for p in photos if p.label == label)
              for label in ("Blazer", "Not sure", "T-Shirt", "Hoodie", "Shorts", "Shoes")]
    t = clothing.targets(sample, DEFAULT_TAXONOMY)
    sleeve, pant = DEFAULT_TAXONOMY["sleeve_length"], DEFAULT_TAXONOMY["pant_length"]
    assert t["category"].tolist() == [category.index("Outwear"), -1, category.index("T-Shirt"),
                                      category.index("Hoodie"), category.index("Shorts"),
                                      category.index("Shoes")]
    assert t["sleeve_length"].tolist() == [-1, -1, sleeve.index("Short Sleeves"),
                                           sleeve.index("Long Sleeves"), -1, -1]
    assert t["pant_length"].tolist() == [-1, -1, -1, -1, pant.index("Short Pant"), -1]
    assert all(v.dtype == np.int64 for v in t.values())


@pytest.mark.parametrize("attribute, value, side", [
    ("sleeve_length", "Cup Sleeves", "short"), ("sleeve_length", "Wrist Length", "long"),
    ("sleeve_length", "Invisible", None), ("sleeve_length", None, None),
    ("pant_length", "Cropped Pant", "full"), ("pant_length", "Short Pant", "short"),
])
def test_fine_values_fall_on_one_side_of_short_and_long(attribute, value, side):
    assert clothing.coarse(attribute, value) == side


def test_every_fine_value_but_invisible_has_a_side():
    for name, groups in clothing.COARSE_GROUPS.items():
        values = [v for group in groups.values() for v in group]
        assert sorted(values) == sorted(v for v in DEFAULT_TAXONOMY[name].values
                                        if v != "Invisible")


def test_a_missing_data_set_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv(clothing.ENV_VAR, str(tmp_path))
    with pytest.raises(FashiontagError, match="make data"):
        clothing.load()
