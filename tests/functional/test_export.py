"""The exported model: metadata, dynamic batch axis, parity with PyTorch, honest accuracy."""

from __future__ import annotations

import numpy as np

from fashiontag.colour.palette import COLOUR_ATTRIBUTE_NAME, colour_attribute
from fashiontag.export.attribute_model import PARITY_TOLERANCE, parity_tiles
from fashiontag.images import DEFAULT_SPEC
from fashiontag.onnxio.metadata import read_metadata
from fashiontag.onnxio.torch_export import check_parity
from fashiontag.protocol import PIXELS, PROBABILITIES, TAXONOMY_ID
from fashiontag.runtimes import onnx_session
from fashiontag.taxonomy import DEFAULT_TAXONOMY
from tests.conftest import LAYOUT


def test_model_carries_taxonomy_and_preprocessing(built_model):
    meta = read_metadata(built_model)
    # the trained attributes in their order, then the fixed colour head (and any few-shot ones)
    assert meta.taxonomy.attributes[:len(DEFAULT_TAXONOMY)] == DEFAULT_TAXONOMY.attributes
    assert meta.taxonomy[COLOUR_ATTRIBUTE_NAME] == colour_attribute()
    assert meta.preprocess == DEFAULT_SPEC
    assert meta.info["backbone"] == "efficientnet-lite0"
    assert set(meta.info["test_accuracy"]) == set(DEFAULT_TAXONOMY.names)
    assert meta.outputs == (PROBABILITIES, TAXONOMY_ID)


def test_model_accepts_any_batch_size_and_names_its_taxonomy(built_model):
    taxonomy = read_metadata(built_model).taxonomy
    session = onnx_session(built_model)
    for batch in (1, 5, 17):
        out, ids = session.run([PROBABILITIES, TAXONOMY_ID],
                               {PIXELS: np.zeros((batch, 224, 224, 3), np.uint8)})
        assert out.shape == (batch, taxonomy.total_values)
        assert ids.shape == (batch, 1) and (ids == taxonomy.id).all()


def test_onnx_matches_pytorch_on_real_images(built_model):
    from fashiontag.model.backbone import load_backbone
    from fashiontag.model.heads import load_heads
    from fashiontag.model.network import AttributeHeads, AttributeModel

    taxonomy, heads = load_heads(LAYOUT.heads)
    model = AttributeModel(load_backbone(LAYOUT.backbone), AttributeHeads(taxonomy, heads))
    report = check_parity(model, built_model, parity_tiles(photos=16), taxonomy)
    assert report.max_abs_diff < PARITY_TOLERANCE
    assert report.argmax_agreement == 1.0


def test_the_served_backbone_is_the_fine_tuned_one_not_the_pretrained_one(built_model):
    from fashiontag.model.backbone import backbone_fingerprint, weights_fingerprint

    fingerprint = read_metadata(built_model).info["backbone_weights"]
    assert fingerprint == backbone_fingerprint(LAYOUT.backbone)
    assert fingerprint != backbone_fingerprint(None) != weights_fingerprint()
