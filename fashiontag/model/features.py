"""Frozen-backbone features, computed once with onnxruntime and cached on disk.

Heads train on pooled EfficientNet-Lite0 features, so the expensive part (the backbone) runs once
per image. onnxruntime runs this backbone ~5x faster than eager PyTorch on these CPUs, so the
backbone is exported to ONNX first and the export itself is checked against PyTorch.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from fashiontag.images import DEFAULT_SPEC, PreprocessSpec
from fashiontag.protocol import FEATURES, PIXELS

__all__ = ["FeatureExtractor", "feature_extractor", "cached_arrays"]

log = logging.getLogger(__name__)


class FeatureExtractor:
    """Pixels ``uint8 [N, S, S, 3]`` → features ``float32 [N, 1280]`` with onnxruntime."""

    # batch 16: ~15 % faster than 32 on these 2-core CPUs (measured: 6.2 vs 7.2 ms/image), and
    # the features are bit-identical at any batch size, so caches stay valid
    def __init__(self, onnx_path: str | Path, batch: int = 16) -> None:
        from fashiontag.export.onnx_export import onnx_session

        self.path = Path(onnx_path)
        self.batch = batch
        self.session = onnx_session(self.path)

    def __call__(self, tiles: np.ndarray) -> np.ndarray:
        out = [self.session.run([FEATURES], {PIXELS: np.ascontiguousarray(
            tiles[i:i + self.batch])})[0] for i in range(0, len(tiles), self.batch)]
        return np.concatenate(out) if out else np.zeros((0, 1280), np.float32)

    def over(self, chunks: Iterable[np.ndarray]) -> np.ndarray:
        """Features of a stream of tile chunks; memory stays at one chunk of pixels."""
        return np.concatenate([self(c) for c in chunks])


def feature_extractor(cache_dir: str | Path, spec: PreprocessSpec = DEFAULT_SPEC
                      ) -> FeatureExtractor:
    """Export the backbone to ONNX once per weights + spec, verify it, and open it."""
    from fashiontag.model.backbone import weights_fingerprint

    key = hashlib.sha256(json.dumps([weights_fingerprint(), spec.to_dict()]).encode()).hexdigest()
    path = Path(cache_dir) / f"backbone-{key[:12]}.onnx"
    if not path.exists():
        import torch

        from fashiontag.export.onnx_export import check_parity, export_onnx
        from fashiontag.model.backbone import load_backbone
        from fashiontag.model.network import FeatureModel

        log.info("exporting backbone to %s", path)
        model = FeatureModel(load_backbone(), spec).eval()
        tmp = path.with_suffix(".check.onnx")
        export_onnx(model, tmp, spec, output_name=FEATURES)
        rng = np.random.default_rng(0)
        tiles = rng.integers(0, 256, (4, spec.size, spec.size, 3), dtype=np.uint8)
        with torch.no_grad():
            report = check_parity(model, tmp, tiles)
        if report.max_abs_diff > 1e-3:
            raise RuntimeError(f"backbone ONNX export differs from PyTorch: {report}")
        tmp.replace(path)
    return FeatureExtractor(path)


def cached_arrays(cache_dir: str | Path, name: str, key: dict,
                  compute: Callable[[], dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """``compute()`` once per (name, key); the key must name everything the arrays depend on."""
    from fashiontag.model.backbone import weights_fingerprint

    digest = hashlib.sha256(json.dumps({**key, "weights": weights_fingerprint()},
                                       sort_keys=True).encode()).hexdigest()[:16]
    path = Path(cache_dir) / "features" / f"{name}-{digest}.npz"
    if path.exists():
        with np.load(path) as data:
            return dict(data)
    arrays = compute()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, **arrays)
    tmp.replace(path)
    return arrays
