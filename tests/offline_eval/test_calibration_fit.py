"""Fitting temperature scaling and the abstention threshold (offline.calibration)."""

from __future__ import annotations

import numpy as np
import pytest

from offline.calibration import (
    choose_min_confidence,
    expected_calibration_error,
    fit_temperature,
    fit_temperature_ece,
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


def test_the_ece_fit_recovers_the_true_temperature_too() -> None:
    z, y = _overconfident()
    assert fit_temperature_ece(z, y) == pytest.approx(3.0, rel=0.15)
    assert fit_temperature_ece(z, y, min_temperature=4.0) == 4.0  # bounded below


def test_an_under_confident_model_is_not_sharpened_below_the_bound() -> None:
    z, y = _overconfident(true_t=0.5)  # calibrated only at T = 0.5
    assert fit_temperature_ece(z, y) == pytest.approx(0.5, rel=0.15)
    assert fit_temperature_ece(z, y, min_temperature=1.0) == 1.0


def test_a_few_confident_mistakes_pull_the_nll_fit_away_but_not_the_ece_fit() -> None:
    """A 97%-accurate model whose 3% mistakes are very sure of themselves (AVSynth's drift
    confusions): NLL raises T and under-states every correct answer; the ECE fit does not."""
    rng = np.random.default_rng(3)
    n, c = 3000, 11
    y = rng.integers(0, c, size=n)
    z = rng.normal(0, 1.0, size=(n, c))
    wrong = rng.random(n) < 0.03
    z[np.flatnonzero(~wrong), y[~wrong]] += 7.0  # right, and about as sure as it is right
    z[np.flatnonzero(wrong), (y[wrong] + 1) % c] += 12.0  # wrong, and surer still
    t_nll, t_ece = fit_temperature(z, y), fit_temperature_ece(z, y)
    assert t_nll > 1.2 * t_ece
    ece = {t: expected_calibration_error(softmax_t(z, t), y) for t in (t_nll, t_ece)}
    assert ece[t_ece] < ece[t_nll]


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
    n = int(known.sum())
    assert 0.0 < t < 1.0
    # conformal risk control: (refused + 1) / (n + 1) <= target, for the largest such threshold
    assert (refused(probs[known], 3, t).sum() + 1) / (n + 1) <= 0.02
    assert (refused(probs[known], 3, t + 0.01).sum() + 1) / (n + 1) > 0.02


def test_the_threshold_holds_the_target_on_fresh_clips_on_average() -> None:
    """Over many validation draws, the false abstentions on new clips average <= the target."""
    fresh, fresh_labels = _clips(n=20000, seed=99)
    known = fresh_labels != 3
    rates = []
    for seed in range(40):
        probs, labels = _clips(n=300, seed=seed)
        t = choose_min_confidence(probs, labels, 3, 0.05)
        rates.append(refused(fresh[known], 3, t).mean())
    assert np.mean(rates) <= 0.05


def test_when_background_alone_refuses_too_many_the_threshold_is_zero() -> None:
    probs, labels = _clips()
    probs[labels != 3, 3] = 1.0  # every class clip looks like background
    assert choose_min_confidence(probs, labels, 3, 0.02) == 0.0


def test_pooling_makes_sound_only_pairs_undecided() -> None:
    probs = np.array([[0.8, 0.1, 0.1]])
    out = pooled(probs, ["thud", "chime", "slide"], [["thud", "chime"]])
    assert out[0, 0] == out[0, 1] == pytest.approx(0.45)
