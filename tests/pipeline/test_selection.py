"""Window geometry shared by every policy: clamping, NMS spacing, adaptive K, fusion."""

from __future__ import annotations

import numpy as np
import pytest

from service.aggregate import average_views, fuse_windows, layout_heads, top_k
from service.media.geometry import snippet_times
from service.selection import adaptive_k, temporal_nms, uniform_starts, window_start

CLIP = 32 * 2 / 30.0  # official 4x16 clip: 2.133 s


@pytest.mark.parametrize(
    ("center", "duration", "expected"),
    [
        (0.1, 60.0, 0.0),  # near the start: clamped to 0
        (59.9, 60.0, 60.0 - CLIP),  # near the end: the clip still fits
        (30.0, 60.0, 30.0 - CLIP / 2),  # interior: centred
        (0.5, 1.0, 0.0),  # video shorter than a clip: starts at 0 (decoder pads)
    ],
)
def test_clip_start_is_clamped_inside_the_video(
    center: float, duration: float, expected: float
) -> None:
    start = window_start(center, CLIP, duration)
    assert start == pytest.approx(expected)
    assert start >= 0.0
    assert start + CLIP <= max(duration, CLIP) + 1e-9


def test_snippet_centers_are_evenly_spaced_midpoints() -> None:
    c = snippet_times(16.0, 16)
    np.testing.assert_allclose(c, np.arange(16) + 0.5)


def test_uniform_starts_cover_the_video_evenly() -> None:
    starts = uniform_starts(40.0, CLIP, 4)
    centers = np.asarray(starts) + CLIP / 2
    np.testing.assert_allclose(centers, [5.0, 15.0, 25.0, 35.0])


def test_nms_keeps_selected_clips_at_most_half_overlapping() -> None:
    rng = np.random.default_rng(0)
    for _ in range(200):
        n = int(rng.integers(2, 40))
        starts = np.sort(rng.uniform(0, 30, n))
        scores = rng.normal(size=n)
        kept = temporal_nms(scores, starts, CLIP, k=6, max_overlap=0.5)
        assert 1 <= len(kept) <= 6
        for i in kept:
            for j in kept:
                if i != j:
                    overlap = max(0.0, CLIP - abs(starts[i] - starts[j])) / CLIP
                    assert overlap <= 0.5 + 1e-9
        # The best candidate is always selected first.
        assert kept[0] == int(np.argmax(scores))


def test_nms_suppresses_a_neighbour_and_takes_the_next_distinct_peak() -> None:
    starts = [0.0, 0.5, 10.0]
    scores = [3.0, 2.9, 1.0]
    assert temporal_nms(scores, starts, CLIP, k=2) == [0, 2]


def test_nms_breaks_ties_towards_the_earlier_candidate() -> None:
    starts = [0.0, 10.0, 20.0]
    assert temporal_nms([1.0, 1.0, 1.0], starts, CLIP, k=2) == [0, 1]


def test_adaptive_k_stops_at_the_requested_saliency_mass() -> None:
    saliency = np.array([5.0, 0.0, 0.0, 0.0])  # one snippet holds ~95 % of the mass
    assert adaptive_k(saliency, [0, 1, 2, 3], mass=0.8, k_max=4) == 1
    flat = np.zeros(4)
    assert adaptive_k(flat, [0, 1, 2, 3], mass=0.8, k_max=4) == 4


def test_fusion_weights_windows_and_adds_the_glance_head_per_head() -> None:
    layout = layout_heads([("verb", ["a", "b"], False), ("noun", ["x", "y", "z"], True)])
    logits = np.array([[4.0, 0.0, 3.0, -3.0, 0.0], [0.0, 4.0, -3.0, 3.0, 0.0]])
    probs = fuse_windows(logits, np.array([1.0, 0.0]), layout)
    assert probs["verb"].argmax() == 0
    assert probs["verb"].sum() == pytest.approx(1.0)
    # Multi-label head: independent sigmoids, not a distribution.
    np.testing.assert_allclose(probs["noun"], 1 / (1 + np.exp(-np.array([3.0, -3.0, 0.0]))))
    glance = np.array([0.0, 20.0, 0.0, 0.0, 0.0])
    swayed = fuse_windows(logits, np.array([0.5, 0.5]), layout, glance_logits=glance, beta=0.3)
    assert swayed["verb"].argmax() == 1


def test_dense_averages_view_probabilities_not_logits() -> None:
    layout = layout_heads([("default", ["a", "b"], False)])
    logits = np.array([[10.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    probs = average_views(logits, layout)["default"]
    # Averaging logits would give b; averaging softmax gives a (one confident view).
    assert probs.argmax() == 0
    assert probs.sum() == pytest.approx(1.0)


def test_top_k_orders_by_score() -> None:
    out = top_k(np.array([0.1, 0.7, 0.2]), ["a", "b", "c"], 2)
    assert [s.label for s in out] == ["b", "c"]
    assert out[0].index == 1
