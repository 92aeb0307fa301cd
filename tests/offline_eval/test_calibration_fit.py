"""Fitting temperature scaling and the abstention threshold (offline.calibration)."""

from __future__ import annotations

import numpy as np
import pytest

from offline.calibration import (
    choose_min_confidence,
    expected_calibration_error,
    fit_temperature,
    pooled,
    refused,
    softmax_t,
)


def _overconfident(n: int = 4000, c: int = 5, true_t: float = 3.0) -> tuple[np.ndarray, np.ndarray]:
    """Logits whose calibrated temperature is ``true_t`` (labels drawn from softmax(z / T))."""
    rng = np.random.default_rng(0)
    z = rng.normal(0, 4.0, size=(n, c))
    p = softmax_t(z, true_t)
    y = np.array([rng.choice(c, p=row) for row in p])
    return z, y


def test_temperature_scaling_recovers_the_true_temperature_and_lowers_ece() -> None:
    z, y = _overconfident()
    t = fit_temperature(z, y)
    assert t == pytest.approx(3.0, rel=0.1)
    assert expected_calibration_error(softmax_t(z, t), y) < 0.5 * expected_calibration_error(
        softmax_t(z, 1.0), y
    )


def _clips(n: int = 1000, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Class clips whose own label mostly wins (index 3 is the background outcome)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 4, size=n)
    top = rng.beta(6, 2, size=n)
    probs = (1 - top)[:, None] * rng.dirichlet(np.ones(4), size=n)
    probs[np.arange(n), labels] += top
    return probs, labels


def test_the_threshold_refuses_at_most_the_target_share_of_class_clips() -> None:
    probs, labels = _clips()
    t = choose_min_confidence(probs, labels, 3, 0.02)
    known = labels != 3
    assert 0.0 < t < 1.0
    assert refused(probs[known], 3, t).mean() <= 0.02
    assert refused(probs[known], 3, t + 0.01).mean() > 0.02  # the largest such threshold


def test_when_background_alone_refuses_too_many_the_threshold_is_zero() -> None:
    probs, labels = _clips()
    probs[labels != 3, 3] = 1.0  # every class clip looks like background
    assert choose_min_confidence(probs, labels, 3, 0.02) == 0.0


def test_pooling_makes_sound_only_pairs_undecided() -> None:
    probs = np.array([[0.8, 0.1, 0.1]])
    out = pooled(probs, ["thud", "chime", "slide"], [["thud", "chime"]])
    assert out[0, 0] == out[0, 1] == pytest.approx(0.45)
