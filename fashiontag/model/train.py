"""Train every head of the demo model: ``category`` on Fashion-MNIST, the FashionAI heads on data.

Honest data only: ``category`` learns from real Fashion-MNIST photos and is scored on its full
10,000-image test set. With no FashionAI images on the machine, the 8 FashionAI heads learn from
procedurally rendered garments whose labels are exact by construction
(:mod:`fashiontag.model.datasets.rendered`); pass a real FashionAI ``label.csv`` to train on the
real data set instead or as well.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from fashiontag.images import DEFAULT_SPEC, preprocess_array, preprocess_bytes
from fashiontag.model import heads as heads_lib
from fashiontag.model.datasets import fashion_mnist
from fashiontag.model.features import FeatureExtractor, cached_arrays, feature_extractor
from fashiontag.taxonomy import CATEGORY, DEFAULT_TAXONOMY, FASHIONAI_ATTRIBUTES, Taxonomy

__all__ = ["TrainConfig", "train", "training_signature", "is_current", "HEADS_FILE", "REPORT_FILE"]

log = logging.getLogger(__name__)

HEADS_FILE = "heads.pt"
REPORT_FILE = "training_report.json"
_CHUNK = 256


@dataclass
class TrainConfig:
    artifacts: Path = Path("artifacts")
    fmnist_per_class: int = 600  # x2 with the inverted copies
    fmnist_invert: bool = True  # catalog photos are dark-on-light; Fashion-MNIST is light-on-dark
    rendered_train: int = 6000  # photometrically augmented (model/augment.py)
    rendered_test: int = 1000
    fashionai_csv: Path | None = None
    fashionai_root: Path | None = None
    seed: int = 0
    hidden_options: tuple[int, ...] = (0, 512)
    steps: int | None = None  # optimiser steps per head fit; None = heads.default_steps
    colour: bool = True  # append the fixed colour head (fashiontag.colour)
    extra: dict = field(default_factory=dict)

    @property
    def cache_dir(self) -> Path:
        return Path(self.artifacts) / "cache"


def _tiles(images: np.ndarray, invert: bool = False) -> Iterator[np.ndarray]:
    for start in range(0, len(images), _CHUNK):
        chunk = images[start:start + _CHUNK]
        if invert:
            chunk = 255 - chunk
        yield np.stack([preprocess_array(img, DEFAULT_SPEC) for img in chunk])


def _fmnist_features(cfg: TrainConfig, extractor: FeatureExtractor, split: str,
                     index: np.ndarray | None, invert: bool) -> tuple[np.ndarray, np.ndarray]:
    images, labels = fashion_mnist.load(split)
    if index is not None:
        images, labels = images[index], labels[index]
    key = {"split": split, "n": len(labels), "invert": invert, "spec": DEFAULT_SPEC.to_dict(),
           "index_sha": hashlib.sha1(b"" if index is None else index.tobytes()).hexdigest()}
    cached = cached_arrays(cfg.cache_dir, f"fmnist-{split}", key,
                           lambda: {"features": extractor.over(_tiles(images, invert))})
    return cached["features"], labels


def _rendered_features(cfg: TrainConfig, extractor: FeatureExtractor, n: int, seed: int,
                       augment: bool = False) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Render in chunks (pixels never all in memory); features and labels are cached together.

    ``augment`` degrades each render photometrically (JPEG, noise, light) before preprocessing.
    """
    from fashiontag.model import augment as augment_lib
    from fashiontag.model.datasets import rendered

    def compute() -> dict[str, np.ndarray]:
        feats, labels = [], {a.name: [] for a in FASHIONAI_ATTRIBUTES}
        rng = np.random.default_rng(seed)
        for i, start in enumerate(range(0, n, _CHUNK)):
            images, chunk_labels = rendered.render_dataset(min(_CHUNK, n - start),
                                                           seed=seed * 1000 + i)
            if augment:
                images = [augment_lib.photometric(img, rng) for img in images]
            feats.append(extractor(np.stack([preprocess_array(img) for img in images])))
            for name in labels:
                labels[name].append(chunk_labels[name])
        return {"features": np.concatenate(feats),
                **{f"label:{k}": np.concatenate(v) for k, v in labels.items()}}

    key = {"n": n, "seed": seed, "spec": DEFAULT_SPEC.to_dict(), "augment": augment,
           "renderer": hashlib.sha1(inspect.getsource(rendered).encode()).hexdigest(),
           "augmenter": hashlib.sha1(inspect.getsource(augment_lib).encode()).hexdigest()}
    cached = cached_arrays(cfg.cache_dir, "rendered", key, compute)
    labels = {k.split(":", 1)[1]: v for k, v in cached.items() if k.startswith("label:")}
    return cached["features"], labels


