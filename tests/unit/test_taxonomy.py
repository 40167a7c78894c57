import json

import numpy as np
import pytest

from fashiontag.taxonomy import (
    CATEGORY,
    DEFAULT_TAXONOMY,
    FASHIONAI_ATTRIBUTES,
    INVISIBLE,
    Attribute,
    Taxonomy,
    TaxonomyError,
)


def test_fashionai_taxonomy_has_8_attributes_and_54_values():
    assert len(FASHIONAI_ATTRIBUTES) == 8
    assert sum(a.num_values for a in FASHIONAI_ATTRIBUTES) == 54


def test_default_taxonomy_is_category_plus_fashionai():
    assert DEFAULT_TAXONOMY.names[0] == "category"
    assert DEFAULT_TAXONOMY.total_values == 54 + CATEGORY.num_values


@pytest.mark.parametrize("attribute", FASHIONAI_ATTRIBUTES, ids=lambda a: a.name)
def test_fashionai_attribute_starts_with_invisible_and_maps_its_csv_key(attribute):
    assert attribute.values[0] == INVISIBLE
    assert attribute.invisible_value == INVISIBLE
    assert attribute.fashionai_key == f"{attribute.name}_labels"
    assert DEFAULT_TAXONOMY.by_fashionai_key(attribute.fashionai_key) is attribute


def test_taxonomy_round_trips_through_json_with_same_fingerprint():
    text = DEFAULT_TAXONOMY.to_json()
    again = Taxonomy.from_json(text)
    assert again == DEFAULT_TAXONOMY
    assert again.fingerprint == DEFAULT_TAXONOMY.fingerprint
    assert json.loads(text)["format"] == 1


def test_slices_cover_the_probability_vector_without_gaps():
    covered = np.zeros(DEFAULT_TAXONOMY.total_values, dtype=int)
    for attribute in DEFAULT_TAXONOMY:
        s = DEFAULT_TAXONOMY.slices[attribute.name]
        assert s.stop - s.start == attribute.num_values
        covered[s] += 1
    assert (covered == 1).all()


def test_split_returns_one_view_per_attribute_and_rejects_wrong_width():
    probs = np.arange(DEFAULT_TAXONOMY.total_values, dtype=np.float32)[None]
    parts = DEFAULT_TAXONOMY.split(probs)
    assert list(parts) == DEFAULT_TAXONOMY.names
    assert parts["category"].shape == (1, CATEGORY.num_values)
    with pytest.raises(TaxonomyError, match="taxonomy expects"):
        DEFAULT_TAXONOMY.split(probs[:, :-1])


def test_with_attribute_appends_and_changes_fingerprint():
    extra = Attribute("fabric", ("Denim", "Silk", "Wool"), source="fewshot")
    grown = DEFAULT_TAXONOMY.with_attribute(extra)
    assert grown.names[-1] == "fabric"
    assert grown.fingerprint != DEFAULT_TAXONOMY.fingerprint
    assert grown.with_attribute(extra).names.count("fabric") == 1


@pytest.mark.parametrize("kwargs, message", [
    ({"name": "bad name", "values": ("a", "b")}, "identifier"),
    ({"name": "x", "values": ("a",)}, "at least two"),
    ({"name": "x", "values": ("a", "a")}, "duplicate"),
    ({"name": "x", "values": ("a", "b"), "invisible_value": "c"}, "not a value"),
])
def test_attribute_rejects_inconsistent_definitions(kwargs, message):
    with pytest.raises(TaxonomyError, match=message):
        Attribute(**kwargs)


def test_unknown_lookups_name_what_is_known():
    with pytest.raises(TaxonomyError, match="known"):
        DEFAULT_TAXONOMY["colour_of_moon"]
    with pytest.raises(TaxonomyError, match="expected one of"):
        CATEGORY.index("Bag")


def test_garment_types_merged_by_people_labels_are_aliases_of_one_value():
    assert CATEGORY.index("Blazer") == CATEGORY.index("Outwear")
    assert CATEGORY.canonical("Blouse") == "Shirt" and CATEGORY.canonical("Undershirt") == "Top"
    assert CATEGORY.canonical("T-Shirt") == "T-Shirt"
    assert not {"Blazer", "Blouse", "Undershirt"} & set(CATEGORY.values)


@pytest.mark.parametrize("name, garments, not_garments", [
    ("sleeve_length", ("T-Shirt", "Dress", "Outwear", "Hoodie"), ("Shoes", "Pants", "Skirt")),
    ("pant_length", ("Pants", "Shorts"), ("T-Shirt", "Dress", "Shoes")),
    ("skirt_length", ("Skirt", "Dress"), ("Pants", "Shirt")),
    ("coat_length", ("Outwear",), ("T-Shirt", "Dress")),
    ("collar_design", ("Shirt", "Polo", "Dress", "Outwear"), ("Hat", "Shorts")),
    ("neckline_design", ("Top", "Dress"), ("Shoes",)),
])
def test_each_fashionai_attribute_applies_to_the_garments_of_the_seed_tree(name, garments,
                                                                          not_garments):
    attribute = DEFAULT_TAXONOMY[name]
    assert all(attribute.applies(g) for g in garments)
    assert not any(attribute.applies(g) for g in not_garments)


def test_only_heads_validated_on_real_photos_are_not_experimental():
    real = {a.name for a in DEFAULT_TAXONOMY if not a.experimental}
    assert real == {"category", "sleeve_length", "pant_length"}


def test_hierarchy_flags_and_aliases_survive_json():
    again = Taxonomy.from_json(DEFAULT_TAXONOMY.to_json())
    assert again["sleeve_length"].applies_to == DEFAULT_TAXONOMY["sleeve_length"].applies_to
    assert again["coat_length"].experimental and not again["pant_length"].experimental
    assert again.category.aliases == CATEGORY.aliases


def test_an_attribute_applying_to_an_unknown_garment_type_is_refused():
    odd = Attribute("heel_height", ("Flat", "High"), source="fewshot", applies_to=("Sandals",))
    with pytest.raises(TaxonomyError, match="Sandals"):
        DEFAULT_TAXONOMY.with_attribute(odd)


def test_an_alias_must_name_an_existing_value():
    with pytest.raises(TaxonomyError, match="alias"):
        Attribute("x", ("a", "b"), aliases=(("c", "z"),))
