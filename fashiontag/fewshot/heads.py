"""Few-shot heads on frozen backbone features: prototype, logistic and linear, picked by
cross-validation.

All heads see the same features the served graph computes. ``prototype`` and ``logistic`` work on
normalised features (square root, unit length, centred, unit length again; see
:func:`fashiontag.model.network.normalize_features`) and become a
:class:`~fashiontag.model.network.NormalizedLinearHead`; ``linear`` is the trainer's usual
:class:`~fashiontag.model.network.AttributeHead` on raw features.

An optional unlabelled pool (e.g. the catalog that needs tagging) helps twice, honestly
(it is never a test set): its mean centres the features, and label propagation over a k-NN graph
of labelled + pool images gives pseudo-labels that the logistic head also learns from, with
confidence weights. The served head stays inductive: each image is scored on its own.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from fashiontag.model.heads import single_thread
from fashiontag.model.network import NormalizedLinearHead

__all__ = ["KINDS", "FitOptions", "FewShotFit", "normalize", "fit_fewshot_head", "cross_validate",
           "select_fewshot_head", "propagate_labels", "stratified_folds", "fewshot_probabilities",
           "fit_logistic"]

log = logging.getLogger(__name__)

KINDS = ("logistic", "prototype", "linear")  # the first is the default (see select_fewshot_head)


@dataclass(frozen=True)
class FitOptions:
    scale: float = 10.0  # logit scale on unit-length features (softmax temperature 1/scale)
    c: float = 1.0  # inverse L2 strength of logistic regression (scikit-learn's C)
    pool_weight: float = 0.5  # weight of a pseudo-labelled pool image relative to a labelled one
    neighbours: int = 10  # k of the label-propagation graph
    alpha: float = 0.95  # label-propagation damping (0.95 vs 0.8: +0.006 at 10 shots, measured)
    max_pool: int = 5000  # pool images used (random subset beyond that); 5000 vs 3000: +0.007
    # at 10 shots on Fashion-MNIST, measured on half of its test set (benchmarks/fewshot.py)
    linear_steps: int = 200  # optimiser steps of the ``linear`` head (full batches at this size)
    seed: int = 0


@dataclass
class FewShotFit:
    head: nn.Module
    kind: str
    cv_accuracy: float | None  # None when there were too few images per value to cross-validate
    confusion: np.ndarray | None  # out-of-fold, rows = true value, columns = predicted
    candidates: dict[str, float] = field(default_factory=dict)  # kind → CV accuracy
    folds: int = 0


def normalize(x: np.ndarray, mean: np.ndarray | None = None) -> np.ndarray:
    """numpy twin of :func:`fashiontag.model.network.normalize_features`."""
    z = np.sqrt(np.maximum(x, 0.0))
    z = z / (np.linalg.norm(z, axis=-1, keepdims=True) + 1e-8)
    if mean is not None:
        z = z - mean
        z = z / (np.linalg.norm(z, axis=-1, keepdims=True) + 1e-8)
    return z.astype(np.float32)


def fit_logistic(x: np.ndarray, y: np.ndarray, k: int, c: float,
              weights: np.ndarray | None = None, iters: int = 100
              ) -> tuple[np.ndarray, np.ndarray]:
    """Multinomial logistic regression, L2 on W (not b), L-BFGS; returns ``W [K, D]``, ``b``."""
    xt = torch.from_numpy(np.ascontiguousarray(x, np.float32))
    yt = torch.from_numpy(y.astype(np.int64))
    wt = torch.ones(len(y)) if weights is None else torch.from_numpy(weights.astype(np.float32))
    w = torch.zeros(k, x.shape[1], requires_grad=True)
    b = torch.zeros(k, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=iters, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = (nn.functional.cross_entropy(xt @ w.T + b, yt, reduction="none") * wt).sum() \
            + 0.5 / c * (w ** 2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return w.detach().numpy(), b.detach().numpy()


def propagate_labels(labelled: np.ndarray, labels: np.ndarray, pool: np.ndarray, k: int,
                     neighbours: int = 10, alpha: float = 0.8
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Label propagation (Zhou et al., 2004) on a k-NN cosine graph of normalised features.

    Returns pseudo-labels and confidences (share of the propagated mass) of the pool rows.
    """
    z = np.concatenate([labelled, pool])
    n = len(z)
    neighbours = min(neighbours, n - 1)
    sim = z @ z.T
    np.fill_diagonal(sim, -1.0)
    nearest = np.argpartition(-sim, neighbours, axis=1)[:, :neighbours]
    rows = np.repeat(np.arange(n), neighbours)
    graph = np.zeros((n, n), np.float32)
    graph[rows, nearest.ravel()] = np.maximum(sim[rows, nearest.ravel()], 0.0) ** 3
    graph = graph + graph.T
    d = 1.0 / np.sqrt(graph.sum(1) + 1e-9)
    graph *= d[:, None] * d[None, :]
    seed = np.zeros((n, k), np.float32)
    seed[np.arange(len(labels)), labels] = 1.0
    f = seed.copy()
    for _ in range(30):
        f = alpha * (graph @ f) + seed
    f = f / (f.sum(0, keepdims=True) + 1e-9)  # class-balance the propagated mass
    f = f[len(labels):]
    return f.argmax(1), f.max(1) / (f.sum(1) + 1e-9)


