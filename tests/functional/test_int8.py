"""The INT8 model: its recorded gate, the file's structure, a live re-check, and serving it.

`make model` quantizes and checks the INT8 model on every real photo of the test photographers
(and 500 held-out renders); a model that misses its gate is not written and the repository
serves the next fastest model that passed. Either way the report is kept, and here it is checked
for consistency with the gate; the quantizer itself is tested on the built INT8 file, or on one
made here when the gate refused it (the structure does not depend on the verdict).
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


@pytest.fixture(scope="module")
def int8_report() -> dict:
    path = LAYOUT.precision_report("int8")
    if not path.exists():
        pytest.fail(f"{path} is missing: run `make model` (it quantizes and checks INT8)")
    return json.loads(path.read_text())["check"]


@pytest.fixture(scope="module")
def int8_file(built_model):
    """The built INT8 model, or the one its gate refused (kept under a name nothing serves)."""
    from fashiontag.artifacts import precision_path
    from fashiontag.export.precision import refused_path

    built = precision_path(built_model, "int8")
    path = built if built.exists() else refused_path(built)
    if not path.exists():
        pytest.fail(f"neither {built} nor {refused_path(built)}: run `make model`")
    return path


def _runtimes() -> list[str]:
    try:
        import openvino  # noqa: F401
    except ImportError:
        return ["onnxruntime"]
    return ["onnxruntime", "openvino"]


def test_int8_file_says_what_it_is_and_how_it_was_made(int8_file, built_model):
    meta = read_metadata(int8_file)
    assert meta.precision == "int8"
    assert meta.taxonomy == read_metadata(built_model).taxonomy
    assert meta.preprocess == read_metadata(built_model).preprocess
    recipe = meta.info["int8"]
    assert recipe["format"] == "QDQ" and recipe["activations"] == "uint8"
    assert recipe["reduce_range"] is False and recipe["calibration_images"] > 0


def test_int8_file_keeps_the_uint8_input_and_probability_output(int8_file):
    import onnx

    graph = onnx.load(str(int8_file)).graph
    assert graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.UINT8
    assert graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    ops = {n.op_type for n in graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops


def test_backbone_is_quantized_but_normalisation_and_heads_stay_fp32(int8_file):
    import onnx

    graph = onnx.load(str(int8_file)).graph
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


def test_the_gate_verdict_matches_the_recorded_figures_and_what_is_on_disk(int8_report,
                                                                          served_model):
    """Passed: the file exists and every bound holds. Refused: no file, nothing serves INT8,
    and the report names every bound that was missed."""
    from fashiontag.artifacts import precision_path

    check = int8_report
    loss = check["category_accuracy_reference"] - check["category_accuracy_candidate"]
    misses = [loss > MAX_ACCURACY_LOSS,
              check["agreement"][CATEGORY.name] < MIN_CATEGORY_AGREEMENT]
    misses += [value < min(MIN_AGREEMENT, check["noise_floor"][h])
               for h, value in check["agreement"].items() if h != CATEGORY.name]
    misses += [value < min(MIN_AGREEMENT, check["noise_floor_rendered"][h])
               for h, value in check["agreement_rendered"].items()]
    assert check["passes"] is (not any(misses))
    assert len(check["failures"]) == sum(misses)
    assert check["category_images"] >= 800  # every photo of the test photographers
    exists = precision_path(LAYOUT.model(), "int8").exists()
    assert exists is check["passes"]
    served_precision = read_metadata(served_model[0]).precision
    assert (served_precision == "int8") is check["passes"]


def test_int8_report_states_whether_the_97_percent_goal_was_met(int8_report):
    met = all(int8_report["agreement"][h] >= MIN_AGREEMENT
              and int8_report["agreement_rendered"][h] >= MIN_AGREEMENT for h in FASHIONAI_HEADS)
    assert int8_report["goal_agreement_met"] is met


@pytest.mark.parametrize("runtime", _runtimes())
def test_live_recheck_on_held_out_images_in_each_runtime(int8_file, built_model, runtime):
    """300 photos, 200 renders in each runtime: INT8 moves about as many garment-type decisions
    as invisible (±1 grey level) noise moves in FP32, and keeps its accuracy."""
    report = compare_models(built_model, int8_file, read_metadata(built_model).taxonomy,
                            photos=300, rendered=200,
                            options=RuntimeOptions(runtime=runtime, threads=2))
    assert report.category_images == 300
    assert report.category_accuracy_loss <= MAX_ACCURACY_LOSS + 0.02
    floor = report.noise_floor[CATEGORY.name]
    assert report.agreement[CATEGORY.name] >= min(floor, MIN_CATEGORY_AGREEMENT) - 0.03
    assert set(report.agreement_rendered) == {h for h in FASHIONAI_HEADS}


def test_int8_is_served_through_triton_with_openvino(tmp_path, int8_file, sample_photos):
    pytest.importorskip("openvino")
    from tritonclient.grpc import InferenceServerClient

    from fashiontag.client import TagClient
    from fashiontag.images import preprocess_bytes
    from fashiontag.serving.repository import ServingSettings, build_repository
    from fashiontag.serving.server import TritonServer

    repo = build_repository(int8_file, tmp_path / "repo",
                            ServingSettings(runtime="openvino", attribute_threads=2))
    blobs = [p.read_bytes() for p in sample_photos]
    expected = load_model(int8_file, RuntimeOptions(runtime="openvino", threads=2)).run(
        np.stack([preprocess_bytes(b) for b in blobs]))
    with TritonServer(free_port_config(repo, log_path=tmp_path / "server.log")) as server, \
            TagClient(server.grpc_url, timeout_s=120) as client:
        assert client.taxonomy == read_metadata(int8_file).taxonomy
        served = client.tag_batch(blobs)
        config = InferenceServerClient(server.grpc_url).get_model_config(
            "fashiontag_attributes", as_json=True)
    params = {k: v["string_value"] for k, v in config["config"]["parameters"].items()}
    assert params["runtime"] == "openvino" and params["precision"] == "int8"
    taxonomy = read_metadata(int8_file).taxonomy
    for attrs, probs in zip(served, expected, strict=True):
        for name in attrs:
            s = taxonomy.slices[name]
            got = np.array(list(attrs.probabilities(name).values()))
            np.testing.assert_allclose(got, probs[s], atol=1e-3)
