import json

import numpy as np
import pytest

from fashiontag.client.results import TagResult, decode_probabilities
from fashiontag.taxonomy import DEFAULT_TAXONOMY, INVISIBLE


def _one_hot_row(choices: dict[str, str], confidence: float = 0.9) -> np.ndarray:
    """A probability vector whose top value per attribute is ``choices[name]`` (or the first)."""
    row = np.zeros(DEFAULT_TAXONOMY.total_values, np.float32)
    for attribute in DEFAULT_TAXONOMY:
        s = DEFAULT_TAXONOMY.slices[attribute.name]
        chosen = attribute.index(choices.get(attribute.name, attribute.values[0]))
        part = np.full(attribute.num_values, (1 - confidence) / (attribute.num_values - 1))
        part[chosen] = confidence
        row[s] = part
    return row


def test_top_value_and_confidence_per_attribute():
    row = _one_hot_row({"sleeve_length": "Long Sleeves", "category": "Dress"}, 0.91)
    attrs = decode_probabilities(DEFAULT_TAXONOMY, row)[0]
    assert list(attrs) == DEFAULT_TAXONOMY.names
    assert attrs["sleeve_length"].value == "Long Sleeves"
    assert attrs["sleeve_length"].confidence == pytest.approx(0.91)
    assert attrs["category"].value == "Dress"
    assert attrs.probabilities("category")["Dress"] == pytest.approx(0.91)


def test_invisible_is_reported_as_not_visible_not_as_a_value():
    row = _one_hot_row({"pant_length": INVISIBLE, "sleeve_length": "Cup Sleeves"})
    attrs = decode_probabilities(DEFAULT_TAXONOMY, row)[0]
    assert attrs["pant_length"].value is None and attrs["pant_length"].visible is False
    assert attrs["pant_length"].to_dict() == {"value": None, "confidence": 0.9, "visible": False}
    assert "pant_length" not in attrs.visible and "sleeve_length" in attrs.visible


def test_batch_rows_decode_independently():
    rows = np.stack([_one_hot_row({"category": "Bag"}), _one_hot_row({"category": "Coat"})])
    assert [a["category"].value for a in decode_probabilities(DEFAULT_TAXONOMY, rows)] == \
        ["Bag", "Coat"]


def test_width_mismatch_is_an_error_not_a_misread():
    with pytest.raises(ValueError, match="taxonomy has"):
        decode_probabilities(DEFAULT_TAXONOMY, np.zeros(10, np.float32))


def test_records_are_json_with_either_attributes_or_error():
    attrs = decode_probabilities(DEFAULT_TAXONOMY, _one_hot_row({}))[0]
    ok = TagResult("a", attributes=attrs, model="fashiontag", model_version="1").to_record()
    bad = TagResult("b", error="truncated JPEG", error_type="InvalidImageError").to_record()
    assert json.loads(json.dumps(ok))["attributes"]["category"]["value"] == "T-shirt/top"
    assert "error" not in ok and "attributes" not in bad
    assert bad["error_type"] == "InvalidImageError"
