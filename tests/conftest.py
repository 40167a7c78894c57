"""Shared test helpers: paths to the checkout's real sample images and built artifacts."""

from __future__ import annotations

from pathlib import Path

import pytest

from fashiontag.artifacts import CHECKOUT, SAMPLES_DIR, checkout_artifacts

ROOT = CHECKOUT
SAMPLES = SAMPLES_DIR
LAYOUT = checkout_artifacts()  # what `make model` built
MODEL = LAYOUT.model()


@pytest.fixture(scope="session")
def sample_photos() -> list[Path]:
    return sorted((SAMPLES / "photos").glob("*.jpg"))


@pytest.fixture(scope="session")
def garment_samples() -> list[Path]:
    """Real garment photos of photographers the model never saw, named ``<type>_<id>.jpg``."""
    return sorted((SAMPLES / "clothing").glob("*.jpg"))


@pytest.fixture(scope="session")
def built_model() -> Path:
    """The model `make model` built; tests of served behaviour need the real one."""
    if not MODEL.exists():
        pytest.fail(f"{MODEL} is missing: run `make model` (make test does it for you)")
    return MODEL
