"""Photometric augmentation for training images: what real catalog photos do to pixels.

Rendered garments are perfectly clean; heads trained only on them learn to rely on details that
a JPEG round trip or one grey level of noise destroys (their decisions flipped under such noise,
and INT8 quantisation inherited the flips). Training on degraded copies teaches the heads margins
that survive compression, sensor noise, lighting and quantisation.
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["photometric"]


def photometric(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A randomly degraded copy of a uint8 RGB image (same shape)."""
    out = image.astype(np.float32)
    gain, bias = rng.uniform(0.8, 1.2), rng.uniform(-20, 20)
    out = out * gain + bias
    if rng.random() < 0.5:
        out += rng.normal(0.0, rng.uniform(1.0, 6.0), out.shape)
    out = np.clip(out, 0, 255).astype(np.uint8)
    if rng.random() < 0.3:
        out = cv2.GaussianBlur(out, (0, 0), rng.uniform(0.5, 1.2))
    quality = int(rng.integers(50, 96))
    ok, buf = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, quality])
    return cv2.imdecode(buf, cv2.IMREAD_UNCHANGED) if ok else out