def _fashionai_csv_features(cfg: TrainConfig, extractor: FeatureExtractor
                            ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    from fashiontag.model.datasets.fashionai_csv import read_label_csv

    records = read_label_csv(cfg.fashionai_csv, cfg.fashionai_root)

    def tiles() -> Iterator[np.ndarray]:
        for start in range(0, len(records), _CHUNK):
            yield np.stack([preprocess_bytes(r.path.read_bytes())
                            for r in records[start:start + _CHUNK]])

    key = {"csv": str(cfg.fashionai_csv), "rows": len(records),
           "mtime": Path(cfg.fashionai_csv).stat().st_mtime}
    cached = cached_arrays(cfg.cache_dir, "fashionai-csv", key,
                           lambda: {"features": extractor.over(tiles())})
    labels = {a.name: np.full(len(records), -1, np.int64) for a in FASHIONAI_ATTRIBUTES}
    for i, r in enumerate(records):
        labels[r.attribute][i] = r.value_index
    return cached["features"], labels


def _summarise(name: str, fit: heads_lib.HeadFit, feats: np.ndarray, labels: np.ndarray,
               num_values: int, train_n: int) -> dict:
    return {
        "attribute": name,
        "head_hidden": fit.hidden,
        "train_examples": int(train_n),
        "validation_accuracy": round(fit.validation_accuracy, 4),
        "test_examples": int((labels >= 0).sum()),
        "test_accuracy": round(heads_lib.accuracy(fit.head, feats, labels), 4),
        "confusion": heads_lib.confusion_matrix(fit.head, feats, labels, num_values).tolist(),
    }


def training_signature(cfg: TrainConfig) -> str:
    """Hash of what the heads depend on: the training code and the configuration.

    ``fashiontag build`` retrains when it changes, so a checkout with new training code never
    serves heads made by the old code.
    """
    from fashiontag.model import augment, heads, network
    from fashiontag.model.datasets import fashion_mnist, fashionai_csv, rendered

    modules = (sys.modules[__name__], augment, heads, network, rendered, fashion_mnist,
               fashionai_csv)
    digest = hashlib.sha256()
    for module in modules:
        digest.update(inspect.getsource(module).encode())
    config = {k: str(v) for k, v in asdict(cfg).items() if k != "artifacts"}
    digest.update(json.dumps(config, sort_keys=True).encode())
    return digest.hexdigest()[:16]


def is_current(cfg: TrainConfig) -> bool:
    """True when heads exist and were trained by this code with this configuration."""
    artifacts = Path(cfg.artifacts)
    try:
        report = json.loads((artifacts / REPORT_FILE).read_text())
    except (OSError, ValueError):
        return False
    return (artifacts / HEADS_FILE).exists() and report.get("signature") == training_signature(cfg)


def train(cfg: TrainConfig, taxonomy: Taxonomy = DEFAULT_TAXONOMY) -> dict:
    """Train all heads, write ``heads.pt`` and ``training_report.json`` under ``cfg.artifacts``."""
    t0 = time.perf_counter()
    artifacts = Path(cfg.artifacts)
    extractor = feature_extractor(cfg.cache_dir)
    report: dict = {"config": {k: str(v) if isinstance(v, Path) else v
                               for k, v in asdict(cfg).items()}, "heads": {},
                    "signature": training_signature(cfg)}
    heads: dict = {}

    # category: real Fashion-MNIST photos, both polarities for training
    _, all_train_labels = fashion_mnist.load("train")
    index = fashion_mnist.balanced_subset(all_train_labels, cfg.fmnist_per_class, cfg.seed)
    parts = [_fmnist_features(cfg, extractor, "train", index, False)]
    if cfg.fmnist_invert:
        parts.append(_fmnist_features(cfg, extractor, "train", index, True))
    x = np.concatenate([p[0] for p in parts])
    y = np.concatenate([p[1] for p in parts])
    test_x, test_y = _fmnist_features(cfg, extractor, "test", None, False)
    # dark-on-light garments (like catalog photos): the first 2,000 test images, inverted
    inv_x, inv_y = _fmnist_features(cfg, extractor, "test", np.arange(2000), True)

    # FashionAI heads: rendered garments (+ real FashionAI CSV when given)
    rx, ry = _rendered_features(cfg, extractor, cfg.rendered_train, seed=cfg.seed + 1,
                                augment=True)
    tx, ty = _rendered_features(cfg, extractor, cfg.rendered_test, seed=cfg.seed + 2)
    if cfg.fashionai_csv:
        cx, cy = _fashionai_csv_features(cfg, extractor)
        rx = np.concatenate([rx, cx])
        ry = {k: np.concatenate([ry[k], cy[k]]) for k in ry}

    # every head fits on its own features: all at once, a process per core
    jobs = {CATEGORY.name: (x, y, CATEGORY.num_values)}
    for attribute in FASHIONAI_ATTRIBUTES:
        if attribute.name in taxonomy:
            jobs[attribute.name] = (rx, ry[attribute.name], attribute.num_values)
    for name, (_, labels, _) in jobs.items():
        log.info("fitting %s head on %d examples", name, int((labels >= 0).sum()))
    fits = heads_lib.select_heads(jobs, hidden_options=cfg.hidden_options, seed=cfg.seed,
                                  steps=cfg.steps)

    fit = fits[CATEGORY.name]
    heads[CATEGORY.name] = fit.head
    summary = _summarise(CATEGORY.name, fit, test_x, test_y, CATEGORY.num_values, len(y))
    summary["test_set"] = "Fashion-MNIST test (10,000 real images)"
    summary["test_accuracy_inverted_2000"] = round(heads_lib.accuracy(fit.head, inv_x, inv_y), 4)
    report["heads"][CATEGORY.name] = summary
    for name, fit in fits.items():
        if name == CATEGORY.name:
            continue
        attribute = taxonomy[name]
        heads[name] = fit.head
        summary = _summarise(name, fit, tx, ty[name], attribute.num_values,
                             int((ry[name] >= 0).sum()))
        summary["test_set"] = "procedurally rendered garments (held-out seed)"
        report["heads"][name] = summary

    if cfg.colour:  # fixed, untrained: pixels → named-colour shares (fashiontag.colour)
        from fashiontag.colour.head import ColourHead
        from fashiontag.colour.palette import colour_attribute

        colour = colour_attribute()
        taxonomy = taxonomy.with_attribute(colour)
        heads[colour.name] = ColourHead(colour.values)
        report["fixed_heads"] = {colour.name: colour.description}
    taxonomy, kept = heads_lib.keep_fewshot_heads(artifacts / HEADS_FILE, taxonomy, heads)
    if kept:
        report["kept_fewshot_heads"] = kept
    heads_lib.save_heads(artifacts / HEADS_FILE, taxonomy, heads)
    report["seconds"] = round(time.perf_counter() - t0, 1)
    (artifacts / REPORT_FILE).write_text(json.dumps(report, indent=2))
    return report
