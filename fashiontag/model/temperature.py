"""Honest confidences: one softmax temperature per head, and the calibration error it removes.

A head trained with label smoothing and class weights is not calibrated: its "0.9" may be right
70 % or 99 % of the time. A temperature ``T`` (logits / T) fitted by likelihood on a validation
split of *other photographers* fixes the scale without changing any decision; it is folded into
the head's weights (:func:`fashiontag.model.network.scale_logits`). Expected calibration error
(15 equal-width confidence bins, the usual definition) is reported before and after, on the
test split.
"""

from __future__ import annotations

import numpy as np

__all__ = ["fit_temperature", "expected_calibration_error", "softmax"]

ECE_BINS = 15


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    z = np.asarray(logits, np.float64) / temperature
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def _nll(logits: np.ndarray, labels: np.ndarray, temperature: float) -> float:
    p = softmax(logits, temperature)
    return float(-np.log(p[np.arange(len(labels)), labels] + 1e-12).mean())


def fit_temperature(logits: np.ndarray, labels: np.ndarray,
                    bounds: tuple[float, float] = (0.05, 20.0)) -> float:
    """The ``T`` minimising the negative log-likelihood of ``labels`` (rows with label -1 are
    ignored); golden-section search on log T (the NLL is unimodal in T)."""
    keep = labels >= 0
    logits, labels = np.asarray(logits)[keep], np.asarray(labels)[keep]
    if len(labels) == 0:
        return 1.0
    lo, hi = np.log(bounds[0]), np.log(bounds[1])
    ratio = (np.sqrt(5) - 1) / 2
    a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
    fa, fb = _nll(logits, labels, np.exp(a)), _nll(logits, labels, np.exp(b))
    for _ in range(60):
        if fa < fb:
            hi, b, fb = b, a, fa
            a = hi - ratio * (hi - lo)
            fa = _nll(logits, labels, np.exp(a))
        else:
            lo, a, fa = a, b, fb
            b = lo + ratio * (hi - lo)
            fb = _nll(logits, labels, np.exp(b))
    return float(np.exp((lo + hi) / 2))


def expected_calibration_error(probabilities: np.ndarray, labels: np.ndarray,
                               bins: int = ECE_BINS) -> float:
    """Σ_bins (share of images in the bin) · |accuracy − mean confidence|, over the top value's
    confidence; rows with label -1 are ignored."""
    probabilities, labels = np.asarray(probabilities), np.asarray(labels)
    keep = labels >= 0
    probabilities, labels = probabilities[keep], labels[keep]
    if len(labels) == 0:
        return float("nan")
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == labels
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    error = 0.0
    for b in range(bins):
        in_bin = index == b
        if in_bin.any():
            error += in_bin.mean() * abs(correct[in_bin].mean() - confidence[in_bin].mean())
    return float(error)
