"""The server's ATTRIBUTES_JSON decoding: the client's sets, per version's own taxonomy."""

import json

import numpy as np

from fashiontag.attributes import decode_probabilities
from fashiontag.images import DEFAULT_SPEC
from fashiontag.onnxio.metadata import ModelMetadata
from fashiontag.protocol import ATTRIBUTES_MODEL, POSTPROCESS_MODEL
from fashiontag.serving.postprocess_model import PostprocessModel
from fashiontag.serving.repository import ServingSettings, model_configs
from fashiontag.taxonomy import DEFAULT_TAXONOMY, Attribute
from tests.onnx_files import write_metadata_model

GROWN = DEFAULT_TAXONOMY.with_attribute(Attribute("fabric", ("Denim", "Silk")))


def _rows(taxonomy, n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    rows = [np.concatenate([rng.dirichlet(np.ones(a.num_values)) for a in taxonomy])
            for _ in range(n)]
    return np.asarray(rows, dtype=np.float32)


def _model(tmp_path, taxonomy=DEFAULT_TAXONOMY) -> PostprocessModel:
    """Configured from the generated config, as Triton would (the model dir is a sibling of
    the attributes model's)."""
    config = model_configs(ModelMetadata(taxonomy, DEFAULT_SPEC), ServingSettings())
    params = {k: v.string_value for k, v in config[POSTPROCESS_MODEL].parameters.items()}
    model = PostprocessModel()
    model.configure(params, tmp_path / POSTPROCESS_MODEL)
    return model


def test_the_json_is_the_clients_attribute_set(tmp_path):
    rows = _rows(DEFAULT_TAXONOMY, 3)
    ids = np.full((3, 1), DEFAULT_TAXONOMY.id, dtype=np.int32)
    out = _model(tmp_path).decode(rows, ids)
    assert out.shape == (3, 1)
    expected = [s.to_dict() for s in decode_probabilities(DEFAULT_TAXONOMY, rows)]
    assert [json.loads(t) for t in out[:, 0]] == expected


def _write_version(repository, version: int, taxonomy) -> None:
    write_metadata_model(repository / ATTRIBUTES_MODEL / str(version) / "model.onnx", taxonomy)


def test_a_hot_loaded_version_is_decoded_with_its_own_taxonomy(tmp_path):
    model = _model(tmp_path)  # built before the few-shot version existed
    _write_version(tmp_path, 2, GROWN)
    rows = _rows(GROWN, 2, seed=1)
    out = model.decode(rows, np.full((2, 1), GROWN.id, dtype=np.int32))
    labelled = [json.loads(t) for t in out[:, 0]]
    assert labelled == [s.to_dict() for s in decode_probabilities(GROWN, rows)]
    assert "fabric" in labelled[0]


def test_an_unknown_taxonomy_answers_an_error_json_not_a_failed_request(tmp_path):
    rows = _rows(GROWN, 1)
    out = _model(tmp_path).decode(rows, np.full((1, 1), 12345, dtype=np.int32))
    assert "no known taxonomy has id 12345" in json.loads(out[0, 0])["error"]
