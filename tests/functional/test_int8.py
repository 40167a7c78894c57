"""The INT8 model `make model` builds: its recorded check, a live re-check, and serving it.

The full check (every real photo of the test photographers, 1,000 held-out renders) runs when
the model is exported and is recorded in the file; here it is read back, and a smaller live
check runs both INT8 runtimes again on held-out images so a regression in either shows up.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from fashiontag.export.precision_check import (
    MAX_ACCURACY_LOSS,
    MIN_AGREEMENT,
    MIN_CATEGORY_AGREEMENT,
    compare_models,
)
from fashiontag.onnxio.metadata import read_metadata
from fashiontag.runtimes import RuntimeOptions, load_model
from fashiontag.taxonomy import CATEGORY, DEFAULT_TAXONOMY
from tests.conftest import LAYOUT
from tests.functional.conftest import free_port_config

FASHIONAI_HEADS = [n for n in DEFAULT_TAXONOMY.names if n != CATEGORY.name]


def _runtimes() -> list[str]:
    try:
        import openvino  # noqa: F401
    except ImportError:
        return ["onnxruntime"]
    return ["onnxruntime", "openvino"]


def test_int8_model_says_what_it_is_and_how_it_was_made(int8_model, built_model):
    meta = read_metadata(int8_model)
    assert meta.precision == "int8"
    assert meta.taxonomy == read_metadata(built_model).taxonomy
    assert meta.preprocess == read_metadata(built_model).preprocess
    recipe = meta.info["int8"]
    assert recipe["format"] == "QDQ" and recipe["activations"] == "uint8"
    assert recipe["reduce_range"] is False and recipe["calibration_images"] > 0


def test_int8_model_keeps_the_uint8_input_and_probability_output(int8_model):
    import onnx

    graph = onnx.load(str(int8_model)).graph
    assert graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.UINT8
    assert graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    ops = {n.op_type for n in graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops


def test_backbone_is_quantized_but_normalisation_and_heads_stay_fp32(int8_model):
    import onnx

    graph = onnx.load(str(int8_model)).graph
    float_inits = {i.name for i in graph.initializer if i.data_type == onnx.TensorProto.FLOAT}
    producer = {o: n.op_type for n in graph.node for o in n.output}
    convs = [n for n in graph.node if n.op_type == "Conv"]
    assert all(producer.get(c.input[1]) == "DequantizeLinear" for c in convs)  # INT8 weights
    assert producer.get(convs[0].input[0]) == "DequantizeLinear"  # quantized activations
    gemms = [n for n in graph.node if n.op_type == "Gemm"]
    assert gemms and all(g.input[1] in float_inits for g in gemms)
    for node in graph.node:
        if node.op_type in ("Softmax", "Concat", "Cast", "Sub", "Mul"):
            assert all(producer.get(i) != "DequantizeLinear" for i in node.input), node.name


def test_recorded_full_check_meets_the_garment_type_bounds_on_every_test_photo(int8_model):
    check = read_metadata(int8_model).info["int8"]["check"]
    assert check["category_images"] >= 800  # every photo of the test photographers
    loss = check["category_accuracy_fp32"] - check["category_accuracy"]
    assert loss <= MAX_ACCURACY_LOSS
    assert check["agreement"][CATEGORY.name] >= MIN_CATEGORY_AGREEMENT


@pytest.mark.parametrize("head", FASHIONAI_HEADS)
def test_recorded_agreement_per_head_meets_the_gate(int8_model, head):
    check = read_metadata(int8_model).info["int8"]["check"]
    assert check["agreement"][head] >= min(MIN_AGREEMENT, check["fp32_noise_floor"][head])
    assert check["agreement_rendered"][head] >= min(MIN_AGREEMENT,
                                                    check["fp32_noise_floor_rendered"][head])


def test_int8_report_states_whether_the_97_percent_goal_was_met(int8_model):
    report = json.loads(LAYOUT.precision_report("int8").read_text())
    check = report["check"]
    met = all(check["agreement"][h] >= MIN_AGREEMENT
              and check["agreement_rendered"][h] >= MIN_AGREEMENT for h in FASHIONAI_HEADS)
    assert check["goal_agreement_met"] is met
    assert check["passes"] is True


@pytest.mark.parametrize("runtime", _runtimes())
def test_live_recheck_on_held_out_images_in_each_runtime(int8_model, built_model, runtime):
    """300 photos, 200 renders: a smaller sample than the export's, the same gate with a little
    slack for the smaller sample."""
    report = compare_models(built_model, int8_model, read_metadata(built_model).taxonomy,
                            photos=300, rendered=200,
                            options=RuntimeOptions(runtime=runtime, threads=2))
    assert report.category_images == 300
    assert report.category_accuracy_loss <= MAX_ACCURACY_LOSS + 0.01
    assert report.agreement[CATEGORY.name] >= MIN_CATEGORY_AGREEMENT - 0.01
    for where, head, value, required in report.checks():
        if head in FASHIONAI_HEADS:
            assert value >= required - 0.03, (where, head)


def test_int8_is_served_through_triton_with_openvino(tmp_path, int8_model, sample_photos):
    pytest.importorskip("openvino")
    from tritonclient.grpc import InferenceServerClient

    from fashiontag.client import TagClient
    from fashiontag.images import preprocess_bytes
    from fashiontag.serving.repository import ServingSettings, build_repository
    from fashiontag.serving.server import TritonServer

    repo = build_repository(int8_model, tmp_path / "repo",
                            ServingSettings(runtime="openvino", attribute_threads=2))
    blobs = [p.read_bytes() for p in sample_photos]
    expected = load_model(int8_model, RuntimeOptions(runtime="openvino", threads=2)).run(
        np.stack([preprocess_bytes(b) for b in blobs]))
    with TritonServer(free_port_config(repo, log_path=tmp_path / "server.log")) as server, \
            TagClient(server.grpc_url, timeout_s=120) as client:
        assert client.taxonomy == read_metadata(int8_model).taxonomy
        served = client.tag_batch(blobs)
        config = InferenceServerClient(server.grpc_url).get_model_config(
            "fashiontag_attributes", as_json=True)
    params = {k: v["string_value"] for k, v in config["config"]["parameters"].items()}
    assert params["runtime"] == "openvino" and params["precision"] == "int8"
    taxonomy = read_metadata(int8_model).taxonomy
    for attrs, probs in zip(served, expected, strict=True):
        for name in attrs:
            s = taxonomy.slices[name]
            got = np.array(list(attrs.probabilities(name).values()))
            np.testing.assert_allclose(got, probs[s], atol=1e-3)
