"""Calibration and evaluation images for reduced-precision models, preprocessed as served.

INT8 ranges are only as good as the images they are measured on, so calibration uses the heads'
own training distribution: Fashion-MNIST *training* photos (both polarities, as the category head
was trained) and rendered garments from the *training* seed. Evaluation uses held-out images
(the Fashion-MNIST test set and the rendered test seed). Every image goes through
:func:`fashiontag.images.preprocess_array`, the one preprocessing copy.

The same tiles feed onnxruntime's calibrator (:class:`fashiontag.export.quantize.CalibrationReader`)
and TensorRT's (:mod:`fashiontag.export.tensorrt`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from fashiontag.images import preprocess_array

__all__ = ["CalibrationSet", "calibration_tiles", "fashion_mnist_tiles", "rendered_tiles",
           "iter_fashion_mnist_tiles",
           "batches", "RENDERED_TRAIN_SEED", "RENDERED_TEST_SEED"]

# Seeds of fashiontag.model.train's rendered sets (cfg.seed + 1 train, cfg.seed + 2 test; chunk i
# of 256 images uses seed * 1000 + i).
RENDERED_TRAIN_SEED = 1
RENDERED_TEST_SEED = 2
_RENDER_CHUNK = 256


@dataclass(frozen=True)
class CalibrationSet:
    """How many of which images calibrate a model; recorded in the model's metadata."""

    fashion_mnist: int = 256  # training photos, half of them inverted (dark-on-light)
    rendered: int = 128  # rendered garments from the training seed
    seed: int = 0

    def to_dict(self) -> dict:
        return {"fashion_mnist_train": self.fashion_mnist, "rendered_train": self.rendered,
                "seed": self.seed}


def fashion_mnist_tiles(split: str, count: int | None = None, *, seed: int = 0,
                        invert_half: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Tiles and labels of Fashion-MNIST ``split`` (all of it when ``count`` is None)."""
    from fashiontag.model.datasets import fashion_mnist

    images, labels = fashion_mnist.load(split)
    if count is not None and count < len(images):
        pick = np.sort(np.random.default_rng(seed).choice(len(images), count, replace=False))
        images, labels = images[pick], labels[pick]
    tiles = np.empty((len(images), 224, 224, 3), np.uint8)
    for i, img in enumerate(images):
        tiles[i] = preprocess_array(255 - img if invert_half and i % 2 else img)
    return tiles, labels


def iter_fashion_mnist_tiles(split: str, count: int | None = None, *, seed: int = 0,
                             chunk: int = 500) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Like :func:`fashion_mnist_tiles` in chunks: the 10,000-image test set is 1.5 GB as tiles."""
    from fashiontag.model.datasets import fashion_mnist

    images, labels = fashion_mnist.load(split)
    if count is not None and count < len(images):
        pick = np.sort(np.random.default_rng(seed).choice(len(images), count, replace=False))
        images, labels = images[pick], labels[pick]
    for start in range(0, len(images), chunk):
        yield (np.stack([preprocess_array(img) for img in images[start:start + chunk]]),
               labels[start:start + chunk])


def rendered_tiles(count: int, seed: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Rendered garments exactly as training renders them (same chunking and seeds)."""
    from fashiontag.model.datasets import rendered

    tiles, labels = [], {}
    for i, start in enumerate(range(0, count, _RENDER_CHUNK)):
        images, chunk_labels = rendered.render_dataset(min(_RENDER_CHUNK, count - start),
                                                       seed=seed * 1000 + i)
        tiles.append(np.stack([preprocess_array(img) for img in images]))
        for name, values in chunk_labels.items():
            labels.setdefault(name, []).append(values)
    return np.concatenate(tiles), {k: np.concatenate(v) for k, v in labels.items()}


def calibration_tiles(cal: CalibrationSet = CalibrationSet()) -> np.ndarray:
    """Training images only (never the held-out sets the accuracy check uses), shuffled."""
    parts = []
    if cal.fashion_mnist:
        parts.append(fashion_mnist_tiles("train", cal.fashion_mnist, seed=cal.seed,
                                         invert_half=True)[0])
    if cal.rendered:
        parts.append(rendered_tiles(cal.rendered, RENDERED_TRAIN_SEED)[0])
    if not parts:
        raise ValueError("a calibration set needs at least one image")
    tiles = np.concatenate(parts)
    return tiles[np.random.default_rng(cal.seed).permutation(len(tiles))]


def batches(tiles: np.ndarray, batch: int) -> Iterator[np.ndarray]:
    """Contiguous chunks of ``batch`` tiles (the last one may be shorter)."""
    for start in range(0, len(tiles), batch):
        yield np.ascontiguousarray(tiles[start:start + batch])
