"""Honest answers: temperature, background-aware fusion and the per-head verdict."""

from __future__ import annotations

import numpy as np
import pytest

from models.calibration import HeadCalibration
from service.aggregate import average_views, fuse_windows, layout_heads
from service.verdict import judge, pool_audio_groups

LABELS = ["thud", "chime", "slide", "background"]
RULES = HeadCalibration(
    temperature=2.0, background="background", min_confidence=0.6, audio_groups=(("thud", "chime"),)
)


def _head() -> object:
    return layout_heads([("avsynth", LABELS, False)], {"avsynth": RULES})[0]


def _logits(winner: int, margin: float = 8.0) -> np.ndarray:
    z = np.zeros(len(LABELS))
    z[winner] = margin
    return z


def test_temperature_softens_the_fused_probabilities() -> None:
    plain = layout_heads([("avsynth", LABELS, False)])
    z = _logits(2, 4.0)[None, :]
    sharp = fuse_windows(z, np.array([1.0]), plain)["avsynth"][2]
    soft = fuse_windows(z, np.array([1.0]), [_head()])["avsynth"][2]  # type: ignore[list-item]
    assert soft < sharp
    assert soft == pytest.approx(np.exp(2.0) / (np.exp(2.0) + 3.0))


def test_windows_the_model_sees_as_background_weigh_almost_nothing() -> None:
    layout = [_head()]
    event = _logits(2)
    empty = _logits(3)
    one = fuse_windows(event[None, :], np.array([1.0]), layout)["avsynth"]  # type: ignore[arg-type]
    four = fuse_windows(
        np.stack([empty, event, empty, empty]),
        np.full(4, 0.25),
        layout,  # type: ignore[arg-type]
    )["avsynth"]
    assert int(np.argmax(four)) == 2
    assert four[2] == pytest.approx(one[2], abs=0.02)  # more windows never drown the event
    dense = average_views(np.stack([empty] * 29 + [event]), layout)["avsynth"]  # type: ignore[arg-type]
    assert int(np.argmax(dense)) == 2


def test_dense_one_partly_covered_event_view_outvotes_29_mostly_empty_views() -> None:
    """A long video's 30 fixed views: 29 lean background (p_bg ~0.85), one half-covers the
    event (p_bg ~0.35); the event view decides the dense answer."""
    rules = HeadCalibration(temperature=1.0, background="background")
    plain = layout_heads([("avsynth", LABELS, False)], {"avsynth": rules})  # log-posteriors in
    mostly_empty = np.log(np.array([0.05, 0.05, 0.05, 0.85]))
    half_event = np.log(np.array([0.05, 0.05, 0.55, 0.35]))
    views = np.stack([mostly_empty] * 29 + [half_event])
    dense = average_views(views, plain)["avsynth"]
    assert int(np.argmax(dense)) == 2
    # the same views under squared weights (the selected-window rule) would answer background
    e = np.array([0.15] * 29 + [0.65])
    squared = (e**2 / (e**2).sum())[:, None] * np.exp(views)
    assert int(np.argmax(squared.sum(axis=0))) == 3


def test_all_background_windows_give_no_event_found() -> None:
    head = _head()
    probs = fuse_windows(np.stack([_logits(3)] * 3), np.full(3, 1 / 3), [head])["avsynth"]  # type: ignore[list-item]
    v = judge(probs, head, audio_usable=True, min_confidence=None)  # type: ignore[arg-type]
    assert (v.verdict, v.reason, v.label) == ("unknown", "no_event_found", None)
    assert v.background is not None and v.background > 0.5


def test_a_clear_class_is_known_with_its_label_and_a_low_ood_score() -> None:
    head = _head()
    probs = fuse_windows(_logits(2)[None, :], np.array([1.0]), [head])["avsynth"]  # type: ignore[list-item]
    v = judge(probs, head, audio_usable=True, min_confidence=None)  # type: ignore[arg-type]
    assert (v.verdict, v.reason, v.label) == ("known", None, "slide")
    assert v.ood_score == pytest.approx(1 - v.confidence, abs=1e-4)
    assert v.min_confidence == 0.6


def test_a_weak_best_class_is_out_of_distribution_and_the_request_may_lower_the_bar() -> None:
    head = _head()
    probs = np.array([0.1, 0.1, 0.5, 0.3])
    v = judge(probs, head, audio_usable=True, min_confidence=None)  # type: ignore[arg-type]
    assert (v.verdict, v.reason) == ("unknown", "out_of_distribution")
    lowered = judge(probs, head, audio_usable=True, min_confidence=0.4)  # type: ignore[arg-type]
    assert (lowered.verdict, lowered.label) == ("known", "slide")


def test_without_audio_sound_defined_classes_are_pooled_and_called_missing_modality() -> None:
    head = _head()
    probs = np.array([0.9, 0.05, 0.03, 0.02])
    pooled = pool_audio_groups(probs, head)  # type: ignore[arg-type]
    assert pooled[0] == pooled[1] == pytest.approx(0.475)
    assert pooled.sum() == pytest.approx(1.0)
    v = judge(pooled, head, audio_usable=False, min_confidence=0.0)  # type: ignore[arg-type]
    assert (v.verdict, v.reason) == ("unknown", "missing_modality")
    with_audio = judge(probs, head, audio_usable=True, min_confidence=None)  # type: ignore[arg-type]
    assert (with_audio.verdict, with_audio.label) == ("known", "thud")


def test_a_head_without_rules_keeps_the_old_fusion_and_always_answers() -> None:
    plain = layout_heads([("h", ["a", "b"], False)])
    z = np.array([[2.0, 0.0], [0.0, 1.0]])
    fused = fuse_windows(z, np.array([0.5, 0.5]), plain)["h"]
    e = np.exp([1.0, 0.5])
    assert fused == pytest.approx(e / e.sum())
    v = judge(fused, plain[0], audio_usable=False, min_confidence=None)
    assert (v.verdict, v.label, v.background) == ("known", "a", None)
