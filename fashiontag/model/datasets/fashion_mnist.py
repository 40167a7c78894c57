"""Fashion-MNIST (Zalando, MIT licence) read from the Debian package ``dataset-fashion-mnist``.

Real labelled garment photos (28x28 grey) for the ``category`` head. The files are the original
idx ``.gz`` files; nothing is downloaded. Set ``FASHIONTAG_FASHION_MNIST_DIR`` to read another copy.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np

from fashiontag.errors import ModelArtifactError

__all__ = ["DEFAULT_DIR", "data_dir", "load", "balanced_subset"]

DEFAULT_DIR = Path("/usr/share/datasets/fashion-mnist")
_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}


def data_dir() -> Path:
    path = Path(os.environ.get("FASHIONTAG_FASHION_MNIST_DIR", DEFAULT_DIR))
    if not (path / _FILES["test"][0]).exists():
        raise ModelArtifactError(
            f"Fashion-MNIST not found in {path}. Install it with "
            "`sudo apt-get install dataset-fashion-mnist` (Debian/Ubuntu) or point "
            "FASHIONTAG_FASHION_MNIST_DIR at a folder holding the four idx .gz files."
        )
    return path


def _read_idx(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic = int.from_bytes(data[:4], "big")
    ndim = magic & 0xFF
    if (magic >> 8) != 0x08:
        raise ModelArtifactError(f"{path}: not an unsigned-byte idx file (magic {magic:#x})")
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load(split: str) -> tuple[np.ndarray, np.ndarray]:
    """Images ``uint8 [N, 28, 28]`` and labels ``int64 [N]`` (indices into CATEGORY.values)."""
    if split not in _FILES:
        raise ValueError(f"split must be one of {sorted(_FILES)}, got {split!r}")
    root = data_dir()
    images_file, labels_file = _FILES[split]
    images = _read_idx(root / images_file)
    labels = _read_idx(root / labels_file).astype(np.int64)
    if len(images) != len(labels):
        raise ModelArtifactError(
            f"Fashion-MNIST {split}: {len(images)} images but {len(labels)} labels")
    return images, labels


def balanced_subset(labels: np.ndarray, per_class: int, seed: int) -> np.ndarray:
    """Indices of ``per_class`` random examples of every class (sorted, reproducible)."""
    rng = np.random.default_rng(seed)
    picks = [rng.choice(np.flatnonzero(labels == c), per_class, replace=False)
             for c in np.unique(labels)]
    return np.sort(np.concatenate(picks))
