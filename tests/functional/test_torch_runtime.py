"""The PyTorch runtime (the GPU path of the pip tritonserver) run on CPU inside a real tritonserver.

On a GPU machine the same python model runs on ``KIND_GPU`` instances in FP16; here it runs on
``KIND_CPU`` in FP32, so it must match onnxruntime on the same ONNX export to rounding.
"""

from __future__ import annotations

import numpy as np
import pytest

from fashiontag.artifacts import Artifacts
from fashiontag.errors import ModelArtifactError
from fashiontag.images import preprocess_bytes
from fashiontag.protocol import ATTRIBUTES_MODEL, PROBABILITIES, TAXONOMY_ID
from fashiontag.runtimes import load_model
from fashiontag.serving.repository import (
    GPU_TORCH_DEFAULTS,
    ServingSettings,
    build_repository,
    gpu_torch_settings,
    read_config,
)
from fashiontag.serving.server import TritonServer
from fashiontag.serving.torch_model import BACKBONE_FILE, HEADS_FILE, TorchAttributeModel
from tests.functional.conftest import free_port_config


@pytest.fixture(scope="module")
def torch_weights(built_model):
    layout = Artifacts(built_model.parent)
    return layout.heads, layout.backbone


@pytest.fixture(scope="module")
def torch_server(built_model, torch_weights, tmp_path_factory):
    root = tmp_path_factory.mktemp("torch-runtime")
    repo = build_repository(built_model, root / "repo",
                            ServingSettings(runtime="torch", warmup_batch_sizes=(1,)),
                            torch_weights=torch_weights)
    srv = TritonServer(free_port_config(repo, log_path=root / "server.log"))
    srv.start()
    yield srv
    srv.stop()
    assert not srv.is_running()


def test_the_torch_runtime_matches_onnxruntime_on_real_photos(built_model, torch_weights,
                                                              garment_samples):
    tiles = np.stack([preprocess_bytes(p.read_bytes()) for p in garment_samples])
    torch_out = TorchAttributeModel(*torch_weights).run_all(tiles)
    onnx_out = load_model(built_model).run_all(tiles)
    assert np.abs(torch_out[PROBABILITIES] - onnx_out[PROBABILITIES]).max() < 1e-4
    assert np.array_equal(torch_out[TAXONOMY_ID], onnx_out[TAXONOMY_ID])


def test_tritonserver_serves_the_torch_runtime_with_the_onnx_models_answers(
        torch_server, built_model, garment_samples, sample_photos):
    from fashiontag.client import TagClient

    paths = garment_samples + sample_photos
    images = [p.read_bytes() for p in paths]
    expected = load_model(built_model).run(np.stack([preprocess_bytes(b) for b in images]))
    # decode="server": the bad input below must reach the server, batched with good ones
    with TagClient(torch_server.grpc_url, decode="server", timeout_s=60) as client:
        results = list(client.tag_many(images, concurrency=8))  # batches form: torch.cat path
        assert all(r.ok for r in results), [r.error for r in results if not r.ok]
        served = np.stack([r.attributes.vector for r in results])
        assert np.abs(served - expected).max() < 1e-4
        bad = client.tag_many([b"not an image", images[0]], concurrency=2)
        bad_result, good_result = list(bad)
        assert not bad_result.ok and good_result.ok  # a bad input is that input's error
        assert torch_server.is_running()
    log = torch_server.log_path.read_text()
    assert "attribute model: torch on cpu (fp32" in log  # the torch runtime answered, not ORT


