"""A deterministic benchmark catalog of catalog-sized JPEGs made from real images.

Real photos (samples/photos) cropped and rescaled, plus Fashion-MNIST test photos upscaled, all
re-encoded as 360x480 JPEGs (a typical catalog thumbnail), so decode costs what it costs in
production. Cached under artifacts/bench-catalog/<n>-<size>/.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from fashiontag.artifacts import SAMPLES_DIR, checkout_artifacts
from fashiontag.images import encode_jpeg
from fashiontag.model.datasets import fashion_mnist

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = checkout_artifacts()


def make_catalog(n: int = 2000, size: tuple[int, int] = (480, 360), root: Path | None = None,
                 seed: int = 0) -> list[Path]:
    """``n`` JPEG files of ``size`` (height, width); returns their paths (created once)."""
    h, w = size
    folder = (root or ARTIFACTS.bench_catalog) / f"{n}-{h}x{w}-s{seed}"
    paths = [folder / f"{i:06d}.jpg" for i in range(n)]
    if all(p.exists() for p in paths):
        return paths
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    photos = [cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB)
              for p in sorted((SAMPLES_DIR / "photos").glob("*.jpg"))]
    images, _ = fashion_mnist.load("test")
    for i, path in enumerate(paths):
        if i % 4 == 0 and photos:  # a random crop of a real photo
            photo = photos[rng.integers(len(photos))]
            ph, pw = photo.shape[:2]
            ch = int(ph * rng.uniform(0.6, 1.0))
            cw = min(pw, int(ch * w / h))
            y, x = rng.integers(0, ph - ch + 1), rng.integers(0, pw - cw + 1)
            rgb = cv2.resize(photo[y:y + ch, x:x + cw], (w, h), interpolation=cv2.INTER_AREA)
        else:  # a Fashion-MNIST test photo, dark garment on light background like a catalog
            grey = 255 - images[rng.integers(len(images))]
            grey = cv2.resize(grey, (w, w), interpolation=cv2.INTER_CUBIC)
            rgb = np.full((h, w, 3), 255, np.uint8)
            top = (h - w) // 2
            rgb[top:top + w] = grey[:, :, None]
        path.write_bytes(encode_jpeg(rgb, quality=90))
    return paths
