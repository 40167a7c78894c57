import json

import numpy as np
import pytest

from fashiontag.client.results import TagResult, decode_probabilities
from fashiontag.taxonomy import DEFAULT_TAXONOMY, INVISIBLE, Attribute, Taxonomy

EXPERIMENTAL = [a.name for a in DEFAULT_TAXONOMY if a.experimental]


def _one_hot_row(choices: dict[str, str], confidence: float = 0.9,
                 taxonomy: Taxonomy = DEFAULT_TAXONOMY) -> np.ndarray:
    """A probability vector whose top value per attribute is ``choices[name]`` (or the first)."""
    row = np.zeros(taxonomy.total_values, np.float32)
    for attribute in taxonomy:
        s = taxonomy.slices[attribute.name]
        chosen = attribute.index(choices.get(attribute.name, attribute.values[0]))
        part = np.full(attribute.num_values, (1 - confidence) / (attribute.num_values - 1))
        part[chosen] = confidence
        row[s] = part
    return row


def test_top_value_and_confidence_per_attribute():
    row = _one_hot_row({"sleeve_length": "Long Sleeves", "category": "Dress"}, 0.91)
    attrs = decode_probabilities(DEFAULT_TAXONOMY, row)[0]
    assert attrs["sleeve_length"].value == "Long Sleeves"
    assert attrs["sleeve_length"].confidence == pytest.approx(0.91)
    assert attrs["category"].value == "Dress"
    assert attrs.probabilities("category")["Dress"] == pytest.approx(0.91)


def test_experimental_attributes_are_left_out_unless_asked_for():
    row = _one_hot_row({"category": "Dress"})
    default = decode_probabilities(DEFAULT_TAXONOMY, row)[0]
    everything = decode_probabilities(DEFAULT_TAXONOMY, row, experimental=True)[0]
    assert EXPERIMENTAL and not set(EXPERIMENTAL) & set(default)
    assert list(everything) == DEFAULT_TAXONOMY.names
    assert set(default) == set(DEFAULT_TAXONOMY.names) - set(EXPERIMENTAL)


def test_an_attribute_that_does_not_apply_to_the_predicted_garment_has_no_value():
    """Sleeve length of a shoe, pant length of a T-shirt: not applicable, never a guess."""
    row = _one_hot_row({"category": "Shoes", "sleeve_length": "Extra Long Sleeves"}, 0.92)
    attrs = decode_probabilities(DEFAULT_TAXONOMY, row, experimental=True)[0]
    for name in ("sleeve_length", "pant_length", "collar_design", "skirt_length"):
        assert attrs[name].applicable is False and attrs[name].value is None, name
        record = attrs[name].to_dict()
        assert record["applicable"] is False and record["value"] is None
        assert "confidence" not in record
        others = 0.08 / (DEFAULT_TAXONOMY.category.num_values - 1)
        expected = others * len(DEFAULT_TAXONOMY[name].applies_to)
        assert record["applicability"] == pytest.approx(expected, abs=1e-3)
    assert "sleeve_length" not in attrs.visible
    assert attrs["category"].value == "Shoes"


def test_an_attribute_that_applies_carries_its_value_and_applicability():
    row = _one_hot_row({"category": "Shorts", "pant_length": "Short Pant"}, 0.8)
    attrs = decode_probabilities(DEFAULT_TAXONOMY, row)[0]
    assert attrs["pant_length"].value == "Short Pant" and attrs["pant_length"].applicable
    # Shorts 0.8 + Pants' share of the rest: the chance that a pant length means anything here
    others = 0.2 / (DEFAULT_TAXONOMY.category.num_values - 1)
    assert attrs["pant_length"].applicability == pytest.approx(0.8 + others, abs=1e-4)
    assert attrs["sleeve_length"].applicable is False
    assert "applicability" not in attrs["category"].to_dict()


@pytest.mark.parametrize("garment", DEFAULT_TAXONOMY.category.values)
def test_no_record_reports_a_value_on_a_garment_it_cannot_apply_to(garment):
    row = _one_hot_row({"category": garment})
    attrs = decode_probabilities(DEFAULT_TAXONOMY, row, experimental=True)[0]
    for name, value in attrs.items():
        if DEFAULT_TAXONOMY[name].applies(garment):
            assert value.applicable, name
        else:
            assert not value.applicable and value.to_dict()["value"] is None, name


def test_invisible_is_reported_as_not_visible_not_as_a_value():
    row = _one_hot_row({"category": "Pants", "pant_length": INVISIBLE})
    attrs = decode_probabilities(DEFAULT_TAXONOMY, row)[0]
    assert attrs["pant_length"].value is None and attrs["pant_length"].visible is False
    record = attrs["pant_length"].to_dict()
    assert record["visible"] is False and record["confidence"] == 0.9
    assert "pant_length" not in attrs.visible


def test_a_taxonomy_without_a_garment_type_applies_everything():
    taxonomy = Taxonomy((Attribute("fabric", ("Denim", "Silk"), source="fewshot"),))
    attrs = decode_probabilities(taxonomy, np.array([0.3, 0.7], np.float32))[0]
    assert attrs["fabric"].value == "Silk" and attrs["fabric"].applicability is None


def test_batch_rows_decode_independently():
    rows = np.stack([_one_hot_row({"category": "Hat"}), _one_hot_row({"category": "Dress"})])
    assert [a["category"].value for a in decode_probabilities(DEFAULT_TAXONOMY, rows)] == \
        ["Hat", "Dress"]


def test_width_mismatch_is_an_error_not_a_misread():
    with pytest.raises(ValueError, match="taxonomy has"):
        decode_probabilities(DEFAULT_TAXONOMY, np.zeros(10, np.float32))


def test_records_are_json_with_either_attributes_or_error():
    attrs = decode_probabilities(DEFAULT_TAXONOMY, _one_hot_row({"category": "Shoes"}))[0]
    ok = TagResult("a", attributes=attrs, model="fashiontag", model_version="1").to_record()
    bad = TagResult("b", error="truncated JPEG", error_type="InvalidImageError").to_record()
    record = json.loads(json.dumps(ok))
    assert record["attributes"]["category"]["value"] == "Shoes"
    assert record["attributes"]["sleeve_length"]["applicable"] is False
    assert "error" not in ok and "attributes" not in bad
    assert bad["error_type"] == "InvalidImageError"
