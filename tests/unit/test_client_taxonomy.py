"""Decoding responses with the taxonomy of the model version that produced them (hot reload)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fashiontag.client._common import TaxonomyBook, UnknownTaxonomyError, taxonomy_source
from fashiontag.protocol import (
    ATTRIBUTES_MODEL,
    PROBABILITIES,
    TAXONOMY_HISTORY_PARAMETER,
    TAXONOMY_ID,
    TAXONOMY_MODEL_PARAMETER,
    TAXONOMY_PARAMETER,
)
from fashiontag.taxonomy import DEFAULT_TAXONOMY, Attribute

OLD = DEFAULT_TAXONOMY
NEW = DEFAULT_TAXONOMY.with_attribute(Attribute("fabric", ("Denim", "Silk"), source="fewshot"))


def _response(probabilities: np.ndarray, taxonomy_id: int | None):
    """A real tritonclient InferResult around a ModelInferResponse, as the server sends it."""
    from tritonclient.grpc import InferResult, service_pb2

    response = service_pb2.ModelInferResponse(model_name="fashiontag", model_version="1")
    outputs = [(PROBABILITIES, "FP32", probabilities.astype(np.float32))]
    if taxonomy_id is not None:
        outputs.append((TAXONOMY_ID, "INT32", np.full((len(probabilities), 1), taxonomy_id,
                                                       np.int32)))
    for name, dtype, array in outputs:
        tensor = response.outputs.add()
        tensor.name, tensor.datatype = name, dtype
        tensor.shape.extend(array.shape)
        response.raw_output_contents.append(array.tobytes())
    return InferResult(response)


def _row(taxonomy, value: dict[str, str]) -> np.ndarray:
    row = np.zeros((1, taxonomy.total_values), np.float32)
    for attribute in taxonomy:
        s = taxonomy.slices[attribute.name]
        row[0, s.start + attribute.index(value.get(attribute.name, attribute.values[0]))] = 1.0
    return row


def _configs(current, history=(), with_ids=True):
    outputs = [{"name": PROBABILITIES}] + ([{"name": TAXONOMY_ID}] if with_ids else [])
    ensemble = {"config": {"output": outputs, "parameters": {
        TAXONOMY_MODEL_PARAMETER: {"string_value": ATTRIBUTES_MODEL}}}}
    attributes = {"config": {"parameters": {
        TAXONOMY_PARAMETER: {"string_value": current.to_json()},
        TAXONOMY_HISTORY_PARAMETER: {"string_value": json.dumps([t.to_dict() for t in history])},
    }}}
    return ensemble, attributes


def test_ensemble_config_points_at_the_model_holding_the_taxonomy():
    ensemble, attributes = _configs(OLD)
    assert taxonomy_source(ensemble) == ATTRIBUTES_MODEL
    assert taxonomy_source(attributes) is None


def test_old_and_new_version_responses_decode_with_their_own_labels():
    book = TaxonomyBook()
    book.load(*_configs(NEW, history=(OLD,)), ATTRIBUTES_MODEL)
    assert book.current == NEW and book.with_ids
    old = book.decode(_response(_row(OLD, {"category": "Dress"}), OLD.id))[0]
    new = book.decode(_response(_row(NEW, {"category": "Outwear", "fabric": "Silk"}), NEW.id))[0]
    assert "fabric" not in old and old["category"].value == "Dress"
    assert new["fabric"].value == "Silk" and new["category"].value == "Outwear"


def test_a_response_from_an_unknown_version_asks_for_a_refresh_instead_of_misreading():
    book = TaxonomyBook()
    book.load(*_configs(OLD), ATTRIBUTES_MODEL)
    with pytest.raises(UnknownTaxonomyError, match="no known taxonomy"):
        book.decode(_response(_row(NEW, {}), NEW.id))
    book.load(*_configs(NEW, history=(OLD,)), ATTRIBUTES_MODEL)  # what a refresh reads
    assert "fabric" in book.decode(_response(_row(NEW, {}), NEW.id))[0]


def test_models_without_taxonomy_ids_fall_back_to_the_width():
    book = TaxonomyBook()
    book.load(*_configs(OLD, with_ids=False), ATTRIBUTES_MODEL)
    assert not book.with_ids
    assert book.decode(_response(_row(OLD, {"category": "Hat"}), None))[0]["category"].value \
        == "Hat"
    with pytest.raises(UnknownTaxonomyError):
        book.decode(_response(_row(NEW, {}), None))
