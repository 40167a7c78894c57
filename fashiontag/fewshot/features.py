"""Backbone features of labelled (and unlabelled) images, with augmented views, cached per image.

Each image is decoded once with the serving preprocessing (:mod:`fashiontag.images`), turned
into a few views (original, mirror, crops), and run through the backbone the model serves (the
fine-tuned one, exported by :func:`fashiontag.model.features.feature_extractor`), so a new head
learns on exactly the features it will be served on. Features are cached by image content hash
and backbone, so labelling ten more images only computes ten more rows.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from fashiontag.errors import FashiontagError
from fashiontag.fewshot.data import FewShotDataError
from fashiontag.images import DEFAULT_SPEC, PreprocessSpec, decode, preprocess_array

__all__ = ["VIEWS", "DEFAULT_VIEWS", "image_views", "FeatureStore"]

log = logging.getLogger(__name__)

CROP = 0.85  # crops keep 85 % of each side
VIEWS = ("original", "flip", "crop_centre", "crop_top_left", "crop_top_right",
         "crop_bottom_left", "crop_bottom_right")
#: Measured on Fashion-MNIST (benchmarks/fewshot.py): mirroring helps a little, crops did not.
DEFAULT_VIEWS = ("original", "flip")


def _crop(rgb: np.ndarray, where: str) -> np.ndarray:
    h, w = rgb.shape[:2]
    ch, cw = max(1, round(h * CROP)), max(1, round(w * CROP))
    top = {"top": 0, "bottom": h - ch}.get(where.split("_")[0], (h - ch) // 2)
    left = {"left": 0, "right": w - cw}.get(where.split("_")[-1], (w - cw) // 2)
    return rgb[top:top + ch, left:left + cw]


def image_views(rgb: np.ndarray, views: Sequence[str] = DEFAULT_VIEWS,
                spec: PreprocessSpec = DEFAULT_SPEC) -> np.ndarray:
    """Decoded RGB → ``uint8 [len(views), S, S, 3]`` model tiles; ``original`` is exactly what
    the server computes for the same image."""
    out = []
    for view in views:
        if view == "original":
            img = rgb
        elif view == "flip":
            img = rgb[:, ::-1]
        elif view.startswith("crop_"):
            img = _crop(rgb, view[len("crop_"):])
        else:
            raise ValueError(f"unknown view {view!r}; known: {VIEWS}")
        out.append(preprocess_array(np.ascontiguousarray(img), spec))
    return np.stack(out)


def _content_key(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:24]


class FeatureStore:
    """``[N, V, D]`` features for image files; one cache file per (weights, spec, views)."""

    def __init__(self, cache_dir: str | Path, views: Sequence[str] = DEFAULT_VIEWS,
                 spec: PreprocessSpec = DEFAULT_SPEC,
                 extractor: Callable[[np.ndarray], np.ndarray] | None = None,
                 backbone: str | Path | None = None) -> None:
        for view in views:
            if view not in VIEWS:
                raise ValueError(f"unknown view {view!r}; known: {VIEWS}")
        self.cache_dir = Path(cache_dir)
        self.views = tuple(views)
        self.spec = spec
        self._extractor = extractor
        self.backbone = backbone  # the tuned tail (backbone.pt); None = pretrained
        self.computed = 0  # images whose features this store computed (cache misses)

    @property
    def path(self) -> Path:
        from fashiontag.model.backbone import backbone_fingerprint

        key = json.dumps([backbone_fingerprint(self.backbone), self.spec.to_dict(), self.views])
        digest = hashlib.sha256(key.encode()).hexdigest()[:16]
        return self.cache_dir / "fewshot" / f"features-{digest}.npz"

    def extractor(self) -> Callable[[np.ndarray], np.ndarray]:
        if self._extractor is None:
            from fashiontag.model.features import feature_extractor

            self._extractor = feature_extractor(self.cache_dir, self.backbone, self.spec)
        return self._extractor

    def _load(self) -> dict[str, np.ndarray]:
        if not self.path.exists():
            return {}
        with np.load(self.path) as data:
            return dict(zip(data["keys"].tolist(), data["features"], strict=True))

    def _save(self, cache: dict[str, np.ndarray]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp.npz")
        np.savez(tmp, keys=np.array(list(cache), dtype=str),
                 features=np.stack(list(cache.values())))
        tmp.replace(self.path)

    def features(self, paths: Sequence[Path], chunk: int = 64) -> np.ndarray:
        """Features of every view of every image: ``float32 [len(paths), len(views), D]``."""
        blobs = []
        for path in paths:
            try:
                blobs.append(Path(path).read_bytes())
            except OSError as exc:
                raise FewShotDataError(f"{path}: cannot read: {exc.strerror or exc}") from None
        keys = [_content_key(b) for b in blobs]
        cache = self._load()
        missing = [i for i, k in enumerate(keys) if k not in cache]
        missing = list({keys[i]: i for i in missing}.values())  # duplicates computed once
        for start in range(0, len(missing), chunk):
            part = missing[start:start + chunk]
            tiles = []
            for i in part:
                try:
                    tiles.append(image_views(decode(blobs[i]), self.views, self.spec))
                except FashiontagError as exc:
                    raise FewShotDataError(f"{paths[i]}: {exc}") from None
            flat = np.concatenate(tiles)
            feats = self.extractor()(flat).reshape(len(part), len(self.views), -1)
            for i, f in zip(part, feats, strict=True):
                cache[keys[i]] = f.astype(np.float32)
            self.computed += len(part)
        if missing:
            log.info("computed features of %d images x %d views", len(missing), len(self.views))
            self._save(cache)
        if not keys:
            return np.zeros((0, len(self.views), 0), np.float32)
        return np.stack([cache[k] for k in keys])
