"""Shared test helpers: paths to the checkout's real sample images and built artifacts."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "samples"
ARTIFACTS = ROOT / "artifacts"
MODEL = ARTIFACTS / "fashiontag.onnx"


@pytest.fixture(scope="session")
def sample_photos() -> list[Path]:
    return sorted((SAMPLES / "photos").glob("*.jpg"))


@pytest.fixture(scope="session")
def fashion_mnist_samples() -> list[Path]:
    return sorted((SAMPLES / "fashion-mnist").glob("*.png"))


@pytest.fixture(scope="session")
def built_model() -> Path:
    """The model `make model` built; tests of served behaviour need the real one."""
    if not MODEL.exists():
        pytest.fail(f"{MODEL} is missing: run `make model` (make test does it for you)")
    return MODEL