def test_the_gpu_torch_repository_runs_the_python_model_on_gpu_instances(tmp_path, built_model,
                                                                         torch_weights):
    repo = build_repository(built_model, tmp_path / "repo", gpu_torch_settings(),
                            torch_weights=torch_weights)
    config = read_config(repo / ATTRIBUTES_MODEL / "config.pbtxt")
    params = {k: v.string_value for k, v in config.parameters.items()}
    assert config.backend == "python" and not config.platform
    assert [g.kind for g in config.instance_group] == [config.instance_group[0].KIND_GPU]
    assert config.instance_group[0].count == GPU_TORCH_DEFAULTS["gpu_instances"]
    assert config.max_batch_size == GPU_TORCH_DEFAULTS["max_batch_size"]
    assert params["runtime"] == "torch" and params["torch_device"] == "auto"
    version = repo / ATTRIBUTES_MODEL / "1"
    for name in ("model.py", "model.onnx", HEADS_FILE, BACKBONE_FILE):
        assert (version / name).is_file(), name


def test_weights_that_are_not_the_exported_ones_are_refused(tmp_path, built_model,
                                                            torch_weights):
    heads, _ = torch_weights
    with pytest.raises(ModelArtifactError, match="backbone weights"):
        build_repository(built_model, tmp_path / "repo", ServingSettings(runtime="torch"),
                         torch_weights=(heads, None))  # the pretrained, not the tuned, backbone
    with pytest.raises(ModelArtifactError, match="needs the heads"):
        build_repository(built_model, tmp_path / "repo", ServingSettings(runtime="torch"))


def test_the_torch_runtime_on_cuda_agrees_with_cpu_onnx_in_fp16(built_model, torch_weights,
                                                               garment_samples):
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device on this machine (the GPU check script measures it there)")
    tiles = np.stack([preprocess_bytes(p.read_bytes()) for p in garment_samples])
    gpu = TorchAttributeModel(*torch_weights, device_id=0).run(tiles)
    cpu = load_model(built_model).run(tiles)
    assert np.abs(gpu - cpu).max() < 2e-2


def _full_decodes(blobs: list[bytes]):
    """Full-resolution decodes as nvJPEG gives them (here by OpenCV: no GPU on CI)."""
    import cv2
    import torch

    return [torch.from_numpy(cv2.cvtColor(cv2.imdecode(np.frombuffer(b, np.uint8),
                                                       cv2.IMREAD_COLOR),
                                          cv2.COLOR_BGR2RGB)).permute(2, 0, 1).contiguous()
            for b in blobs]


def _resized_jpegs(paths, width: int, height: int) -> list[bytes]:
    import cv2

    from fashiontag.images import decode, encode_jpeg

    return [encode_jpeg(cv2.resize(decode(p.read_bytes(), target=4096), (width, height),
                                   interpolation=cv2.INTER_CUBIC)) for p in paths]


@pytest.mark.parametrize("size", [None, (480, 360), (1600, 1200)],
                         ids=["as-taken", "catalog-480x360", "large-1600x1200"])
def test_the_device_letterbox_gives_the_cpu_tiles_on_real_photos(garment_samples, size):
    from fashiontag.serving.torch_images import letterbox_tensors

    blobs = ([p.read_bytes() for p in garment_samples] if size is None
             else _resized_jpegs(garment_samples, *size))
    expected = np.stack([preprocess_bytes(b) for b in blobs]).astype(int)
    tiles = letterbox_tensors(_full_decodes(blobs)).numpy().astype(int)
    diff = np.abs(tiles - expected)
    if size == (1600, 1200):  # libjpeg's reduced DCT decode vs a box average of the full decode
        assert diff.mean() < 0.5
    else:  # the same pixels, resized by the same INTER_AREA arithmetic
        assert diff.max() <= 1 and diff.mean() < 0.01


def test_the_device_letterbox_runs_on_cuda_like_on_cpu(garment_samples):
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device on this machine (the GPU check script measures it there)")
    from fashiontag.serving.torch_images import letterbox_tensors

    images = _full_decodes([p.read_bytes() for p in garment_samples])
    on_cpu = letterbox_tensors(images).numpy().astype(int)
    on_gpu = letterbox_tensors([i.cuda() for i in images]).cpu().numpy().astype(int)
    assert np.abs(on_gpu - on_cpu).max() <= 1
