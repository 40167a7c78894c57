"""Tiny real ONNX files carrying fashiontag's export metadata, for tests that read only the
metadata (taxonomy, preprocessing spec) and never run the graph."""

from __future__ import annotations

from pathlib import Path

import pytest

from fashiontag.spec import DEFAULT_SPEC
from fashiontag.taxonomy import Taxonomy


def write_metadata_model(path: Path, taxonomy: Taxonomy) -> Path:
    """An Identity graph whose metadata is what ``fashiontag export`` writes for ``taxonomy``."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    from fashiontag.onnxio.metadata import metadata_props

    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    model = helper.make_model(graph)
    helper.set_model_props(model, metadata_props(taxonomy, DEFAULT_SPEC, {}))
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path
