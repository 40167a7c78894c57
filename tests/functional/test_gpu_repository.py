"""The GPU repository built from the real exported model: configs only, or with an engine."""

from __future__ import annotations

from fashiontag.export.tensorrt import engine_filename
from fashiontag.protocol import ATTRIBUTES_MODEL
from fashiontag.serving.repository import ServingSettings, build_repository, read_config


def test_tensorrt_repository_without_an_engine_waits_for_the_engine_builder(tmp_path,
                                                                           built_model):
    repo = build_repository(built_model, tmp_path / "repo",
                            ServingSettings(target="gpu", gpu_platform="tensorrt_plan"))
    version_dir = repo / ATTRIBUTES_MODEL / "1"
    assert version_dir.is_dir() and not list(version_dir.iterdir())
    assert read_config(repo / ATTRIBUTES_MODEL / "config.pbtxt").platform == "tensorrt_plan"
    assert not (repo / ATTRIBUTES_MODEL / "1" / "model.py").exists()


def test_a_built_engine_is_copied_under_its_compute_capability_name(tmp_path, built_model):
    engine = tmp_path / engine_filename("8.6")
    engine.write_bytes(b"engine bytes from the GPU")
    repo = build_repository(built_model, tmp_path / "repo",
                            ServingSettings(target="gpu", gpu_platform="tensorrt_plan"),
                            engine_path=engine)
    assert (repo / ATTRIBUTES_MODEL / "1" / "model_sm86.plan").read_bytes() == \
        engine.read_bytes()
