"""Calibration and evaluation images for reduced-precision models, preprocessed as served.

INT8 ranges are only as good as the images they are measured on, so calibration uses the model's
own training distribution: real garment photos of the *training* photographers and rendered
garments from the *training* seed. The accuracy check uses held-out images only: photos of the
*test* photographers and renders from the test seed. Every image goes through
:mod:`fashiontag.images`, the one preprocessing copy.

The same tiles feed onnxruntime's calibrator (:class:`fashiontag.export.quantize.CalibrationReader`)
and TensorRT's (:mod:`fashiontag.export.tensorrt`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from fashiontag.images import preprocess_array, preprocess_bytes

__all__ = ["CalibrationSet", "calibration_tiles", "photo_tiles", "rendered_tiles", "batches",
           "RENDERED_TRAIN_SEED", "RENDERED_TEST_SEED"]

# Seeds of fashiontag.model.train's rendered sets (RENDER_SEEDS; chunk i of 256 images uses
# seed * 1000 + i).
RENDERED_TRAIN_SEED = 1
RENDERED_TEST_SEED = 2
_RENDER_CHUNK = 256


@dataclass(frozen=True)
class CalibrationSet:
    """How many of which images calibrate a model; recorded in the model's metadata."""

    photos: int = 256  # real photos of the training photographers
    rendered: int = 128  # rendered garments from the training seed
    seed: int = 0

    def to_dict(self) -> dict:
        return {"photos_train": self.photos, "rendered_train": self.rendered, "seed": self.seed}


def photo_tiles(part: str, count: int | None = None, *, seed: int = 0
                ) -> tuple[np.ndarray, list[str]]:
    """Tiles of the clothing photos of one photographer split (all when ``count`` is None, else
    a seeded sample), with the labels people gave them."""
    from fashiontag.model.datasets import clothing

    photos = getattr(clothing.sender_split(clothing.load()), part)
    if count is not None and count < len(photos):
        pick = np.sort(np.random.default_rng(seed).choice(len(photos), count, replace=False))
        photos = [photos[i] for i in pick]
    tiles = np.empty((len(photos), 224, 224, 3), np.uint8)
    for i, photo in enumerate(photos):
        tiles[i] = preprocess_bytes(photo.path.read_bytes())
    return tiles, [p.label for p in photos]


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
    if cal.photos:
        parts.append(photo_tiles("train", cal.photos, seed=cal.seed)[0])
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
