"""Temperature scaling: fitted on one half of the data, it lowers calibration error on the other."""

from __future__ import annotations

import numpy as np
import pytest

from fashiontag.model.temperature import expected_calibration_error, fit_temperature, softmax


def _overconfident(n: int, k: int = 6, sharpen: float = 3.0, seed: int = 0):
    """Logits of a calibrated classifier, multiplied by ``sharpen``: right as often as before,
    far surer than it should be."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0.0, 1.5, (n, k))
    labels = np.array([rng.choice(k, p=p) for p in softmax(logits)])
    return logits * sharpen, labels


def test_a_fitted_temperature_lowers_calibration_error_on_held_out_data():
    logits, labels = _overconfident(4000)
    fit, held_out = slice(0, 2000), slice(2000, None)
    temperature = fit_temperature(logits[fit], labels[fit])
    before = expected_calibration_error(softmax(logits[held_out]), labels[held_out])
    after = expected_calibration_error(softmax(logits[held_out], temperature), labels[held_out])
    assert temperature == pytest.approx(3.0, rel=0.15)
    assert after < before / 3 and after < 0.03


def test_temperature_never_changes_a_decision():
    logits, labels = _overconfident(500)
    t = fit_temperature(logits, labels)
    assert (softmax(logits, t).argmax(1) == logits.argmax(1)).all()


def test_ece_of_a_perfectly_calibrated_constant_is_zero_and_unlabelled_rows_are_ignored():
    p = np.tile([0.75, 0.25], (400, 1))
    labels = np.array([0, 0, 0, 1] * 100)
    assert expected_calibration_error(p, labels) == pytest.approx(0.0, abs=1e-9)
    assert expected_calibration_error(p, np.r_[labels[:-1], -1]) < 0.01
    assert fit_temperature(np.zeros((3, 2)), np.full(3, -1)) == 1.0
