"""TensorRT paths: built and checked where tensorrt and a GPU exist, a clear refusal elsewhere."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from fashiontag.export.tensorrt import (
    TensorRTUnavailable,
    build_engine,
    engine_filename,
    tensorrt_unavailable_reason,
)

REASON = tensorrt_unavailable_reason()


@pytest.mark.skipif(REASON is None, reason="tensorrt and a GPU are present")
def test_building_an_engine_without_tensorrt_or_gpu_is_refused_with_the_reason(tmp_path,
                                                                              built_model):
    with pytest.raises(TensorRTUnavailable, match="cannot build a TensorRT engine"):
        build_engine(built_model, tmp_path)
    assert not list(tmp_path.iterdir())


@pytest.mark.skipif(REASON is None, reason="tensorrt and a GPU are present")
def test_export_engine_command_fails_cleanly_without_tensorrt(tmp_path, built_model):
    done = subprocess.run([sys.executable, "-m", "fashiontag", "export", "--engine", "tensorrt",
                           "--artifacts", str(built_model.parent), "--repository",
                           str(tmp_path / "repo")], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "TensorRT" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "repo").exists()


@pytest.mark.slow
def test_fp16_engine_matches_the_onnx_model_on_real_images(tmp_path, built_model):
    pytest.importorskip("tensorrt")
    if REASON:
        pytest.skip(REASON)
    from fashiontag.export.attribute_model import parity_tiles
    from fashiontag.export.tensorrt import TensorRTModel, compute_capability
    from fashiontag.onnxio.metadata import read_metadata
    from fashiontag.runtimes import load_model

    result = build_engine(built_model, tmp_path, "fp16", max_batch_size=64, opt_batch=32)
    assert result.path.name == engine_filename(compute_capability())
    tiles = parity_tiles(photos=32)
    ref = load_model(built_model).run(tiles)
    got = TensorRTModel(result.path).run(tiles)
    taxonomy = read_metadata(built_model).taxonomy
    for name, s in taxonomy.slices.items():
        assert (ref[:, s].argmax(1) == got[:, s].argmax(1)).mean() >= 0.97, name
    assert np.abs(ref - got).max() < 0.05
