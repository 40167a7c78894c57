"""Active learning: which unlabelled images should a person label next?

The attribute's current head scores every image of an unlabelled pool; the images it is least
sure about come first (highest entropy, or smallest margin between its two best values). Those
are the ones whose labels teach the next head the most. The output is a CSV a person fills in
(``value`` column) and feeds back to ``fewshot add`` together with the existing labels.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fashiontag.artifacts import DEFAULT_ROOT, Artifacts
from fashiontag.errors import FashiontagError

__all__ = ["Suggestion", "uncertainty", "rank_pool", "suggest", "write_suggestions"]

METHODS = ("entropy", "margin")


@dataclass(frozen=True)
class Suggestion:
    path: Path
    predicted: str
    confidence: float
    entropy: float
    margin: float


def uncertainty(probabilities: np.ndarray, method: str = "entropy") -> np.ndarray:
    """Higher = less certain. ``entropy`` is normalised to [0, 1]; ``margin`` is 1 − (p1 − p2)."""
    p = np.clip(np.asarray(probabilities, np.float64), 1e-12, 1.0)
    if method == "entropy":
        return -(p * np.log(p)).sum(-1) / np.log(p.shape[-1])
    if method == "margin":
        top2 = np.sort(p, axis=-1)[..., -2:]
        return 1.0 - (top2[..., 1] - top2[..., 0])
    raise ValueError(f"unknown method {method!r}; known: {METHODS}")


def rank_pool(probabilities: np.ndarray, paths: list[Path], values: tuple[str, ...],
              method: str = "entropy", exclude: set[Path] = frozenset()) -> list[Suggestion]:
    """Pool images, most uncertain first (ties: path order); ``exclude`` = already labelled."""
    scores = uncertainty(probabilities, method)
    entropy = uncertainty(probabilities, "entropy")
    margin_left = uncertainty(probabilities, "margin")
    order = sorted(range(len(paths)), key=lambda i: (-scores[i], str(paths[i])))
    excluded = {Path(p).resolve() for p in exclude}
    out = []
    for i in order:
        if Path(paths[i]).resolve() in excluded:
            continue
        best = int(probabilities[i].argmax())
        out.append(Suggestion(Path(paths[i]), values[best], float(probabilities[i, best]),
                              float(entropy[i]), float(1.0 - margin_left[i])))
    return out


def suggest(name: str, pool: Path, artifacts: Path = DEFAULT_ROOT, count: int = 20,
            method: str = "entropy") -> list[Suggestion]:
    """Rank ``pool`` for attribute ``name`` with the head in the artifacts' heads file."""
    from fashiontag.fewshot.add import pool_paths
    from fashiontag.fewshot.features import FeatureStore
    from fashiontag.fewshot.heads import fewshot_probabilities
    from fashiontag.labels import read_labels
    from fashiontag.model.heads import load_heads

    layout = Artifacts(artifacts)
    taxonomy, heads = load_heads(layout.heads)
    if name not in taxonomy or getattr(heads[name], "takes_pixels", False):
        raise FashiontagError(f"no trained head for {name!r}; run `fashiontag fewshot add "
                              f"{name} --images ...` first")
    paths = pool_paths(pool)
    if not paths:
        raise FashiontagError(f"--pool {pool}: no images found")
    labels_csv = layout.fewshot_labels(name)
    labelled = {i.path for i in read_labels(labels_csv, name, must_exist=False)} \
        if labels_csv.exists() else set()
    features = FeatureStore(layout.cache, ("original",), backbone=layout.backbone).features(
        paths)[:, 0]
    probabilities = fewshot_probabilities(heads[name], features)
    return rank_pool(probabilities, paths, taxonomy[name].values, method, labelled)[:count]


def write_suggestions(suggestions: list[Suggestion], path: Path) -> Path:
    """CSV ``path,value,predicted,confidence,entropy,margin``; a person fills in ``value``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "value", "predicted", "confidence", "entropy", "margin"])
        for s in suggestions:
            writer.writerow([str(s.path.resolve()), "", s.predicted, f"{s.confidence:.4f}",
                             f"{s.entropy:.4f}", f"{s.margin:.4f}"])
    return path