def fit_fewshot_head(kind: str, features: np.ndarray, labels: np.ndarray, k: int,
             pool: np.ndarray | None = None, options: FitOptions = FitOptions()) -> nn.Module:
    """One head of ``kind`` on ``features [N, V, D]`` (views of each image) and ``labels [N]``.

    ``pool [M, D]``: unlabelled features (original view) for centring and pseudo-labels.
    """
    with single_thread():
        return _fit_head(kind, features, labels, k, pool, options)


def _fit_head(kind: str, features: np.ndarray, labels: np.ndarray, k: int,
              pool: np.ndarray | None, options: FitOptions) -> nn.Module:
    n, v, d = features.shape
    views = features.reshape(n * v, d)
    view_labels = np.repeat(labels, v)
    if kind == "linear":
        from fashiontag.model.heads import fit_head as fit_mlp  # the trainer's linear probe

        return fit_mlp(views, view_labels, k, hidden=0, seed=options.seed,
                       steps=options.linear_steps)
    if pool is not None and len(pool) > options.max_pool:
        rng = np.random.default_rng(options.seed)
        pool = pool[rng.choice(len(pool), options.max_pool, replace=False)]
    mean = normalize(pool if pool is not None and len(pool) else views).mean(0)
    z = normalize(views, mean)
    if kind == "prototype":
        means = np.stack([z[view_labels == c].mean(0) for c in range(k)])
        means /= np.linalg.norm(means, axis=1, keepdims=True) + 1e-8
        return NormalizedLinearHead.from_arrays(mean, means, np.zeros(k), options.scale)
    if kind != "logistic":
        raise ValueError(f"unknown head kind {kind!r}; known: {KINDS}")
    x, y, weights = z, view_labels, np.ones(len(z), np.float32)
    if pool is not None and len(pool):
        zp = normalize(pool, mean)
        pseudo, confidence = propagate_labels(normalize(features[:, 0], mean), labels, zp, k,
                                              options.neighbours, options.alpha)
        x = np.concatenate([z, zp])
        y = np.concatenate([view_labels, pseudo])
        weights = np.concatenate([weights, options.pool_weight * confidence])
    # labelled images count once whatever the number of views
    weights[:len(z)] /= v
    w, b = fit_logistic(x * options.scale, y, k, options.c, weights)
    return NormalizedLinearHead.from_arrays(mean, w, b, options.scale)


def fewshot_probabilities(head: nn.Module, features: np.ndarray) -> np.ndarray:
    """Probabilities ``[N, K]`` of ``features [N, D]``."""
    with torch.no_grad(), single_thread():
        logits = head.eval()(torch.from_numpy(np.ascontiguousarray(features, np.float32)))
    return torch.softmax(logits, -1).numpy()


def stratified_folds(labels: np.ndarray, folds: int, seed: int = 0) -> np.ndarray:
    """Fold index per image, every value spread evenly over the folds."""
    rng = np.random.default_rng(seed)
    out = np.empty(len(labels), np.int64)
    for value in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == value))
        out[idx] = np.arange(len(idx)) % folds
    return out


def cross_validate(kind: str, features: np.ndarray, labels: np.ndarray, k: int,
                   pool: np.ndarray | None = None, folds: int = 5,
                   options: FitOptions = FitOptions()) -> np.ndarray:
    """Out-of-fold predicted value per image (all views of an image stay in one fold)."""
    assignment = stratified_folds(labels, folds, options.seed)
    predicted = np.empty(len(labels), np.int64)
    for fold in range(folds):
        test = assignment == fold
        head = fit_fewshot_head(kind, features[~test], labels[~test], k, pool, options)
        predicted[test] = fewshot_probabilities(head, features[test, 0]).argmax(1)
    return predicted


def select_fewshot_head(features: np.ndarray, labels: np.ndarray, k: int,
                pool: np.ndarray | None = None, kinds: tuple[str, ...] = KINDS,
                options: FitOptions = FitOptions(), max_folds: int = 5) -> FewShotFit:
    """Cross-validate every kind, keep the best, refit it on all data.

    "Best" means clearly best: the default kind (``kinds[0]``, logistic) is kept unless another
    kind's CV accuracy beats it by more than two binomial standard errors of that estimate. With a
    few dozen images CV differences of a few points are noise; on Fashion-MNIST with 5 images
    per class, CV picked the prototype head 3 times in 5 under a one-error rule and each pick
    scored 1-2 points below logistic on the test set (benchmarks/fewshot.py). With fewer than
    two images of some value there is nothing to cross-validate: the default kind is fitted and
    ``cv_accuracy`` is None.
    """
    folds = int(min(max_folds, np.bincount(labels, minlength=k).min()))
    if folds < 2:
        head = fit_fewshot_head(kinds[0], features, labels, k, pool, options)
        return FewShotFit(head, kinds[0], None, None)
    candidates, predictions = {}, {}
    for kind in kinds:
        predictions[kind] = cross_validate(kind, features, labels, k, pool, folds, options)
        candidates[kind] = float((predictions[kind] == labels).mean())
        log.info("%s head: %d-fold CV accuracy %.4f", kind, folds, candidates[kind])
    best = max(kinds, key=lambda kind: candidates[kind])  # first of equals wins
    standard_error = np.sqrt(candidates[best] * (1 - candidates[best]) / len(labels))
    if candidates[kinds[0]] >= candidates[best] - 2.0 * standard_error:
        best = kinds[0]
    best_acc = candidates[best]
    confusion = np.zeros((k, k), np.int64)
    np.add.at(confusion, (labels, predictions[best]), 1)
    head = fit_fewshot_head(best, features, labels, k, pool, options)
    return FewShotFit(head, best, best_acc, confusion, candidates, folds)
